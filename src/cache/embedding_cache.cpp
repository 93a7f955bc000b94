#include "cache/embedding_cache.h"

#include <chrono>
#include <cstring>

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
}  // namespace

struct EmbeddingCache::Impl {
  EmbeddingCacheOptions options;
  std::mutex mu;
  Db db;
  // Prepared once at Open (a hit is a few tens of microseconds; preparing would be a third of it).
  Stmt get, put, del, purge, count;
  std::atomic<uint64_t> hits{0}, misses{0}, expiries{0}, puts{0};
  int64_t Now() const { return options.now ? options.now() : WallSeconds(); }
};

EmbeddingCache::EmbeddingCache(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EmbeddingCache::~EmbeddingCache() = default;

Result<std::unique_ptr<EmbeddingCache>> EmbeddingCache::Open(const std::string& db_path,
                                                             EmbeddingCacheOptions options) {
  if (options.ttl_seconds <= 0) {
    return Status::InvalidArgument("embedding cache TTL must be positive (got " +
                                   std::to_string(options.ttl_seconds) + " s)");
  }
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  FS_ASSIGN_OR_RETURN(impl->db, Db::Open(db_path, /*create=*/true));
  FS_RETURN_IF_ERROR(impl->db.Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000;"));
  FS_RETURN_IF_ERROR(impl->db.Exec(kSchema).WithContext("creating the embedding cache table in " + db_path));
  FS_ASSIGN_OR_RETURN(impl->get,
                      impl->db.Prepare("SELECT dim, vector, created_s FROM embedding_cache WHERE sha256 = ? AND model = ?"));
  FS_ASSIGN_OR_RETURN(impl->put, impl->db.Prepare("INSERT OR REPLACE INTO embedding_cache(sha256, model, dim, vector, created_s) "
                                                  "VALUES (?, ?, ?, ?, ?)"));
  FS_ASSIGN_OR_RETURN(impl->del, impl->db.Prepare("DELETE FROM embedding_cache WHERE sha256 = ? AND model = ?"));
  FS_ASSIGN_OR_RETURN(impl->purge, impl->db.Prepare("DELETE FROM embedding_cache WHERE created_s <= ?"));
  FS_ASSIGN_OR_RETURN(impl->count, impl->db.Prepare("SELECT count(*) FROM embedding_cache"));
  return std::unique_ptr<EmbeddingCache>(new EmbeddingCache(std::move(impl)));
}

Result<std::optional<std::vector<float>>> EmbeddingCache::Get(const std::string& sha256, const std::string& model) {
  std::lock_guard lock(impl_->mu);
  Stmt& stmt = impl_->get;
  ResetOnExit reset{stmt};
  stmt.Bind(1, sha256).Bind(2, model);
  FS_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) {
    ++impl_->misses;
    return std::optional<std::vector<float>>();
  }
  const int64_t dim = stmt.Int(0);
  const int64_t created = stmt.Int(2);
  if (impl_->Now() - created >= impl_->options.ttl_seconds) {
    ++impl_->expiries;
    ++impl_->misses;
    stmt.Reset();
    Stmt& del = impl_->del;
    ResetOnExit reset_del{del};
    del.Bind(1, sha256).Bind(2, model);
    FS_RETURN_IF_ERROR(del.Run());
    return std::optional<std::vector<float>>();
  }
  if (dim <= 0 || stmt.Bytes(1) != static_cast<size_t>(dim) * sizeof(float)) {
    // A damaged row is a miss; the next Put overwrites it.
    ++impl_->misses;
    return std::optional<std::vector<float>>();
  }
  std::vector<float> v(static_cast<size_t>(dim));
  std::memcpy(v.data(), stmt.Blob(1), v.size() * sizeof(float));
  ++impl_->hits;
  return std::optional<std::vector<float>>(std::move(v));
}

Status EmbeddingCache::Put(const std::string& sha256, const std::string& model, std::span<const float> vector) {
  if (sha256.empty() || vector.empty()) {
    return Status::InvalidArgument("embedding cache: empty content hash or vector");
  }
  std::lock_guard lock(impl_->mu);
  Stmt& stmt = impl_->put;
  ResetOnExit reset{stmt};
  stmt.Bind(1, sha256).Bind(2, model).Bind(3, static_cast<int64_t>(vector.size()));
  stmt.BindBlob(4, vector.data(), vector.size() * sizeof(float)).Bind(5, impl_->Now());
  FS_RETURN_IF_ERROR(stmt.Run());
  ++impl_->puts;
  return Status::Ok();
}

Result<uint64_t> EmbeddingCache::PurgeExpired() {
  std::lock_guard lock(impl_->mu);
  Stmt& stmt = impl_->purge;
  ResetOnExit reset{stmt};
  stmt.Bind(1, impl_->Now() - impl_->options.ttl_seconds);
  FS_RETURN_IF_ERROR(stmt.Run());
  const auto removed = static_cast<uint64_t>(sqlite3_changes(impl_->db.get()));
  impl_->expiries += removed;
  return removed;
}

Result<uint64_t> EmbeddingCache::Size() {
  std::lock_guard lock(impl_->mu);
  Stmt& stmt = impl_->count;
  ResetOnExit reset{stmt};
  FS_ASSIGN_OR_RETURN(bool row, stmt.Step());
  return row ? static_cast<uint64_t>(stmt.Int(0)) : 0;
}

EmbeddingCacheCounters EmbeddingCache::counters() const {
  EmbeddingCacheCounters c;
  c.hits = impl_->hits.load();
  c.misses = impl_->misses.load();
  c.expiries = impl_->expiries.load();
  c.puts = impl_->puts.load();
  return c;
}

}  // namespace fs
