// EmbeddingCache: embeddings remembered by (SHA-256 of the file bytes, model id), so the same
// bytes are embedded once however many paths, renames or re-indexings they go through.
//
// Back end: a table `embedding_cache` in the data directory's SQLite database (the same file as
// the Store, its own connection; WAL lets both write safely). Entries older than `ttl_seconds`
// are expired on lookup: counted as an expiry and a miss, and deleted. Counters (hits, misses,
// expiries) are per process and readable at any time; `hit_ratio` is hits / (hits + misses).
//
// Thread-safety: all methods may be called concurrently (one mutex around the connection).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"

namespace fs {

struct EmbeddingCacheOptions {
  int64_t ttl_seconds = 30LL * 24 * 3600;  // 30 days, as the original DynamoDB TTL
  // Seconds since the epoch; tests inject a clock to exercise the TTL.
  std::function<int64_t()> now;
};

struct EmbeddingCacheCounters {
  uint64_t hits = 0;
  uint64_t misses = 0;      // includes expiries
  uint64_t expiries = 0;
  uint64_t puts = 0;
  double hit_ratio() const {
    const uint64_t lookups = hits + misses;
    return lookups == 0 ? 0.0 : static_cast<double>(hits) / static_cast<double>(lookups);
  }
};

class EmbeddingCache {
 public:
  // Opens (creating the table if needed) the cache inside the SQLite database at `db_path`.
  static Result<std::unique_ptr<EmbeddingCache>> Open(const std::string& db_path, EmbeddingCacheOptions options = {});
  ~EmbeddingCache();
  EmbeddingCache(const EmbeddingCache&) = delete;
  EmbeddingCache& operator=(const EmbeddingCache&) = delete;

  // The vector stored for (sha256, model), or nullopt on a miss or an expired entry.
  Result<std::optional<std::vector<float>>> Get(const std::string& sha256, const std::string& model);
  // Stores (or refreshes) the vector and its timestamp.
  Status Put(const std::string& sha256, const std::string& model, std::span<const float> vector);
  // Deletes every expired entry; returns how many.
  Result<uint64_t> PurgeExpired();
  Result<uint64_t> Size();
  EmbeddingCacheCounters counters() const;

 private:
  struct Impl;
  explicit EmbeddingCache(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace fs
