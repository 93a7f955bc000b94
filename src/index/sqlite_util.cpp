#include "index/sqlite_util.h"

#include "index/fts_tokenizer.h"

namespace fs::index_internal {

Stmt& Stmt::BindValue(int i, const SqlValue& v) {
  if (auto* x = std::get_if<int64_t>(&v)) return Bind(i, *x);
  if (auto* d = std::get_if<double>(&v)) return Bind(i, *d);
  return Bind(i, std::string_view(std::get<std::string>(v)));
}

Result<bool> Stmt::Step() {
  int rc = sqlite3_step(s_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  std::string msg = sqlite3_errmsg(db_);
  if (rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB) {
    return Status::Corruption("database is damaged: " + msg + " (restore a backup or delete the data directory and re-index)");
  }
  if (rc == SQLITE_FULL) return Status::IOError("disk full: " + msg + " (free some space and retry)");
  if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) return Status::Unavailable("database busy: " + msg);
  if (rc == SQLITE_ERROR && msg.find("fts5") != std::string::npos) return Status::InvalidArgument("bad query: " + msg);
  return Status::IOError("sqlite: " + msg);
}

Status Stmt::Run() {
  while (true) {
    FS_ASSIGN_OR_RETURN(bool row, Step());
    if (!row) return Status::Ok();
  }
}

Result<Db> Db::Open(const std::string& path, bool create) {
  sqlite3* raw = nullptr;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  Db db(raw);
  if (rc != SQLITE_OK) {
    std::string msg = raw ? sqlite3_errmsg(raw) : "out of memory";
    return Status::IOError("cannot open database '" + path + "': " + msg);
  }
  sqlite3_busy_timeout(raw, 10000);
  sqlite3_extended_result_codes(raw, 0);
  if (RegisterFtsTokenizer(raw) != SQLITE_OK) {
    return Status::Internal("cannot register the FTS5 tokenizer (is SQLite built with FTS5?)");
  }
  return db;
}

Result<Stmt> Db::Prepare(std::string_view sql) {
  sqlite3_stmt* s = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &s, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = sqlite3_errmsg(db_);
    if (rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB) {
      return Status::Corruption("database is damaged or not a filesearch database: " + msg);
    }
    return Status::Internal("sqlite prepare failed: " + msg + " in: " + std::string(sql.substr(0, 200)));
  }
  return Stmt(db_, s);
}

Status Db::Exec(const std::string& sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    if (rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB) {
      return Status::Corruption("database is damaged or not a filesearch database: " + msg);
    }
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) return Status::Unavailable("database busy: " + msg);
    if (rc == SQLITE_FULL) return Status::IOError("disk full: " + msg);
    return Status::IOError("sqlite: " + msg);
  }
  return Status::Ok();
}

Status Db::Error(std::string_view what) const {
  return Status::IOError(std::string(what) + ": " + sqlite3_errmsg(db_));
}

}  // namespace fs::index_internal
