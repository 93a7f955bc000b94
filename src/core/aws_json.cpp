#include "core/aws_json.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <thread>

#include "core/hash.h"

namespace fs {
namespace {

using json = nlohmann::json;

AwsJsonError ParseError(const HttpResponse& r) {
  AwsJsonError e;
  e.http = r.status;
  json body = json::parse(r.body, nullptr, false);
  if (body.is_object()) {
    std::string type = body.value("__type", "");
    e.type = type.substr(type.rfind('#') + 1);
    e.message = body.contains("message") ? body.value("message", "") : body.value("Message", "");
  } else {
    e.message = r.body.substr(0, 200);
  }
  return e;
}

}  // namespace

void AwsRetryBackoff(int attempt) {
  const int base = 25 << std::min(attempt - 1, 6);
  const int jitter = static_cast<int>(std::hash<std::thread::id>()(std::this_thread::get_id()) % 16);
  std::this_thread::sleep_for(std::chrono::milliseconds(base + jitter));
}

std::string EnvOr(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::string(v) : std::string();
}

Result<AwsServiceConfig> AwsServiceFromEnv(const std::string& service, const std::string& target_prefix,
                                           const std::string& endpoint, const std::string& region,
                                           const char* endpoint_env, const std::string& what_needs_it) {
  AwsServiceConfig c;
  c.service = service;
  c.target_prefix = target_prefix;
  c.credentials = {EnvOr("AWS_ACCESS_KEY_ID"), EnvOr("AWS_SECRET_ACCESS_KEY")};
  if (c.credentials.access_key_id.empty() || c.credentials.secret_access_key.empty()) {
    return Status::InvalidArgument(what_needs_it +
                                   " needs AWS credentials: set AWS_ACCESS_KEY_ID and "
                                   "AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones)");
  }
  c.session_token = EnvOr("AWS_SESSION_TOKEN");
  c.region = region;
  if (c.region.empty()) c.region = EnvOr("AWS_REGION");
  if (c.region.empty()) c.region = EnvOr("AWS_DEFAULT_REGION");
  if (c.region.empty()) c.region = "us-east-1";
  c.endpoint = endpoint;
  if (c.endpoint.empty()) c.endpoint = EnvOr(endpoint_env);
  if (c.endpoint.empty()) c.endpoint = EnvOr("AWS_ENDPOINT_URL");
  if (c.endpoint.empty()) c.endpoint = "https://" + service + "." + c.region + ".amazonaws.com";
  if (c.endpoint.find("://") == std::string::npos) c.endpoint = "https://" + c.endpoint;
  while (c.endpoint.size() > 8 && c.endpoint.back() == '/') c.endpoint.pop_back();
  return c;
}

AwsJsonClient::AwsJsonClient(AwsServiceConfig config) : config_(std::move(config)) {
  std::string rest = config_.endpoint.substr(config_.endpoint.find("://") + 3);
  host_ = rest.substr(0, rest.find('/'));
  http_ = std::make_unique<HttpClient>(
      HttpClientOptions{config_.timeout_ms, config_.timeout_ms * 4, "", 64 << 20});
}

Result<json> AwsJsonClient::Call(const std::string& operation, const json& body, AwsJsonError* error) const {
  const std::string payload = body.dump();
  AwsJsonError last;
  for (int attempt = 1;; ++attempt) {
    FS_ASSIGN_OR_RETURN(HttpResponse r, http_->Send(Sign(operation, payload)));
    if (r.status == 200) {
      json out = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
      if (out.is_discarded()) return Status::Corruption(config_.service + " " + operation + ": reply is not JSON");
      return out;
    }
    last = ParseError(r);
    const bool retry = r.status >= 500 || std::find(config_.retry_types.begin(), config_.retry_types.end(),
                                                    last.type) != config_.retry_types.end();
    if (!retry || attempt >= kAwsMaxAttempts) break;
    AwsRetryBackoff(attempt);
  }
  if (error) *error = last;
  const std::string what = config_.service + " " + operation + " at " + config_.endpoint + ": HTTP " +
                           std::to_string(last.http) + " " + last.type + ": " + last.message;
  return last.http >= 500 || last.http == 0 ? Status::Unavailable(what) : Status::InvalidArgument(what);
}

HttpRequest AwsJsonClient::Sign(const std::string& operation, const std::string& payload) const {
  const std::string amz_date = AmzDate(static_cast<long long>(std::time(nullptr)));
  SigV4Request s;
  s.method = "POST";
  s.path = "/";
  s.headers = {{"content-type", "application/x-amz-json-1.0"},
               {"host", host_},
               {"x-amz-date", amz_date},
               {"x-amz-target", config_.target_prefix + "." + operation}};
  if (!config_.session_token.empty()) s.headers.emplace_back("x-amz-security-token", config_.session_token);
  s.payload_sha256 = Sha256Hex(payload);
  HttpRequest req;
  req.method = "POST";
  req.url = config_.endpoint + "/";
  req.headers = s.headers;
  req.headers.emplace_back("Authorization",
                           AuthorizationHeader(s, {amz_date, config_.region, config_.service}, config_.credentials));
  req.body = payload;
  return req;
}

}  // namespace fs
