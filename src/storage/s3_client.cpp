#include "storage/s3_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <random>
#include <thread>
#include <ctime>
#include <map>
#include <mutex>

#include "core/check.h"
#include "core/hash.h"
#include "storage/s3_xml.h"
#include "core/sigv4.h"

namespace fs::storage {
namespace {

constexpr size_t kMaxErrorBody = 64 << 10;      // enough for any S3 <Error> document
constexpr uint64_t kMaxListBody = 32ull << 20;  // a 1000-key page is well under 1 MiB

std::string EnvOr(const std::string& given, const char* name) {
  if (!given.empty()) return given;
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
  return std::string(s);
}

std::string Unquote(std::string s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') return s.substr(1, s.size() - 2);
  return s;
}

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { FS_CHECK_MSG(curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK, "curl_global_init failed"); });
}

// What one request collected; filled by curl's callbacks.
struct Exchange {
  long status = 0;
  std::map<std::string, std::string> headers;  // lower-case names, last value wins
  std::string body;
  uint64_t max_body = 0;     // for 2xx replies
  bool too_large = false;    // the body was refused (Content-Length or bytes over max_body)
  uint64_t declared = 0;     // Content-Length of the refused reply
};

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  const size_t n = size * count;
  std::string_view line(data, n);
  if (line.rfind("HTTP/", 0) == 0) {  // a new status line (after a 100 Continue, say)
    ex->headers.clear();
    const size_t sp = line.find(' ');
    ex->status = sp == std::string_view::npos ? 0 : std::strtol(std::string(line.substr(sp + 1, 3)).c_str(), nullptr, 10);
    return n;
  }
  const size_t colon = line.find(':');
  if (colon != std::string_view::npos) ex->headers[Lower(Trim(line.substr(0, colon)))] = Trim(line.substr(colon + 1));
  return n;
}

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  const size_t n = size * count;
  if (ex->status >= 200 && ex->status < 300) {
    if (ex->body.empty()) {
      // Refuse an object larger than the limit from its declared length, before taking any of it.
      auto it = ex->headers.find("content-length");
      if (it != ex->headers.end()) {
        const uint64_t len = std::strtoull(it->second.c_str(), nullptr, 10);
        if (len > ex->max_body) {
          ex->too_large = true;
          ex->declared = len;
          return 0;  // aborts the transfer (CURLE_WRITE_ERROR)
        }
      }
    }
    if (ex->body.size() + n > ex->max_body) {  // no or a lying Content-Length
      ex->too_large = true;
      return 0;
    }
    ex->body.append(data, n);
  } else if (ex->body.size() < kMaxErrorBody) {
    ex->body.append(data, std::min(n, kMaxErrorBody - ex->body.size()));
  }
  return n;
}

struct CurlSlist {
  curl_slist* list = nullptr;
  ~CurlSlist() { curl_slist_free_all(list); }
  void Add(const std::string& line) {
    curl_slist* next = curl_slist_append(list, line.c_str());
    FS_CHECK_MSG(next != nullptr, "curl_slist_append: out of memory");
    list = next;
  }
};

// Keys are sent verbatim except for "." and ".." segments: in a path-style url a proxy or server
// that normalises paths would turn "/bucket/../other/key" into another bucket's object.
Status CheckKey(const std::string& op, const std::string& key) {
  if (key.empty()) return Status::InvalidArgument(op + " needs a key");
  size_t start = 0;
  while (start <= key.size()) {
    size_t end = key.find('/', start);
    if (end == std::string::npos) end = key.size();
    const std::string_view seg(key.data() + start, end - start);
    if (seg == "." || seg == "..") {
      return Status::InvalidArgument(op + ": key '" + key + "' has a '" + std::string(seg) +
                                     "' segment, which this client refuses");
    }
    start = end + 1;
  }
  return Status::Ok();
}

struct Target {
  std::string bucket, key;  // key empty for bucket operations
  std::string Describe() const { return "s3://" + bucket + "/" + key; }
};

}  // namespace

bool IsValidBucketName(const std::string& name) {
  if (name.size() < 3 || name.size() > 63) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-')) return false;
  }
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  return alnum(name.front()) && alnum(name.back()) && name.find("..") == std::string::npos;
}

struct S3Client::Impl {
  S3Options options;
  std::string scheme_host;  // "http://127.0.0.1:4568"
  std::string scheme;       // "http" or "https"
  std::string host_header;  // "127.0.0.1:4568", exactly as signed and sent (path-style)
  bool anonymous = false;
  mutable std::atomic<uint64_t> sent{0};

  bool VirtualHosted(const std::string& bucket) const {
    switch (options.addressing) {
      case S3Addressing::kPath: return false;
      case S3Addressing::kVirtualHosted: return !bucket.empty();
      case S3Addressing::kAuto: break;
    }
    std::string host = host_header;  // without its port
    const size_t colon = host.rfind(':');
    if (colon != std::string::npos && host.find_first_not_of("0123456789", colon + 1) == std::string::npos) host.resize(colon);
    return !bucket.empty() && host.ends_with(".amazonaws.com") && IsValidBucketName(bucket) &&
           (scheme == "http" || bucket.find('.') == std::string::npos);
  }
  S3RequestTarget TargetFor(const std::string& bucket, const std::string& key) const {
    S3RequestTarget t;
    if (VirtualHosted(bucket)) {
      t.host = bucket + "." + host_header;
      t.path = key.empty() ? "/" : UriEncodePath(key);
    } else {
      // Path-style: /bucket/key, each key segment encoded once, exactly as it is signed.
      t.host = host_header;
      t.path = UriEncodePath(key.empty() ? bucket : bucket + "/" + key);
    }
    t.url = scheme + "://" + t.host + t.path;
    return t;
  }

  mutable std::mutex pool_mu;
  mutable std::vector<CURL*> pool FS_GUARDED_BY(pool_mu);

  ~Impl() {
    for (CURL* h : pool) curl_easy_cleanup(h);
  }

  CURL* Take() const {
    {
      std::lock_guard lock(pool_mu);
      if (!pool.empty()) {
        CURL* h = pool.back();
        pool.pop_back();
        curl_easy_reset(h);  // keeps its connection cache
        return h;
      }
    }
    CURL* h = curl_easy_init();
    FS_CHECK_MSG(h != nullptr, "curl_easy_init failed");
    return h;
  }
  void Give(CURL* h) const {
    std::lock_guard lock(pool_mu);
    if (pool.size() < 16) {
      pool.push_back(h);
      return;
    }
    curl_easy_cleanup(h);
  }

  Status Perform(const std::string& method, const Target& target,
                 const std::vector<std::pair<std::string, std::string>>& query, const std::string* body,
                 const std::string& content_type, uint64_t max_body, Exchange* ex) const;
  Status FromReply(const std::string& op, const Target& target, const Exchange& ex) const;
  // Perform, retried with backoff while S3 asks for it (SlowDown, 5xx, 429) or the transport
  // failed; `ex` holds the last attempt.
  Status Call(const std::string& method, const Target& target,
              const std::vector<std::pair<std::string, std::string>>& query, const std::string* body,
              const std::string& content_type, uint64_t max_body, Exchange* ex) const;
};

Status S3Client::Impl::Call(const std::string& method, const Target& target,
                            const std::vector<std::pair<std::string, std::string>>& query, const std::string* body,
                            const std::string& content_type, uint64_t max_body, Exchange* ex) const {
  thread_local std::minstd_rand jitter(std::random_device{}());
  for (int attempt = 0;; ++attempt) {
    *ex = Exchange();
    Status st = Perform(method, target, query, body, content_type, max_body, ex);
    const bool retry = st.ok() ? (ex->status >= 500 || ex->status == 429)
                               : st.code() == StatusCode::kUnavailable && !ex->too_large;
    if (!retry || attempt >= options.max_retries) return st;
    // Exponential backoff with full jitter in its upper half: base, 2x base, ... capped at 5 s.
    const int64_t step = std::min<int64_t>(5000, static_cast<int64_t>(options.retry_base_ms) << std::min(attempt, 16));
    const int64_t wait = step / 2 + static_cast<int64_t>(jitter() % static_cast<uint32_t>(step / 2 + 1));
    std::this_thread::sleep_for(std::chrono::milliseconds(wait));
  }
}

Status S3Client::Impl::Perform(const std::string& method, const Target& target,
                               const std::vector<std::pair<std::string, std::string>>& query,
                               const std::string* body, const std::string& content_type, uint64_t max_body,
                               Exchange* ex) const {
  const S3RequestTarget where_to = TargetFor(target.bucket, target.key);
  const std::string& path = where_to.path;
  const std::string query_string = CanonicalQuery(query);
  const std::string payload_hash = body ? Sha256Hex(*body) : std::string(kEmptyPayloadSha256);
  const std::string amz_date = AmzDate(static_cast<long long>(std::time(nullptr)));

  SigV4Request req;
  req.method = method;
  req.path = path;
  req.query = query;
  req.payload_sha256 = payload_hash;
  req.headers = {{"host", where_to.host}, {"x-amz-content-sha256", payload_hash}, {"x-amz-date", amz_date}};
  if (!options.session_token.empty()) req.headers.emplace_back("x-amz-security-token", options.session_token);
  if (body) req.headers.emplace_back("content-type", content_type);

  CurlSlist headers;
  for (const auto& [name, value] : req.headers) headers.Add(name + ": " + value);
  if (!anonymous) {
    headers.Add("Authorization: " +
                AuthorizationHeader(req, {amz_date, options.region, "s3"},
                                    {options.access_key_id, options.secret_access_key}));
  }
  headers.Add("Expect:");  // no 100-continue round trip on uploads

  const std::string url = where_to.url + (query_string.empty() ? "" : "?" + query_string);
  CurlSlist connect_to;
  if (!options.connect_to.empty()) connect_to.Add("::" + options.connect_to);
  ex->max_body = max_body;
  char error[CURL_ERROR_SIZE] = {0};
  CURL* h = Take();
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);  // send the path we signed, never "normalised"
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_NOPROXY, "127.0.0.1,localhost,::1");  // loopback never through a proxy
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options.connect_timeout_ms));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(options.request_timeout_ms));
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.list);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, ex);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, ex);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
  if (connect_to.list) curl_easy_setopt(h, CURLOPT_CONNECT_TO, connect_to.list);
  sent.fetch_add(1, std::memory_order_relaxed);
  if (method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (method == "DELETE") {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
  } else if (method == "PUT") {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body->data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body->size()));
  }
  const CURLcode rc = curl_easy_perform(h);
  Give(h);

  const std::string where = "S3 endpoint " + scheme_host;
  if (rc == CURLE_OK) return Status::Ok();
  if (ex->too_large) {
    const std::string size = ex->declared ? std::to_string(ex->declared) + " bytes" : "more than " + std::to_string(max_body) + " bytes";
    return Status::ResourceExhausted(target.Describe() + " is " + size + "; the limit is " + std::to_string(max_body) +
                                     " bytes");
  }
  const std::string detail = error[0] ? error : curl_easy_strerror(rc);
  switch (rc) {
    case CURLE_COULDNT_CONNECT:
      return Status::Unavailable("cannot connect to " + where + " (" + detail +
                                 "): check that it is running and that the endpoint (--s3-endpoint) is right");
    case CURLE_COULDNT_RESOLVE_HOST:
      return Status::Unavailable("cannot resolve the host of " + where + " (" + detail + "): check --s3-endpoint and DNS");
    case CURLE_OPERATION_TIMEDOUT:
      return Status::Unavailable(method + " " + target.Describe() + " on " + where + " timed out (" + detail +
                                 "): the endpoint is slow or unreachable; try again later");
    default:
      return Status::Unavailable(method + " " + target.Describe() + " on " + where + " failed: " + detail);
  }
}

// Turns a non-2xx reply into a Status that says what to do.
Status S3Client::Impl::FromReply(const std::string& op, const Target& target, const Exchange& ex) const {
  const std::string code = XmlText(ex.body, "Code");
  const std::string message = XmlText(ex.body, "Message");
  const std::string said = code.empty() ? "HTTP " + std::to_string(ex.status)
                                        : code + (message.empty() ? "" : ": " + message);
  const std::string what = op + " " + target.Describe();
  const std::string creds = anonymous ? " (requests are unsigned: no credentials are configured; set AWS_ACCESS_KEY_ID "
                                        "and AWS_SECRET_ACCESS_KEY)"
                                      : "";
  if (code == "NoSuchBucket") {
    return Status::NotFound("bucket '" + target.bucket + "' does not exist at " + scheme_host +
                            ": create it, or fix the bucket name or --s3-endpoint");
  }
  if (code == "NoSuchKey" || (code.empty() && ex.status == 404)) {
    return Status::NotFound("no object '" + target.key + "' in bucket '" + target.bucket + "'");
  }
  if (code == "SignatureDoesNotMatch") {
    return Status::PermissionDenied(what + ": S3 rejected the request signature (" + said +
                                    "): check AWS_SECRET_ACCESS_KEY and the region (--s3-region, now " +
                                    options.region + ")");
  }
  if (code == "InvalidAccessKeyId") {
    return Status::PermissionDenied(what + ": S3 does not know access key id '" + options.access_key_id +
                                    "': check AWS_ACCESS_KEY_ID");
  }
  if (code == "ExpiredToken" || code == "InvalidToken" || code == "TokenRefreshRequired") {
    return Status::PermissionDenied(what + ": " + said + ": refresh the temporary credentials (AWS_SESSION_TOKEN)");
  }
  if (code == "RequestTimeTooSkewed") {
    return Status::PermissionDenied(what + ": this machine's clock differs from S3's by more than 15 minutes: fix the "
                                    "clock (NTP)");
  }
  if (code == "AuthorizationHeaderMalformed" || code == "PermanentRedirect" || ex.status == 301) {
    const std::string region = XmlText(ex.body, "Region");
    auto it = ex.headers.find("x-amz-bucket-region");
    const std::string hint = !region.empty() ? region : it != ex.headers.end() ? it->second : "";
    return Status::FailedPrecondition(what + ": the bucket is not in region " + options.region + " (" + said +
                                      "): set --s3-region" + (hint.empty() ? "" : " " + hint) +
                                      " or use the bucket's regional endpoint");
  }
  if (code == "AccessDenied" || code == "AllAccessDisabled" || ex.status == 403) {
    return Status::PermissionDenied(what + ": access denied (" + said + "): grant these credentials s3:" +
                                    (op == "PutObject" || op == "DeleteObject" ? op : op == "ListObjectsV2" ? "ListBucket" : "GetObject") +
                                    " on the bucket" + creds);
  }
  if (ex.status >= 500 || code == "SlowDown") {
    return Status::Unavailable(what + ": S3 is unavailable (" + said + "); try again later");
  }
  return Status::IOError(what + ": S3 answered " + std::to_string(ex.status) + " (" + said + ")");
}

S3Client::S3Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
S3Client::~S3Client() = default;

Result<std::unique_ptr<S3Client>> S3Client::Create(const S3Options& given) {
  GlobalInit();
  auto impl = std::make_unique<Impl>();
  S3Options& o = impl->options;
  o = given;
  o.region = EnvOr(EnvOr(o.region, "AWS_REGION"), "AWS_DEFAULT_REGION");
  if (o.region.empty()) o.region = "us-east-1";
  o.access_key_id = EnvOr(o.access_key_id, "AWS_ACCESS_KEY_ID");
  o.secret_access_key = EnvOr(o.secret_access_key, "AWS_SECRET_ACCESS_KEY");
  o.session_token = EnvOr(o.session_token, "AWS_SESSION_TOKEN");
  if (o.access_key_id.empty() != o.secret_access_key.empty()) {
    return Status::InvalidArgument("S3 credentials need both an access key id and a secret access key "
                                   "(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY); only one is set");
  }
  impl->anonymous = o.access_key_id.empty();
  for (char c : o.region) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
      return Status::InvalidArgument("S3 region '" + o.region + "' is not a region name such as us-east-1");
    }
  }
  if (o.endpoint.empty()) o.endpoint = "https://s3." + o.region + ".amazonaws.com";
  std::string ep = o.endpoint;
  while (!ep.empty() && ep.back() == '/') ep.pop_back();
  const size_t sep = ep.find("://");
  const std::string scheme = sep == std::string::npos ? "" : Lower(ep.substr(0, sep));
  const std::string host = sep == std::string::npos ? "" : ep.substr(sep + 3);
  const bool host_ok = !host.empty() && host.find_first_of("/?#@ \\") == std::string::npos &&
                       std::all_of(host.begin(), host.end(), [](char c) { return c > 0x20 && c < 0x7F; });
  if ((scheme != "http" && scheme != "https") || !host_ok) {
    return Status::InvalidArgument("S3 endpoint '" + o.endpoint +
                                   "' must be http(s)://host[:port] with no path, e.g. https://s3.eu-west-1.amazonaws.com "
                                   "or http://127.0.0.1:9000");
  }
  if (o.connect_timeout_ms <= 0 || o.request_timeout_ms <= 0) {
    return Status::InvalidArgument("S3 timeouts must be positive");
  }
  if (o.max_retries < 0 || o.retry_base_ms < 1) {
    return Status::InvalidArgument("S3 retries must be 0 or more, with a base delay of 1 ms or more");
  }
  if (!o.connect_to.empty()) {
    const size_t colon = o.connect_to.rfind(':');
    const bool ok = colon != std::string::npos && colon > 0 && colon + 1 < o.connect_to.size() &&
                    o.connect_to.find_first_not_of("0123456789", colon + 1) == std::string::npos &&
                    o.connect_to.find_first_of("/?#@ \\") == std::string::npos;
    if (!ok) return Status::InvalidArgument("S3 connect-to '" + o.connect_to + "' must be host:port, e.g. 127.0.0.1:9000");
  }
  impl->scheme = scheme;
  impl->scheme_host = scheme + "://" + host;
  // Drop the scheme's default port: that is the Host header S3 computes the signature with.
  std::string h = Lower(host);
  if (scheme == "http" && h.size() > 3 && h.ends_with(":80")) h.resize(h.size() - 3);
  if (scheme == "https" && h.size() > 4 && h.ends_with(":443")) h.resize(h.size() - 4);
  impl->host_header = h;
  return std::unique_ptr<S3Client>(new S3Client(std::move(impl)));
}

const S3Options& S3Client::options() const { return impl_->options; }

S3RequestTarget S3Client::TargetFor(const std::string& bucket, const std::string& key) const {
  return impl_->TargetFor(bucket, key);
}

uint64_t S3Client::requests_sent() const { return impl_->sent.load(std::memory_order_relaxed); }

Result<std::string> S3Client::GetObject(const std::string& bucket, const std::string& key, uint64_t max_bytes) const {
  const Target target{bucket, key};
  FS_RETURN_IF_ERROR(CheckKey("GetObject", key));
  Exchange ex;
  FS_RETURN_IF_ERROR(impl_->Call("GET", target, {}, nullptr, "", max_bytes, &ex));
  if (ex.status < 200 || ex.status >= 300) return impl_->FromReply("GetObject", target, ex);
  return std::move(ex.body);
}

Result<ObjectInfo> S3Client::HeadObject(const std::string& bucket, const std::string& key) const {
  const Target target{bucket, key};
  FS_RETURN_IF_ERROR(CheckKey("HeadObject", key));
  Exchange ex;
  FS_RETURN_IF_ERROR(impl_->Call("HEAD", target, {}, nullptr, "", 0, &ex));
  if (ex.status < 200 || ex.status >= 300) return impl_->FromReply("HeadObject", target, ex);
  ObjectInfo info;
  info.key = key;
  auto header = [&ex](const char* name) {
    auto it = ex.headers.find(name);
    return it == ex.headers.end() ? std::string() : it->second;
  };
  info.size = std::strtoull(header("content-length").c_str(), nullptr, 10);
  info.etag = Unquote(header("etag"));
  info.content_type = header("content-type");
  info.last_modified = header("last-modified");
  return info;
}

Status S3Client::PutObject(const std::string& bucket, const std::string& key, const std::string& bytes,
                           const std::string& content_type) const {
  const Target target{bucket, key};
  FS_RETURN_IF_ERROR(CheckKey("PutObject", key));
  Exchange ex;
  FS_RETURN_IF_ERROR(impl_->Call("PUT", target, {}, &bytes, content_type, kMaxErrorBody, &ex));
  if (ex.status < 200 || ex.status >= 300) return impl_->FromReply("PutObject", target, ex);
  return Status::Ok();
}

Status S3Client::DeleteObject(const std::string& bucket, const std::string& key) const {
  const Target target{bucket, key};
  FS_RETURN_IF_ERROR(CheckKey("DeleteObject", key));
  Exchange ex;
  FS_RETURN_IF_ERROR(impl_->Call("DELETE", target, {}, nullptr, "", kMaxErrorBody, &ex));
  if (ex.status < 200 || ex.status >= 300) return impl_->FromReply("DeleteObject", target, ex);
  return Status::Ok();
}

Result<ListPage> S3Client::ListObjectsV2(const std::string& bucket, const std::string& prefix,
                                         const std::string& continuation_token, int max_keys) const {
  const Target target{bucket, ""};
  if (max_keys < 1 || max_keys > 1000) return Status::InvalidArgument("max_keys must be 1..1000");
  std::vector<std::pair<std::string, std::string>> query = {
      {"list-type", "2"}, {"max-keys", std::to_string(max_keys)}, {"prefix", prefix}};
  if (!continuation_token.empty()) query.emplace_back("continuation-token", continuation_token);
  Exchange ex;
  FS_RETURN_IF_ERROR(impl_->Call("GET", target, query, nullptr, "", kMaxListBody, &ex));
  if (ex.status < 200 || ex.status >= 300) return impl_->FromReply("ListObjectsV2", target, ex);
  if (ex.body.find("<ListBucketResult") == std::string::npos) {
    return Status::IOError("ListObjectsV2 s3://" + bucket + ": the reply is not a ListBucketResult; is " +
                           impl_->scheme_host + " an S3 endpoint?");
  }
  ListPage page;
  for (std::string_view contents : XmlElements(ex.body, "Contents")) {
    ObjectInfo info;
    info.key = XmlText(contents, "Key");
    info.size = std::strtoull(XmlText(contents, "Size").c_str(), nullptr, 10);
    info.etag = Unquote(XmlText(contents, "ETag"));
    info.last_modified = XmlText(contents, "LastModified");
    page.objects.push_back(std::move(info));
  }
  page.truncated = XmlText(ex.body, "IsTruncated") == "true";
  page.next_continuation_token = XmlText(ex.body, "NextContinuationToken");
  if (page.truncated && page.next_continuation_token.empty()) {
    return Status::IOError("ListObjectsV2 s3://" + bucket + ": the page is truncated but has no continuation token");
  }
  return page;
}

}  // namespace fs::storage
