// The Redis back end of EmbeddingCache (see remote_caches.h for the key layout).
#include <bit>
#include <cstring>
#include <mutex>

#include "cache/redis_client.h"
#include "cache/remote_caches.h"
#include "core/check.h"

namespace fs::cache_internal {
namespace {

static_assert(std::endian::native == std::endian::little, "vectors are stored as little-endian float32");

constexpr const char* kKeyPrefix = "filesearch:emb:";

class RedisCache final : public EmbeddingCache {
 public:
  RedisCache(RedisAddress address, int timeout_ms, EmbeddingCacheOptions options)
      : EmbeddingCache(std::move(options)), address_(std::move(address)), timeout_ms_(timeout_ms) {}

  Result<uint64_t> Size() override {
    // SCAN over this cache's prefix: other applications may share the database.
    uint64_t count = 0;
    std::string cursor = "0";
    do {
      FS_ASSIGN_OR_RETURN(RedisReply r,
                          Run({{"SCAN", cursor, "MATCH", std::string(kKeyPrefix) + "*", "COUNT", "1000"}}));
      if (r.type != RedisReply::Type::kArray || r.elements.size() != 2)
        return Status::Corruption("unexpected SCAN reply");
      cursor = r.elements[0].text;
      count += r.elements[1].elements.size();
    } while (cursor != "0");
    return count;
  }
  std::string kind() const override { return "redis"; }

 protected:
  Result<std::vector<Found>> Lookup(std::span<const std::string> sha256s, const std::string& model) override {
    std::vector<std::string> mget = {"MGET"};
    for (const auto& sha : sha256s) mget.push_back(RedisKey(sha, model));
    FS_ASSIGN_OR_RETURN(RedisReply r, Run({mget}));
    if (r.type != RedisReply::Type::kArray || r.elements.size() != sha256s.size()) {
      return Status::Corruption("unexpected MGET reply");
    }
    std::vector<Found> out(sha256s.size());
    for (size_t i = 0; i < out.size(); ++i) {
      const RedisReply& e = r.elements[i];
      // A value that is not whole floats is someone else's key (or damaged): a miss.
      if (e.type != RedisReply::Type::kBulk || e.text.empty() || e.text.size() % sizeof(float) != 0) continue;
      out[i].vector.resize(e.text.size() / sizeof(float));
      std::memcpy(out[i].vector.data(), e.text.data(), e.text.size());
    }
    return out;
  }

  Status Store(const std::string& sha256, const std::string& model, std::span<const float> vector) override {
    std::string bytes(reinterpret_cast<const char*>(vector.data()), vector.size_bytes());
    FS_ASSIGN_OR_RETURN(
        RedisReply r,
        Run({{"SET", RedisKey(sha256, model), std::move(bytes), "EX", std::to_string(ttl_seconds())}}));
    if (r.type != RedisReply::Type::kStatus) return Status::Unavailable("Redis SET: " + r.text);
    return Status::Ok();
  }

 private:
  // Commands on a pooled connection (a new one when the pool is empty; a connection that failed
  // is dropped, and a pooled one that failed is replaced once: the server may have restarted since
  // it was last used). An error reply to a single command is Unavailable; returns the last reply.
  Result<RedisReply> Run(const std::vector<std::vector<std::string>>& commands) {
    std::unique_ptr<RedisConnection> conn;
    {
      std::lock_guard lock(mu_);
      if (!idle_.empty()) {
        conn = std::move(idle_.back());
        idle_.pop_back();
      }
    }
    Result<std::vector<RedisReply>> replies = Status::Unavailable("not sent");
    if (conn) replies = conn->Pipeline(commands);
    if (!conn || !replies.ok()) {
      FS_ASSIGN_OR_RETURN(conn, RedisConnection::Connect(address_, timeout_ms_));
      replies = conn->Pipeline(commands);
      FS_RETURN_IF_ERROR(replies.status());
    }
    {
      std::lock_guard lock(mu_);
      if (idle_.size() < kMaxIdle) idle_.push_back(std::move(conn));
    }
    if (replies->size() == 1 && replies->front().type == RedisReply::Type::kError) {
      return Status::Unavailable("Redis: " + replies->front().text);
    }
    return std::move(replies->back());
  }

  static constexpr size_t kMaxIdle = 16;
  const RedisAddress address_;
  const int timeout_ms_;
  std::mutex mu_;
  std::vector<std::unique_ptr<RedisConnection>> idle_ FS_GUARDED_BY(mu_);
};

}  // namespace

std::string RedisKey(const std::string& sha256, const std::string& model) {
  return std::string(kKeyPrefix) + model + ":" + sha256;
}

Result<std::unique_ptr<EmbeddingCache>> OpenRedisCache(const EmbeddingCacheSpec& spec) {
  FS_ASSIGN_OR_RETURN(RedisAddress address, ParseRedisUrl(spec.spec));
  return std::unique_ptr<EmbeddingCache>(new RedisCache(std::move(address), spec.timeout_ms, spec.options));
}

}  // namespace fs::cache_internal
