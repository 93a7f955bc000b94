// EmbeddingCache: embeddings remembered by (SHA-256 of the file bytes, model id), so the same
// bytes are embedded once however many paths, renames, re-indexings or machines they go through.
//
// One interface, three back ends (OpenEmbeddingCache picks one from a spec):
//   embedded          a table `embedding_cache` in the data directory's SQLite database (the same
//                     file as the Store, its own connection; WAL lets both write safely)
//   redis://HOST:PORT a Redis server shared by workers (SET ... EX; see redis_cache.cpp)
//   dynamodb://TABLE  the original DynamoDB table (`image_hash` S hash key, `ttl` N epoch seconds)
// Entries older than the TTL are misses (counted as expiries). A cache is an accelerator, never a
// dependency: a lookup or store that fails (server down, timeout, corrupt row) is logged (at most
// once every 10 s per cache), counted in `errors`, and reported as a miss / as stored, so ingestion
// goes on embedding without it. Counters are per process; `hit_ratio` is hits / (hits + misses).
//
// Thread-safety: all methods may be called concurrently.
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
  int64_t ttl_seconds = 30LL * 24 * 3600;  // 30 days (the original suggested 90)
  // Seconds since the epoch; tests inject a clock to exercise the TTL.
  std::function<int64_t()> now;
};

struct EmbeddingCacheCounters {
  uint64_t hits = 0;
  uint64_t misses = 0;  // includes expiries and lookups that failed
  uint64_t expiries = 0;
  uint64_t puts = 0;
  uint64_t errors = 0;  // lookups and stores that failed (the cache was bypassed)
  double hit_ratio() const {
    const uint64_t lookups = hits + misses;
    return lookups == 0 ? 0.0 : static_cast<double>(hits) / static_cast<double>(lookups);
  }
};

class EmbeddingCache {
 public:
  // The embedded back end: opens (creating the table if needed) the cache inside the SQLite
  // database at `db_path`.
  static Result<std::unique_ptr<EmbeddingCache>> Open(const std::string& db_path,
                                                      EmbeddingCacheOptions options = {});
  virtual ~EmbeddingCache();
  EmbeddingCache(const EmbeddingCache&) = delete;
  EmbeddingCache& operator=(const EmbeddingCache&) = delete;

  // The vector stored for (sha256, model), or nullopt on a miss, an expired entry or a failure.
  // Errors only for bad arguments; a back end that fails is a miss (see above).
  Result<std::optional<std::vector<float>>> Get(const std::string& sha256, const std::string& model);
  // Get for many hashes in as few round trips as the back end allows (Redis MGET, DynamoDB
  // BatchGetItem); one answer per hash, in order.
  std::vector<std::optional<std::vector<float>>> GetMany(std::span<const std::string> sha256s,
                                                         const std::string& model);
  // Stores (or refreshes) the vector with a fresh TTL. InvalidArgument for an empty hash or vector;
  // a back end that fails is logged and counted, and Put returns OK.
  Status Put(const std::string& sha256, const std::string& model, std::span<const float> vector);
  // Deletes every expired entry; returns how many (remote back ends expire by themselves: 0).
  virtual Result<uint64_t> PurgeExpired() { return uint64_t{0}; }
  // Entries stored (DynamoDB: the table's approximate item count; Redis: keys of this cache).
  virtual Result<uint64_t> Size() = 0;
  // "embedded", "redis" or "dynamodb".
  virtual std::string kind() const = 0;
  EmbeddingCacheCounters counters() const;

 protected:
  // One stored entry as a back end read it.
  struct Found {
    std::vector<float> vector;  // empty: absent (or damaged)
    bool expired = false;       // present but past its TTL
  };
  explicit EmbeddingCache(EmbeddingCacheOptions options);
  int64_t Now() const;
  int64_t ttl_seconds() const { return options_.ttl_seconds; }
  // What the back end holds for each hash, in order (same size as `sha256s`).
  virtual Result<std::vector<Found>> Lookup(std::span<const std::string> sha256s,
                                            const std::string& model) = 0;
  virtual Status Store(const std::string& sha256, const std::string& model,
                       std::span<const float> vector) = 0;
  void CountExpiries(uint64_t n) { expiries_ += n; }

 private:
  void Failed(const char* what, const Status& status);
  EmbeddingCacheOptions options_;
  std::atomic<uint64_t> hits_{0}, misses_{0}, expiries_{0}, puts_{0}, errors_{0};
  std::atomic<int64_t> last_log_s_{0};
};

// Where the cache lives: the --cache spec and the settings of remote back ends.
struct EmbeddingCacheSpec {
  std::string spec = "embedded";  // embedded | redis://[:PASSWORD@]HOST:PORT[/DB] | dynamodb://TABLE
  std::string db_path;            // embedded: the SQLite database
  std::string endpoint;           // dynamodb: endpoint override (an emulator), "" = AWS's for the region
  std::string region;             // dynamodb: "" = $AWS_REGION, $AWS_DEFAULT_REGION, us-east-1
  int timeout_ms = 2000;          // remote: connect and per-request timeout
  EmbeddingCacheOptions options;
};
// Opens the back end the spec names. Remote back ends connect lazily (a server that is down at
// start is a cache that misses, not a failure); InvalidArgument for a spec that names none,
// or dynamodb without AWS credentials in the environment.
Result<std::unique_ptr<EmbeddingCache>> OpenEmbeddingCache(const EmbeddingCacheSpec& spec);
// dynamodb://TABLE: creates the table as the original did (PAY_PER_REQUEST, `image_hash` S hash key)
// and turns TTL on for `ttl`; idempotent (an existing table or TTL setting is fine). Redis and
// embedded need no setup: OK. Returns a line saying what was done.
Result<std::string> SetupEmbeddingCache(const EmbeddingCacheSpec& spec);

}  // namespace fs
