// OpenSearchClient without a cluster: endpoint classification, option checks, and what goes on the
// wire (basic and SigV4 headers, retries on 429/5xx, none for writes) against a local httplib
// server on 127.0.0.1 that records each request. The real-cluster tests (and a node that is down)
// are in tests/opensearch_test.cpp.
#include "index/opensearch_client.h"

#include <httplib.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "core/hash.h"
#include "core/sigv4.h"

namespace fs {
namespace {

TEST(OpenSearchEndpoint, AwsHostsWantSigV4InTheirRegion) {
  OpenSearchEndpointKind es = ClassifyOpenSearchEndpoint("https://search-files-abc123.eu-west-1.es.amazonaws.com");
  EXPECT_EQ(es.default_auth, OpenSearchAuth::kSigV4);
  EXPECT_EQ(es.service, "es");
  EXPECT_EQ(es.region, "eu-west-1");
  EXPECT_FALSE(es.serverless);
  OpenSearchEndpointKind aoss = ClassifyOpenSearchEndpoint("https://abc123.us-east-1.aoss.amazonaws.com/");
  EXPECT_EQ(aoss.service, "aoss");
  EXPECT_EQ(aoss.region, "us-east-1");
  EXPECT_TRUE(aoss.serverless);
  OpenSearchEndpointKind local = ClassifyOpenSearchEndpoint("http://127.0.0.1:9200");
  EXPECT_EQ(local.default_auth, OpenSearchAuth::kNone);
  EXPECT_EQ(local.service, "");
  EXPECT_EQ(ParseOpenSearchAuth("basic").value(), OpenSearchAuth::kBasic);
  EXPECT_EQ(ParseOpenSearchAuth("iam").status().code(), StatusCode::kInvalidArgument);
}

TEST(OpenSearchCreate, ChecksUrlAndCredentials) {
  OpenSearchOptions options;
  EXPECT_NE(OpenSearchClient::Create(options).status().message().find("--opensearch-url"), std::string::npos);
  for (const char* bad : {"127.0.0.1:9200", "ftp://host", "http://host/path", "http://user@host", "http://"}) {
    options.url = bad;
    EXPECT_EQ(OpenSearchClient::Create(options).status().code(), StatusCode::kInvalidArgument) << bad;
  }
  options.url = "http://127.0.0.1:9200/";
  auto plain = OpenSearchClient::Create(options);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ((*plain)->url(), "http://127.0.0.1:9200");

  options.auth = OpenSearchAuth::kBasic;
  EXPECT_EQ(OpenSearchClient::Create(options).status().code(), StatusCode::kInvalidArgument);  // no file
  options.basic_auth_file = ::testing::TempDir() + "opensearch_auth_no_colon";
  std::ofstream(options.basic_auth_file) << "admin\n";
  EXPECT_NE(OpenSearchClient::Create(options).status().message().find("user:password"), std::string::npos);
  options.basic_auth_file = ::testing::TempDir() + "opensearch_auth_absent";
  std::filesystem::remove(options.basic_auth_file);
  EXPECT_EQ(OpenSearchClient::Create(options).status().code(), StatusCode::kNotFound);

  options.auth = OpenSearchAuth::kSigV4;
  options.url = "https://search-x.eu-west-1.es.amazonaws.com";
  ::unsetenv("AWS_ACCESS_KEY_ID");
  ::unsetenv("AWS_SECRET_ACCESS_KEY");
  EXPECT_NE(OpenSearchClient::Create(options).status().message().find("AWS_ACCESS_KEY_ID"), std::string::npos);
  options.url = "https://opensearch.example.com";  // names no region
  options.access_key_id = "AKID";
  options.secret_access_key = "secret";
  ::unsetenv("AWS_REGION");
  ::unsetenv("AWS_DEFAULT_REGION");
  EXPECT_NE(OpenSearchClient::Create(options).status().message().find("AWS_REGION"), std::string::npos);
}

// A local server that answers each request with the next canned status and records what it got.
class RecordingServer {
 public:
  explicit RecordingServer(std::vector<int> statuses) : statuses_(std::move(statuses)) {
    auto handler = [this](const httplib::Request& request, httplib::Response& response) {
      std::lock_guard lock(mu_);
      requests_.push_back(request);
      const size_t n = requests_.size() - 1;
      response.status = n < statuses_.size() ? statuses_[n] : 200;
      response.set_content(response.status == 200 ? R"({"ok":true})" : R"({"error":{"type":"x","reason":"busy"}})",
                           "application/json");
    };
    server_.Get(".*", handler);
    server_.Put(".*", handler);
    server_.Post(".*", handler);
    port_ = server_.bind_to_any_port("127.0.0.1");
    // bind_to_any_port already listens: connections made before the thread runs wait in the backlog.
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~RecordingServer() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<httplib::Request> requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::vector<int> statuses_;
  std::mutex mu_;
  std::vector<httplib::Request> requests_;
};

OpenSearchRequest Get(const std::string& path) {
  OpenSearchRequest request;
  request.path = path;
  return request;
}

TEST(OpenSearchSend, RetriesIdempotentRequestsOn429And5xx) {
  RecordingServer server({503, 429, 200});
  OpenSearchOptions options;
  options.url = server.url();
  options.retry_base_ms = 1;
  auto client = OpenSearchClient::Create(options);
  ASSERT_TRUE(client.ok());
  auto reply = (*client)->Send(Get("/cis-files/_settings"));
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(server.requests().size(), 3u);
}

TEST(OpenSearchSend, GivesUpAfterMaxAttemptsAndNeverRetriesAWrite) {
  RecordingServer server({503, 503, 503, 503, 503, 503});
  OpenSearchOptions options;
  options.url = server.url();
  options.retry_base_ms = 1;
  options.max_attempts = 2;
  auto client = OpenSearchClient::Create(options);
  ASSERT_TRUE(client.ok());
  auto reply = (*client)->Send(Get("/_cluster/health"));
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->status, 503);
  EXPECT_EQ(server.requests().size(), 2u);
  EXPECT_NE((*client)->DescribeError("read health", *reply).find("HTTP 503 x: busy"), std::string::npos);

  OpenSearchRequest write;
  write.method = "POST";
  write.path = "/cis-files/_doc";
  write.body = "{}";
  ASSERT_TRUE((*client)->Send(write).ok());
  EXPECT_EQ(server.requests().size(), 3u);  // one more, not two
}

TEST(OpenSearchSend, BasicAuthHeader) {
  RecordingServer server({});
  OpenSearchOptions options;
  options.url = server.url();
  options.auth = OpenSearchAuth::kBasic;
  options.basic_auth_file = ::testing::TempDir() + "opensearch_auth_ok";
  std::ofstream(options.basic_auth_file) << "Aladdin:open sesame\n";
  auto client = OpenSearchClient::Create(options);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  ASSERT_TRUE((*client)->Send(Get("/")).ok());
  const std::vector<httplib::Request> received = server.requests();
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].get_header_value("Authorization"), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");  // RFC 7617
}

// What arrives is exactly what was signed: recomputing the signature from the received method,
// path, query, headers and body gives the Authorization header's signature.
TEST(OpenSearchSend, SigV4SignsWhatItSends) {
  RecordingServer server({});
  OpenSearchOptions options;
  options.url = server.url();
  options.auth = OpenSearchAuth::kSigV4;
  options.sigv4_region = "eu-west-1";
  options.access_key_id = "AKIDEXAMPLE";
  options.secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
  options.session_token = "token-1";
  auto client = OpenSearchClient::Create(options);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  OpenSearchRequest request;
  request.method = "PUT";
  request.path = "/cis-files/_settings";
  request.query = {{"timeout", "30s"}};
  request.body = R"({"index":{"knn.algo_param.ef_search":100}})";
  ASSERT_TRUE((*client)->Send(request).ok());
  const std::vector<httplib::Request> received = server.requests();
  ASSERT_EQ(received.size(), 1u);
  const httplib::Request& got = received[0];
  const std::string authorization = got.get_header_value("Authorization");
  const std::string amz_date = got.get_header_value("x-amz-date");
  EXPECT_EQ(authorization.rfind("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/" + amz_date.substr(0, 8) + "/eu-west-1/es/aws4_request, ", 0), 0u)
      << authorization;
  EXPECT_EQ(got.get_header_value("x-amz-content-sha256"), Sha256Hex(request.body));
  EXPECT_EQ(got.get_header_value("x-amz-security-token"), "token-1");

  SigV4Request signed_request;
  signed_request.method = got.method;
  signed_request.path = got.path;
  for (const auto& [name, value] : got.params) signed_request.query.emplace_back(name, value);
  for (const char* name : {"host", "x-amz-content-sha256", "x-amz-date", "x-amz-security-token", "content-type"}) {
    signed_request.headers.emplace_back(name, got.get_header_value(name));
  }
  signed_request.payload_sha256 = Sha256Hex(got.body);
  const std::string expected = SignatureHex(signed_request, {amz_date, "eu-west-1", "es"},
                                            {options.access_key_id, options.secret_access_key});
  EXPECT_NE(authorization.find("Signature=" + expected), std::string::npos) << authorization;
  EXPECT_NE(authorization.find("SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token"),
            std::string::npos)
      << authorization;
}

}  // namespace
}  // namespace fs
