// Test-only header: a raw HTTP/1.1 client over blocking sockets, for tests that must send what a
// well-behaved client never would (malformed heads, half requests, floods) and read replies as
// bytes. Not thread-safe per connection; each function owns nothing beyond its call.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>

namespace fs::server::testing {

struct RawReply {
  int status = 0;  // 0: no reply (closed or timed out)
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

inline int Connect(int port, const char* from = nullptr) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (from) {
    sockaddr_in src{};
    src.sin_family = AF_INET;
    ::inet_pton(AF_INET, from, &src.sin_addr);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) {
      ::close(fd);
      return -1;
    }
  }
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

inline void SendAll(int fd, std::string_view s) {
  while (!s.empty()) {
    ssize_t n = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
    if (n <= 0) return;
    s.remove_prefix(static_cast<size_t>(n));
  }
}

// Reads one reply (Content-Length framed). `pending` keeps bytes of a following reply.
inline RawReply ReadReply(int fd, std::string* pending, int timeout_ms = 5000, bool head = false) {
  RawReply r;
  std::string& buf = *pending;
  auto fill = [&]() {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return false;
    char tmp[65536];
    ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf.append(tmp, static_cast<size_t>(n));
    return true;
  };
  size_t end;
  while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
    if (!fill()) return r;
  }
  std::string head_text = buf.substr(0, end);
  buf.erase(0, end + 4);
  r.status = std::atoi(head_text.substr(9, 3).c_str());
  size_t pos = head_text.find("\r\n");
  while (pos != std::string::npos) {
    size_t next = head_text.find("\r\n", pos + 2);
    std::string line = head_text.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
    size_t colon = line.find(':');
    if (colon != std::string::npos) {
      std::string k = line.substr(0, colon);
      for (auto& ch : k) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      r.headers[k] = line.substr(colon + 2);
    }
    pos = next;
  }
  size_t length = r.headers.count("content-length") ? std::stoull(r.headers["content-length"]) : 0;
  if (head || r.status == 100) length = 0;
  while (buf.size() < length) {
    if (!fill()) break;
  }
  r.body = buf.substr(0, length);
  buf.erase(0, std::min(length, buf.size()));
  return r;
}

inline RawReply Exchange(int port, std::string_view request, const char* from = nullptr) {
  int fd = Connect(port, from);
  if (fd < 0) return {};
  SendAll(fd, request);
  std::string pending;
  RawReply r = ReadReply(fd, &pending);
  ::close(fd);
  return r;
}

// True when the peer closed the connection within the timeout (reads until EOF).
inline bool ClosedByPeer(int fd, int timeout_ms) {
  char tmp[4096];
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0) return true;
  }
  return false;
}

}  // namespace fs::server::testing
