#include "storage/source.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>
#include <mutex>
#include <set>

#include "core/check.h"
#include "core/utf8.h"

namespace fs {
namespace {

int64_t StatMtimeNs(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}
int64_t StatCtimeNs(const struct stat& st) {
  return static_cast<int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec;
}

// S3 times: ISO 8601 in listings ("2024-05-01T12:00:00.000Z"), an HTTP date in HEAD replies
// ("Wed, 01 May 2024 12:00:00 GMT"). 0 when neither parses.
int64_t ParseS3Time(const std::string& text) {
  struct tm tm{};
  const char* end = ::strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!end) {
    tm = {};
    end = ::strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S", &tm);
  }
  if (!end) return 0;
  return static_cast<int64_t>(::timegm(&tm)) * 1000000000;
}

Result<std::string> ReadLocal(const std::string& path, const std::string& uri, uint64_t max_bytes) {
  // O_NONBLOCK: a file swapped for a FIFO must not hang the reader; O_NOFOLLOW: no links.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) return Status::NotFound("no file " + RepairUtf8(path));
    if (err == EACCES || err == EPERM) return Status::PermissionDenied("cannot open " + RepairUtf8(path) + ": " + std::strerror(err));
    return Status::IOError("cannot open " + RepairUtf8(path) + ": " + std::strerror(err));
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st{};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return Status::NotFound(RepairUtf8(path) + " is not a regular file");
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    return Status::ResourceExhausted(uri + " is " + std::to_string(st.st_size) + " bytes; the limit is " +
                                     std::to_string(max_bytes) + " bytes");
  }
  std::string out;
  out.resize(static_cast<size_t>(st.st_size));
  size_t got = 0;
  while (true) {
    if (got == out.size()) out.resize(std::min<uint64_t>(max_bytes + 1, out.size() + (64 << 10)));
    if (got == out.size()) break;
    const ssize_t n = ::read(fd, out.data() + got, out.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::IOError("cannot read " + RepairUtf8(path) + ": " + std::strerror(errno));
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got > max_bytes) {  // it grew while we read
    return Status::ResourceExhausted(uri + " is more than " + std::to_string(max_bytes) + " bytes (the limit)");
  }
  out.resize(got);
  return out;
}

// A local folder. root_ is the real path (no trailing slash, except "/").
class FolderSource final : public Source {
 public:
  explicit FolderSource(std::string root) : root_(std::move(root)), root_uri_(FileUri(root_ == "/" ? root_ : root_ + "/")) {}
  const std::string& root_uri() const override { return root_uri_; }

  Status List(const std::string& prefix, const std::function<Status(const SourceEntry&)>& fn,
              std::vector<SourceProblem>* problems, uint64_t* skipped) const override {
    std::set<std::pair<dev_t, ino_t>> visited;
    std::vector<std::string> stack{root_};
    const std::string base = root_ == "/" ? root_ : root_ + "/";
    auto problem = [&](const std::string& dir, const std::string& why) {
      if (problems) problems->push_back({FileUri(dir + "/"), why});
    };
    while (!stack.empty()) {
      const std::string dir = std::move(stack.back());
      stack.pop_back();
      const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) {
        problem(dir, std::string("cannot open directory: ") + std::strerror(errno));
        continue;
      }
      struct stat dst{};
      if (::fstat(fd, &dst) == 0 && !visited.insert({dst.st_dev, dst.st_ino}).second) {
        ::close(fd);  // a bind mount brought us here twice
        continue;
      }
      DIR* d = ::fdopendir(fd);
      if (!d) {
        ::close(fd);
        problem(dir, std::string("cannot list directory: ") + std::strerror(errno));
        continue;
      }
      std::unique_ptr<DIR, int (*)(DIR*)> guard(d, ::closedir);
      std::vector<SourceEntry> files;
      while (true) {
        errno = 0;
        dirent* e = ::readdir(d);
        if (!e) {
          if (errno != 0) problem(dir, std::string("error while listing: ") + std::strerror(errno));
          break;
        }
        const std::string name = e->d_name;
        if (name == "." || name == "..") continue;
        const std::string child = dir == "/" ? "/" + name : dir + "/" + name;
        const std::string key = child.substr(base.size());
        struct stat st{};
        if (::fstatat(::dirfd(d), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;  // vanished
        if (S_ISDIR(st.st_mode)) {
          // Descend only where the prefix can still match below.
          const std::string as_dir = key + "/";
          if (prefix.empty() || as_dir.rfind(prefix, 0) == 0 || prefix.rfind(as_dir, 0) == 0) stack.push_back(child);
        } else if (S_ISREG(st.st_mode)) {
          if (key.rfind(prefix, 0) != 0) continue;
          files.push_back({FileUri(child), key, static_cast<uint64_t>(st.st_size), StatMtimeNs(st), "", StatCtimeNs(st)});
        } else if (skipped) {
          ++*skipped;  // symbolic link (never followed), FIFO, socket, device
        }
      }
      for (const SourceEntry& f : files) FS_RETURN_IF_ERROR(fn(f));
    }
    return Status::Ok();
  }

  Result<SourceEntry> Stat(const std::string& uri) const override {
    FS_ASSIGN_OR_RETURN(std::string path, PathOf(uri));
    struct stat st{};
    if (::lstat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) return Status::NotFound("no file " + RepairUtf8(path));
      return Status::IOError("cannot stat " + RepairUtf8(path) + ": " + std::strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) return Status::NotFound(RepairUtf8(path) + " is not a regular file");
    return SourceEntry{uri, path.substr(std::min(path.size(), root_.size() + 1)), static_cast<uint64_t>(st.st_size),
                       StatMtimeNs(st), "", StatCtimeNs(st)};
  }

  Result<std::string> Read(const std::string& uri, uint64_t max_bytes) const override {
    FS_ASSIGN_OR_RETURN(std::string path, PathOf(uri));
    return ReadLocal(path, uri, max_bytes);
  }

 private:
  Result<std::string> PathOf(const std::string& uri) const {
    if (!Contains(uri)) return Status::InvalidArgument("'" + uri + "' is not under " + root_uri_);
    return PathFromFileUri(uri);
  }
  std::string root_;
  std::string root_uri_;
};

// A bucket, or the keys of a bucket under a prefix.
class S3Source final : public Source {
 public:
  S3Source(std::shared_ptr<storage::S3Client> client, S3Location at, int page_keys)
      : client_(std::move(client)), at_(std::move(at)), root_uri_(S3Uri(at_.bucket, at_.key)), page_keys_(page_keys) {}
  const std::string& root_uri() const override { return root_uri_; }

  Status List(const std::string& prefix, const std::function<Status(const SourceEntry&)>& fn,
              std::vector<SourceProblem>* problems, uint64_t* skipped) const override {
    (void)problems;  // a page that fails fails the listing: nothing is taken as deleted
    std::string token;
    do {
      FS_ASSIGN_OR_RETURN(storage::ListPage page, client_->ListObjectsV2(at_.bucket, at_.key + prefix, token, page_keys_));
      for (const storage::ObjectInfo& o : page.objects) {
        // "Folder" markers (zero-byte keys ending in '/', made by consoles) hold no document.
        if (!o.key.empty() && o.key.back() == '/') {
          if (skipped) ++*skipped;
          continue;
        }
        FS_RETURN_IF_ERROR(fn(EntryOf(o)));
      }
      token = page.truncated ? page.next_continuation_token : "";
    } while (!token.empty());
    return Status::Ok();
  }

  Result<SourceEntry> Stat(const std::string& uri) const override {
    FS_ASSIGN_OR_RETURN(S3Location loc, Locate(uri));
    FS_ASSIGN_OR_RETURN(storage::ObjectInfo info, client_->HeadObject(loc.bucket, loc.key));
    return EntryOf(info);
  }

  Result<std::string> Read(const std::string& uri, uint64_t max_bytes) const override {
    FS_ASSIGN_OR_RETURN(S3Location loc, Locate(uri));
    return client_->GetObject(loc.bucket, loc.key, max_bytes);
  }

 private:
  SourceEntry EntryOf(const storage::ObjectInfo& o) const {
    SourceEntry e;
    e.uri = S3Uri(at_.bucket, o.key);
    e.key = o.key.substr(std::min(o.key.size(), at_.key.size()));
    e.size = o.size;
    e.mtime_ns = ParseS3Time(o.last_modified);
    e.etag = o.etag;
    return e;
  }
  Result<S3Location> Locate(const std::string& uri) const {
    if (!Contains(uri)) return Status::InvalidArgument("'" + uri + "' is not under " + root_uri_);
    return ParseS3Uri(uri);
  }
  std::shared_ptr<storage::S3Client> client_;
  S3Location at_;
  std::string root_uri_;
  int page_keys_;
};

// Any document uri: file:// from the disk, s3:// through one client made on first use.
class AnySource final : public Source {
 public:
  explicit AnySource(SourceOptions options) : options_(std::move(options)) {}
  const std::string& root_uri() const override { return empty_; }
  Status List(const std::string&, const std::function<Status(const SourceEntry&)>&, std::vector<SourceProblem>*,
              uint64_t*) const override {
    return Status::Unsupported("this source reads documents by uri; it cannot list");
  }
  Result<SourceEntry> Stat(const std::string& uri) const override {
    FS_ASSIGN_OR_RETURN(auto source, For(uri));
    return source->Stat(uri);
  }
  Result<std::string> Read(const std::string& uri, uint64_t max_bytes) const override {
    FS_ASSIGN_OR_RETURN(auto source, For(uri));
    return source->Read(uri, max_bytes);
  }

 private:
  Result<std::unique_ptr<Source>> For(const std::string& uri) const {
    if (IsS3Uri(uri)) {
      FS_ASSIGN_OR_RETURN(S3Location loc, ParseS3Uri(uri));
      std::shared_ptr<storage::S3Client> client;
      {
        std::lock_guard lock(mu_);
        if (!client_) {
          FS_ASSIGN_OR_RETURN(auto made, storage::S3Client::Create(options_.s3));
          client_ = std::move(made);
        }
        client = client_;
      }
      return std::unique_ptr<Source>(new S3Source(std::move(client), {loc.bucket, ""}, options_.list_page_keys));
    }
    FS_ASSIGN_OR_RETURN(std::string path, PathFromFileUri(uri));
    if (path.empty() || path[0] != '/') return Status::InvalidArgument("'" + uri + "' names no absolute path");
    return std::unique_ptr<Source>(new FolderSource("/"));
  }
  SourceOptions options_;
  std::string empty_;
  mutable std::mutex mu_;
  mutable std::shared_ptr<storage::S3Client> client_ FS_GUARDED_BY(mu_);
};

}  // namespace

bool SourceChanged(const SourceEntry& known, const SourceEntry& now) {
  if (known.size != now.size || known.mtime_ns != now.mtime_ns) return true;
  return !known.etag.empty() && !now.etag.empty() && known.etag != now.etag;
}

bool IsS3Uri(std::string_view uri) { return uri.substr(0, 5) == "s3://"; }

Result<S3Location> ParseS3Uri(std::string_view uri) {
  if (!IsS3Uri(uri)) return Status::InvalidArgument("'" + std::string(uri) + "' is not an s3://bucket/key uri");
  const std::string_view rest = uri.substr(5);
  const size_t slash = rest.find('/');
  S3Location loc{std::string(rest.substr(0, slash)), slash == std::string_view::npos ? "" : std::string(rest.substr(slash + 1))};
  if (!storage::IsValidBucketName(loc.bucket)) {
    return Status::InvalidArgument("'" + loc.bucket + "' in '" + std::string(uri) +
                                   "' is not an S3 bucket name (3-63 characters of a-z, 0-9, '.' and '-'): "
                                   "write s3://bucket/prefix");
  }
  return loc;
}

std::string S3Uri(std::string_view bucket, std::string_view key) {
  return "s3://" + std::string(bucket) + "/" + std::string(key);
}

std::string FileUri(std::string_view abs_path) {
  std::string out = "file://";
  size_t pos = 0;
  static const char* kHex = "0123456789ABCDEF";
  while (pos < abs_path.size()) {
    size_t before = pos;
    uint32_t cp = NextCodePoint(abs_path, &pos);
    bool invalid = cp == 0xFFFD && pos - before == 1;
    if (invalid || cp < 0x20 || cp == 0x7F || cp == '%') {
      for (size_t i = before; i < pos; ++i) {
        auto b = static_cast<unsigned char>(abs_path[i]);
        out += '%';
        out += kHex[b >> 4];
        out += kHex[b & 15];
      }
    } else {
      out.append(abs_path.substr(before, pos - before));
    }
  }
  return out;
}

Result<std::string> PathFromFileUri(std::string_view uri) {
  if (uri.substr(0, 7) != "file://") return Status::InvalidArgument("not a file:// uri: " + std::string(uri));
  std::string out;
  for (size_t i = 7; i < uri.size(); ++i) {
    if (uri[i] != '%') {
      out += uri[i];
      continue;
    }
    if (i + 2 >= uri.size() || !std::isxdigit(static_cast<unsigned char>(uri[i + 1])) ||
        !std::isxdigit(static_cast<unsigned char>(uri[i + 2]))) {
      return Status::InvalidArgument("bad percent-escape in uri: " + std::string(uri));
    }
    out += static_cast<char>(std::stoi(std::string(uri.substr(i + 1, 2)), nullptr, 16));
    i += 2;
  }
  return out;
}

Result<std::unique_ptr<Source>> OpenSource(const std::string& uri_or_dir, const SourceOptions& options) {
  if (IsS3Uri(uri_or_dir)) {
    FS_ASSIGN_OR_RETURN(S3Location loc, ParseS3Uri(uri_or_dir));
    if (options.list_page_keys < 1 || options.list_page_keys > 1000) {
      return Status::InvalidArgument("S3 list page size must be 1..1000");
    }
    FS_ASSIGN_OR_RETURN(auto client, storage::S3Client::Create(options.s3));
    return std::unique_ptr<Source>(new S3Source(std::shared_ptr<storage::S3Client>(std::move(client)), loc,
                                                options.list_page_keys));
  }
  if (uri_or_dir.find("://") != std::string::npos && uri_or_dir.rfind("file://", 0) != 0) {
    return Status::InvalidArgument("'" + uri_or_dir + "' is neither a folder nor an s3://bucket/prefix uri");
  }
  std::string dir = uri_or_dir;
  if (dir.rfind("file://", 0) == 0) {
    FS_ASSIGN_OR_RETURN(dir, PathFromFileUri(dir));
  }
  char resolved[PATH_MAX];
  if (!::realpath(dir.c_str(), resolved)) {
    return Status::NotFound("cannot index '" + uri_or_dir + "': " + std::strerror(errno));
  }
  struct stat st{};
  if (::stat(resolved, &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Status::InvalidArgument("'" + uri_or_dir + "' is not a directory: give the folder to index");
  }
  return std::unique_ptr<Source>(new FolderSource(resolved));
}

Result<std::unique_ptr<Source>> OpenAnySource(const SourceOptions& options) {
  return std::unique_ptr<Source>(new AnySource(options));
}

}  // namespace fs
