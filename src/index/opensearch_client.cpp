#include "index/opensearch_client.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "core/base64.h"
#include "core/hash.h"
#include "core/http_client.h"
#include "core/sigv4.h"

namespace fs {
namespace {

std::string FromEnv(const std::string& given, const char* name) {
  if (!given.empty()) return given;
  const char* value = std::getenv(name);
  return value ? value : "";
}

// "https://host:443/" -> host "host"; false when the url is not http(s)://host[:port][/].
bool SplitUrl(const std::string& url, std::string* base, std::string* host_port, std::string* host) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return false;
  const std::string scheme = url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") return false;
  std::string rest = url.substr(scheme_end + 3);
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.empty() || rest.find_first_of("/?#@ ") != std::string::npos) return false;
  *host_port = rest;
  *host = rest.substr(0, rest.rfind(':') == std::string::npos || rest.front() == '[' ? rest.size() : rest.rfind(':'));
  *base = scheme + "://" + rest;
  return true;
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool Retryable(long status) { return status == 429 || (status >= 500 && status <= 599); }

}  // namespace

Result<OpenSearchAuth> ParseOpenSearchAuth(const std::string& name) {
  if (name == "none") return OpenSearchAuth::kNone;
  if (name == "basic") return OpenSearchAuth::kBasic;
  if (name == "sigv4") return OpenSearchAuth::kSigV4;
  return Status::InvalidArgument("unknown OpenSearch auth '" + name + "': use sigv4, basic or none");
}

const char* OpenSearchAuthName(OpenSearchAuth auth) {
  switch (auth) {
    case OpenSearchAuth::kBasic: return "basic";
    case OpenSearchAuth::kSigV4: return "sigv4";
    default: return "none";
  }
}

OpenSearchEndpointKind ClassifyOpenSearchEndpoint(const std::string& url) {
  OpenSearchEndpointKind kind;
  std::string base, host_port, host;
  if (!SplitUrl(url, &base, &host_port, &host)) return kind;
  for (const char* service : {"es", "aoss"}) {
    const std::string suffix = std::string(".") + service + ".amazonaws.com";
    if (!EndsWith(host, suffix)) continue;
    kind.default_auth = OpenSearchAuth::kSigV4;
    kind.service = service;
    kind.serverless = kind.service == "aoss";
    // The label before the suffix is the region: "search-x-abc.eu-west-1" + ".es.amazonaws.com".
    const std::string head = host.substr(0, host.size() - suffix.size());
    const size_t dot = head.rfind('.');
    if (dot != std::string::npos) kind.region = head.substr(dot + 1);
  }
  return kind;
}

struct OpenSearchClient::Impl {
  OpenSearchOptions options;
  std::string base;       // "http://127.0.0.1:9200"
  std::string host_port;  // the Host header, exactly as signed
  std::string authorization;  // kBasic: the whole header value
  std::string service, region;  // kSigV4
  std::unique_ptr<HttpClient> http;

  HttpRequest Build(const OpenSearchRequest& request) const;
  std::string Unreachable(HttpFailure failure, const std::string& cause) const;
};

OpenSearchClient::OpenSearchClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
OpenSearchClient::~OpenSearchClient() = default;

Result<std::unique_ptr<OpenSearchClient>> OpenSearchClient::Create(OpenSearchOptions options) {
  auto impl = std::make_unique<Impl>();
  std::string host;
  if (options.url.empty()) {
    return Status::InvalidArgument("no OpenSearch url: give --opensearch-url or set OPENSEARCH_ENDPOINT");
  }
  if (!SplitUrl(options.url, &impl->base, &impl->host_port, &host)) {
    return Status::InvalidArgument("OpenSearch url '" + options.url +
                                   "' is not http(s)://host[:port] (no path, user or query): check --opensearch-url");
  }
  if (options.auth == OpenSearchAuth::kBasic) {
    if (options.basic_auth_file.empty()) {
      return Status::InvalidArgument("--opensearch-auth basic needs --opensearch-basic-auth-file FILE (user:password)");
    }
    std::ifstream in(options.basic_auth_file);
    std::string line;
    if (!in || !std::getline(in, line)) {
      return Status::NotFound("cannot read the basic auth file " + options.basic_auth_file);
    }
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.find(':') == std::string::npos || line.front() == ':') {
      return Status::InvalidArgument("the basic auth file " + options.basic_auth_file +
                                     " must hold 'user:password' on its first line");
    }
    impl->authorization = "Basic " + Base64Encode(line);
  }
  if (options.auth == OpenSearchAuth::kSigV4) {
    const OpenSearchEndpointKind kind = ClassifyOpenSearchEndpoint(options.url);
    impl->service = !options.sigv4_service.empty() ? options.sigv4_service : !kind.service.empty() ? kind.service : "es";
    impl->region = !options.sigv4_region.empty() ? options.sigv4_region : kind.region;
    impl->region = FromEnv(FromEnv(impl->region, "AWS_REGION"), "AWS_DEFAULT_REGION");
    options.access_key_id = FromEnv(options.access_key_id, "AWS_ACCESS_KEY_ID");
    options.secret_access_key = FromEnv(options.secret_access_key, "AWS_SECRET_ACCESS_KEY");
    options.session_token = FromEnv(options.session_token, "AWS_SESSION_TOKEN");
    if (impl->region.empty()) {
      return Status::InvalidArgument("SigV4 needs a region: the host " + host + " names none; set AWS_REGION");
    }
    if (!options.dry_run && (options.access_key_id.empty() || options.secret_access_key.empty())) {
      return Status::InvalidArgument("SigV4 needs AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                                     "(and AWS_SESSION_TOKEN for temporary ones), or use --opensearch-auth basic|none");
    }
  }
  HttpClientOptions http;
  http.connect_timeout_ms = options.connect_timeout_ms;
  http.request_timeout_ms = options.request_timeout_ms;
  http.ca_file = options.ca_file;
  impl->http = std::make_unique<HttpClient>(http);
  impl->options = std::move(options);
  return std::unique_ptr<OpenSearchClient>(new OpenSearchClient(std::move(impl)));
}

HttpRequest OpenSearchClient::Impl::Build(const OpenSearchRequest& request) const {
  const std::string path = UriEncodePath(request.path.empty() || request.path == "/" ? "" : request.path.substr(request.path.front() == '/' ? 1 : 0));
  const std::string query = CanonicalQuery(request.query);
  HttpRequest out;
  out.method = request.method;
  out.url = base + path + (query.empty() ? "" : "?" + query);
  out.body = request.body;
  if (!request.body.empty()) out.headers.emplace_back("Content-Type", request.content_type);
  if (options.auth == OpenSearchAuth::kBasic) out.headers.emplace_back("Authorization", authorization);
  if (options.auth == OpenSearchAuth::kSigV4) {
    const std::string payload_sha256 = Sha256Hex(request.body);
    const std::string amz_date = AmzDate(static_cast<long long>(std::time(nullptr)));
    SigV4Request signing;
    signing.method = request.method;
    // Services other than S3 encode the canonical path twice; a no-op for OpenSearch's plain words.
    signing.path = UriEncode(path, /*keep_slash=*/true);
    signing.query = request.query;
    signing.payload_sha256 = payload_sha256;
    signing.headers = {{"host", host_port}, {"x-amz-content-sha256", payload_sha256}, {"x-amz-date", amz_date}};
    if (!options.session_token.empty()) signing.headers.emplace_back("x-amz-security-token", options.session_token);
    if (!request.body.empty()) signing.headers.emplace_back("content-type", "application/json");
    for (const auto& header : signing.headers) {
      if (header.first != "content-type") out.headers.push_back(header);
    }
    out.headers.emplace_back("Authorization", AuthorizationHeader(signing, {amz_date, region, service},
                                                                  {options.access_key_id, options.secret_access_key}));
  }
  return out;
}

std::string OpenSearchClient::Impl::Unreachable(HttpFailure failure, const std::string& cause) const {
  const std::string where = "OpenSearch at " + base;
  switch (failure) {
    case HttpFailure::kRefused: return "cannot reach " + where + ": " + cause + " — is it running? check --opensearch-url";
    case HttpFailure::kResolve: return "cannot reach " + where + ": " + cause + " — check the host in --opensearch-url";
    case HttpFailure::kTimeout: return where + " did not answer: " + cause + " — is it overloaded, or behind a firewall?";
    default: return "request to " + where + " failed: " + cause;
  }
}

Result<OpenSearchReply> OpenSearchClient::Send(const OpenSearchRequest& request) const {
  const OpenSearchOptions& options = impl_->options;
  const HttpRequest http = impl_->Build(request);
  if (options.dry_run) {
    if (options.dry_run_sink) options.dry_run_sink(request.method + " " + http.url + (request.body.empty() ? "" : "\n" + request.body));
    return OpenSearchReply{};
  }
  const bool retry = request.method != "POST" || request.read_only_post;
  const int attempts = retry ? std::max(1, options.max_attempts) : 1;
  std::minstd_rand jitter(static_cast<unsigned>(std::chrono::steady_clock::now().time_since_epoch().count()));
  Status last = Status::Ok();
  for (int attempt = 0; attempt < attempts; ++attempt) {
    if (attempt > 0) {
      const long long backoff = std::min<long long>(10000, static_cast<long long>(options.retry_base_ms) << (attempt - 1));
      std::this_thread::sleep_for(std::chrono::milliseconds(backoff + static_cast<long long>(jitter() % (backoff / 2 + 1))));
    }
    HttpFailure failure = HttpFailure::kNone;
    Result<HttpResponse> response = impl_->http->Send(http, &failure);
    if (response.ok()) {
      OpenSearchReply reply{response->status, std::move(response->body)};
      if (!Retryable(reply.status) || attempt + 1 == attempts) return reply;
      continue;
    }
    last = Status::Unavailable(impl_->Unreachable(failure, response.status().message()));
    // A refused connection or an unknown host will not heal in a second: say so at once.
    if (failure == HttpFailure::kRefused || failure == HttpFailure::kResolve || failure == HttpFailure::kTls) break;
  }
  return last;
}

std::string OpenSearchClient::DescribeError(const std::string& what, const OpenSearchReply& reply) const {
  std::string said = "HTTP " + std::to_string(reply.status);
  const nlohmann::json body = nlohmann::json::parse(reply.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_object() && body.contains("error")) {
    const nlohmann::json& error = body["error"];
    if (error.is_object()) {
      said += " " + error.value("type", std::string()) + ": " + error.value("reason", std::string());
    } else if (error.is_string()) {
      said += ": " + error.get<std::string>();
    }
  } else if (body.is_object() && body.contains("message") && body["message"].is_string()) {
    said += ": " + body["message"].get<std::string>();  // Amazon OpenSearch Service's gateway
  }
  std::string advice;
  if (reply.status == 401 || reply.status == 403) {
    advice = impl_->options.auth == OpenSearchAuth::kNone
                 ? " — the cluster wants credentials: --opensearch-auth basic or sigv4"
                 : std::string(" — check the credentials (--opensearch-auth ") + OpenSearchAuthName(impl_->options.auth) +
                       ") and that they are allowed this action";
  }
  return what + " at " + impl_->base + " failed: " + said + advice;
}

const std::string& OpenSearchClient::url() const { return impl_->base; }
bool OpenSearchClient::dry_run() const { return impl_->options.dry_run; }
OpenSearchAuth OpenSearchClient::auth() const { return impl_->options.auth; }

}  // namespace fs
