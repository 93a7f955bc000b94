// The hub downloader against a local HTTP server laid out like the Hugging Face hub: small files
// carry their git blob SHA-1 as ETag, the LFS file answers with a redirect carrying
// X-Linked-Etag (SHA-256) and X-Linked-Size, and Range requests are honoured.
#include "model/hub/hub_download.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "core/hash.h"

namespace fs::hub {
namespace {

namespace stdfs = std::filesystem;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

constexpr const char* kProxyVariables[] = {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY"};

// A plain-HTTP forward proxy (no CONNECT): "GET http://HOST/PATH" is sent on to the fake hub at
// 127.0.0.1:hub_port whatever HOST is, and HOST is remembered. Tests name a host that does not
// resolve (hub.invalid), so a download that reaches the hub at all went through the proxy.
class ForwardProxy {
 public:
  explicit ForwardProxy(int hub_port) {
    // httplib hands HEAD to GET handlers and drops the body itself.
    server_.Get(".*", [this, hub_port](const httplib::Request& req, httplib::Response& res) {
      const size_t scheme = req.path.find("://");
      if (scheme == std::string::npos) {  // not the absolute form a proxy is sent
        res.status = 400;
        return;
      }
      const size_t path_at = req.path.find('/', scheme + 3);
      {
        std::lock_guard<std::mutex> lock(mu_);
        hosts_.push_back(req.path.substr(scheme + 3, path_at - scheme - 3));
      }
      httplib::Client hub("127.0.0.1", hub_port);
      httplib::Headers headers;
      if (req.has_header("Range")) headers.emplace("Range", req.get_header_value("Range"));
      auto reply = hub.Get(req.path.substr(path_at), headers);
      if (!reply) {
        res.status = 502;
        return;
      }
      res.status = reply->status;
      for (const char* name : {"Location", "ETag", "X-Linked-Etag", "X-Linked-Size", "Content-Range"}) {
        if (reply->has_header(name)) res.set_header(name, reply->get_header_value(name));
      }
      res.set_content(reply->body, reply->get_header_value("Content-Type"));
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~ForwardProxy() {
    server_.stop();
    thread_.join();
  }
  std::string address() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<std::string> hosts() {
    std::lock_guard<std::mutex> lock(mu_);
    return hosts_;
  }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  std::vector<std::string> hosts_;
};

class HubTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = stdfs::temp_directory_path().string() + "/hub_test_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    stdfs::remove_all(dir_);
    // Downloads below go straight to 127.0.0.1 unless a test sets a proxy itself.
    for (const char* name : kProxyVariables) ::unsetenv(name);
    std::mt19937 rng(3);
    weights_.resize(3 << 20);  // 3 MiB of "safetensors"
    for (char& c : weights_) c = static_cast<char>(rng());
    files_ = {{"config.json", R"({"model_type": "clip", "projection_dim": 512})"}, {"tokenizer.json", R"({"model": {}})"}};
    // httplib answers HEAD with the GET handler, without the body.
    server_.Get(R"(/openai/clip-vit-base-patch32/resolve/main/(.+))", [this](const auto& req, auto& res) { Serve(req, res); });
    // The multilingual model's repository (MultilingualModelFromItsPublishedRepository).
    server_.Get(R"(/laion/CLIP-ViT-B-32-xlm-roberta-base-laion5B-s13B-b90k/resolve/main/(.+))",
                [this](const httplib::Request& req, httplib::Response& res) {
                  const std::string name = req.matches[1];
                  if (name == "open_clip_model.safetensors" && !pickle_only_) {
                    res.status = 302;
                    res.set_header("Location", "/lfs/weights");
                    res.set_header("X-Linked-Etag", "\"" + Sha256Hex(weights_) + "\"");
                    res.set_header("X-Linked-Size", std::to_string(weights_.size()));
                  } else if (name == "tokenizer.json") {
                    res.set_header("ETag", "\"" + GitBlobSha1Hex(tokenizer_) + "\"");
                    res.set_content(tokenizer_, "application/json");
                  } else {
                    res.status = 404;
                  }
                });
    server_.Get("/lfs/weights", [this](const httplib::Request& req, httplib::Response& res) {
      if (req.method == "GET") {
        if (req.has_header("Range")) ranges_.push_back(req.get_header_value("Range"));
        ++lfs_gets_;
      }
      res.set_content(corrupt_ ? std::string(weights_.size(), 'x') : weights_, "application/octet-stream");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  void TearDown() override {
    server_.stop();
    thread_.join();
    stdfs::remove_all(dir_);
  }
  void Serve(const httplib::Request& req, httplib::Response& res) {
    const std::string name = req.matches[1];
    if (name == "model.safetensors") {  // LFS: redirect to storage, checksum in X-Linked-Etag
      res.status = 302;
      res.set_header("Location", "/lfs/weights");
      res.set_header("X-Linked-Etag", "\"" + Sha256Hex(weights_) + "\"");
      res.set_header("X-Linked-Size", std::to_string(weights_.size()));
      return;
    }
    auto it = files_.find(name);
    if (it == files_.end()) {
      res.status = 404;
      return;
    }
    res.set_header("ETag", "\"" + GitBlobSha1Hex(it->second) + "\"");
    res.set_content(it->second, "application/json");
  }
  DownloadOptions Options() {
    DownloadOptions o;
    o.endpoint = "http://127.0.0.1:" + std::to_string(port_);
    o.dest_dir = dir_ + "/model";
    o.progress = false;
    o.timeout_s = 5;
    return o;
  }

  std::string dir_, weights_;
  std::map<std::string, std::string> files_;
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::vector<std::string> ranges_;
  std::atomic<int> lfs_gets_{0};
  bool corrupt_ = false;
  std::atomic<bool> pickle_only_{false};
  const std::string tokenizer_ = R"({"model": {"type": "Unigram"}})";
};

TEST(GitBlobSha1, MatchesGit) {
  // As `git hash-object --stdin` prints them.
  EXPECT_EQ(GitBlobSha1Hex("hello\n"), "ce013625030ba8dba906f756967f9e9ca394464a");
  EXPECT_EQ(GitBlobSha1Hex(""), "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
}

TEST_F(HubTest, DownloadsVerifiesAndSkipsWhatIsThere) {
  auto r = Download(Options());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadAll(dir_ + "/model/model.safetensors"), weights_);
  EXPECT_EQ(ReadAll(dir_ + "/model/config.json"), files_["config.json"]);
  EXPECT_EQ(ReadAll(dir_ + "/model/tokenizer.json"), files_["tokenizer.json"]);
  EXPECT_FALSE(stdfs::exists(dir_ + "/model/vocab.json")) << "optional, not on this hub";
  std::map<std::string, FileResult> by_name;
  for (const auto& f : *r) by_name[f.name] = f;
  EXPECT_EQ(by_name["model.safetensors"].checksum, "sha256:" + Sha256Hex(weights_));
  EXPECT_EQ(by_name["config.json"].checksum, "git-sha1:" + GitBlobSha1Hex(files_["config.json"]));
  EXPECT_TRUE(by_name["vocab.json"].skipped_missing);
  EXPECT_FALSE(stdfs::exists(dir_ + "/model/model.safetensors.part"));
  // Again: everything is verified in place, nothing is fetched.
  auto again = Download(Options());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(lfs_gets_.load(), 1);
  for (const auto& f : *again) EXPECT_TRUE(f.already_complete || f.skipped_missing) << f.name;
}

TEST_F(HubTest, ResumesAPartialFileWithARangeRequest) {
  stdfs::create_directories(dir_ + "/model");
  std::ofstream(dir_ + "/model/model.safetensors.part", std::ios::binary) << weights_.substr(0, 1 << 20);
  auto r = Download(Options());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(ranges_.size(), 1u);
  EXPECT_EQ(ranges_[0], "bytes=1048576-");
  EXPECT_EQ(ReadAll(dir_ + "/model/model.safetensors"), weights_);
  for (const auto& f : *r) {
    if (f.name == "model.safetensors") {
      EXPECT_TRUE(f.resumed);
      EXPECT_EQ(f.downloaded, weights_.size() - (1u << 20));
    }
  }
}

TEST_F(HubTest, ChecksumMismatchLeavesNoFileAndSaysSo) {
  corrupt_ = true;
  auto r = Download(Options());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_NE(r.status().message().find("model.safetensors"), std::string::npos) << r.status().ToString();
  EXPECT_NE(r.status().message().find("checksum mismatch"), std::string::npos);
  EXPECT_FALSE(stdfs::exists(dir_ + "/model/model.safetensors"));
  EXPECT_FALSE(stdfs::exists(dir_ + "/model/model.safetensors.part"));
  // A damaged file already in place is fetched again, not trusted.
  corrupt_ = false;
  std::ofstream(dir_ + "/model/model.safetensors", std::ios::binary) << "garbage";
  auto fixed = Download(Options());
  ASSERT_TRUE(fixed.ok()) << fixed.status().ToString();
  EXPECT_EQ(ReadAll(dir_ + "/model/model.safetensors"), weights_);
}

TEST_F(HubTest, ClearErrorsForUnknownModelsAndUnreachableHosts) {
  DownloadOptions o = Options();
  o.repo = "nobody/no-such-model";
  auto missing = Download(o);
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("check the model name"), std::string::npos);
  o = Options();
  o.endpoint = "http://127.0.0.1:1";  // nothing listens there
  auto down = Download(o);
  EXPECT_EQ(down.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(down.status().message().find("cannot reach"), std::string::npos);
  o = Options();
  o.endpoint = "ftp://example";
  EXPECT_EQ(Download(o).status().code(), StatusCode::kInvalidArgument);
  o = Options();
  o.repo = "../etc";
  EXPECT_EQ(Download(o).status().code(), StatusCode::kInvalidArgument);
}

// The multilingual OpenCLIP model by its OpenCLIP name: the files come from its laion repository
// with the same checksums and resume as any model; the hub has no open_clip_config.json here, so
// the catalogue's is written; without the safetensors weights (only the pickle), a clear error.
TEST_F(HubTest, MultilingualModelFromItsPublishedRepository) {
  const hub::CatalogueModel* model = hub::FindCatalogueModel("xlm-roberta-base-ViT-B-32");
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(hub::FindCatalogueModel("laion/CLIP-ViT-B-32-xlm-roberta-base-laion5B-s13B-b90k"), model);
  EXPECT_EQ(hub::FindCatalogueModel("openai/clip-vit-base-patch32"), nullptr);
  EXPECT_EQ(model->repo, "laion/CLIP-ViT-B-32-xlm-roberta-base-laion5B-s13B-b90k");
  const std::string& tokenizer = tokenizer_;
  // Only the pickle: refused, saying how to convert it; the tokenizer is kept for the next run.
  pickle_only_ = true;
  auto refused = hub::DownloadCatalogueModel(*model, Options());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kNotFound);
  EXPECT_NE(refused.status().message().find("open_clip_pytorch_model.bin"), std::string::npos) << refused.status().ToString();
  EXPECT_NE(refused.status().message().find("safetensors.torch"), std::string::npos) << refused.status().ToString();
  EXPECT_EQ(ReadAll(dir_ + "/model/tokenizer.json"), tokenizer);
  // With the weights: a partial file resumes, everything is verified, the config is written.
  pickle_only_ = false;
  std::ofstream(dir_ + "/model/open_clip_model.safetensors.part", std::ios::binary) << weights_.substr(0, 1 << 20);
  auto r = hub::DownloadCatalogueModel(*model, Options());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(ranges_.size(), 1u);
  EXPECT_EQ(ranges_[0], "bytes=1048576-");
  EXPECT_EQ(ReadAll(dir_ + "/model/open_clip_model.safetensors"), weights_);
  std::map<std::string, FileResult> by_name;
  for (const auto& f : *r) by_name[f.name] = f;
  EXPECT_EQ(by_name["open_clip_model.safetensors"].checksum, "sha256:" + Sha256Hex(weights_));
  EXPECT_TRUE(by_name["open_clip_model.safetensors"].resumed);
  EXPECT_TRUE(by_name["tokenizer.json"].already_complete);
  auto config = nlohmann::json::parse(ReadAll(dir_ + "/model/open_clip_config.json"));
  EXPECT_EQ(config["model_cfg"]["text_cfg"]["hf_model_name"], "xlm-roberta-base");
  EXPECT_EQ(config["model_cfg"]["embed_dim"], 512);
}

TEST(ProxyFor, ReadsTheProxyVariablesAsCurlDoes) {
  std::map<std::string, std::string> env;
  auto getenv = [&env](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  auto proxy_of = [&](const std::string& url) {
    auto p = ProxyFor(url, getenv);
    EXPECT_TRUE(p.ok()) << url << ": " << p.status().ToString();
    return p.ok() ? *p : std::nullopt;
  };
  EXPECT_FALSE(proxy_of("https://huggingface.co"));
  env["HTTPS_PROXY"] = "http://alice:s3cret@proxy.corp:3128/";
  auto p = proxy_of("https://huggingface.co");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->host, "proxy.corp");
  EXPECT_EQ(p->port, 3128);
  EXPECT_EQ(p->user, "alice");
  EXPECT_EQ(p->password, "s3cret");
  EXPECT_FALSE(proxy_of("http://mirror.lan")) << "HTTPS_PROXY is for https:// only";
  env["HTTP_PROXY"] = "10.0.0.7";
  ASSERT_TRUE(proxy_of("http://mirror.lan"));
  EXPECT_EQ(proxy_of("http://mirror.lan")->port, 1080) << "curl's default port";
  env["https_proxy"] = "http://[::1]:8080";
  ASSERT_TRUE(proxy_of("https://huggingface.co"));
  EXPECT_EQ(proxy_of("https://huggingface.co")->host, "::1") << "the lower-case variable comes first";
  env["NO_PROXY"] = "localhost, .huggingface.co,mirror.lan:8080";
  EXPECT_FALSE(proxy_of("https://huggingface.co"));
  EXPECT_FALSE(proxy_of("https://cdn-lfs.huggingface.co/x"));
  EXPECT_FALSE(proxy_of("http://mirror.lan:9000/models"));
  EXPECT_TRUE(proxy_of("https://nothuggingface.co"));
  env["NO_PROXY"] = "*";
  EXPECT_FALSE(proxy_of("https://example.com"));
  env.erase("NO_PROXY");
  for (const char* bad : {"socks5://proxy:1080", "http://proxy:99999", "http://:3128", "http://proxy:port"}) {
    env["https_proxy"] = bad;
    auto r = ProxyFor("https://huggingface.co", getenv);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(r.status().message().find("https_proxy"), std::string::npos) << r.status().ToString();
  }
  env["https_proxy"] = "http://alice:s3cret@:0";
  EXPECT_EQ(ProxyFor("https://huggingface.co", getenv).status().message().find("s3cret"), std::string::npos)
      << "a password is never repeated in a message";
}

TEST_F(HubTest, GoesThroughTheProxyOfTheEnvironment) {
  ForwardProxy proxy(port_);
  DownloadOptions o = Options();
  o.endpoint = "http://hub.invalid";  // resolves nowhere: only the proxy can reach it
  ::setenv("HTTP_PROXY", proxy.address().c_str(), 1);
  auto r = Download(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadAll(dir_ + "/model/model.safetensors"), weights_);
  const std::vector<std::string> hosts = proxy.hosts();
  EXPECT_GE(hosts.size(), 4u) << "a HEAD and a GET per file, and the redirect to the weights";
  for (const std::string& host : hosts) EXPECT_EQ(host.substr(0, host.find(':')), "hub.invalid");
  // NO_PROXY covering the host: a direct connection, which cannot resolve it.
  stdfs::remove_all(dir_);
  ::setenv("NO_PROXY", "localhost,.invalid", 1);
  auto direct = Download(o);
  EXPECT_EQ(direct.status().code(), StatusCode::kUnavailable) << direct.status().ToString();
  EXPECT_EQ(proxy.hosts().size(), hosts.size());
  ::unsetenv("NO_PROXY");
  ::unsetenv("HTTP_PROXY");
}

TEST_F(HubTest, AFailedDownloadRemovesTheFoldersItCreated) {
  DownloadOptions o = Options();
  o.dest_dir = dir_ + "/models/nobody/no-such-model";
  o.repo = "nobody/no-such-model";
  EXPECT_EQ(Download(o).status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(stdfs::exists(dir_)) << "every folder it made was empty: all removed";
  // A proxy that is not there: the error names it, and again nothing is left behind.
  ::setenv("http_proxy", "http://127.0.0.1:1", 1);
  auto r = Download(Options());
  ::unsetenv("http_proxy");
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("through the proxy 127.0.0.1:1"), std::string::npos) << r.status().ToString();
  EXPECT_FALSE(stdfs::exists(dir_));
  // A folder that was there before stays.
  stdfs::create_directories(dir_ + "/model");
  o = Options();
  o.dest_dir = dir_ + "/model/sub";
  o.repo = "nobody/no-such-model";
  EXPECT_FALSE(Download(o).ok());
  EXPECT_FALSE(stdfs::exists(dir_ + "/model/sub"));
  EXPECT_TRUE(stdfs::exists(dir_ + "/model"));
}

}  // namespace
}  // namespace fs::hub
