#include "index/store.h"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>

#include "core/check.h"
#include "core/utf8.h"
#include "core/log.h"
#include "index/fts_tokenizer.h"
#include "index/keyword_index.h"
#include "index/sqlite_util.h"

namespace fs {

using index_internal::Db;
using index_internal::KeywordIndex;
using index_internal::SqlValue;
using index_internal::Stmt;
using index_internal::Transaction;

namespace {

// 2: the FTS5 tokenizer indexes stems and word parts (fts_tokenizer.h); a version-1 index is
// rebuilt at open.
// 3: word parts in columns of their own (name_parts, path_parts, below whole words); the FTS5
// table of an older version is dropped and rebuilt at open.
constexpr int kSchemaVersion = 3;
// The FTS5 table and its triggers as versions 1 and 2 made them: dropped before the schema above
// recreates them with the parts columns.
constexpr const char* kDropOldFts =
    "DROP TRIGGER IF EXISTS documents_ai; DROP TRIGGER IF EXISTS documents_ad; "
    "DROP TRIGGER IF EXISTS documents_au; DROP TABLE IF EXISTS doc_fts;";
constexpr uint64_t kDocLogKeep = 1000000;  // document-log entries kept for keyword indexes

const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents(
  id INTEGER PRIMARY KEY,
  uri TEXT NOT NULL UNIQUE,
  path TEXT NOT NULL,
  name TEXT NOT NULL,
  ext TEXT NOT NULL,
  mime TEXT NOT NULL,
  size INTEGER NOT NULL,
  mtime_ns INTEGER NOT NULL,
  sha256 TEXT NOT NULL,
  content TEXT NOT NULL DEFAULT '',
  taken_ns INTEGER,
  camera TEXT NOT NULL DEFAULT '',
  gps_lat REAL,
  gps_lon REAL,
  title TEXT NOT NULL DEFAULT '',
  author TEXT NOT NULL DEFAULT '',
  created_ns INTEGER,
  saved_ns INTEGER,
  etag TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS documents_path ON documents(path);
CREATE INDEX IF NOT EXISTS documents_ext ON documents(ext);
CREATE INDEX IF NOT EXISTS documents_mime ON documents(mime);
CREATE INDEX IF NOT EXISTS documents_sha ON documents(sha256);
CREATE INDEX IF NOT EXISTS documents_taken ON documents(taken_ns) WHERE taken_ns IS NOT NULL;
-- The keyword index reads its text through this view: parts columns are the name and path behind
-- the tokenizer's parts marker (fts_tokenizer.h), weighted below the whole-word columns.
CREATE VIEW IF NOT EXISTS doc_fts_source AS SELECT id, name, path, content,
  char(1) || name AS name_parts, char(1) || path AS path_parts FROM documents;
CREATE VIRTUAL TABLE IF NOT EXISTS doc_fts USING fts5(
  name, path, content, name_parts, path_parts, content='doc_fts_source', content_rowid='id',
  tokenize='filesearch');
CREATE TRIGGER IF NOT EXISTS documents_ai AFTER INSERT ON documents BEGIN
  INSERT INTO doc_fts(rowid, name, path, content, name_parts, path_parts)
  VALUES (new.id, new.name, new.path, new.content, char(1) || new.name, char(1) || new.path);
END;
CREATE TRIGGER IF NOT EXISTS documents_ad AFTER DELETE ON documents BEGIN
  INSERT INTO doc_fts(doc_fts, rowid, name, path, content, name_parts, path_parts)
  VALUES ('delete', old.id, old.name, old.path, old.content, char(1) || old.name, char(1) || old.path);
  DELETE FROM embeddings WHERE doc_id = old.id;
END;
CREATE TRIGGER IF NOT EXISTS documents_au AFTER UPDATE ON documents BEGIN
  INSERT INTO doc_fts(doc_fts, rowid, name, path, content, name_parts, path_parts)
  VALUES ('delete', old.id, old.name, old.path, old.content, char(1) || old.name, char(1) || old.path);
  INSERT INTO doc_fts(rowid, name, path, content, name_parts, path_parts)
  VALUES (new.id, new.name, new.path, new.content, char(1) || new.name, char(1) || new.path);
END;
-- Search feedback: one vote per (user, query, document path); see Store::RecordFeedback.
CREATE TABLE IF NOT EXISTS feedback(
  user TEXT NOT NULL,
  query TEXT NOT NULL,
  path TEXT NOT NULL,
  doc_id INTEGER NOT NULL,
  mode TEXT NOT NULL,
  vote INTEGER NOT NULL,
  at_ns INTEGER NOT NULL,
  PRIMARY KEY(user, query, path));
CREATE TABLE IF NOT EXISTS doc_log(seq INTEGER PRIMARY KEY AUTOINCREMENT, doc_id INTEGER NOT NULL);
CREATE TRIGGER IF NOT EXISTS documents_log_ai AFTER INSERT ON documents BEGIN
  INSERT INTO doc_log(doc_id) VALUES (new.id);
END;
CREATE TRIGGER IF NOT EXISTS documents_log_au AFTER UPDATE ON documents BEGIN
  INSERT INTO doc_log(doc_id) VALUES (new.id);
END;
CREATE TRIGGER IF NOT EXISTS documents_log_ad AFTER DELETE ON documents BEGIN
  INSERT INTO doc_log(doc_id) VALUES (old.id);
END;
CREATE TABLE IF NOT EXISTS failures(
  uri TEXT PRIMARY KEY,
  path TEXT NOT NULL,
  stage TEXT NOT NULL,
  reason TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  first_ns INTEGER NOT NULL,
  last_ns INTEGER NOT NULL,
  retry_at_ns INTEGER NOT NULL) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS documents_fail_ai AFTER INSERT ON documents BEGIN
  DELETE FROM failures WHERE uri = new.uri AND stage = 'read';
END;
CREATE TRIGGER IF NOT EXISTS documents_fail_au AFTER UPDATE ON documents
  WHEN old.size != new.size OR old.mtime_ns != new.mtime_ns OR old.sha256 != new.sha256 BEGIN
  DELETE FROM failures WHERE uri = new.uri;
END;
CREATE TRIGGER IF NOT EXISTS documents_fail_ad AFTER DELETE ON documents BEGIN
  DELETE FROM failures WHERE uri = old.uri;
END;
CREATE TABLE IF NOT EXISTS embeddings(
  doc_id INTEGER NOT NULL,
  model TEXT NOT NULL,
  dim INTEGER NOT NULL,
  vector BLOB NOT NULL,
  PRIMARY KEY(doc_id, model)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS phashes(
  sha256 TEXT PRIMARY KEY,
  phash INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS vector_log(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  model TEXT NOT NULL,
  doc_id INTEGER NOT NULL,
  op INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS vector_log_model ON vector_log(model, seq);
CREATE TRIGGER IF NOT EXISTS embeddings_ai AFTER INSERT ON embeddings BEGIN
  INSERT INTO vector_log(model, doc_id, op) VALUES (new.model, new.doc_id, 1);
END;
CREATE TRIGGER IF NOT EXISTS embeddings_fail_ai AFTER INSERT ON embeddings BEGIN
  DELETE FROM failures WHERE stage = 'embed' AND uri = (SELECT uri FROM documents WHERE id = new.doc_id);
END;
CREATE TRIGGER IF NOT EXISTS embeddings_au AFTER UPDATE ON embeddings BEGIN
  INSERT INTO vector_log(model, doc_id, op) VALUES (new.model, new.doc_id, 1);
END;
CREATE TRIGGER IF NOT EXISTS embeddings_ad AFTER DELETE ON embeddings BEGIN
  INSERT INTO vector_log(model, doc_id, op) VALUES (old.model, old.doc_id, 0);
END;
-- The outbox of a remote index (OpenSearch): the uri of every document written, deleted or
-- (re-)embedded while a mirror is on (meta 'mirror'), until the mirror has sent and trimmed it.
CREATE TABLE IF NOT EXISTS mirror_log(seq INTEGER PRIMARY KEY AUTOINCREMENT, uri TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS documents_mirror_ai AFTER INSERT ON documents
WHEN EXISTS(SELECT 1 FROM meta WHERE key = 'mirror') BEGIN
  INSERT INTO mirror_log(uri) VALUES (new.uri);
END;
CREATE TRIGGER IF NOT EXISTS documents_mirror_au AFTER UPDATE ON documents
WHEN EXISTS(SELECT 1 FROM meta WHERE key = 'mirror') BEGIN
  INSERT INTO mirror_log(uri) VALUES (new.uri);
END;
CREATE TRIGGER IF NOT EXISTS documents_mirror_ad AFTER DELETE ON documents
WHEN EXISTS(SELECT 1 FROM meta WHERE key = 'mirror') BEGIN
  INSERT INTO mirror_log(uri) VALUES (old.uri);
END;
CREATE TRIGGER IF NOT EXISTS embeddings_mirror_ai AFTER INSERT ON embeddings
WHEN EXISTS(SELECT 1 FROM meta WHERE key = 'mirror') BEGIN
  INSERT INTO mirror_log(uri) SELECT uri FROM documents WHERE id = new.doc_id;
END;
CREATE TRIGGER IF NOT EXISTS embeddings_mirror_au AFTER UPDATE ON embeddings
WHEN EXISTS(SELECT 1 FROM meta WHERE key = 'mirror') BEGIN
  INSERT INTO mirror_log(uri) SELECT uri FROM documents WHERE id = new.doc_id;
END;
CREATE TRIGGER IF NOT EXISTS embeddings_mirror_ad AFTER DELETE ON embeddings
WHEN EXISTS(SELECT 1 FROM meta WHERE key = 'mirror') BEGIN
  INSERT INTO mirror_log(uri) SELECT uri FROM documents WHERE id = old.doc_id;
END;
)sql";

// Databases made before a column existed get it here (SQLite's ALTER TABLE ADD COLUMN is cheap:
// existing rows read the default).
Status AddMissingColumns(Db* db) {
  FS_ASSIGN_OR_RETURN(Stmt s, db->Prepare("SELECT name FROM pragma_table_info('documents')"));
  std::vector<std::string> have;
  while (true) {
    FS_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    have.push_back(s.Text(0));
  }
  if (have.empty()) return Status::Ok();  // a new database: the schema creates everything
  const std::pair<const char*, const char*> wanted[] = {{"taken_ns", "INTEGER"},
                                                        {"camera", "TEXT NOT NULL DEFAULT ''"},
                                                        {"gps_lat", "REAL"},
                                                        {"gps_lon", "REAL"},
                                                        {"title", "TEXT NOT NULL DEFAULT ''"},
                                                        {"author", "TEXT NOT NULL DEFAULT ''"},
                                                        {"created_ns", "INTEGER"},
                                                        {"saved_ns", "INTEGER"},
                                                        {"etag", "TEXT NOT NULL DEFAULT ''"}};
  for (const auto& [name, type] : wanted) {
    if (std::find(have.begin(), have.end(), name) == have.end()) {
      FS_RETURN_IF_ERROR(db->Exec(std::string("ALTER TABLE documents ADD COLUMN ") + name + " " + type));
    }
  }
  return Status::Ok();
}

std::string FormatDouble(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

// Appends " AND ..." clauses for `f` over alias d, collecting bind values.
void AppendFilters(const SearchFilters& f, std::string* sql, std::vector<SqlValue>* binds) {
  if (!f.types.empty()) {
    *sql += " AND (";
    for (size_t i = 0; i < f.types.size(); ++i) {
      if (i) *sql += " OR ";
      if (f.types[i].find('/') == std::string::npos) {
        *sql += "(d.mime >= ? AND d.mime < ?)";
        binds->emplace_back(f.types[i] + "/");
        binds->emplace_back(f.types[i] + "0");  // '0' follows '/' in ASCII
      } else {
        *sql += "d.mime = ?";
        binds->emplace_back(f.types[i]);
      }
    }
    *sql += ")";
  }
  if (!f.extensions.empty()) {
    *sql += " AND d.ext IN (";
    for (size_t i = 0; i < f.extensions.size(); ++i) {
      *sql += i ? ",?" : "?";
      std::string e = f.extensions[i];
      if (!e.empty() && e[0] == '.') e.erase(0, 1);
      for (auto& c : e) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      binds->emplace_back(e);
    }
    *sql += ")";
  }
  if (!f.path_prefix.empty()) {
    // Range scan on the path index: prefix <= path < prefix + U+10FFFF.
    *sql += " AND d.path >= ? AND d.path < ?";
    binds->emplace_back(f.path_prefix);
    binds->emplace_back(f.path_prefix + "\xF4\x8F\xBF\xBF");
  }
  if (f.min_size) { *sql += " AND d.size >= ?"; binds->emplace_back(static_cast<int64_t>(*f.min_size)); }
  if (f.max_size) { *sql += " AND d.size <= ?"; binds->emplace_back(static_cast<int64_t>(*f.max_size)); }
  if (f.min_mtime_ns) { *sql += " AND d.mtime_ns >= ?"; binds->emplace_back(*f.min_mtime_ns); }
  if (f.max_mtime_ns) { *sql += " AND d.mtime_ns <= ?"; binds->emplace_back(*f.max_mtime_ns); }
  if (f.min_taken_ns) { *sql += " AND d.taken_ns >= ?"; binds->emplace_back(*f.min_taken_ns); }
  if (f.max_taken_ns) { *sql += " AND d.taken_ns <= ?"; binds->emplace_back(*f.max_taken_ns); }
}

void ReadDocument(const Stmt& s, Document* d, bool with_content) {
  d->id = s.Int(0);
  d->uri = s.Text(1);
  d->path = s.Text(2);
  d->name = s.Text(3);
  d->ext = s.Text(4);
  d->mime = s.Text(5);
  d->size = static_cast<uint64_t>(s.Int(6));
  d->mtime_ns = s.Int(7);
  d->sha256 = s.Text(8);
  if (sqlite3_column_type(s.get(), 9) != SQLITE_NULL) d->taken_ns = s.Int(9);
  d->camera = s.Text(10);
  if (sqlite3_column_type(s.get(), 11) != SQLITE_NULL) d->gps_lat = s.Double(11);
  if (sqlite3_column_type(s.get(), 12) != SQLITE_NULL) d->gps_lon = s.Double(12);
  d->title = s.Text(13);
  d->author = s.Text(14);
  if (sqlite3_column_type(s.get(), 15) != SQLITE_NULL) d->created_ns = s.Int(15);
  if (sqlite3_column_type(s.get(), 16) != SQLITE_NULL) d->saved_ns = s.Int(16);
  d->etag = s.Text(17);
  if (with_content) d->content = s.Text(18);
}

// Rows of (id, uri), as the backfill queries return them.
Result<std::vector<std::pair<int64_t, std::string>>> ReadIdUriRows(Stmt* s) {
  std::vector<std::pair<int64_t, std::string>> out;
  while (true) {
    FS_ASSIGN_OR_RETURN(bool has, s->Step());
    if (!has) break;
    out.emplace_back(s->Int(0), s->Text(1));
  }
  return out;
}

constexpr const char* kDocColumns =
    "d.id, d.uri, d.path, d.name, d.ext, d.mime, d.size, d.mtime_ns, d.sha256, d.taken_ns, d.camera, d.gps_lat, d.gps_lon, "
    "d.title, d.author, d.created_ns, d.saved_ns, d.etag";

}  // namespace

struct Store::Impl {
  StoreOptions options;
  std::string bm25_expr;
  std::mutex write_mu;
  Db writer FS_GUARDED_BY(write_mu);

  std::mutex pool_mu;
  std::condition_variable pool_cv;
  std::vector<Db> readers FS_GUARDED_BY(pool_mu);

  // Borrows a read connection for the lifetime of the lease.
  class Lease {
   public:
    explicit Lease(Impl* impl) : impl_(impl) {
      std::unique_lock lock(impl_->pool_mu);
      impl_->pool_cv.wait(lock, [&] { return !impl_->readers.empty(); });
      db_ = std::move(impl_->readers.back());
      impl_->readers.pop_back();
    }
    ~Lease() {
      std::lock_guard lock(impl_->pool_mu);
      impl_->readers.push_back(std::move(db_));
      impl_->pool_cv.notify_one();
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Db* operator->() { return &db_; }
    Db& operator*() { return db_; }

   private:
    Impl* impl_;
    Db db_;
  };

  Status BumpGeneration() FS_REQUIRES(write_mu) {
    FS_ASSIGN_OR_RETURN(
        Stmt s, writer.Prepare("INSERT INTO meta(key, value) VALUES('generation', '1') "
                               "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"));
    FS_RETURN_IF_ERROR(s.Run());
    // The document log feeds keyword indexes; one that fell this far behind rebuilds anyway.
    FS_ASSIGN_OR_RETURN(Stmt trim, writer.Prepare("DELETE FROM doc_log WHERE seq <= (SELECT max(seq) FROM doc_log) - ?"));
    trim.Bind(1, static_cast<int64_t>(kDocLogKeep));
    return trim.Run();
  }

  // Keyword accelerator (StoreOptions::keyword_index).
  std::mutex kw_mu;
  std::shared_ptr<KeywordIndex> kw FS_GUARDED_BY(kw_mu);
  std::thread kw_thread FS_GUARDED_BY(kw_mu);
  bool kw_building FS_GUARDED_BY(kw_mu) = false;
  std::string kw_error FS_GUARDED_BY(kw_mu);
  std::atomic<bool> kw_stop{false};
  std::atomic<uint64_t> kw_served{0}, kw_to_fts{0};

  std::shared_ptr<KeywordIndex> CurrentKeyword() {
    std::lock_guard lock(kw_mu);
    return kw;
  }
  index_internal::KeywordWeights Weights() const {
    return {options.weight_name, options.weight_path, options.weight_content, options.weight_name_parts,
            options.weight_path_parts};
  }
  // Builds (or rebuilds) the keyword index from a snapshot of the store and swaps it in.
  Status BuildKeyword() {
    std::shared_ptr<KeywordIndex> built;
    {
      Lease db(this);
      FS_ASSIGN_OR_RETURN(auto idx, KeywordIndex::Build(&*db, Weights(), &kw_stop));
      FS_RETURN_IF_ERROR(idx->CatchUp(&*db));
      built = std::move(idx);
    }
    auto st = built->Stats();
    LogInfo("keyword index ready: " + std::to_string(st.documents) + " documents, " + std::to_string(st.terms) +
            " terms, " + std::to_string(st.postings) + " postings, " + std::to_string(st.memory_bytes >> 20) +
            " MiB, built in " + std::to_string(st.build_seconds) + " s");
    std::lock_guard lock(kw_mu);
    kw = std::move(built);
    kw_error.clear();
    return Status::Ok();
  }
  void StartKeywordBuild() {
    std::lock_guard lock(kw_mu);
    if (kw_building || kw_stop) return;
    if (kw_thread.joinable()) kw_thread.join();
    kw_building = true;
    kw_thread = std::thread([this] {
      Status st = BuildKeyword();
      std::lock_guard l(kw_mu);
      kw_building = false;
      if (!st.ok() && !kw_stop) {
        kw_error = st.message();
        LogWarn("keyword index not built, keyword search uses FTS5 alone: " + st.message());
      }
    });
  }
  void StopKeyword() {
    kw_stop = true;
    std::thread t;
    {
      std::lock_guard lock(kw_mu);
      t = std::move(kw_thread);
    }
    if (t.joinable()) t.join();
  }

  Result<int64_t> UpsertLocked(const Document& doc, Stmt* find, Stmt* insert, Stmt* update,
                               Stmt* drop_embeddings) FS_REQUIRES(write_mu) {
    if (doc.uri.empty()) return Status::InvalidArgument("document has no uri");
    find->Reset();
    find->Bind(1, std::string_view(doc.uri));
    FS_ASSIGN_OR_RETURN(bool exists, find->Step());
    std::string path = IsValidUtf8(doc.path) ? doc.path : RepairUtf8(doc.path);
    std::string name = IsValidUtf8(doc.name) ? doc.name : RepairUtf8(doc.name);
    std::string content = IsValidUtf8(doc.content) ? doc.content : RepairUtf8(doc.content);
    std::string camera = IsValidUtf8(doc.camera) ? doc.camera : RepairUtf8(doc.camera);
    std::string title = IsValidUtf8(doc.title) ? doc.title : RepairUtf8(doc.title);
    std::string author = IsValidUtf8(doc.author) ? doc.author : RepairUtf8(doc.author);
    auto bind_fields = [&](Stmt* s) {
      s->Bind(1, std::string_view(doc.uri)).Bind(2, std::string_view(path)).Bind(3, std::string_view(name));
      s->Bind(4, std::string_view(doc.ext)).Bind(5, std::string_view(doc.mime));
      s->Bind(6, static_cast<int64_t>(doc.size)).Bind(7, doc.mtime_ns);
      s->Bind(8, std::string_view(doc.sha256)).Bind(9, std::string_view(content));
      if (doc.taken_ns) s->Bind(10, *doc.taken_ns);
      s->Bind(11, std::string_view(camera));
      if (doc.gps_lat) s->Bind(12, *doc.gps_lat);
      if (doc.gps_lon) s->Bind(13, *doc.gps_lon);
      s->Bind(14, std::string_view(title)).Bind(15, std::string_view(author));
      if (doc.created_ns) s->Bind(16, *doc.created_ns);
      if (doc.saved_ns) s->Bind(17, *doc.saved_ns);
      s->Bind(18, std::string_view(doc.etag));
    };
    if (exists) {
      int64_t id = find->Int(0);
      std::string old_sha = find->Text(1);
      find->Reset();
      update->Reset();
      bind_fields(update);
      update->Bind(19, id);
      FS_RETURN_IF_ERROR(update->Run());
      if (old_sha != doc.sha256) {
        drop_embeddings->Reset();
        drop_embeddings->Bind(1, id);
        FS_RETURN_IF_ERROR(drop_embeddings->Run());
      }
      return id;
    }
    find->Reset();
    insert->Reset();
    bind_fields(insert);
    FS_RETURN_IF_ERROR(insert->Run());
    return writer.LastInsertId();
  }
};

Store::Store(std::unique_ptr<Impl> impl, std::string path) : impl_(std::move(impl)), path_(std::move(path)) {}
Store::~Store() {
  if (impl_) impl_->StopKeyword();
}

namespace {

// Re-tokenizes every document into doc_fts (the tokenizer changed) and records the new schema
// version, in one transaction: a crash leaves the old index and version, and the next open redoes it.
Status RebuildFtsIndex(Db* w, const std::string& db_path, bool recreate) {
  int64_t docs = 0;
  {
    FS_ASSIGN_OR_RETURN(Stmt count, w->Prepare("SELECT count(*) FROM documents"));
    FS_ASSIGN_OR_RETURN(bool row, count.Step());
    if (row) docs = count.Int(0);
  }
  LogInfo("upgrading '" + db_path + "': rebuilding the keyword index of " + std::to_string(docs) +
          " documents for word stems and parts (once; about a minute per million documents)...");
  const auto start = std::chrono::steady_clock::now();
  Transaction tx(w);
  FS_RETURN_IF_ERROR(tx.Begin());
  if (recreate) FS_RETURN_IF_ERROR(w->Exec(std::string(kDropOldFts) + kSchema));
  FS_RETURN_IF_ERROR(w->Exec("INSERT INTO doc_fts(doc_fts) VALUES('rebuild'); UPDATE meta SET value='" +
                             std::to_string(kSchemaVersion) + "' WHERE key='schema_version'")
                         .WithContext("rebuilding the keyword index of '" + db_path + "'"));
  FS_RETURN_IF_ERROR(tx.Commit());
  LogInfo("keyword index rebuilt in " +
          std::to_string(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()) + " s");
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<Store>> Store::Open(const std::string& db_path, const StoreOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->bm25_expr = "bm25(doc_fts, " + FormatDouble(options.weight_name) + ", " +
                    FormatDouble(options.weight_path) + ", " + FormatDouble(options.weight_content) + ", " +
                    FormatDouble(options.weight_name_parts) + ", " + FormatDouble(options.weight_path_parts) + ")";
  {
    std::lock_guard lock(impl->write_mu);
    FS_ASSIGN_OR_RETURN(impl->writer, Db::Open(db_path, /*create=*/true));
    Db& w = impl->writer;
    // A file that is not SQLite fails here with a clear message. Switching a new database to WAL
    // needs it alone, and SQLite answers "busy" at once rather than wait for the busy timeout: two
    // processes opening one new index together (a fleet's workers starting) take turns here.
    for (int waited_ms = 0;; waited_ms += 25) {
      Status wal = w.Exec("PRAGMA journal_mode=WAL");
      if (wal.ok()) break;
      if (wal.code() != StatusCode::kUnavailable || waited_ms >= 10000) return wal.WithContext("opening '" + db_path + "'");
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    FS_RETURN_IF_ERROR(w.Exec(options.sync_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL"));
    FS_RETURN_IF_ERROR(w.Exec("PRAGMA foreign_keys=OFF; PRAGMA temp_store=MEMORY; PRAGMA cache_size=-65536"));
    FS_RETURN_IF_ERROR(AddMissingColumns(&w));
    FS_RETURN_IF_ERROR(w.Exec(std::string("BEGIN IMMEDIATE; ") + kSchema + " COMMIT;"));
    std::optional<int> stored_version;
    {
      // Read and finalised before any migration: DROP TABLE fails while a statement is open.
      FS_ASSIGN_OR_RETURN(Stmt v, w.Prepare("SELECT value FROM meta WHERE key='schema_version'"));
      FS_ASSIGN_OR_RETURN(bool has, v.Step());
      if (has) stored_version = static_cast<int>(v.Int(0));
    }
    if (stored_version) {
      const int version = *stored_version;
      if (version > kSchemaVersion) {
        return Status::FailedPrecondition("database '" + db_path + "' has schema version " +
                                          std::to_string(version) + ", newer than this filesearch (" +
                                          std::to_string(kSchemaVersion) + "): upgrade filesearch");
      }
      if (version < kSchemaVersion) FS_RETURN_IF_ERROR(RebuildFtsIndex(&w, db_path, /*recreate=*/version < 3));
    } else {
      // (OR IGNORE: another process opening the new database at once may have written it.)
      FS_RETURN_IF_ERROR(w.Exec("INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', '" +
                                std::to_string(kSchemaVersion) + "')"));
    }
  }
  {
    std::lock_guard lock(impl->pool_mu);
    for (int i = 0; i < std::max(1, options.read_connections); ++i) {
      FS_ASSIGN_OR_RETURN(Db r, Db::Open(db_path, /*create=*/false));
      FS_RETURN_IF_ERROR(r.Exec("PRAGMA query_only=ON; PRAGMA temp_store=MEMORY; PRAGMA cache_size=-32768"));
      impl->readers.push_back(std::move(r));
    }
  }
  const bool keyword = impl->options.keyword_index;
  auto store = std::unique_ptr<Store>(new Store(std::move(impl), db_path));
  if (keyword) store->impl_->StartKeywordBuild();
  return store;
}

namespace {
constexpr const char* kFindSql = "SELECT id, sha256 FROM documents WHERE uri = ?";
constexpr const char* kInsertSql =
    "INSERT INTO documents(uri, path, name, ext, mime, size, mtime_ns, sha256, content, taken_ns, camera, gps_lat, "
    "gps_lon, title, author, created_ns, saved_ns, etag) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
constexpr const char* kUpdateSql =
    "UPDATE documents SET uri=?, path=?, name=?, ext=?, mime=?, size=?, mtime_ns=?, sha256=?, content=?, taken_ns=?, "
    "camera=?, gps_lat=?, gps_lon=?, title=?, author=?, created_ns=?, saved_ns=?, etag=? WHERE id=?";
constexpr const char* kDropEmbSql = "DELETE FROM embeddings WHERE doc_id = ?";

// The first column of every row `s` yields, as text.
Result<std::vector<std::string>> TextColumn(Stmt& s) {
  std::vector<std::string> out;
  while (true) {
    FS_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back(s.Text(0));
  }
  return out;
}
}  // namespace

Result<int64_t> Store::Upsert(const Document& doc) {
  FS_ASSIGN_OR_RETURN(auto ids, UpsertBatch(std::span<const Document>(&doc, 1)));
  return ids[0];
}

Result<std::vector<int64_t>> Store::UpsertBatch(std::span<const Document> docs) {
  std::lock_guard lock(impl_->write_mu);
  Db& w = impl_->writer;
  Transaction txn(&w);
  FS_RETURN_IF_ERROR(txn.Begin());
  FS_ASSIGN_OR_RETURN(Stmt find, w.Prepare(kFindSql));
  FS_ASSIGN_OR_RETURN(Stmt insert, w.Prepare(kInsertSql));
  FS_ASSIGN_OR_RETURN(Stmt update, w.Prepare(kUpdateSql));
  FS_ASSIGN_OR_RETURN(Stmt drop, w.Prepare(kDropEmbSql));
  std::vector<int64_t> ids;
  ids.reserve(docs.size());
  for (const Document& d : docs) {
    auto id = impl_->UpsertLocked(d, &find, &insert, &update, &drop);
    if (!id.ok()) return id.status().WithContext("storing '" + d.uri + "'");
    ids.push_back(*id);
  }
  FS_RETURN_IF_ERROR(impl_->BumpGeneration());
  FS_RETURN_IF_ERROR(txn.Commit());
  return ids;
}

Status Store::Delete(const std::string& uri) {
  std::lock_guard lock(impl_->write_mu);
  Db& w = impl_->writer;
  Transaction txn(&w);
  FS_RETURN_IF_ERROR(txn.Begin());
  FS_ASSIGN_OR_RETURN(Stmt s, w.Prepare("DELETE FROM documents WHERE uri = ?"));
  s.Bind(1, std::string_view(uri));
  FS_RETURN_IF_ERROR(s.Run());
  if (sqlite3_changes(w.get()) == 0) return Status::NotFound("no document with uri '" + uri + "'");
  FS_RETURN_IF_ERROR(impl_->BumpGeneration());
  return txn.Commit();
}

Status Store::DeleteIds(std::span<const int64_t> ids) {
  std::lock_guard lock(impl_->write_mu);
  Db& w = impl_->writer;
  Transaction txn(&w);
  FS_RETURN_IF_ERROR(txn.Begin());
  FS_ASSIGN_OR_RETURN(Stmt s, w.Prepare("DELETE FROM documents WHERE id = ?"));
  for (int64_t id : ids) {
    s.Reset();
    s.Bind(1, id);
    FS_RETURN_IF_ERROR(s.Run());
  }
  FS_RETURN_IF_ERROR(impl_->BumpGeneration());
  return txn.Commit();
}

Result<Document> Store::Get(int64_t id) const {
  Impl::Lease db(impl_.get());
  FS_ASSIGN_OR_RETURN(Stmt s, db->Prepare(std::string("SELECT ") + kDocColumns +
                                          ", d.content FROM documents d WHERE d.id = ?"));
  s.Bind(1, id);
  FS_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return Status::NotFound("no document with id " + std::to_string(id));
  Document d;
  ReadDocument(s, &d, true);
  return d;
}

Result<Document> Store::GetByUri(const std::string& uri) const {
  Impl::Lease db(impl_.get());
  FS_ASSIGN_OR_RETURN(Stmt s, db->Prepare(std::string("SELECT ") + kDocColumns +
                                          ", d.content FROM documents d WHERE d.uri = ?"));
  s.Bind(1, std::string_view(uri));
  FS_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return Status::NotFound("no document with uri '" + uri + "'");
  Document d;
  ReadDocument(s, &d, true);
  return d;
}

Result<std::vector<Document>> Store::GetMany(std::span<const int64_t> ids) const {
  Impl::Lease db(impl_.get());
  FS_ASSIGN_OR_RETURN(Stmt s, db->Prepare(std::string("SELECT ") + kDocColumns + " FROM documents d WHERE d.id = ?"));
  std::vector<Document> out;
  out.reserve(ids.size());
  for (int64_t id : ids) {
    s.Reset();
    s.Bind(1, id);
    FS_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) continue;
    Document d;
    ReadDocument(s, &d, false);
    out.push_back(std::move(d));
  }
  return out;
}

Status Store::ForEachUnder(const std::string& uri_prefix,
                           const std::function<void(const std::string&, const FileState&)>& fn) const {
  Impl::Lease db(impl_.get());
  FS_ASSIGN_OR_RETURN(Stmt s, db->Prepare("SELECT uri, id, size, mtime_ns, mime, etag FROM documents WHERE uri >= ? AND uri < ?"));
  s.Bind(1, std::string_view(uri_prefix));
  std::string upper = uri_prefix + "\xF4\x8F\xBF\xBF";
  s.Bind(2, std::string_view(upper));
  while (true) {
    FS_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    fn(s.Text(0), FileState{s.Int(1), static_cast<uint64_t>(s.Int(2)), s.Int(3), s.Text(4), s.Text(5)});
  }
  return Status::Ok();
}

Status Store::PutEmbedding(int64_t doc_id, const std::string& model, std::span<const float> vector) {
  return PutEmbeddings(model, std::span<const int64_t>(&doc_id, 1), vector, vector.size());
}

Status Store::PutEmbeddings(const std::string& model, std::span<const int64_t> doc_ids,
                            std::span<const float> vectors, size_t dim) {
  if (model.empty()) return Status::InvalidArgument("embedding has no model id");
  if (dim == 0 || vectors.size() != doc_ids.size() * dim) {
    return Status::InvalidArgument("embedding batch has " + std::to_string(vectors.size()) +
                                   " floats for " + std::to_string(doc_ids.size()) + " documents of dimension " +
                                   std::to_string(dim));
  }
  std::lock_guard lock(impl_->write_mu);
  Db& w = impl_->writer;
  Transaction txn(&w);
  FS_RETURN_IF_ERROR(txn.Begin());
  FS_ASSIGN_OR_RETURN(Stmt exists, w.Prepare("SELECT 1 FROM documents WHERE id = ?"));
  FS_ASSIGN_OR_RETURN(Stmt put, w.Prepare("INSERT INTO embeddings(doc_id, model, dim, vector) VALUES (?,?,?,?) "
                                          "ON CONFLICT(doc_id, model) DO UPDATE SET dim=excluded.dim, vector=excluded.vector"));
  for (size_t i = 0; i < doc_ids.size(); ++i) {
    exists.Reset();
    exists.Bind(1, doc_ids[i]);
    FS_ASSIGN_OR_RETURN(bool found, exists.Step());
    if (!found) return Status::NotFound("no document with id " + std::to_string(doc_ids[i]) + " to attach an embedding to");
    exists.Reset();
    put.Reset();
    put.Bind(1, doc_ids[i]).Bind(2, std::string_view(model)).Bind(3, static_cast<int64_t>(dim));
    put.BindBlob(4, vectors.data() + i * dim, dim * sizeof(float));
    FS_RETURN_IF_ERROR(put.Run());
  }
  FS_RETURN_IF_ERROR(impl_->BumpGeneration());
  return txn.Commit();
}

Result<std::optional<std::vector<float>>> Store::GetEmbedding(int64_t doc_id, const std::string& model) const {
  Impl::Lease db(impl_.get());
  FS_ASSIGN_OR_RETURN(Stmt s, db->Prepare("SELECT vector FROM embeddings WHERE doc_id = ? AND model = ?"));
  s.Bind(1, doc_id).Bind(2, std::string_view(model));
  FS_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<std::vector<float>>();
  std::vector<float> v(s.Bytes(0) / sizeof(float));
  std::memcpy(v.data(), s.Blob(0), v.size() * sizeof(float));
  return std::optional<std::vector<float>>(std::move(v));
}

Status Store::ForEachEmbedding(const std::string& model, const std::function<void(const EmbeddingRow&)>& fn) const {
  Impl::Lease db(impl_.get());
  FS_ASSIGN_OR_RETURN(Stmt s, db->Prepare("SELECT doc_id, vector FROM embeddings WHERE model = ?"));
  s.Bind(1, std::string_view(model));
  EmbeddingRow row;
  while (true) {
    FS_ASSIGN_OR_RETURN(bool has, s.Step());
    if (!has) break;
    row.doc_id = s.Int(0);
    row.vector.resize(s.Bytes(1) / sizeof(float));
    std::memcpy(row.vector.data(), s.Blob(1), row.vector.size() * sizeof(float));
    fn(row);
  }
  return Status::Ok();
}

Result<std::vector<VectorChange>> Store::ChangesSince(const std::string& model, uint64_t after_seq) const {
  Impl::Lease db(impl_.get());
  FS_ASSIGN_OR_RETURN(Stmt s, db->Prepare("SELECT seq, doc_id, op FROM vector_log WHERE model = ? AND seq > ? ORDER BY seq"));
  s.Bind(1, std::string_view(model)).Bind(2, static_cast<int64_t>(after_seq));
  std::vector<VectorChange> out;
  while (true) {
    FS_ASSIGN_OR_RETURN(bool has, s.Step());
    if (!has) break;
    out.push_back({static_cast<uint64_t>(s.Int(0)), s.Int(1), s.Int(2) != 0});
  }
  return out;
}

Result<uint64_t> Store::LastChangeSeq(const std::string& model) const {
  Impl::Lease db(impl_.get());
  FS_ASSIGN_OR_RETURN(Stmt s, db->Prepare("SELECT coalesce(max(seq), 0) FROM vector_log WHERE model = ?"));
  s.Bind(1, std::string_view(model));
  FS_ASSIGN_OR_RETURN(bool has, s.Step());
  (void)has;
  return static_cast<uint64_t>(s.Int(0));
}

Status Store::TrimChanges(const std::string& model, uint64_t up_to_seq) {
  std::lock_guard lock(impl_->write_mu);
  Transaction txn(&impl_->writer);
  FS_RETURN_IF_ERROR(txn.Begin());
  FS_ASSIGN_OR_RETURN(Stmt s, impl_->writer.Prepare("DELETE FROM vector_log WHERE model = ? AND seq <= ?"));
  s.Bind(1, std::string_view(model)).Bind(2, static_cast<int64_t>(up_to_seq));
  FS_RETURN_IF_ERROR(s.Run());
  // Remember how far the log was trimmed: another process's index behind that point must reload.
  FS_ASSIGN_OR_RETURN(Stmt m, impl_->writer.Prepare(
      "INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = "
      "CAST(max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER)) AS TEXT)"));
  m.Bind(1, "vector_log_trimmed/" + model).Bind(2, std::to_string(up_to_seq));
  FS_RETURN_IF_ERROR(m.Run());
  return txn.Commit();
}

Status Store::EnableMirror(const std::string& name) {
  std::lock_guard lock(impl_->write_mu);
  Transaction txn(&impl_->writer);
  FS_RETURN_IF_ERROR(txn.Begin());
  FS_ASSIGN_OR_RETURN(Stmt get, impl_->writer.Prepare("SELECT value FROM meta WHERE key = 'mirror'"));
  FS_ASSIGN_OR_RETURN(bool on, get.Step());
  if (on) {
    const std::string current = get.Text(0);
    if (current != name) {
      return Status::FailedPrecondition("this data directory already mirrors to " + current + ", not " + name +
                                        ": one remote index per data directory");
    }
    return txn.Commit();
  }
  FS_ASSIGN_OR_RETURN(Stmt set, impl_->writer.Prepare("INSERT INTO meta(key, value) VALUES('mirror', ?)"));
  set.Bind(1, std::string_view(name));
  FS_RETURN_IF_ERROR(set.Run());
  // Everything already stored goes out first, in id order.
  FS_RETURN_IF_ERROR(impl_->writer.Exec("INSERT INTO mirror_log(uri) SELECT uri FROM documents ORDER BY id"));
  return txn.Commit();
}

Result<std::optional<std::string>> Store::MirrorName() const { return GetMeta("mirror"); }

Result<std::vector<MirrorChange>> Store::MirrorChangesSince(uint64_t after_seq, size_t limit) const {
  Impl::Lease db(impl_.get());
  FS_ASSIGN_OR_RETURN(Stmt s, db->Prepare("SELECT seq, uri FROM mirror_log WHERE seq > ? ORDER BY seq LIMIT ?"));
  s.Bind(1, static_cast<int64_t>(after_seq)).Bind(2, static_cast<int64_t>(limit));
  std::vector<MirrorChange> out;
  while (true) {
    FS_ASSIGN_OR_RETURN(bool has, s.Step());
    if (!has) break;
    out.push_back({static_cast<uint64_t>(s.Int(0)), s.Text(1)});
  }
  return out;
}

Result<uint64_t> Store::MirrorBacklog() const {
  Impl::Lease db(impl_.get());
  FS_ASSIGN_OR_RETURN(Stmt s, db->Prepare("SELECT count(*) FROM mirror_log"));
  FS_ASSIGN_OR_RETURN(bool has, s.Step());
  (void)has;
  return static_cast<uint64_t>(s.Int(0));
}

Status Store::QueueMirror(std::span<const std::string> uris) {
  std::lock_guard lock(impl_->write_mu);
  Transaction txn(&impl_->writer);
  FS_RETURN_IF_ERROR(txn.Begin());
  FS_ASSIGN_OR_RETURN(Stmt s, impl_->writer.Prepare("INSERT INTO mirror_log(uri) VALUES (?)"));
  for (const std::string& uri : uris) {
    s.Reset();
    s.Bind(1, std::string_view(uri));
    FS_RETURN_IF_ERROR(s.Run());
  }
  return txn.Commit();
}

Status Store::TrimMirrorLog(uint64_t up_to_seq) {
  std::lock_guard lock(impl_->write_mu);
  FS_ASSIGN_OR_RETURN(Stmt s, impl_->writer.Prepare("DELETE FROM mirror_log WHERE seq <= ?"));
  s.Bind(1, static_cast<int64_t>(up_to_seq));
  return s.Run();
}

Result<uint64_t> Store::TrimmedThrough(const std::string& model) const {
  FS_ASSIGN_OR_RETURN(auto v, GetMeta("vector_log_trimmed/" + model));
  return v ? static_cast<uint64_t>(std::stoull(*v)) : 0;
}

Result<std::vector<std::string>> Store::EmbeddingModels() const {
  Impl::Lease db(impl_.get());
  FS_ASSIGN_OR_RETURN(Stmt s, db->Prepare("SELECT DISTINCT model FROM embeddings"));
  return TextColumn(s);
}

Result<std::vector<std::pair<int64_t, std::string>>> Store::ImagesMissingEmbedding(const std::string& model,
                                                                                  int64_t after_id, size_t limit) const {
  Impl::Lease db(impl_.get());
  FS_ASSIGN_OR_RETURN(Stmt s, db->Prepare(
      "SELECT d.id, d.uri FROM documents d WHERE d.id > ? AND d.mime >= 'image/' AND d.mime < 'image0' "
      "AND NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.doc_id = d.id AND e.model = ?) ORDER BY d.id LIMIT ?"));
  s.Bind(1, after_id).Bind(2, std::string_view(model)).Bind(3, static_cast<int64_t>(limit));
  return ReadIdUriRows(&s);
}

Result<std::vector<std::vector<int64_t>>> Store::ExactDuplicateGroups(size_t limit) const {
  Impl::Lease db(impl_.get());
  // The sha256 index makes the grouping a walk of the index, not a sort of the table.
  FS_ASSIGN_OR_RETURN(Stmt s, db->Prepare(
      "SELECT group_concat(id) FROM (SELECT id, sha256 FROM documents WHERE size > 0 AND sha256 != '' ORDER BY sha256, id) "
      "GROUP BY sha256 HAVING count(*) > 1 ORDER BY count(*) DESC, min(id) LIMIT ?"));
  s.Bind(1, static_cast<int64_t>(limit));
  std::vector<std::vector<int64_t>> out;
  while (true) {
    FS_ASSIGN_OR_RETURN(bool has, s.Step());
    if (!has) break;
    std::vector<int64_t> group;
    const std::string ids = s.Text(0);
    size_t pos = 0;
    while (pos < ids.size()) {
      size_t comma = ids.find(',', pos);
      if (comma == std::string::npos) comma = ids.size();
      group.push_back(std::stoll(ids.substr(pos, comma - pos)));
      pos = comma + 1;
    }
    out.push_back(std::move(group));
  }
  return out;
}

Status Store::PutPerceptualHashes(std::span<const std::pair<std::string, uint64_t>> hashes) {
  if (hashes.empty()) return Status::Ok();
  std::lock_guard lock(impl_->write_mu);
  Db& w = impl_->writer;
  Transaction txn(&w);
  FS_RETURN_IF_ERROR(txn.Begin());
  FS_ASSIGN_OR_RETURN(Stmt put, w.Prepare("INSERT INTO phashes(sha256, phash) VALUES (?,?) "
                                          "ON CONFLICT(sha256) DO UPDATE SET phash=excluded.phash"));
  for (const auto& [sha, hash] : hashes) {
    if (sha.empty() || hash == 0) continue;
    put.Reset();
    put.Bind(1, std::string_view(sha)).Bind(2, static_cast<int64_t>(hash));  // the bits, as SQLite's signed integer
    FS_RETURN_IF_ERROR(put.Run());
  }
  return txn.Commit();
}

Result<std::vector<PerceptualHashRow>> Store::PerceptualHashes() const {
  Impl::Lease db(impl_.get());
  // One row per distinct content: its lowest document id stands for its exact copies.
  FS_ASSIGN_OR_RETURN(Stmt s, db->Prepare(
      "SELECT min(d.id), p.sha256, p.phash FROM documents d JOIN phashes p ON p.sha256 = d.sha256 "
      "WHERE d.size > 0 GROUP BY p.sha256 ORDER BY min(d.id)"));
  std::vector<PerceptualHashRow> out;
  while (true) {
    FS_ASSIGN_OR_RETURN(bool has, s.Step());
    if (!has) break;
    out.push_back({s.Int(0), s.Text(1), static_cast<uint64_t>(s.Int(2))});
  }
  return out;
}

Result<std::optional<uint64_t>> Store::PerceptualHashOf(const std::string& sha256) const {
  Impl::Lease db(impl_.get());
  FS_ASSIGN_OR_RETURN(Stmt s, db->Prepare("SELECT phash FROM phashes WHERE sha256 = ?"));
  s.Bind(1, sha256);
  FS_ASSIGN_OR_RETURN(bool has, s.Step());
  if (!has) return std::optional<uint64_t>();
  return std::optional<uint64_t>(static_cast<uint64_t>(s.Int(0)));
}

Result<std::vector<std::pair<std::string, std::string>>> Store::ImagesWithoutPerceptualHash(size_t limit) const {
  Impl::Lease db(impl_.get());
  FS_ASSIGN_OR_RETURN(Stmt s, db->Prepare(
      "SELECT d.sha256, min(d.uri) FROM documents d LEFT JOIN phashes p ON p.sha256 = d.sha256 "
      "WHERE p.sha256 IS NULL AND d.mime >= 'image/' AND d.mime < 'image0' AND d.size > 0 AND d.sha256 != '' "
      "AND d.uri NOT IN (SELECT uri FROM failures) GROUP BY d.sha256 ORDER BY min(d.id) LIMIT ?"));
  s.Bind(1, static_cast<int64_t>(limit));
  std::vector<std::pair<std::string, std::string>> out;
  while (true) {
    FS_ASSIGN_OR_RETURN(bool has, s.Step());
    if (!has) break;
    out.emplace_back(s.Text(0), s.Text(1));
  }
  return out;
}

Result<std::vector<std::pair<int64_t, std::string>>> Store::ImagesAfter(int64_t after_id, size_t limit) const {
  Impl::Lease db(impl_.get());
  FS_ASSIGN_OR_RETURN(Stmt s, db->Prepare(
      "SELECT id, uri FROM documents WHERE id > ? AND mime >= 'image/' AND mime < 'image0' ORDER BY id LIMIT ?"));
  s.Bind(1, after_id).Bind(2, static_cast<int64_t>(limit));
  return ReadIdUriRows(&s);
}

Result<uint64_t> Store::CountImagesAfter(int64_t after_id) const {
  Impl::Lease db(impl_.get());
  FS_ASSIGN_OR_RETURN(Stmt s, db->Prepare(
      "SELECT count(*) FROM documents WHERE id > ? AND mime >= 'image/' AND mime < 'image0'"));
  s.Bind(1, after_id);
  FS_ASSIGN_OR_RETURN(bool has, s.Step());
  return has ? static_cast<uint64_t>(s.Int(0)) : 0;
}

Result<uint64_t> Store::CountImagesMissingEmbedding(const std::string& model) const {
  Impl::Lease db(impl_.get());
  FS_ASSIGN_OR_RETURN(Stmt s, db->Prepare(
      "SELECT count(*) FROM documents d WHERE d.mime >= 'image/' AND d.mime < 'image0' "
      "AND NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.doc_id = d.id AND e.model = ?)"));
  s.Bind(1, std::string_view(model));
  FS_ASSIGN_OR_RETURN(bool has, s.Step());
  return has ? static_cast<uint64_t>(s.Int(0)) : 0;
}

std::string BuildFtsQuery(std::string_view user_query) {
  std::string out;
  for (const auto& word : index_internal::SplitQueryWords(user_query)) {
    if (!out.empty()) out += ' ';
    out += '"';
    for (char c : word.text) {
      if (c == '"') out += '"';
      out += c;
    }
    out += '"';
    if (word.prefix) out += '*';
  }
  return out;
}

Result<KeywordPage> Store::KeywordSearch(std::string_view query, const SearchFilters& filters, size_t offset,
                                         size_t limit, const std::optional<KeywordAfter>& after,
                                         bool count_total) const {
  if (impl_->options.keyword_index) {
    if (std::shared_ptr<KeywordIndex> idx = impl_->CurrentKeyword()) {
      Status st;
      {
        Impl::Lease db(impl_.get());
        st = idx->CatchUp(&*db);
      }
      if (!st.ok()) {
        LogWarn("keyword index dropped, rebuilding (FTS5 serves meanwhile): " + st.message());
        {
          std::lock_guard lock(impl_->kw_mu);
          if (impl_->kw == idx) impl_->kw.reset();
        }
        impl_->StartKeywordBuild();
      } else {
        if (idx->WantsRebuild()) impl_->StartKeywordBuild();
        FS_ASSIGN_OR_RETURN(auto fast, idx->Search(query, offset, limit, after, filters, count_total));
        if (fast) {
          impl_->kw_served.fetch_add(1, std::memory_order_relaxed);
          return std::move(*fast);
        }
      }
    }
    impl_->kw_to_fts.fetch_add(1, std::memory_order_relaxed);
  }
  KeywordPage page;
  std::string fts = BuildFtsQuery(query);
  if (fts.empty()) return page;
  // Without filters the documents table is not needed: scoring reads the FTS index alone.
  const bool join = !filters.empty();
  std::string where = join ? " FROM doc_fts CROSS JOIN documents d ON d.id = doc_fts.rowid WHERE doc_fts MATCH ?"
                           : " FROM doc_fts WHERE doc_fts MATCH ?";
  std::vector<SqlValue> binds{fts};
  AppendFilters(filters, &where, &binds);
  Impl::Lease db(impl_.get());
  const char* id_col = join ? "d.id" : "doc_fts.rowid";
  std::string sql = std::string("SELECT ") + id_col + ", " + impl_->bm25_expr + " AS r" + where;
  std::vector<SqlValue> page_binds = binds;
  if (after) {
    sql += std::string(" AND (r > ? OR (r = ? AND ") + id_col + " > ?))";
    page_binds.emplace_back(-after->score);
    page_binds.emplace_back(-after->score);
    page_binds.emplace_back(after->id);
  }
  sql += std::string(" ORDER BY r, ") + id_col + " LIMIT ? OFFSET ?";
  page_binds.emplace_back(static_cast<int64_t>(limit));
  page_binds.emplace_back(static_cast<int64_t>(offset));
  FS_ASSIGN_OR_RETURN(Stmt s, db->Prepare(sql));
  for (size_t i = 0; i < page_binds.size(); ++i) s.BindValue(static_cast<int>(i + 1), page_binds[i]);
  while (true) {
    FS_ASSIGN_OR_RETURN(bool has, s.Step());
    if (!has) break;
    page.hits.push_back({s.Int(0), -s.Double(1)});
  }
  if (count_total) {
    FS_ASSIGN_OR_RETURN(Stmt c, db->Prepare("SELECT count(*)" + where));
    for (size_t i = 0; i < binds.size(); ++i) c.BindValue(static_cast<int>(i + 1), binds[i]);
    FS_ASSIGN_OR_RETURN(bool has, c.Step());
    (void)has;
    page.total = static_cast<uint64_t>(c.Int(0));
  }
  return page;
}

Status Store::RecordFailures(std::span<const FailureInput> failures, const RetryPolicy& policy, int64_t now_ns) {
  if (failures.empty()) return Status::Ok();
  std::lock_guard lock(impl_->write_mu);
  Db& w = impl_->writer;
  Transaction txn(&w);
  FS_RETURN_IF_ERROR(txn.Begin());
  FS_ASSIGN_OR_RETURN(Stmt get, w.Prepare("SELECT attempts, first_ns FROM failures WHERE uri = ?"));
  FS_ASSIGN_OR_RETURN(Stmt put, w.Prepare(
      "INSERT OR REPLACE INTO failures(uri, path, stage, reason, attempts, first_ns, last_ns, retry_at_ns) "
      "VALUES (?,?,?,?,?,?,?,?)"));
  for (const FailureInput& f : failures) {
    get.Reset();
    get.Bind(1, std::string_view(f.uri));
    FS_ASSIGN_OR_RETURN(bool seen, get.Step());
    const int64_t attempts = (seen ? get.Int(0) : 0) + 1;
    const int64_t first = seen ? get.Int(1) : now_ns;
    get.Reset();
    int64_t retry_at = 0;  // dead: no automatic retry until the file changes
    if (!f.permanent && attempts < policy.max_attempts) {
      int64_t backoff_ms = policy.base_backoff_ms;
      for (int64_t i = 1; i < attempts && backoff_ms < policy.max_backoff_ms; ++i) backoff_ms *= 2;
      retry_at = now_ns + std::min(backoff_ms, policy.max_backoff_ms) * 1000000;
    }
    put.Reset();
    put.Bind(1, std::string_view(f.uri)).Bind(2, std::string_view(IsValidUtf8(f.path) ? f.path : RepairUtf8(f.path)));
    put.Bind(3, std::string_view(f.stage)).Bind(4, std::string_view(IsValidUtf8(f.reason) ? f.reason : RepairUtf8(f.reason)));
    put.Bind(5, attempts).Bind(6, first).Bind(7, now_ns).Bind(8, retry_at);
    FS_RETURN_IF_ERROR(put.Run());
  }
  return txn.Commit();
}

Result<std::vector<FailureRecord>> Store::ListFailures(bool dead_only, size_t limit) const {
  Impl::Lease db(impl_.get());
  FS_ASSIGN_OR_RETURN(Stmt s, db->Prepare(std::string(
      "SELECT uri, path, stage, reason, attempts, first_ns, last_ns, retry_at_ns FROM failures") +
      (dead_only ? " WHERE retry_at_ns = 0" : "") + " ORDER BY last_ns DESC, uri LIMIT ?"));
  s.Bind(1, static_cast<int64_t>(limit));
  std::vector<FailureRecord> out;
  while (true) {
    FS_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back({s.Text(0), s.Text(1), s.Text(2), s.Text(3), s.Int(4), s.Int(5), s.Int(6), s.Int(7)});
  }
  return out;
}

Result<FailureCounts> Store::CountFailures() const {
  Impl::Lease db(impl_.get());
  FS_ASSIGN_OR_RETURN(Stmt s, db->Prepare(
      "SELECT coalesce(sum(retry_at_ns != 0), 0), coalesce(sum(retry_at_ns = 0), 0) FROM failures"));
  FS_ASSIGN_OR_RETURN(bool row, s.Step());
  FailureCounts c;
  if (row) {
    c.retrying = static_cast<uint64_t>(s.Int(0));
    c.dead = static_cast<uint64_t>(s.Int(1));
  }
  return c;
}

Result<std::vector<std::string>> Store::FailuresNotDue(const std::string& stage, int64_t now_ns) const {
  FS_ASSIGN_OR_RETURN(auto held, FailuresBackingOff(stage, now_ns));
  std::vector<std::string> out;
  out.reserve(held.size());
  for (auto& [uri, last_ns] : held) out.push_back(std::move(uri));
  return out;
}

Result<std::vector<std::pair<std::string, int64_t>>> Store::FailuresBackingOff(const std::string& stage,
                                                                             int64_t now_ns) const {
  Impl::Lease db(impl_.get());
  FS_ASSIGN_OR_RETURN(Stmt s, db->Prepare("SELECT uri, last_ns FROM failures WHERE stage = ? AND "
                                          "(retry_at_ns = 0 OR retry_at_ns > ?)"));
  s.Bind(1, std::string_view(stage)).Bind(2, now_ns);
  std::vector<std::pair<std::string, int64_t>> out;
  while (true) {
    FS_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.emplace_back(s.Text(0), s.Int(1));
  }
  return out;
}

Result<std::vector<std::string>> Store::FailuresDue(const std::string& stage, int64_t now_ns) const {
  Impl::Lease db(impl_.get());
  FS_ASSIGN_OR_RETURN(Stmt s, db->Prepare("SELECT uri FROM failures WHERE stage = ? AND retry_at_ns != 0 AND "
                                          "retry_at_ns <= ?"));
  s.Bind(1, std::string_view(stage)).Bind(2, now_ns);
  return TextColumn(s);
}

Status Store::ResolveFailures(std::span<const std::string> uris, const std::string& stage) {
  if (uris.empty()) return Status::Ok();
  std::lock_guard lock(impl_->write_mu);
  Db& w = impl_->writer;
  Transaction txn(&w);
  FS_RETURN_IF_ERROR(txn.Begin());
  FS_ASSIGN_OR_RETURN(Stmt del, w.Prepare("DELETE FROM failures WHERE uri = ? AND stage = ?"));
  for (const std::string& uri : uris) {
    del.Reset();
    del.Bind(1, std::string_view(uri)).Bind(2, std::string_view(stage));
    FS_RETURN_IF_ERROR(del.Run());
  }
  return txn.Commit();
}

Result<int64_t> Store::NextRetryAt() const {
  Impl::Lease db(impl_.get());
  FS_ASSIGN_OR_RETURN(Stmt s, db->Prepare("SELECT coalesce(min(retry_at_ns), 0) FROM failures WHERE retry_at_ns > 0"));
  FS_ASSIGN_OR_RETURN(bool row, s.Step());
  return row ? s.Int(0) : 0;
}

Result<uint64_t> Store::RequeueFailures() {
  std::lock_guard lock(impl_->write_mu);
  FS_ASSIGN_OR_RETURN(Stmt s, impl_->writer.Prepare("UPDATE failures SET retry_at_ns = 1, attempts = 0"));
  FS_RETURN_IF_ERROR(s.Run());
  return static_cast<uint64_t>(sqlite3_changes(impl_->writer.get()));
}

Status Store::BuildKeywordIndex() {
  if (!impl_->options.keyword_index) return Status::FailedPrecondition("the store was opened without keyword_index");
  std::thread running;
  {
    std::lock_guard lock(impl_->kw_mu);
    running = std::move(impl_->kw_thread);
  }
  if (running.joinable()) running.join();  // the build started at open
  if (impl_->CurrentKeyword()) return Status::Ok();
  return impl_->BuildKeyword();
}

KeywordIndexInfo Store::KeywordIndexStatus() const {
  KeywordIndexInfo info;
  info.enabled = impl_->options.keyword_index;
  std::shared_ptr<KeywordIndex> idx;
  {
    std::lock_guard lock(impl_->kw_mu);
    idx = impl_->kw;
    info.building = impl_->kw_building;
    info.error = impl_->kw_error;
  }
  info.served = impl_->kw_served.load();
  info.passed_to_fts = impl_->kw_to_fts.load();
  if (idx) {
    auto st = idx->Stats();
    info.ready = true;
    info.documents = st.documents;
    info.terms = st.terms;
    info.postings = st.postings;
    info.delta_documents = st.delta_documents;
    info.memory_bytes = st.memory_bytes;
    info.build_seconds = st.build_seconds;
  }
  return info;
}

Result<std::vector<int64_t>> Store::FilterIds(const SearchFilters& filters) const {
  std::string sql = "SELECT d.id FROM documents d WHERE 1";
  std::vector<SqlValue> binds;
  AppendFilters(filters, &sql, &binds);
  Impl::Lease db(impl_.get());
  FS_ASSIGN_OR_RETURN(Stmt s, db->Prepare(sql));
  for (size_t i = 0; i < binds.size(); ++i) s.BindValue(static_cast<int>(i + 1), binds[i]);
  std::vector<int64_t> out;
  while (true) {
    FS_ASSIGN_OR_RETURN(bool has, s.Step());
    if (!has) break;
    out.push_back(s.Int(0));
  }
  return out;
}

Result<uint64_t> Store::CountFiltered(const SearchFilters& filters) const {
  std::string sql = "SELECT count(*) FROM documents d WHERE 1";
  std::vector<SqlValue> binds;
  AppendFilters(filters, &sql, &binds);
  Impl::Lease db(impl_.get());
  FS_ASSIGN_OR_RETURN(Stmt s, db->Prepare(sql));
  for (size_t i = 0; i < binds.size(); ++i) s.BindValue(static_cast<int>(i + 1), binds[i]);
  FS_ASSIGN_OR_RETURN(bool has, s.Step());
  (void)has;
  return static_cast<uint64_t>(s.Int(0));
}

Result<int64_t> Store::MaxDocId() const {
  Impl::Lease db(impl_.get());
  FS_ASSIGN_OR_RETURN(Stmt s, db->Prepare("SELECT coalesce(max(id), 0) FROM documents"));
  FS_ASSIGN_OR_RETURN(bool has, s.Step());
  (void)has;
  return s.Int(0);
}

Result<StoreStats> Store::Stats() const {
  StoreStats st;
  Impl::Lease db(impl_.get());
  FS_ASSIGN_OR_RETURN(Stmt a, db->Prepare("SELECT count(*) FROM documents"));
  FS_ASSIGN_OR_RETURN(bool has, a.Step());
  st.documents = static_cast<uint64_t>(a.Int(0));
  FS_ASSIGN_OR_RETURN(Stmt b, db->Prepare("SELECT model, count(*) FROM embeddings GROUP BY model ORDER BY model"));
  while (true) {
    FS_ASSIGN_OR_RETURN(has, b.Step());
    if (!has) break;
    auto n = static_cast<uint64_t>(b.Int(1));
    st.embeddings += n;
    st.embeddings_by_model.emplace_back(b.Text(0), n);
  }
  struct stat sb{};
  if (::stat(path_.c_str(), &sb) == 0) st.db_bytes += static_cast<uint64_t>(sb.st_size);
  if (::stat((path_ + "-wal").c_str(), &sb) == 0) st.db_bytes += static_cast<uint64_t>(sb.st_size);
  return st;
}

Result<uint64_t> Store::Generation() const {
  FS_ASSIGN_OR_RETURN(auto v, GetMeta("generation"));
  return v ? static_cast<uint64_t>(std::stoull(*v)) : 0;
}

Status Store::SetMeta(const std::string& key, const std::string& value) {
  std::lock_guard lock(impl_->write_mu);
  FS_ASSIGN_OR_RETURN(Stmt s, impl_->writer.Prepare("INSERT INTO meta(key, value) VALUES(?, ?) "
                                                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value"));
  s.Bind(1, std::string_view(key)).Bind(2, std::string_view(value));
  return s.Run();
}

Result<std::optional<std::string>> Store::GetMeta(const std::string& key) const {
  Impl::Lease db(impl_.get());
  FS_ASSIGN_OR_RETURN(Stmt s, db->Prepare("SELECT value FROM meta WHERE key = ?"));
  s.Bind(1, std::string_view(key));
  FS_ASSIGN_OR_RETURN(bool has, s.Step());
  if (!has) return std::optional<std::string>();
  return std::optional<std::string>(s.Text(0));
}

}  // namespace fs

namespace fs {

Result<Document> Store::GetByPath(const std::string& path) const {
  Impl::Lease db(impl_.get());
  FS_ASSIGN_OR_RETURN(Stmt s, db->Prepare(std::string("SELECT ") + kDocColumns +
                                          " FROM documents d WHERE d.path = ? ORDER BY d.id LIMIT 1"));
  s.Bind(1, std::string_view(path));
  FS_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return Status::NotFound("no document with path '" + path + "'");
  Document d;
  ReadDocument(s, &d, false);
  return d;
}

Status Store::RecordFeedback(const FeedbackVote& v) {
  std::lock_guard lock(impl_->write_mu);
  if (v.vote == 0) {
    FS_ASSIGN_OR_RETURN(Stmt s, impl_->writer.Prepare("DELETE FROM feedback WHERE user = ? AND query = ? AND path = ?"));
    s.Bind(1, std::string_view(v.user)).Bind(2, std::string_view(v.query)).Bind(3, std::string_view(v.path));
    return s.Run();
  }
  FS_ASSIGN_OR_RETURN(Stmt s, impl_->writer.Prepare(
                                  "INSERT INTO feedback(user, query, path, doc_id, mode, vote, at_ns) VALUES(?,?,?,?,?,?,?) "
                                  "ON CONFLICT(user, query, path) DO UPDATE SET doc_id = excluded.doc_id, "
                                  "mode = excluded.mode, vote = excluded.vote, at_ns = excluded.at_ns"));
  s.Bind(1, std::string_view(v.user)).Bind(2, std::string_view(v.query)).Bind(3, std::string_view(v.path));
  s.Bind(4, v.doc_id).Bind(5, std::string_view(v.mode)).Bind(6, static_cast<int64_t>(v.vote)).Bind(7, v.at_ns);
  return s.Run();
}

Result<std::vector<FeedbackVote>> Store::ListFeedback(const std::string& user,
                                                      const std::optional<std::string>& query) const {
  Impl::Lease db(impl_.get());
  std::string sql = "SELECT user, query, path, doc_id, mode, vote, at_ns FROM feedback WHERE 1";
  if (!user.empty()) sql += " AND user = ?";
  if (query) sql += " AND query = ?";
  sql += " ORDER BY at_ns, user, query, path";
  FS_ASSIGN_OR_RETURN(Stmt s, db->Prepare(sql));
  int i = 0;
  if (!user.empty()) s.Bind(++i, std::string_view(user));
  if (query) s.Bind(++i, std::string_view(*query));
  std::vector<FeedbackVote> out;
  while (true) {
    FS_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    FeedbackVote v;
    v.user = s.Text(0);
    v.query = s.Text(1);
    v.path = s.Text(2);
    v.doc_id = s.Int(3);
    v.mode = s.Text(4);
    v.vote = static_cast<int>(s.Int(5));
    v.at_ns = s.Int(6);
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace fs
