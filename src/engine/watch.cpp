#include "engine/watch.h"

#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <unordered_map>
#include <vector>

#include "core/env.h"
#include "core/log.h"

namespace fs {
namespace {

namespace stdfs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr uint32_t kMask = IN_CREATE | IN_CLOSE_WRITE | IN_MODIFY | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE |
                           IN_DELETE_SELF | IN_MOVE_SELF | IN_ATTRIB | IN_ONLYDIR | IN_DONT_FOLLOW;

class Inotify {
 public:
  Inotify() : fd_(inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) {}
  ~Inotify() {
    if (fd_ >= 0) ::close(fd_);
  }
  Inotify(const Inotify&) = delete;
  Inotify& operator=(const Inotify&) = delete;
  int fd() const { return fd_; }

  // Watches `dir` and every directory below it (symlinks are not followed).
  void AddTree(const std::string& dir) {
    AddOne(dir);
    std::error_code ec;
    for (stdfs::recursive_directory_iterator it(dir, stdfs::directory_options::skip_permission_denied, ec), end;
         !ec && it != end; it.increment(ec)) {
      if (it->is_directory(ec) && !it->is_symlink(ec)) AddOne(it->path().string());
    }
  }
  const std::string* PathOf(int wd) const {
    auto it = paths_.find(wd);
    return it == paths_.end() ? nullptr : &it->second;
  }
  void Forget(int wd) { paths_.erase(wd); }
  bool limit_hit() const { return limit_hit_; }

 private:
  void AddOne(const std::string& dir) {
    const int wd = inotify_add_watch(fd_, dir.c_str(), kMask);
    if (wd >= 0) {
      paths_[wd] = dir;
    } else if (errno == ENOSPC && !limit_hit_) {
      limit_hit_ = true;
      LogWarn("inotify watch limit reached at '" + dir +
              "': changes below it are found by the periodic full pass only; raise fs.inotify.max_user_watches");
    }
  }
  int fd_;
  std::unordered_map<int, std::string> paths_;
  bool limit_hit_ = false;
};

}  // namespace

Result<WatchStats> WatchFolder(Engine* engine, const std::string& root, const WatchOptions& options,
                               const std::atomic<bool>& stop) {
  std::error_code ec;
  if (!stdfs::is_directory(root, ec)) {
    return Status::InvalidArgument("'" + root + "' is not a folder: give the folder to keep indexed");
  }
  Inotify inotify;
  if (inotify.fd() < 0) {
    return Status::Unavailable(std::string("inotify is not available: ") + std::strerror(errno));
  }
  // Watch first, then reconcile: a change made during the first pass is either seen by it or
  // produces an event that schedules the next one.
  inotify.AddTree(root);
  WatchStats stats;
  CrawlOptions crawl = options.crawl;
  auto pass = [&]() -> Status {
    const auto start = Clock::now();
    FS_ASSIGN_OR_RETURN(IndexReport report, engine->Index(root, crawl));
    ++stats.passes;
    crawl.progress = false;  // the first pass may be long; later ones are small
    if (options.on_pass) options.on_pass(report, std::chrono::duration<double>(Clock::now() - start).count());
    return Status::Ok();
  };
  FS_RETURN_IF_ERROR(pass());

  std::vector<char> buf(64 * 1024);
  bool pending = false;
  Clock::time_point first_event{}, last_event{}, next_retry_check{};
  while (!stop.load()) {
    int wait_ms = 200;  // also how often `stop` is looked at
    if (!pending && Clock::now() >= next_retry_check) {
      // A failed file whose backoff has run out: a pass retries it (EmbedMissing, or the crawl).
      next_retry_check = Clock::now() + std::chrono::seconds(1);
      auto due = engine->store()->NextRetryAt();
      const int64_t now_ns = WallClockNs();
      if (due.ok() && *due > 0 && *due <= now_ns) {
        ++stats.retry_passes;
        FS_RETURN_IF_ERROR(pass());
        continue;
      }
    }
    if (pending) {
      const auto now = Clock::now();
      const auto quiet_left = options.quiet_ms - std::chrono::duration_cast<std::chrono::milliseconds>(now - last_event).count();
      const auto max_left = options.max_delay_ms - std::chrono::duration_cast<std::chrono::milliseconds>(now - first_event).count();
      const auto left = std::min(quiet_left, max_left);
      if (left <= 0) {
        pending = false;
        FS_RETURN_IF_ERROR(pass());
        continue;
      }
      wait_ms = static_cast<int>(std::min<long long>(wait_ms, left));
    }
    pollfd pfd{inotify.fd(), POLLIN, 0};
    const int ready = ::poll(&pfd, 1, wait_ms);
    if (ready < 0 && errno != EINTR) return Status::IOError(std::string("poll on inotify failed: ") + std::strerror(errno));
    if (ready <= 0) continue;
    while (true) {
      const ssize_t n = ::read(inotify.fd(), buf.data(), buf.size());
      if (n <= 0) break;
      for (ssize_t at = 0; at < n;) {
        const auto* ev = reinterpret_cast<const inotify_event*>(buf.data() + at);
        at += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
        ++stats.events;
        if (ev->mask & IN_Q_OVERFLOW) ++stats.overflows;  // events were dropped: the pass rescans all anyway
        if (ev->mask & IN_IGNORED) inotify.Forget(ev->wd);
        if ((ev->mask & IN_ISDIR) && (ev->mask & (IN_CREATE | IN_MOVED_TO)) && ev->len > 0) {
          if (const std::string* parent = inotify.PathOf(ev->wd)) inotify.AddTree(*parent + "/" + ev->name);
        }
        const auto now = Clock::now();
        if (!pending) first_event = now;
        last_event = now;
        pending = true;
      }
    }
  }
  FS_RETURN_IF_ERROR(engine->Checkpoint());
  return stats;
}

}  // namespace fs
