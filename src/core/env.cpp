#include "core/env.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>

namespace fs {
namespace {

Status ErrnoStatus(const std::string& what, const std::string& path, int err) {
  std::string m = what + " '" + path + "': " + std::strerror(err);
  if (err == ENOENT) return Status::NotFound(m);
  if (err == EACCES || err == EPERM) return Status::IOError(m + " (check the file's permissions)");
  if (err == ENOSPC) return Status::IOError(m + " (free some disk space and retry)");
  return Status::IOError(m);
}

std::string DirName(const std::string& path) {
  auto pos = path.find_last_of('/');
  if (pos == std::string::npos) return ".";
  if (pos == 0) return "/";
  return path.substr(0, pos);
}

class PosixEnv final : public Env {
 public:
  Result<std::string> ReadFile(const std::string& path, uint64_t max_bytes) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("cannot open", path, errno);
    struct stat st{};
    if (::fstat(fd, &st) != 0) {
      int err = errno;
      ::close(fd);
      return ErrnoStatus("cannot stat", path, err);
    }
    if (static_cast<uint64_t>(st.st_size) > max_bytes) {
      ::close(fd);
      return Status::ResourceExhausted("file '" + path + "' is " + std::to_string(st.st_size) +
                                       " bytes, over the limit of " + std::to_string(max_bytes));
    }
    std::string out;
    out.resize(static_cast<size_t>(st.st_size));
    size_t done = 0;
    while (done < out.size()) {
      ssize_t n = ::read(fd, out.data() + done, out.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        int err = errno;
        ::close(fd);
        return ErrnoStatus("cannot read", path, err);
      }
      if (n == 0) break;  // file shrank while reading
      done += static_cast<size_t>(n);
    }
    out.resize(done);
    ::close(fd);
    return out;
  }

  Status WriteFileAtomic(const std::string& path, std::string_view data) override {
    // A name of this process and call: processes sharing a data folder (a fleet of workers on one
    // machine) may save the same file at once, and each must rename only what it wrote itself.
    static std::atomic<uint64_t> seq{0};
    const std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(++seq);
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoStatus("cannot create", tmp, errno);
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = ::write(fd, data.data() + done, data.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        int err = errno;
        ::close(fd);
        ::unlink(tmp.c_str());
        return ErrnoStatus("cannot write", tmp, err);
      }
      done += static_cast<size_t>(n);
    }
    if (::fsync(fd) != 0) {
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return ErrnoStatus("cannot fsync", tmp, err);
    }
    ::close(fd);
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      int err = errno;
      ::unlink(tmp.c_str());
      return ErrnoStatus("cannot rename over", path, err);
    }
    int dfd = ::open(DirName(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
    return Status::Ok();
  }

  bool FileExists(const std::string& path) override { return ::access(path.c_str(), F_OK) == 0; }

  Status RemoveFile(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return ErrnoStatus("cannot remove", path, errno);
    return Status::Ok();
  }

  Status CreateDirs(const std::string& path) override {
    if (path.empty()) return Status::InvalidArgument("empty directory path");
    std::string partial;
    size_t pos = 0;
    while (pos != std::string::npos) {
      pos = path.find('/', pos + 1);
      partial = path.substr(0, pos);
      if (partial.empty()) continue;
      if (::mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST) {
        return ErrnoStatus("cannot create directory", partial, errno);
      }
    }
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return Status::IOError("'" + path + "' exists but is not a directory");
    }
    return Status::Ok();
  }
};

class MemEnv final : public Env {
 public:
  Result<std::string> ReadFile(const std::string& path, uint64_t max_bytes) override {
    std::lock_guard lock(mu_);
    auto it = files_.find(path);
    if (it == files_.end()) return Status::NotFound("no file '" + path + "'");
    if (it->second.size() > max_bytes) return Status::ResourceExhausted("file too large: " + path);
    return it->second;
  }
  Status WriteFileAtomic(const std::string& path, std::string_view data) override {
    std::lock_guard lock(mu_);
    files_[path] = std::string(data);
    return Status::Ok();
  }
  bool FileExists(const std::string& path) override {
    std::lock_guard lock(mu_);
    return files_.count(path) != 0;
  }
  Status RemoveFile(const std::string& path) override {
    std::lock_guard lock(mu_);
    if (files_.erase(path) == 0) return Status::NotFound("no file '" + path + "'");
    return Status::Ok();
  }
  Status CreateDirs(const std::string&) override { return Status::Ok(); }

 private:
  std::mutex mu_;
  std::map<std::string, std::string> files_ FS_GUARDED_BY(mu_);
};

}  // namespace

Env* Env::Default() {
  static PosixEnv* env = new PosixEnv();  // intentionally leaked: lives for the process
  return env;
}

std::unique_ptr<Env> NewMemEnv() { return std::make_unique<MemEnv>(); }

Status FaultInjectionEnv::WriteFileAtomic(const std::string& path, std::string_view data) {
  if (writes_left_ == 0) return Status::IOError("injected write failure for '" + path + "'");
  if (writes_left_ > 0) --writes_left_;
  if (truncate_next_ >= 0) {
    size_t keep = std::min(data.size(), static_cast<size_t>(truncate_next_));
    truncate_next_ = -1;
    return base_->WriteFileAtomic(path, data.substr(0, keep));
  }
  return base_->WriteFileAtomic(path, data);
}

int64_t WallClockNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace fs
