#include "cache/redis_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace fs::cache_internal {
namespace {

using Clock = std::chrono::steady_clock;

// Replies nest (arrays of arrays); a hostile or broken server must not recurse us off the stack.
constexpr int kMaxDepth = 8;
// One bulk string at most this long (an embedding is a few KiB; a 512 MiB claim is a broken stream).
constexpr int64_t kMaxBulk = 64 << 20;

int RemainingMs(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(left);
}

// Waits until fd is readable / writable or the deadline passes.
Status WaitFor(int fd, short events, Clock::time_point deadline, int timeout_ms) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, RemainingMs(deadline));
    if (n > 0) return Status::Ok();
    if (n == 0) return Status::Unavailable("timed out after " + std::to_string(timeout_ms) + " ms");
    if (errno != EINTR) return Status::Unavailable(std::string("poll: ") + std::strerror(errno));
  }
}

// Appends one command as a RESP array of bulk strings (appends only: no temporaries per argument).
void AppendCommand(const std::vector<std::string>& args, std::string* out) {
  out->push_back('*');
  out->append(std::to_string(args.size()));
  out->append("\r\n");
  for (const auto& a : args) {
    out->push_back('$');
    out->append(std::to_string(a.size()));
    out->append("\r\n");
    out->append(a);
    out->append("\r\n");
  }
}

}  // namespace

Result<RedisAddress> ParseRedisUrl(const std::string& url) {
  const std::string scheme = "redis://";
  if (url.rfind(scheme, 0) != 0) {
    return Status::InvalidArgument(
        "not a Redis url (want redis://[:PASSWORD@]HOST[:PORT][/DB]; rediss:// is not supported): " + url);
  }
  RedisAddress a;
  std::string rest = url.substr(scheme.size());
  if (const size_t at = rest.rfind('@'); at != std::string::npos) {
    std::string user_info = rest.substr(0, at);
    rest = rest.substr(at + 1);
    const size_t colon = user_info.find(':');
    a.password = colon == std::string::npos ? user_info : user_info.substr(colon + 1);
  }
  if (const size_t slash = rest.find('/'); slash != std::string::npos) {
    const std::string db = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    if (!db.empty()) {
      char* end = nullptr;
      const long n = std::strtol(db.c_str(), &end, 10);
      if (*end != '\0' || n < 0) return Status::InvalidArgument("bad Redis database number in " + url);
      a.db = static_cast<int>(n);
    }
  }
  if (const size_t colon = rest.rfind(':');
      colon != std::string::npos && (rest.front() != '[' || (colon > 0 && rest[colon - 1] == ']'))) {
    char* end = nullptr;
    const long port = std::strtol(rest.c_str() + colon + 1, &end, 10);
    if (*end != '\0' || port <= 0 || port > 65535) return Status::InvalidArgument("bad Redis port in " + url);
    a.port = static_cast<int>(port);
    rest = rest.substr(0, colon);
  }
  if (rest.size() >= 2 && rest.front() == '[' && rest.back() == ']') rest = rest.substr(1, rest.size() - 2);
  if (rest.empty()) return Status::InvalidArgument("no host in Redis url " + url);
  a.host = rest;
  return a;
}

Result<std::unique_ptr<RedisConnection>> RedisConnection::Connect(const RedisAddress& address,
                                                                  int timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  const std::string where = address.host + ":" + std::to_string(address.port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = ::getaddrinfo(address.host.c_str(), std::to_string(address.port).c_str(), &hints, &found);
      rc != 0) {
    return Status::Unavailable("cannot resolve Redis host " + address.host + ": " + ::gai_strerror(rc));
  }
  Status last = Status::Unavailable("no address for " + where);
  int fd = -1;
  for (addrinfo* ai = found; ai != nullptr && fd < 0; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) continue;
    int rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      Status waited = WaitFor(fd, POLLOUT, deadline, timeout_ms);
      int err = 0;
      socklen_t len = sizeof(err);
      if (waited.ok()) ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      rc = waited.ok() && err == 0 ? 0 : -1;
      if (!waited.ok())
        last = waited;
      else if (err != 0)
        last = Status::Unavailable(std::strerror(err));
    } else if (rc != 0) {
      last = Status::Unavailable(std::strerror(errno));
    }
    if (rc != 0) {
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(found);
  if (fd < 0) return Status::Unavailable("cannot connect to Redis at " + where + ": " + last.message());
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  std::unique_ptr<RedisConnection> conn(new RedisConnection(fd, timeout_ms));
  if (!address.password.empty()) {
    FS_ASSIGN_OR_RETURN(RedisReply r, conn->Command({"AUTH", address.password}));
    if (r.type == RedisReply::Type::kError)
      return Status::PermissionDenied("Redis AUTH at " + where + ": " + r.text);
  }
  if (address.db != 0) {
    FS_ASSIGN_OR_RETURN(RedisReply r, conn->Command({"SELECT", std::to_string(address.db)}));
    if (r.type == RedisReply::Type::kError)
      return Status::InvalidArgument("Redis SELECT at " + where + ": " + r.text);
  }
  return conn;
}

RedisConnection::~RedisConnection() {
  ::close(fd_);
}

Status RedisConnection::WriteAll(const std::string& data) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms_);
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      FS_RETURN_IF_ERROR(WaitFor(fd_, POLLOUT, deadline, timeout_ms_));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return Status::Unavailable(std::string("Redis send: ") + std::strerror(errno));
  }
  return Status::Ok();
}

Status RedisConnection::Fill() {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms_);
  if (pos_ > 0 && pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  }
  char chunk[16384];
  for (;;) {
    const ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n > 0) {
      buf_.append(chunk, static_cast<size_t>(n));
      return Status::Ok();
    }
    if (n == 0) return Status::Unavailable("Redis closed the connection");
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      FS_RETURN_IF_ERROR(WaitFor(fd_, POLLIN, deadline, timeout_ms_));
      continue;
    }
    if (errno == EINTR) continue;
    return Status::Unavailable(std::string("Redis recv: ") + std::strerror(errno));
  }
}

Result<std::string> RedisConnection::ReadLine() {
  for (;;) {
    const size_t end = buf_.find("\r\n", pos_);
    if (end != std::string::npos) {
      std::string line = buf_.substr(pos_, end - pos_);
      pos_ = end + 2;
      return line;
    }
    if (buf_.size() - pos_ > 65536) return Status::Corruption("Redis reply line too long");
    FS_RETURN_IF_ERROR(Fill());
  }
}

Result<std::string> RedisConnection::ReadBytes(size_t n) {
  while (buf_.size() - pos_ < n + 2) FS_RETURN_IF_ERROR(Fill());
  if (buf_.compare(pos_ + n, 2, "\r\n") != 0) return Status::Corruption("Redis bulk string not terminated");
  std::string out = buf_.substr(pos_, n);
  pos_ += n + 2;
  return out;
}

Result<RedisReply> RedisConnection::ReadReply(int depth) {
  if (depth > kMaxDepth) return Status::Corruption("Redis reply nested too deeply");
  FS_ASSIGN_OR_RETURN(std::string line, ReadLine());
  if (line.empty()) return Status::Corruption("empty Redis reply line");
  RedisReply r;
  const std::string body = line.substr(1);
  auto number = [&](int64_t* out) -> Status {
    char* end = nullptr;
    errno = 0;
    *out = std::strtoll(body.c_str(), &end, 10);
    if (body.empty() || *end != '\0' || errno != 0) return Status::Corruption("bad Redis number: " + body);
    return Status::Ok();
  };
  switch (line[0]) {
    case '+':
      r.type = RedisReply::Type::kStatus;
      r.text = body;
      return r;
    case '-':
      r.type = RedisReply::Type::kError;
      r.text = body;
      return r;
    case ':':
      r.type = RedisReply::Type::kInteger;
      FS_RETURN_IF_ERROR(number(&r.integer));
      return r;
    case '$': {
      int64_t len = 0;
      FS_RETURN_IF_ERROR(number(&len));
      if (len < 0) return r;  // nil
      if (len > kMaxBulk) return Status::Corruption("Redis bulk string of " + body + " bytes");
      r.type = RedisReply::Type::kBulk;
      FS_ASSIGN_OR_RETURN(r.text, ReadBytes(static_cast<size_t>(len)));
      return r;
    }
    case '*': {
      int64_t count = 0;
      FS_RETURN_IF_ERROR(number(&count));
      if (count < 0) return r;  // nil array
      if (count > 1 << 20) return Status::Corruption("Redis array of " + body + " elements");
      r.type = RedisReply::Type::kArray;
      r.elements.reserve(static_cast<size_t>(count));
      for (int64_t i = 0; i < count; ++i) {
        FS_ASSIGN_OR_RETURN(RedisReply e, ReadReply(depth + 1));
        r.elements.push_back(std::move(e));
      }
      return r;
    }
    default:
      return Status::Corruption("unknown Redis reply type '" + line.substr(0, 1) + "'");
  }
}

Result<RedisReply> RedisConnection::Command(const std::vector<std::string>& args) {
  FS_ASSIGN_OR_RETURN(auto replies, Pipeline({args}));
  return std::move(replies[0]);
}

Result<std::vector<RedisReply>> RedisConnection::Pipeline(
    const std::vector<std::vector<std::string>>& commands) {
  std::string out;
  for (const auto& c : commands) AppendCommand(c, &out);
  FS_RETURN_IF_ERROR(WriteAll(out));
  std::vector<RedisReply> replies;
  replies.reserve(commands.size());
  for (size_t i = 0; i < commands.size(); ++i) {
    FS_ASSIGN_OR_RETURN(RedisReply r, ReadReply(0));
    replies.push_back(std::move(r));
  }
  return replies;
}

}  // namespace fs::cache_internal
