// The hub downloader against a local HTTP server laid out like the Hugging Face hub: small files
// carry their git blob SHA-1 as ETag, the LFS file answers with a redirect carrying
// X-Linked-Etag (SHA-256) and X-Linked-Size, and Range requests are honoured.
#include "model/hub/hub_download.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
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

class HubTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = stdfs::temp_directory_path().string() + "/hub_test_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    stdfs::remove_all(dir_);
    std::mt19937 rng(3);
    weights_.resize(3 << 20);  // 3 MiB of "safetensors"
    for (char& c : weights_) c = static_cast<char>(rng());
    files_ = {{"config.json", R"({"model_type": "clip", "projection_dim": 512})"}, {"tokenizer.json", R"({"model": {}})"}};
    // httplib answers HEAD with the GET handler, without the body.
    server_.Get(R"(/openai/clip-vit-base-patch32/resolve/main/(.+))", [this](const auto& req, auto& res) { Serve(req, res); });
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

}  // namespace
}  // namespace fs::hub
