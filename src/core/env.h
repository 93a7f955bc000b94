// Env: the one seam through which filesearch reads and writes its own files (snapshots, models,
// config). PosixEnv is the real one; MemEnv keeps files in memory for tests; FaultInjectionEnv wraps
// another Env and fails or truncates writes on demand so crash recovery can be tested.
// All implementations are safe for concurrent use from several threads.
// SQLite does its own I/O through its VFS and does not go through Env.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/check.h"
#include "core/status.h"

namespace fs {

class Env {
 public:
  virtual ~Env() = default;

  // The process-wide POSIX environment. Never null, never freed.
  static Env* Default();

  // Reads a whole file. Refuses (kResourceExhausted) files larger than `max_bytes`.
  virtual Result<std::string> ReadFile(const std::string& path,
                                       uint64_t max_bytes = UINT64_MAX) = 0;
  // Replaces `path` atomically: writes `path.tmp`, fsyncs it, renames over `path`, fsyncs the
  // directory. Readers see the old or the new file, never a mix.
  virtual Status WriteFileAtomic(const std::string& path, std::string_view data) = 0;
  virtual bool FileExists(const std::string& path) = 0;
  virtual Status RemoveFile(const std::string& path) = 0;
  // mkdir -p.
  virtual Status CreateDirs(const std::string& path) = 0;
};

// Wall-clock time, ns since the Unix epoch (the failure list's clock, file times' scale).
int64_t WallClockNs();

// Files live in a map; directories are implicit.
std::unique_ptr<Env> NewMemEnv();

// Wraps `base` (not owned; must outlive the wrapper).
class FaultInjectionEnv : public Env {
 public:
  explicit FaultInjectionEnv(Env* base) : base_(base) {}
  // After `n` more successful atomic writes, every write fails with kIOError (n < 0: never).
  void FailWritesAfter(int n) { writes_left_ = n; }
  // The next atomic write stores only the first `bytes` bytes, as if the machine died mid-write
  // on a file system that does not honour rename ordering, and still reports success.
  void TruncateNextWrite(size_t bytes) { truncate_next_ = static_cast<int64_t>(bytes); }

  Result<std::string> ReadFile(const std::string& path, uint64_t max_bytes) override {
    return base_->ReadFile(path, max_bytes);
  }
  Status WriteFileAtomic(const std::string& path, std::string_view data) override;
  bool FileExists(const std::string& path) override { return base_->FileExists(path); }
  Status RemoveFile(const std::string& path) override { return base_->RemoveFile(path); }
  Status CreateDirs(const std::string& path) override { return base_->CreateDirs(path); }

 private:
  Env* base_;
  int writes_left_ = -1;
  int64_t truncate_next_ = -1;
};

}  // namespace fs
