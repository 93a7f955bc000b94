#include "core/http_client.h"

#include <curl/curl.h>

#include <mutex>

#include "core/check.h"

namespace fs {
namespace {

struct CurlEasyDeleter {
  void operator()(CURL* handle) const { curl_easy_cleanup(handle); }
};
using CurlEasy = std::unique_ptr<CURL, CurlEasyDeleter>;

struct HeaderList {
  curl_slist* head = nullptr;
  HeaderList() = default;
  HeaderList(const HeaderList&) = delete;
  HeaderList& operator=(const HeaderList&) = delete;
  ~HeaderList() { curl_slist_free_all(head); }
  void Append(const std::string& line) {
    curl_slist* grown = curl_slist_append(head, line.c_str());
    FS_CHECK_MSG(grown != nullptr, "out of memory building HTTP headers");
    head = grown;
  }
};

// Filled by curl's callbacks during one transfer.
struct Transfer {
  HttpResponse* response = nullptr;
  size_t max_body = 0;
  bool overflow = false;
};

bool StartsWithNoCase(std::string_view line, std::string_view prefix) {
  if (line.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(line[i])) != prefix[i]) return false;
  }
  return true;
}

std::string HeaderValue(std::string_view line, size_t name_length) {
  std::string_view value = line.substr(name_length);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) value.remove_suffix(1);
  return std::string(value);
}

size_t CollectHeader(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const std::string_view line(data, size * count);
  // Only the two headers callers use; the status comes from CURLINFO_RESPONSE_CODE.
  if (StartsWithNoCase(line, "content-type:")) transfer->response->content_type = HeaderValue(line, 13);
  if (StartsWithNoCase(line, "retry-after:")) transfer->response->retry_after = HeaderValue(line, 12);
  return size * count;
}

size_t CollectBody(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const size_t bytes = size * count;
  if (transfer->response->body.size() + bytes > transfer->max_body) {
    transfer->overflow = true;
    return 0;  // stops the transfer with CURLE_WRITE_ERROR
  }
  transfer->response->body.append(data, bytes);
  return bytes;
}

HttpFailure Classify(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_CONNECT: return HttpFailure::kRefused;
    case CURLE_COULDNT_RESOLVE_HOST: return HttpFailure::kResolve;
    case CURLE_OPERATION_TIMEDOUT: return HttpFailure::kTimeout;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM: return HttpFailure::kTls;
    default: return HttpFailure::kOther;
  }
}

std::string Cause(HttpFailure kind, const HttpClientOptions& options, const std::string& detail) {
  switch (kind) {
    case HttpFailure::kRefused: return "connection refused (" + detail + ")";
    case HttpFailure::kResolve: return "cannot resolve the host name (" + detail + ")";
    case HttpFailure::kTimeout:
      return "no answer within " + std::to_string(options.request_timeout_ms) + " ms (" + detail + ")";
    case HttpFailure::kTls:
      return "TLS failed (" + detail + ")" +
             (options.ca_file.empty() ? "; give the server's CA with --opensearch-ca-file" : "; CA file " + options.ca_file);
    default: return detail;
  }
}

}  // namespace

struct HttpClient::Impl {
  HttpClientOptions options;
  mutable std::mutex idle_mu;
  mutable std::vector<CurlEasy> idle FS_GUARDED_BY(idle_mu);  // handles keep their connections

  CurlEasy Acquire() const {
    {
      std::lock_guard lock(idle_mu);
      if (!idle.empty()) {
        CurlEasy handle = std::move(idle.back());
        idle.pop_back();
        curl_easy_reset(handle.get());
        return handle;
      }
    }
    CurlEasy handle(curl_easy_init());
    FS_CHECK_MSG(handle != nullptr, "curl_easy_init failed");
    return handle;
  }
  void Release(CurlEasy handle) const {
    std::lock_guard lock(idle_mu);
    if (idle.size() < 8) idle.push_back(std::move(handle));
  }
};

HttpClient::HttpClient(HttpClientOptions options) : impl_(std::make_unique<Impl>()) {
  static std::once_flag curl_ready;
  std::call_once(curl_ready, [] { FS_CHECK_MSG(curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK, "curl_global_init failed"); });
  impl_->options = std::move(options);
}

HttpClient::~HttpClient() = default;

const HttpClientOptions& HttpClient::options() const { return impl_->options; }

Result<HttpResponse> HttpClient::Send(const HttpRequest& request, HttpFailure* failure) const {
  const HttpClientOptions& options = impl_->options;
  HttpResponse response;
  Transfer transfer{&response, options.max_body_bytes, false};
  HeaderList headers;
  for (const auto& [name, value] : request.headers) headers.Append(name + ": " + value);
  headers.Append("Expect:");  // no 100-continue round trip before a body

  char error[CURL_ERROR_SIZE] = {0};
  CurlEasy handle = impl_->Acquire();
  CURL* h = handle.get();
  curl_easy_setopt(h, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);                       // a signed path is sent as signed
  curl_easy_setopt(h, CURLOPT_NOPROXY, "127.0.0.1,localhost,::1");  // loopback never through a proxy
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options.connect_timeout_ms));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(options.request_timeout_ms));
  if (!options.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, options.ca_file.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.head);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &CollectHeader);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &transfer);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &CollectBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
  if (request.method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (request.method != "GET") {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
  if (!request.body.empty() || request.method == "PUT" || request.method == "POST") {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
  }
  const CURLcode code = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &response.status);
  impl_->Release(std::move(handle));

  if (failure) *failure = HttpFailure::kNone;
  if (code == CURLE_OK) return response;
  if (transfer.overflow) {
    return Status::ResourceExhausted("the reply to " + request.method + " " + request.url + " is longer than " +
                                     std::to_string(options.max_body_bytes) + " bytes");
  }
  const HttpFailure kind = Classify(code);
  if (failure) *failure = kind;
  return Status::Unavailable(Cause(kind, options, error[0] ? error : curl_easy_strerror(code)));
}

}  // namespace fs
