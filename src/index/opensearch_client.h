// OpenSearchClient: requests to one OpenSearch cluster (self-hosted, Amazon OpenSearch Service or
// Serverless), the transport under the `opensearch` search back end and `filesearch opensearch`.
// Auth: none, HTTP basic (user:password from a file) or AWS Signature Version 4 (service "es", or
// "aoss" for Serverless; credentials from options or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
// AWS_SESSION_TOKEN). TLS verification uses the system's CAs or a CA file.
// Thread-safety: Send may be called from many threads at once. The client owns its connections.
// Bodies are JSON text; parsing stays with the caller so no JSON type appears here.
// Errors: transport failures are Unavailable with a message that names the url and says what to do
// ("cannot reach OpenSearch at http://127.0.0.1:9200: connection refused ... — is it running? check
// --opensearch-url"). Any HTTP status is a reply; DescribeError turns an error reply into text.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace fs {

enum class OpenSearchAuth { kNone, kBasic, kSigV4 };

// "none" | "basic" | "sigv4" -> the enum; InvalidArgument naming the choices otherwise.
Result<OpenSearchAuth> ParseOpenSearchAuth(const std::string& name);
const char* OpenSearchAuthName(OpenSearchAuth auth);

// What an endpoint's host name says about it: Amazon OpenSearch Service (*.es.amazonaws.com,
// service "es") and Serverless (*.aoss.amazonaws.com, service "aoss") want SigV4 in the region the
// host names ("search-x-abc.eu-west-1.es.amazonaws.com" -> "eu-west-1"); anything else: none.
struct OpenSearchEndpointKind {
  OpenSearchAuth default_auth = OpenSearchAuth::kNone;
  std::string service;  // "es", "aoss", "" when not AWS
  std::string region;   // "" when the host does not name one
  bool serverless = false;
};
OpenSearchEndpointKind ClassifyOpenSearchEndpoint(const std::string& url);

struct OpenSearchOptions {
  std::string url;                    // "http://127.0.0.1:9200", "https://search-x.eu-west-1.es.amazonaws.com"
  OpenSearchAuth auth = OpenSearchAuth::kNone;
  std::string basic_auth_file;        // kBasic: "user:password" on the first line
  std::string ca_file;                // PEM CA bundle for https; "" = the system's
  std::string sigv4_service;          // kSigV4: "" = from the host name, else "es"
  std::string sigv4_region;           // kSigV4: "" = from the host name, else $AWS_REGION, $AWS_DEFAULT_REGION
  std::string access_key_id;          // kSigV4: "" = $AWS_ACCESS_KEY_ID
  std::string secret_access_key;      // kSigV4: "" = $AWS_SECRET_ACCESS_KEY
  std::string session_token;          // kSigV4: "" = $AWS_SESSION_TOKEN (optional)
  int connect_timeout_ms = 5000;
  int request_timeout_ms = 30000;
  int max_attempts = 4;               // idempotent requests on 429, 5xx, timeouts and resets
  int retry_base_ms = 200;            // backoff: base, 2x base, 4x base, ... (plus jitter, at most 10 s)
  // Dry run: nothing is sent; each request is handed to `dry_run_sink` as it would go out
  // ("PUT http://.../cis-files" and the body) and answered with status 0 and an empty body.
  bool dry_run = false;
  std::function<void(const std::string&)> dry_run_sink;
};

struct OpenSearchRequest {
  std::string method = "GET";  // GET, HEAD, PUT, POST, DELETE
  std::string path;            // "/cis-files/_settings": index names and path words, unencoded
  std::vector<std::pair<std::string, std::string>> query;  // raw names and values
  std::string body;            // JSON text, "" for none
  std::string content_type = "application/json";  // "application/x-ndjson" for _bulk
  // Retried on 429/5xx/timeouts: GET, HEAD, PUT and DELETE always; POST only when this is set
  // (searches and counts, which change nothing).
  bool read_only_post = false;
};

struct OpenSearchReply {
  long status = 0;   // HTTP status; 0 in a dry run
  std::string body;  // JSON text as OpenSearch sent it
  bool ok() const { return status >= 200 && status < 300; }
};

class OpenSearchClient {
 public:
  // Checks the options (url scheme and host, auth file readable and "user:password", SigV4 region
  // and credentials present); connects to nothing.
  static Result<std::unique_ptr<OpenSearchClient>> Create(OpenSearchOptions options);
  ~OpenSearchClient();
  OpenSearchClient(const OpenSearchClient&) = delete;
  OpenSearchClient& operator=(const OpenSearchClient&) = delete;

  Result<OpenSearchReply> Send(const OpenSearchRequest& request) const;

  // "HTTP 400 resource_already_exists_exception: index [cis-files] already exists", with advice
  // for 401/403 (credentials) and 404; `what` names the operation ("create index cis-files").
  std::string DescribeError(const std::string& what, const OpenSearchReply& reply) const;

  const std::string& url() const;  // without a trailing '/'
  bool dry_run() const;
  OpenSearchAuth auth() const;

 private:
  struct Impl;
  explicit OpenSearchClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace fs
