// The DynamoDB back end of EmbeddingCache: JSON over HTTPS (protocol "awsJson1_0", X-Amz-Target
// DynamoDB_20120810.<Operation>), signed with SigV4 (service "dynamodb").
//
// Why the model is in the key: the original table `cis-image-embedding-cache` has one hash key,
// `image_hash` (S), and no sort key; its schema must stay as it is so the table (and `cache setup`)
// stays interchangeable with the original's. A model attribute next to a bare hash would let two
// models overwrite each other's vector for the same bytes (or, with a condition, refuse the second
// model forever). So image_hash = "<sha256 hex>#<model id>": the hash is always 64 characters, so
// the key is unambiguous whatever the model id contains; `model` and `dim` are stored as
// attributes too, for people reading the table.
//
// Expiry: `ttl` holds epoch seconds; DynamoDB deletes expired items up to days late (emulators
// never), so a read treats ttl <= now as absent. Writes are conditional (the item is absent or
// expired), so concurrent workers embedding the same bytes never clobber a live entry: the loser's
// ConditionalCheckFailedException means "already cached" and is success.
#include <bit>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "cache/remote_caches.h"
#include "core/base64.h"
#include "core/hash.h"
#include "core/aws_json.h"

namespace fs::cache_internal {
namespace {

static_assert(std::endian::native == std::endian::little, "vectors are stored as little-endian float32");

using json = nlohmann::json;

constexpr size_t kBatchGetMax = 100;  // BatchGetItem's limit on keys per request

using DynamoClient = AwsJsonClient;
using DynamoError = AwsJsonError;

class DynamoCache final : public EmbeddingCache {
 public:
  DynamoCache(std::unique_ptr<DynamoClient> client, std::string table, EmbeddingCacheOptions options)
      : EmbeddingCache(std::move(options)), client_(std::move(client)), table_(std::move(table)) {}

  Result<uint64_t> Size() override {
    FS_ASSIGN_OR_RETURN(json r, client_->Call("DescribeTable", {{"TableName", table_}}));
    return r["Table"].value("ItemCount", uint64_t{0});
  }
  std::string kind() const override { return "dynamodb"; }

 protected:
  Result<std::vector<Found>> Lookup(std::span<const std::string> sha256s, const std::string& model) override {
    std::vector<Found> out(sha256s.size());
    std::map<std::string, std::vector<size_t>>
        slots;  // image_hash -> positions (BatchGetItem refuses duplicates)
    for (size_t i = 0; i < sha256s.size(); ++i) slots[DynamoImageHash(sha256s[i], model)].push_back(i);
    const int64_t now = Now();
    auto take = [&](const json& item) {
      if (!item.contains("image_hash")) return;
      auto it = slots.find(item["image_hash"].value("S", ""));
      if (it == slots.end()) return;
      Found f = Decode(item, now);
      for (size_t pos : it->second) out[pos] = f;
    };
    if (slots.size() == 1) {
      json req = {{"TableName", table_}, {"Key", {{"image_hash", {{"S", slots.begin()->first}}}}}};
      FS_ASSIGN_OR_RETURN(json r, client_->Call("GetItem", req));
      if (r.contains("Item")) take(r["Item"]);
      return out;
    }
    std::vector<std::string> keys;
    for (const auto& [k, unused] : slots) keys.push_back(k);
    for (size_t begin = 0; begin < keys.size(); begin += kBatchGetMax) {
      json pending = json::array();
      for (size_t i = begin; i < std::min(keys.size(), begin + kBatchGetMax); ++i) {
        pending.push_back({{"image_hash", {{"S", keys[i]}}}});
      }
      // UnprocessedKeys (throttling, the 16 MB reply limit) are asked again with backoff; what is
      // still unprocessed after the last try is a miss.
      for (int attempt = 1; !pending.empty() && attempt <= kAwsMaxAttempts; ++attempt) {
        if (attempt > 1) AwsRetryBackoff(attempt - 1);
        json req = {{"RequestItems", {{table_, {{"Keys", pending}}}}}};
        FS_ASSIGN_OR_RETURN(json r, client_->Call("BatchGetItem", req));
        if (r.contains("Responses") && r["Responses"].contains(table_)) {
          for (const json& item : r["Responses"][table_]) take(item);
        }
        pending = json::array();
        if (r.contains("UnprocessedKeys") && r["UnprocessedKeys"].contains(table_)) {
          pending = r["UnprocessedKeys"][table_].value("Keys", json::array());
        }
      }
    }
    return out;
  }

  Status Store(const std::string& sha256, const std::string& model, std::span<const float> vector) override {
    const int64_t now = Now();
    const std::string bytes(reinterpret_cast<const char*>(vector.data()), vector.size_bytes());
    json req = {{"TableName", table_},
                {"Item",
                 {{"image_hash", {{"S", DynamoImageHash(sha256, model)}}},
                  {"ttl", {{"N", std::to_string(now + ttl_seconds())}}},
                  {"model", {{"S", model}}},
                  {"dim", {{"N", std::to_string(vector.size())}}},
                  {"embedding", {{"B", Base64Encode(bytes)}}}}},
                {"ConditionExpression", "attribute_not_exists(image_hash) OR #ttl <= :now"},
                {"ExpressionAttributeNames", {{"#ttl", "ttl"}}},
                {"ExpressionAttributeValues", {{":now", {{"N", std::to_string(now)}}}}}};
    DynamoError error;
    auto r = client_->Call("PutItem", req, &error);
    if (!r.ok() && error.type == "ConditionalCheckFailedException")
      return Status::Ok();  // a live entry exists
    return r.status();
  }

 private:
  static Found Decode(const json& item, int64_t now) {
    Found f;
    if (item.contains("ttl")) {
      const std::string ttl = item["ttl"].value("N", "");
      char* end = nullptr;
      const long long expires = std::strtoll(ttl.c_str(), &end, 10);
      if (!ttl.empty() && expires <= now) {
        f.expired = true;
        return f;
      }
    }
    if (!item.contains("embedding")) return f;
    auto bytes = Base64Decode(item["embedding"].value("B", ""));
    if (!bytes.ok() || bytes->empty() || bytes->size() % sizeof(float) != 0) return f;  // damaged: a miss
    f.vector.resize(bytes->size() / sizeof(float));
    std::memcpy(f.vector.data(), bytes->data(), bytes->size());
    return f;
  }

  std::unique_ptr<DynamoClient> client_;
  const std::string table_;
};

Result<std::pair<std::unique_ptr<DynamoClient>, std::string>> Connect(const EmbeddingCacheSpec& spec) {
  const std::string scheme = "dynamodb://";
  std::string table = spec.spec.substr(scheme.size());
  if (spec.spec.rfind(scheme, 0) != 0 || table.empty() || table.find('/') != std::string::npos) {
    return Status::InvalidArgument("not a DynamoDB cache (want dynamodb://TABLE): " + spec.spec);
  }
  FS_ASSIGN_OR_RETURN(AwsServiceConfig config,
                      AwsServiceFromEnv("dynamodb", "DynamoDB_20120810", spec.endpoint, spec.region,
                                        "AWS_ENDPOINT_URL_DYNAMODB", "the DynamoDB cache"));
  config.timeout_ms = spec.timeout_ms;
  config.retry_types = {"ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded"};
  auto client = std::make_unique<DynamoClient>(std::move(config));
  return std::make_pair(std::move(client), std::move(table));
}

}  // namespace

std::string DynamoImageHash(const std::string& sha256, const std::string& model) {
  return sha256 + "#" + model;
}

Result<std::unique_ptr<EmbeddingCache>> OpenDynamoCache(const EmbeddingCacheSpec& spec) {
  FS_ASSIGN_OR_RETURN(auto connected, Connect(spec));
  return std::unique_ptr<EmbeddingCache>(
      new DynamoCache(std::move(connected.first), std::move(connected.second), spec.options));
}

Result<std::string> SetupDynamoTable(const EmbeddingCacheSpec& spec) {
  FS_ASSIGN_OR_RETURN(auto connected, Connect(spec));
  DynamoClient& client = *connected.first;
  const std::string& table = connected.second;
  std::string done;
  DynamoError error;
  json create = {{"TableName", table},
                 {"AttributeDefinitions", {{{"AttributeName", "image_hash"}, {"AttributeType", "S"}}}},
                 {"KeySchema", {{{"AttributeName", "image_hash"}, {"KeyType", "HASH"}}}},
                 {"BillingMode", "PAY_PER_REQUEST"}};
  auto created = client.Call("CreateTable", create, &error);
  if (created.ok()) {
    done = "created table " + table;
  } else if (error.type == "ResourceInUseException") {
    done = "table " + table + " exists";
  } else {
    return created.status();
  }
  // UpdateTimeToLive wants an ACTIVE table; a new one takes seconds on AWS.
  for (int waited_s = 0;; ++waited_s) {
    FS_ASSIGN_OR_RETURN(json d, client.Call("DescribeTable", {{"TableName", table}}));
    const std::string status = d["Table"].value("TableStatus", "");
    if (status == "ACTIVE") break;
    if (waited_s >= 120)
      return Status::Unavailable("table " + table + " is still " + status + " after 120 s");
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  FS_ASSIGN_OR_RETURN(json ttl, client.Call("DescribeTimeToLive", {{"TableName", table}}));
  const json spec_now = ttl.value("TimeToLiveDescription", json::object());
  const std::string ttl_status = spec_now.value("TimeToLiveStatus", "");
  if ((ttl_status == "ENABLED" || ttl_status == "ENABLING") && spec_now.value("AttributeName", "") == "ttl") {
    return done + "; TTL on attribute ttl already " + ttl_status;
  }
  FS_RETURN_IF_ERROR(client
                         .Call("UpdateTimeToLive",
                               {{"TableName", table},
                                {"TimeToLiveSpecification", {{"Enabled", true}, {"AttributeName", "ttl"}}}})
                         .status());
  return done + "; TTL enabled on attribute ttl";
}

}  // namespace fs::cache_internal
