#include "cache/embedding_cache.h"

#include <chrono>
#include <cstring>

#include "cache/remote_caches.h"
#include "core/check.h"
#include "core/log.h"
#include "index/sqlite_util.h"

namespace fs {

using index_internal::Db;
using index_internal::Stmt;

namespace {
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS embedding_cache(
  sha256 TEXT NOT NULL,
  model TEXT NOT NULL,
  dim INTEGER NOT NULL,
  vector BLOB NOT NULL,
  created_s INTEGER NOT NULL,
  PRIMARY KEY(sha256, model)) WITHOUT ROWID;
)sql";

// Leaves a cached statement reset (no read transaction kept open between calls).
struct ResetOnExit {
  Stmt& stmt;
  ~ResetOnExit() { stmt.Reset(); }
};

int64_t WallSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The embedded back end: one SQLite connection behind a mutex.
class SqliteEmbeddingCache final : public EmbeddingCache {
 public:
  explicit SqliteEmbeddingCache(EmbeddingCacheOptions options) : EmbeddingCache(std::move(options)) {}
  Status Init(const std::string& db_path);
  Result<uint64_t> PurgeExpired() override;
  Result<uint64_t> Size() override;
  std::string kind() const override { return "embedded"; }

 protected:
  Result<std::vector<Found>> Lookup(std::span<const std::string> sha256s, const std::string& model) override;
  Status Store(const std::string& sha256, const std::string& model, std::span<const float> vector) override;

 private:
  std::mutex mu_;
  Db db_;  // set by Init, before any other thread sees the cache
  // Prepared once at Open (a hit is a few tens of microseconds; preparing would be a third of it).
  Stmt get_ FS_GUARDED_BY(mu_), put_ FS_GUARDED_BY(mu_), del_ FS_GUARDED_BY(mu_), purge_ FS_GUARDED_BY(mu_),
      count_ FS_GUARDED_BY(mu_);
};

Status SqliteEmbeddingCache::Init(const std::string& db_path) {
  std::lock_guard lock(mu_);  // uncontended: for the thread-safety analysis
  FS_ASSIGN_OR_RETURN(db_, Db::Open(db_path, /*create=*/true));
  FS_RETURN_IF_ERROR(
      db_.Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000;"));
  FS_RETURN_IF_ERROR(db_.Exec(kSchema).WithContext("creating the embedding cache table in " + db_path));
  FS_ASSIGN_OR_RETURN(
      get_, db_.Prepare("SELECT dim, vector, created_s FROM embedding_cache WHERE sha256 = ? AND model = ?"));
  FS_ASSIGN_OR_RETURN(
      put_, db_.Prepare("INSERT OR REPLACE INTO embedding_cache(sha256, model, dim, vector, created_s) "
                        "VALUES (?, ?, ?, ?, ?)"));
  FS_ASSIGN_OR_RETURN(del_, db_.Prepare("DELETE FROM embedding_cache WHERE sha256 = ? AND model = ?"));
  FS_ASSIGN_OR_RETURN(purge_, db_.Prepare("DELETE FROM embedding_cache WHERE created_s <= ?"));
  FS_ASSIGN_OR_RETURN(count_, db_.Prepare("SELECT count(*) FROM embedding_cache"));
  return Status::Ok();
}

Result<std::vector<EmbeddingCache::Found>> SqliteEmbeddingCache::Lookup(std::span<const std::string> sha256s,
                                                                        const std::string& model) {
  std::vector<Found> out(sha256s.size());
  std::lock_guard lock(mu_);
  for (size_t i = 0; i < sha256s.size(); ++i) {
    ResetOnExit reset{get_};
    get_.Bind(1, sha256s[i]).Bind(2, model);
    FS_ASSIGN_OR_RETURN(bool row, get_.Step());
    if (!row) continue;
    const int64_t dim = get_.Int(0);
    if (Now() - get_.Int(2) >= ttl_seconds()) {
      out[i].expired = true;
      get_.Reset();
      ResetOnExit reset_del{del_};
      del_.Bind(1, sha256s[i]).Bind(2, model);
      FS_RETURN_IF_ERROR(del_.Run());
      continue;
    }
    // A damaged row is a miss; the next Put overwrites it.
    if (dim <= 0 || get_.Bytes(1) != static_cast<size_t>(dim) * sizeof(float)) continue;
    out[i].vector.resize(static_cast<size_t>(dim));
    std::memcpy(out[i].vector.data(), get_.Blob(1), out[i].vector.size() * sizeof(float));
  }
  return out;
}

Status SqliteEmbeddingCache::Store(const std::string& sha256, const std::string& model,
                                   std::span<const float> vector) {
  std::lock_guard lock(mu_);
  ResetOnExit reset{put_};
  put_.Bind(1, sha256).Bind(2, model).Bind(3, static_cast<int64_t>(vector.size()));
  put_.BindBlob(4, vector.data(), vector.size() * sizeof(float)).Bind(5, Now());
  return put_.Run();
}

Result<uint64_t> SqliteEmbeddingCache::PurgeExpired() {
  std::lock_guard lock(mu_);
  ResetOnExit reset{purge_};
  purge_.Bind(1, Now() - ttl_seconds());
  FS_RETURN_IF_ERROR(purge_.Run());
  const auto removed = static_cast<uint64_t>(sqlite3_changes(db_.get()));
  CountExpiries(removed);
  return removed;
}

Result<uint64_t> SqliteEmbeddingCache::Size() {
  std::lock_guard lock(mu_);
  ResetOnExit reset{count_};
  FS_ASSIGN_OR_RETURN(bool row, count_.Step());
  return row ? static_cast<uint64_t>(count_.Int(0)) : 0;
}

}  // namespace

EmbeddingCache::EmbeddingCache(EmbeddingCacheOptions options) : options_(std::move(options)) {}
EmbeddingCache::~EmbeddingCache() = default;

int64_t EmbeddingCache::Now() const {
  return options_.now ? options_.now() : WallSeconds();
}

Result<std::unique_ptr<EmbeddingCache>> EmbeddingCache::Open(const std::string& db_path,
                                                             EmbeddingCacheOptions options) {
  if (options.ttl_seconds <= 0) {
    return Status::InvalidArgument("embedding cache TTL must be positive (got " +
                                   std::to_string(options.ttl_seconds) + " s)");
  }
  auto cache = std::make_unique<SqliteEmbeddingCache>(std::move(options));
  FS_RETURN_IF_ERROR(cache->Init(db_path));
  return std::unique_ptr<EmbeddingCache>(std::move(cache));
}

void EmbeddingCache::Failed(const char* what, const Status& status) {
  ++errors_;
  // At most one line every 10 s: a cache that is down fails every lookup of a run.
  const int64_t now = WallSeconds();
  int64_t last = last_log_s_.load();
  if (now - last >= 10 && last_log_s_.compare_exchange_strong(last, now)) {
    LogWarn(std::string("embedding cache (") + kind() + ") " + what + " failed, embedding without it (" +
            std::to_string(errors_.load()) + " failures so far): " + status.ToString());
  }
}

std::vector<std::optional<std::vector<float>>> EmbeddingCache::GetMany(std::span<const std::string> sha256s,
                                                                       const std::string& model) {
  std::vector<std::optional<std::vector<float>>> out(sha256s.size());
  if (sha256s.empty()) return out;
  auto found = Lookup(sha256s, model);
  if (!found.ok() || found->size() != sha256s.size()) {
    Failed("lookup", found.ok() ? Status::Corruption("the back end answered a different number of lookups")
                                : found.status());
    misses_ += sha256s.size();
    return out;
  }
  for (size_t i = 0; i < sha256s.size(); ++i) {
    Found& f = (*found)[i];
    if (f.expired) ++expiries_;
    if (f.expired || f.vector.empty()) {
      ++misses_;
      continue;
    }
    ++hits_;
    out[i] = std::move(f.vector);
  }
  return out;
}

Result<std::optional<std::vector<float>>> EmbeddingCache::Get(const std::string& sha256,
                                                              const std::string& model) {
  if (sha256.empty()) return Status::InvalidArgument("embedding cache: empty content hash");
  auto got = GetMany(std::span<const std::string>(&sha256, 1), model);
  return std::move(got[0]);
}

Status EmbeddingCache::Put(const std::string& sha256, const std::string& model,
                           std::span<const float> vector) {
  if (sha256.empty() || vector.empty()) {
    return Status::InvalidArgument("embedding cache: empty content hash or vector");
  }
  Status st = Store(sha256, model, vector);
  if (!st.ok()) {
    Failed("store", st);
    return Status::Ok();
  }
  ++puts_;
  return Status::Ok();
}

EmbeddingCacheCounters EmbeddingCache::counters() const {
  EmbeddingCacheCounters c;
  c.hits = hits_.load();
  c.misses = misses_.load();
  c.expiries = expiries_.load();
  c.puts = puts_.load();
  c.errors = errors_.load();
  return c;
}

Result<std::unique_ptr<EmbeddingCache>> OpenEmbeddingCache(const EmbeddingCacheSpec& spec) {
  if (spec.options.ttl_seconds <= 0) {
    return Status::InvalidArgument("embedding cache TTL must be positive (got " +
                                   std::to_string(spec.options.ttl_seconds) + " s)");
  }
  if (spec.spec.empty() || spec.spec == "embedded") return EmbeddingCache::Open(spec.db_path, spec.options);
  if (spec.spec.rfind("redis://", 0) == 0) return cache_internal::OpenRedisCache(spec);
  if (spec.spec.rfind("dynamodb://", 0) == 0) return cache_internal::OpenDynamoCache(spec);
  return Status::InvalidArgument("unknown embedding cache '" + spec.spec +
                                 "': want embedded, redis://HOST:PORT or dynamodb://TABLE");
}

Result<std::string> SetupEmbeddingCache(const EmbeddingCacheSpec& spec) {
  if (spec.spec.rfind("dynamodb://", 0) == 0) return cache_internal::SetupDynamoTable(spec);
  FS_ASSIGN_OR_RETURN(auto cache, OpenEmbeddingCache(spec));
  return cache->kind() + " cache: nothing to set up";
}

}  // namespace fs
