#include "model/hub/hub_download.h"

#include <httplib.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>

#include "core/hash.h"
#include "core/progress.h"

namespace fs::hub {
namespace {

namespace stdfs = std::filesystem;

// Incremental SHA-1 or SHA-256 over EVP.
class Digest {
 public:
  explicit Digest(const EVP_MD* md) : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, md, nullptr); }
  ~Digest() { EVP_MD_CTX_free(ctx_); }
  Digest(const Digest&) = delete;
  Digest& operator=(const Digest&) = delete;
  void Update(const void* p, size_t n) { EVP_DigestUpdate(ctx_, p, n); }
  std::string Hex() {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx_, out, &n);
    return ToHex(out, n);
  }

 private:
  EVP_MD_CTX* ctx_;
};

std::string Unquote(std::string v) {
  if (v.rfind("W/", 0) == 0) v = v.substr(2);
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  return v;
}

bool IsHex(const std::string& s, size_t len) {
  return s.size() == len && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// What the hub says about a file before we fetch it.
struct Expected {
  bool missing = false;
  uint64_t size = 0;       // 0: unknown
  std::string sha256;      // LFS files
  std::string git_sha1;    // small files
};

// Checks the file at `path` against what was published; "" when it matches (or nothing to check).
// Only the published kind of digest is computed: the weights are hundreds of megabytes.
Result<std::string> Verify(const std::string& path, const Expected& e, uint64_t* size) {
  std::error_code ec;
  *size = stdfs::file_size(path, ec);
  if (ec) return Status::IOError("cannot read '" + path + "': " + ec.message());
  if (e.sha256.empty() && e.git_sha1.empty()) return std::string();
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IOError("cannot read '" + path + "'");
  const bool lfs = !e.sha256.empty();
  Digest digest(lfs ? EVP_sha256() : EVP_sha1());
  if (!lfs) {
    const std::string header = "blob " + std::to_string(*size) + std::string(1, '\0');
    digest.Update(header.data(), header.size());
  }
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    digest.Update(buf.data(), static_cast<size_t>(in.gcount()));
  }
  const std::string got = digest.Hex(), want = lfs ? e.sha256 : e.git_sha1;
  if (got == want) return std::string();
  return std::string(lfs ? "SHA-256 " : "git SHA-1 ") + got + ", the hub says " + want;
}

struct Endpoint {
  std::string scheme_host;  // "https://huggingface.co"
  std::string base_path;    // "" or "/mirror"
};

Result<Endpoint> ParseEndpoint(const std::string& url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos || (url.rfind("https://", 0) != 0 && url.rfind("http://", 0) != 0)) {
    return Status::InvalidArgument("endpoint '" + url + "' must start with https:// (or http:// for a local mirror)");
  }
  const size_t slash = url.find('/', scheme + 3);
  Endpoint e;
  e.scheme_host = url.substr(0, slash);
  e.base_path = slash == std::string::npos ? "" : url.substr(slash);
  while (!e.base_path.empty() && e.base_path.back() == '/') e.base_path.pop_back();
  return e;
}

std::unique_ptr<httplib::Client> MakeClient(const Endpoint& ep, int timeout_s, bool follow,
                                            const std::optional<Proxy>& proxy) {
  auto cli = std::make_unique<httplib::Client>(ep.scheme_host);
  cli->set_follow_location(follow);  // redirected clients inherit the proxy settings
  cli->set_connection_timeout(timeout_s, 0);
  cli->set_read_timeout(timeout_s, 0);
  if (proxy) {
    cli->set_proxy(proxy->host, proxy->port);
    if (!proxy->user.empty()) cli->set_proxy_basic_auth(proxy->user, proxy->password);
  }
  return cli;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The host of "scheme://[user@]host[:port][/...]", lower case, IPv6 without its brackets.
std::string HostOf(const std::string& url) {
  const size_t scheme = url.find("://");
  const size_t start = scheme == std::string::npos ? 0 : scheme + 3;
  std::string authority = url.substr(start, url.find_first_of("/?#", start) - start);
  if (const size_t at = authority.rfind('@'); at != std::string::npos) authority = authority.substr(at + 1);
  if (!authority.empty() && authority.front() == '[') return Lower(authority.substr(1, authority.find(']') - 1));
  return Lower(authority.substr(0, authority.find(':')));
}

// no_proxy as curl reads it: comma-separated; "*" is every host; "example.com" and ".example.com"
// both cover example.com and its subdomains; a ":port" on an entry is ignored.
bool NoProxyCovers(const std::string& host, const std::string& list) {
  size_t pos = 0;
  while (pos <= list.size()) {
    const size_t comma = std::min(list.find(',', pos), list.size());
    std::string entry = list.substr(pos, comma - pos);
    pos = comma + 1;
    entry.erase(0, entry.find_first_not_of(" \t"));
    entry.erase(entry.find_last_not_of(" \t") + 1);
    if (entry == "*") return true;
    entry = HostOf(entry);
    while (!entry.empty() && entry.front() == '.') entry.erase(0, 1);
    if (entry.empty()) continue;
    if (host == entry) return true;
    if (host.size() > entry.size() && host.compare(host.size() - entry.size(), entry.size(), entry) == 0 &&
        host[host.size() - entry.size() - 1] == '.') {
      return true;
    }
  }
  return false;
}

// The value of the first of the two variables that is set and not empty, and its name.
std::pair<const char*, const char*> FirstSet(const std::function<const char*(const char*)>& getenv,
                                             const char* lower, const char* upper) {
  for (const char* name : {lower, upper}) {
    if (const char* v = getenv(name); v != nullptr && *v != '\0') return {v, name};
  }
  return {nullptr, nullptr};
}

std::string ProxyNote(const std::optional<Proxy>& proxy) {
  return proxy ? " through the proxy " + proxy->host + ":" + std::to_string(proxy->port) : "";
}

// Runs the download; Download() around it owns the destination folder.
Result<std::vector<FileResult>> DownloadFiles(const DownloadOptions& o, const Endpoint& ep,
                                              const std::optional<Proxy>& proxy);

// The folders create_directories(dir) would create, deepest first.
std::vector<stdfs::path> MissingFolders(const stdfs::path& dir) {
  std::vector<stdfs::path> missing;
  std::error_code ec;
  for (stdfs::path p = dir; !p.empty() && !stdfs::exists(p, ec); p = p.parent_path()) {
    missing.push_back(p);
    if (p == p.parent_path()) break;
  }
  return missing;
}

}  // namespace

std::string GitBlobSha1Hex(const std::string& data) {
  Digest d(EVP_sha1());
  const std::string header = "blob " + std::to_string(data.size()) + std::string(1, '\0');
  d.Update(header.data(), header.size());
  d.Update(data.data(), data.size());
  return d.Hex();
}

Result<std::optional<Proxy>> ProxyFor(const std::string& url, const std::function<const char*(const char*)>& getenv) {
  const bool https = url.rfind("https://", 0) == 0;
  const auto [value, variable] = https ? FirstSet(getenv, "https_proxy", "HTTPS_PROXY")
                                       : FirstSet(getenv, "http_proxy", "HTTP_PROXY");
  if (value == nullptr) return std::optional<Proxy>();
  if (const auto no_proxy = FirstSet(getenv, "no_proxy", "NO_PROXY").first;
      no_proxy != nullptr && NoProxyCovers(HostOf(url), no_proxy)) {
    return std::optional<Proxy>();
  }
  // The value may hold a password: messages name the variable, never repeat the value.
  const std::string where = std::string(variable) + " (for " + (https ? "https" : "http") + "://)";
  std::string spec = value;
  if (const size_t scheme = spec.find("://"); scheme != std::string::npos) {
    if (Lower(spec.substr(0, scheme)) != "http") {
      return Status::InvalidArgument(where + " must be an http:// proxy (https:// traffic goes through it in a CONNECT tunnel)");
    }
    spec = spec.substr(scheme + 3);
  }
  spec = spec.substr(0, spec.find('/'));
  Proxy proxy;
  if (const size_t at = spec.rfind('@'); at != std::string::npos) {
    const std::string userinfo = spec.substr(0, at);
    const size_t colon = userinfo.find(':');
    proxy.user = userinfo.substr(0, colon);
    proxy.password = colon == std::string::npos ? "" : userinfo.substr(colon + 1);
    spec = spec.substr(at + 1);
  }
  proxy.host = HostOf("http://" + spec);
  const size_t port_at = !spec.empty() && spec.front() == '[' ? spec.find("]:") + 1 : spec.rfind(':');
  const std::string port = port_at == 0 || port_at == std::string::npos ? "1080" : spec.substr(port_at + 1);  // curl's default
  if (proxy.host.empty() || port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port) == 0 || std::stoi(port) > 65535) {
    return Status::InvalidArgument(where + " is not a proxy address of the form http://HOST:PORT");
  }
  proxy.port = std::stoi(port);
  return std::optional<Proxy>(std::move(proxy));
}

const std::vector<CatalogueModel>& Catalogue() {
  // open_clip's model_configs/xlm-roberta-base-ViT-B-32.json with the projection and the
  // preprocessing its CustomTextCLIP uses by default (hf_proj_type "mlp", OpenAI's mean and std).
  static const std::vector<CatalogueModel> kModels = {
      {{"xlm-roberta-base-ViT-B-32", "xlm-roberta-base-ViT-B-32:laion5b_s13b_b90k",
        "laion/CLIP-ViT-B-32-xlm-roberta-base-laion5B-s13B-b90k"},
       "laion/CLIP-ViT-B-32-xlm-roberta-base-laion5B-s13B-b90k",
       "laion/CLIP-ViT-B-32-xlm-roberta-base-laion5B-s13B-b90k",
       {{"open_clip_model.safetensors", false},
        {"open_clip_config.json", false},
        {"tokenizer.json", true},
        {"preprocessor_config.json", false}},
       "open_clip_model.safetensors",
       "open_clip_pytorch_model.bin",
       "open_clip_config.json",
       R"({"model_cfg": {"embed_dim": 512,
  "vision_cfg": {"image_size": 224, "layers": 12, "width": 768, "patch_size": 32},
  "text_cfg": {"hf_model_name": "xlm-roberta-base", "hf_tokenizer_name": "xlm-roberta-base",
               "hf_proj_type": "mlp", "hf_pooler_type": "mean_pooler"}},
 "preprocess_cfg": {"mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711]}}
)"},
  };
  return kModels;
}

const CatalogueModel* FindCatalogueModel(const std::string& name) {
  for (const CatalogueModel& model : Catalogue()) {
    if (std::find(model.names.begin(), model.names.end(), name) != model.names.end()) return &model;
  }
  return nullptr;
}

Result<std::vector<FileResult>> DownloadCatalogueModel(const CatalogueModel& model, DownloadOptions options) {
  options.repo = model.repo;
  options.files = model.files;
  FS_ASSIGN_OR_RETURN(auto results, Download(options));
  const std::string dir = options.dest_dir;
  if (!stdfs::exists(dir + "/" + model.weights)) {
    return Status::NotFound(
        model.repo + " on " + options.endpoint + " has no " + model.weights + "; it may publish only " +
        model.pickle + ", a PyTorch pickle filesearch does not read (loading one can run code). Convert it " +
        "once where PyTorch is installed: python3 -c \"import torch, safetensors.torch as st; st.save_file(" +
        "torch.load('" + model.pickle + "', map_location='cpu', weights_only=True), '" + model.weights +
        "')\" and put " + model.weights + " in " + dir + " (the tokenizer and config are there already)");
  }
  if (!model.config_name.empty() && !stdfs::exists(dir + "/" + model.config_name)) {
    std::ofstream out(dir + "/" + model.config_name, std::ios::binary | std::ios::trunc);
    out << model.config;
    out.close();
    if (!out) return Status::IOError("cannot write '" + dir + "/" + model.config_name + "'");
  }
  return results;
}

Result<std::vector<FileResult>> Download(const DownloadOptions& o) {
  if (o.dest_dir.empty()) return Status::InvalidArgument("no destination folder given");
  if (o.repo.empty() || o.repo.find("..") != std::string::npos || o.repo.front() == '/') {
    return Status::InvalidArgument("model name '" + o.repo + "' is not of the form owner/name");
  }
  FS_ASSIGN_OR_RETURN(Endpoint ep, ParseEndpoint(o.endpoint));
  std::optional<Proxy> proxy;
  if (o.proxy_from_env) {
    FS_ASSIGN_OR_RETURN(proxy, ProxyFor(o.endpoint, [](const char* name) { return std::getenv(name); }));
  }
  const std::vector<stdfs::path> created = MissingFolders(o.dest_dir);
  std::error_code ec;
  stdfs::create_directories(o.dest_dir, ec);
  if (ec) return Status::IOError("cannot create '" + o.dest_dir + "': " + ec.message());
  auto result = DownloadFiles(o, ep, proxy);
  if (!result.ok()) {
    // Deepest first; remove() leaves a folder that is not empty (a .part to resume) alone.
    for (const stdfs::path& dir : created) {
      if (!stdfs::remove(dir, ec)) break;
    }
  }
  return result;
}

namespace {

Result<std::vector<FileResult>> DownloadFiles(const DownloadOptions& o, const Endpoint& ep,
                                              const std::optional<Proxy>& proxy) {
  std::error_code ec;
  std::vector<FileResult> results;
  for (const HubFile& file : o.files) {
    FileResult r;
    r.name = file.name;
    const std::string url_path = ep.base_path + "/" + o.repo + "/resolve/" + o.revision + "/" + file.name;
    const std::string where = o.endpoint + "/" + o.repo + " (" + file.name + ")";
    // 1. What the hub publishes: checksum and size, from the first reply (before any redirect
    //    to the LFS storage, whose own headers do not carry the hub's checksum).
    Expected e;
    {
      auto head = MakeClient(ep, o.timeout_s, /*follow=*/false, proxy);
      auto res = head->Head(url_path);
      if (!res) {
        return Status::Unavailable("cannot reach " + o.endpoint + ProxyNote(proxy) + ": " +
                                   httplib::to_string(res.error()) +
                                   (proxy ? " (check the proxy variables HTTPS_PROXY, HTTP_PROXY and NO_PROXY)"
                                          : " (check the network, or give --endpoint for a mirror)"));
      }
      if (res->status == 404) {
        if (!file.required) {
          r.skipped_missing = true;
          results.push_back(r);
          continue;
        }
        return Status::NotFound(where + " is not on the hub: check the model name and --revision");
      }
      if (res->status == 401 || res->status == 403) {
        return Status::PermissionDenied(where + ": the hub refused access (HTTP " + std::to_string(res->status) +
                                        "); gated models need a token");
      }
      if (res->status >= 400) return Status::Unavailable(where + ": HTTP " + std::to_string(res->status));
      const std::string linked = Unquote(res->get_header_value("X-Linked-Etag"));
      const std::string etag = Unquote(res->get_header_value("ETag"));
      if (IsHex(linked, 64)) e.sha256 = linked;
      else if (IsHex(etag, 64)) e.sha256 = etag;
      else if (IsHex(etag, 40)) e.git_sha1 = etag;
      // A redirect's own Content-Length is not the file's: only X-Linked-Size counts then.
      const std::string size = res->has_header("X-Linked-Size") ? res->get_header_value("X-Linked-Size")
                               : res->status == 200           ? res->get_header_value("Content-Length")
                                                              : std::string();
      if (!size.empty() && size.find_first_not_of("0123456789") == std::string::npos) e.size = std::stoull(size);
    }
    r.checksum = !e.sha256.empty() ? "sha256:" + e.sha256 : !e.git_sha1.empty() ? "git-sha1:" + e.git_sha1 : "";
    const std::string final_path = o.dest_dir + "/" + file.name;
    const std::string part_path = final_path + ".part";
    // 2. Already there and intact?
    if (stdfs::exists(final_path) && !r.checksum.empty()) {
      FS_ASSIGN_OR_RETURN(std::string bad, Verify(final_path, e, &r.bytes));
      if (bad.empty()) {
        r.already_complete = true;
        results.push_back(r);
        continue;
      }
    }
    // 3. Fetch, resuming a .part.
    uint64_t offset = stdfs::exists(part_path) ? stdfs::file_size(part_path) : 0;
    if (e.size > 0 && offset > e.size) offset = 0;  // longer than the file: start over
    r.resumed = offset > 0;
    auto cli = MakeClient(ep, o.timeout_s, /*follow=*/true, proxy);
    httplib::Headers headers;
    if (offset > 0) headers.emplace("Range", "bytes=" + std::to_string(offset) + "-");
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> out(nullptr, &std::fclose);
    Progress progress("download " + file.name, e.size, o.progress);
    progress.Add(offset);
    int status = 0;
    Status write_error;
    auto res = cli->Get(
        url_path, headers,
        [&](const httplib::Response& response) {
          status = response.status;
          if (status == 416 && offset > 0) return false;  // the .part is already whole
          if (status != 200 && status != 206) return false;
          const bool append = status == 206;
          if (!append) {
            offset = 0;
            r.resumed = false;
          }
          out.reset(std::fopen(part_path.c_str(), append ? "ab" : "wb"));
          if (!out) write_error = Status::IOError("cannot write '" + part_path + "'");
          return static_cast<bool>(out);
        },
        [&](const char* data, size_t n) {
          if (std::fwrite(data, 1, n, out.get()) != n) {
            write_error = Status::IOError("writing '" + part_path + "' failed (disk full?)");
            return false;
          }
          r.downloaded += n;
          progress.Add(n);
          return true;
        });
    progress.Finish();
    out.reset();
    FS_RETURN_IF_ERROR(write_error);
    if (status == 404 && !file.required) {
      r.skipped_missing = true;
      results.push_back(r);
      continue;
    }
    if (status != 416 && (!res || (status != 200 && status != 206))) {
      const std::string why = !res ? httplib::to_string(res.error()) : "HTTP " + std::to_string(status);
      return Status::Unavailable(where + ": download interrupted (" + why + "); run the same command again to resume");
    }
    // 4. Verify, then put in place.
    FS_ASSIGN_OR_RETURN(std::string bad, Verify(part_path, e, &r.bytes));
    if (!bad.empty()) {
      stdfs::remove(part_path, ec);
      return Status::Corruption(where + ": checksum mismatch (" + bad + "); the damaged download was removed, run again");
    }
    if (e.size > 0 && r.bytes != e.size) {
      return Status::Corruption(where + ": got " + std::to_string(r.bytes) + " bytes, the hub says " +
                                std::to_string(e.size) + "; run again to resume");
    }
    stdfs::rename(part_path, final_path, ec);
    if (ec) return Status::IOError("cannot move '" + part_path + "' into place: " + ec.message());
    results.push_back(r);
  }
  return results;
}

}  // namespace
}  // namespace fs::hub
