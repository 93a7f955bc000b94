// The DynamoDB client's behaviour where the emulator cannot show it, against canned replies from a
// local httplib endpoint: BatchGetItem's UnprocessedKeys are asked again (and only they), throttled
// writes are retried, a ConditionalCheckFailedException is success, and every request is signed
// for service dynamodb with the headers it sends.
#include <gtest/gtest.h>
#include <httplib.h>

#include <cstdlib>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "cache/embedding_cache.h"
#include "cache/remote_caches.h"
#include "core/base64.h"

namespace fs {
namespace {

using json = nlohmann::json;

std::string Sha(int n) {
  char buf[65];
  std::snprintf(buf, sizeof buf, "%064x", n);
  return buf;
}

json Item(const std::string& image_hash, float value) {
  const float v[2] = {value, value + 1};
  return {{"image_hash", {{"S", image_hash}}},
          {"ttl", {{"N", "99999999999"}}},
          {"embedding", {{"B", Base64Encode(std::string(reinterpret_cast<const char*>(v), sizeof v))}}}};
}

class DynamoWireTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    ::setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 1);
    ::setenv("AWS_REGION", "eu-west-1", 1);
    server_.Post("/", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock(mu_);
      const std::string op = req.get_header_value("X-Amz-Target");
      calls_.push_back({op, json::parse(req.body)});
      auth_.push_back(req.get_header_value("Authorization"));
      json reply = handler_(op, calls_.back().second);
      res.status = reply.contains("__status") ? reply["__status"].get<int>() : 200;
      reply.erase("__status");
      res.set_content(reply.dump(), "application/x-amz-json-1.0");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  void TearDown() override {
    server_.stop();
    thread_.join();
  }
  std::unique_ptr<EmbeddingCache> Open() {
    EmbeddingCacheSpec spec;
    spec.spec = "dynamodb://t";
    spec.endpoint = "http://127.0.0.1:" + std::to_string(port_);
    auto c = OpenEmbeddingCache(spec);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return std::move(c).value();
  }

  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  std::function<json(const std::string&, const json&)> handler_;
  std::vector<std::pair<std::string, json>> calls_;
  std::vector<std::string> auth_;
};

TEST_F(DynamoWireTest, UnprocessedKeysAreAskedAgainUntilAnswered) {
  // First answer: the first key, the other two unprocessed; second: one more, one unprocessed; third: the
  // last.
  int round = 0;
  handler_ = [&round](const std::string& op, const json& body) -> json {
    EXPECT_EQ(op, "DynamoDB_20120810.BatchGetItem");
    const json keys = body["RequestItems"]["t"]["Keys"];
    json responses = json::array({Item(keys[0]["image_hash"]["S"], static_cast<float>(++round))});
    json rest = json::array();
    for (size_t i = 1; i < keys.size(); ++i) rest.push_back(keys[i]);
    json reply = {{"Responses", {{"t", responses}}}};
    if (!rest.empty()) reply["UnprocessedKeys"] = {{"t", {{"Keys", rest}}}};
    return reply;
  };
  auto cache = Open();
  auto got = cache->GetMany(std::vector<std::string>{Sha(1), Sha(2), Sha(3)}, "m");
  ASSERT_EQ(calls_.size(), 3u);
  EXPECT_EQ(calls_[0].second["RequestItems"]["t"]["Keys"].size(), 3u);
  EXPECT_EQ(calls_[1].second["RequestItems"]["t"]["Keys"].size(), 2u) << "only the unprocessed keys again";
  EXPECT_EQ(calls_[2].second["RequestItems"]["t"]["Keys"].size(), 1u);
  for (const auto& v : got) ASSERT_TRUE(v.has_value());
  EXPECT_EQ(cache->counters().hits, 3u);
  EXPECT_EQ(cache->counters().errors, 0u);
}

TEST_F(DynamoWireTest, KeysThatStayUnprocessedAreMisses) {
  handler_ = [](const std::string&, const json& body) -> json {
    return {{"Responses", {{"t", json::array()}}},
            {"UnprocessedKeys", {{"t", {{"Keys", body["RequestItems"]["t"]["Keys"]}}}}}};
  };
  auto cache = Open();
  auto got = cache->GetMany(std::vector<std::string>{Sha(1), Sha(2)}, "m");
  EXPECT_EQ(calls_.size(), 6u) << "six tries in all";
  EXPECT_FALSE(got[0].has_value() || got[1].has_value());
  EXPECT_EQ(cache->counters().misses, 2u);
}

TEST_F(DynamoWireTest, ThrottledWritesAreRetriedAndALostRaceIsSuccess) {
  int puts = 0;
  handler_ = [&puts](const std::string& op, const json& body) -> json {
    EXPECT_EQ(op, "DynamoDB_20120810.PutItem");
    EXPECT_EQ(body["ConditionExpression"], "attribute_not_exists(image_hash) OR #ttl <= :now");
    EXPECT_EQ(body["Item"]["image_hash"]["S"], Sha(1) + "#m");
    if (++puts == 1)
      return {{"__status", 400}, {"__type", "com.amazonaws.dynamodb.v20120810#ThrottlingException"}};
    return {{"__status", 400},
            {"__type", "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"},
            {"message", "The conditional request failed"}};
  };
  auto cache = Open();
  const float v[2] = {1, 2};
  ASSERT_TRUE(cache->Put(Sha(1), "m", v).ok());
  EXPECT_EQ(puts, 2);
  EXPECT_EQ(cache->counters().errors, 0u);
  EXPECT_EQ(cache->counters().puts, 1u);
}

TEST_F(DynamoWireTest, RequestsAreSignedForDynamoDbWithTheHeadersSent) {
  handler_ = [](const std::string&, const json&) -> json { return json::object(); };
  auto cache = Open();
  ASSERT_TRUE(cache->Get(Sha(1), "m").ok());
  ASSERT_EQ(auth_.size(), 1u);
  EXPECT_EQ(calls_[0].first, "DynamoDB_20120810.GetItem");
  EXPECT_EQ(auth_[0].rfind("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/", 0), 0u) << auth_[0];
  EXPECT_NE(auth_[0].find("/eu-west-1/dynamodb/aws4_request"), std::string::npos) << auth_[0];
  EXPECT_NE(auth_[0].find("SignedHeaders=content-type;host;x-amz-date;x-amz-target,"), std::string::npos)
      << auth_[0];
}

TEST_F(DynamoWireTest, AnErrorReplyIsACountedMiss) {
  handler_ = [](const std::string&, const json&) -> json {
    return {{"__status", 400},
            {"__type", "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException"},
            {"message", "Requested resource not found"}};
  };
  auto cache = Open();
  auto got = cache->Get(Sha(1), "m");
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());
  EXPECT_EQ(cache->counters().errors, 1u);
  EXPECT_EQ(calls_.size(), 1u) << "not retried";
}

}  // namespace
}  // namespace fs
