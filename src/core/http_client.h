// HttpClient: a small blocking HTTP/1.1 and HTTPS client (libcurl) for the JSON services filesearch
// talks to as a client (OpenSearch today). One request in, the status, content type and body out.
// Thread-safety: Send may be called from many threads at once; each call takes its own curl handle
// from a pool (kept connections are reused). The client owns its handles; no curl type appears here.
// Redirects are never followed. Transport failures are Unavailable (refused, DNS, timeout, TLS) with
// a short cause ("connection refused", "timed out after 5000 ms", ...); callers add what to do.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace fs {

struct HttpClientOptions {
  int connect_timeout_ms = 5000;     // TCP (+TLS) connect
  int request_timeout_ms = 30000;    // whole request, body included
  std::string ca_file;               // PEM bundle to verify the server with; "" = the system's
  size_t max_body_bytes = 64 << 20;  // a longer reply body is cut and reported as ResourceExhausted
};

struct HttpRequest {
  std::string method = "GET";  // GET, HEAD, PUT, POST, DELETE
  std::string url;             // full url, path and query already encoded
  std::vector<std::pair<std::string, std::string>> headers;  // sent as given
  std::string body;            // sent when non-empty or when the method is PUT/POST
};

struct HttpResponse {
  long status = 0;           // HTTP status code
  std::string content_type;  // "application/json; charset=UTF-8"
  std::string retry_after;   // the Retry-After header, "" when absent
  std::string body;
};

// What kind of transport failure a Send had, for callers that phrase their own messages.
enum class HttpFailure { kNone, kRefused, kResolve, kTimeout, kTls, kOther };

class HttpClient {
 public:
  explicit HttpClient(HttpClientOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Any HTTP status is a response; only transport failures are a Status (Unavailable; its message
  // is the cause, e.g. "connection refused"), with `failure` (optional) saying which kind.
  Result<HttpResponse> Send(const HttpRequest& request, HttpFailure* failure = nullptr) const;

  const HttpClientOptions& options() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fs
