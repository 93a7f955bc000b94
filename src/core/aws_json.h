// AwsJsonClient: one AWS service spoken in the JSON protocol ("awsJson1_0": POST / with
// X-Amz-Target <prefix>.<Operation>), signed with SigV4, retried on throttling and 5xx. DynamoDB
// (the shared embedding cache) and Amazon SQS (the job queue) use it.
// Thread-safety: Call may run on many threads at once (the HTTP client keeps a handle pool).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/http_client.h"
#include "core/sigv4.h"
#include "core/status.h"

namespace fs {

struct AwsJsonError {
  long http = 0;       // 0: no reply
  std::string type;    // "ConditionalCheckFailedException", "QueueDoesNotExist" (the part after '#')
  std::string message;
};

struct AwsServiceConfig {
  std::string service;        // SigV4 service name: "dynamodb", "sqs"
  std::string target_prefix;  // "DynamoDB_20120810", "AmazonSQS"
  std::string endpoint;       // "https://host[:port]", no trailing slash
  std::string region;
  SigV4Credentials credentials;
  std::string session_token;  // "" when none
  int timeout_ms = 2000;      // connect; a whole request gets four times this
  // Error types retried like a 5xx (throttling); kAwsMaxAttempts tries in all.
  std::vector<std::string> retry_types;
};

// Tries in all for a throttled or failing request, and the sleep before retry `attempt` (1, 2, ...):
// 25 ms doubling, at most 1.6 s, with jitter. For callers that retry partial results themselves.
inline constexpr int kAwsMaxAttempts = 6;
void AwsRetryBackoff(int attempt);

// The environment's value of `name`, "" when unset.
std::string EnvOr(const char* name);
// Fills an AwsServiceConfig for `service` from the flags and the environment: credentials from
// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN (InvalidArgument saying so when
// missing); region `region`, else AWS_REGION, AWS_DEFAULT_REGION, us-east-1; endpoint `endpoint`,
// else $<endpoint_env> (AWS_ENDPOINT_URL_DYNAMODB, ...), else AWS_ENDPOINT_URL, else
// https://<service>.<region>.amazonaws.com ("https://" added to a bare host).
Result<AwsServiceConfig> AwsServiceFromEnv(const std::string& service, const std::string& target_prefix,
                                           const std::string& endpoint, const std::string& region,
                                           const char* endpoint_env, const std::string& what_needs_it);

class AwsJsonClient {
 public:
  explicit AwsJsonClient(AwsServiceConfig config);
  // One operation. A service error reply fills *error (optional) and is Unavailable for 5xx and
  // transport failures, InvalidArgument otherwise; the message names service, operation and endpoint.
  Result<nlohmann::json> Call(const std::string& operation, const nlohmann::json& body,
                              AwsJsonError* error = nullptr) const;
  const std::string& endpoint() const { return config_.endpoint; }
  const std::string& region() const { return config_.region; }

 private:
  HttpRequest Sign(const std::string& operation, const std::string& payload) const;
  AwsServiceConfig config_;
  std::string host_;
  std::unique_ptr<HttpClient> http_;
};

}  // namespace fs
