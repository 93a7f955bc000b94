// The event-driven half of the HTTP server: one epoll thread does all socket I/O; workers run the
// handler on complete requests. Why not a thread per connection: measured on cpp-httplib's pool,
// 32 idle sockets delayed every request by 26-30 s and 64 slowloris sockets kept the server down
// for 140 s (docs/architecture.md, "server/"). Here a connection is a buffer and a deadline.
#include "server/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "core/log.h"

namespace fs::server::http {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

const char* Reason(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return status < 400 ? "OK" : status < 500 ? "Bad Request" : "Internal Server Error";
  }
}

bool IsTokenChar(char c) {
  if (std::isalnum(static_cast<unsigned char>(c))) return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool HasToken(std::string_view list, std::string_view token) {
  std::string l = Lower(list);
  size_t pos = 0;
  while (pos <= l.size()) {
    size_t end = l.find(',', pos);
    if (end == std::string::npos) end = l.size();
    std::string_view item(l.data() + pos, end - pos);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (item == token) return true;
    pos = end + 1;
  }
  return false;
}

std::string HttpDate() {
  char buf[64];
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

std::string JsonEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

// {"error":{"code","message"}}, the shape of every error of the API.
std::string ErrorJson(std::string_view code, std::string_view message) {
  return "{\"error\":{\"code\":\"" + JsonEscape(code) + "\",\"message\":\"" + JsonEscape(message) + "\"}}";
}

// A reply the transport writes itself (refusals): JSON like every other error of the API.
std::string CannedReply(int status, std::string_view code, std::string_view message, bool close,
                        const std::vector<std::pair<std::string, std::string>>& extra = {}) {
  const std::string body = ErrorJson(code, message);
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + Reason(status) + "\r\n";
  out += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  out += "Date: " + HttpDate() + "\r\n";
  out += "X-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\n";
  for (const auto& [k, v] : extra) out += k + ": " + v + "\r\n";
  out += close ? "Connection: close\r\n\r\n" : "Connection: keep-alive\r\n\r\n";
  return out + body;
}

bool SafeHeaderText(std::string_view s) {
  for (char c : s) {
    if (c == '\r' || c == '\n' || c == '\0') return false;
  }
  return true;
}

// Identifiers in epoll_event.data.u64: the listener, the wake-up eventfd, then connections.
constexpr uint64_t kListenerId = 0;
constexpr uint64_t kWakeId = 1;
// How long a closing connection keeps draining what the client still sends (nginx: lingering_time).
constexpr int64_t kLingerMs = 2000;

// kLinger: a reply that ends the connection is out; the client's unread bytes are read and dropped
// for a moment, so closing does not reset the connection before the client has read the reply.
enum class Phase { kHead, kBody, kHandler, kWrite, kLinger };
enum class ChunkPhase { kSize, kData, kDataEnd, kTrailer };

struct Conn {
  int fd = -1;
  uint64_t id = 0;
  std::string ip;
  Phase phase = Phase::kHead;
  std::string in;          // received, not yet consumed
  size_t scan = 0;         // where the search for the end of the head resumes
  int64_t started_ms = 0;  // first byte of the head, or the start of the body
  int64_t last_ms = 0;     // last progress (write deadline)
  int64_t idle_since_ms = 0;  // accepted, or the last reply finished (idle deadline)
  int64_t body_deadline_ms = 0;
  std::unique_ptr<Request> req;
  bool keep_alive = true;
  bool close_after_write = false;
  // Body in progress.
  bool chunked = false;
  uint64_t body_left = 0;  // Content-Length bytes still to come
  ChunkPhase chunk_phase = ChunkPhase::kSize;
  uint64_t chunk_left = 0;
  size_t trailer_bytes = 0;
  uint64_t reserved = 0;  // bytes of the shared body budget held by this request
  // Reply in progress.
  std::string out;
  size_t out_off = 0;
  std::shared_ptr<const BodySource> file;
  uint64_t file_pos = 0, file_end = 0;  // [file_pos, file_end) still to send
  uint32_t events = 0;                  // what epoll watches now
};

struct Job {
  uint64_t conn_id;
  std::unique_ptr<Request> req;
  bool keep_alive;
};

struct Done {
  uint64_t conn_id;
  std::string out;
  std::shared_ptr<const BodySource> file;
  uint64_t file_pos = 0, file_end = 0;
  bool close = false;
};

struct Bucket {
  double tokens = 0;
  int64_t at_ms = 0;
};

}  // namespace

struct Server::Impl {
  Options o;
  int listen_fd = -1;
  int epoll_fd = -1;
  int wake_fd = -1;
  int bound_port = 0;
  std::thread io;
  std::vector<std::thread> workers;
  std::atomic<bool> stopping{false};
  bool started = false;

  // I/O thread only.
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns;
  std::unordered_map<std::string, uint32_t> per_ip;
  std::unordered_map<std::string, Bucket> buckets;
  uint64_t next_id = 2;
  uint64_t body_budget_used = 0;
  bool listener_paused = false;
  int64_t listener_resume_ms = 0;

  // Fair queue of complete requests: one FIFO per client address, served round-robin.
  std::mutex q_mu;
  std::condition_variable q_cv;
  std::unordered_map<std::string, std::deque<Job>> queues;
  std::deque<std::string> ring;  // addresses with queued jobs, in service order
  size_t queued = 0;
  bool workers_stop = false;

  std::mutex done_mu;
  std::vector<Done> done;

  std::atomic<uint64_t> st_open{0}, st_busy{0}, st_accepted{0}, st_refused{0}, st_rate{0}, st_timeouts{0};

  // ---- I/O thread ----
  void Loop();
  void Accept(int64_t now);
  void OnReadable(Conn& c, int64_t now);
  void Process(Conn& c, int64_t now);
  bool ParseHead(Conn& c, size_t head_len, int64_t now);
  bool ReadBody(Conn& c);
  void Dispatch(Conn& c);
  void Refuse(Conn& c, int status, std::string_view code, std::string_view message,
              const std::vector<std::pair<std::string, std::string>>& extra = {});
  void Flush(Conn& c, int64_t now);
  void Finished(Conn& c, int64_t now);
  void Watch(Conn& c, uint32_t events);
  void Close(uint64_t id);
  void Sweep(int64_t now);
  void TakeDone(int64_t now);
  bool TakeToken(const std::string& ip, int64_t now);
  // Bytes of request bodies all connections may buffer at once (never below one largest body).
  uint64_t BodyBudget() const { return std::max<uint64_t>(o.max_body_bytes, o.max_buffered_body_bytes); }
  void Wake() const {
    uint64_t one = 1;
    ssize_t n = ::write(wake_fd, &one, sizeof one);
    (void)n;
  }
  // ---- workers ----
  void Work();
  Done Handle(Job& job);
};

void Server::Impl::Watch(Conn& c, uint32_t events) {
  if (c.events == events) return;
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = c.id;
  ::epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c.fd, &ev);
  c.events = events;
}

void Server::Impl::Close(uint64_t id) {
  auto it = conns.find(id);
  if (it == conns.end()) return;
  Conn& c = *it->second;
  ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, c.fd, nullptr);
  ::close(c.fd);
  body_budget_used -= std::min(body_budget_used, c.reserved);
  auto ip = per_ip.find(c.ip);
  if (ip != per_ip.end() && --ip->second == 0) per_ip.erase(ip);
  conns.erase(it);
  st_open = conns.size();
}

void Server::Impl::Refuse(Conn& c, int status, std::string_view code, std::string_view message,
                          const std::vector<std::pair<std::string, std::string>>& extra) {
  if (o.on_refused) o.on_refused(status, code);
  c.in.clear();
  c.req.reset();
  c.out = CannedReply(status, code, message, true, extra);
  c.out_off = 0;
  c.file.reset();
  c.close_after_write = true;
  c.phase = Phase::kWrite;
  c.last_ms = NowMs();
  Flush(c, c.last_ms);
}

bool Server::Impl::TakeToken(const std::string& ip, int64_t now) {
  const double rate = o.requests_per_second_per_client;
  if (rate <= 0) return true;
  const double burst = o.request_burst_per_client > 0 ? o.request_burst_per_client : std::max(10.0, 2 * rate);
  auto [it, fresh] = buckets.try_emplace(ip, Bucket{burst, now});
  Bucket& b = it->second;
  if (!fresh) {
    b.tokens = std::min(burst, b.tokens + rate * static_cast<double>(now - b.at_ms) / 1000.0);
    b.at_ms = now;
  }
  if (b.tokens < 1.0) return false;
  b.tokens -= 1.0;
  return true;
}

void Server::Impl::Accept(int64_t now) {
  for (;;) {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&addr), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors: stop listening for a moment rather than spin on the ready socket.
        LogWarn("http: cannot accept connections (" + std::string(std::strerror(errno)) + "); pausing 100 ms");
        ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, listen_fd, nullptr);
        listener_paused = true;
        listener_resume_ms = now + 100;
      }
      return;
    }
    char host[INET6_ADDRSTRLEN] = "?";
    if (addr.ss_family == AF_INET) {
      ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&addr)->sin_addr, host, sizeof host);
    } else if (addr.ss_family == AF_INET6) {
      ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&addr)->sin6_addr, host, sizeof host);
    }
    ++st_accepted;
    std::string ip = host;
    const uint32_t from_ip = per_ip.count(ip) ? per_ip[ip] : 0;
    const bool too_many = conns.size() >= o.max_connections;
    const bool too_many_here = o.max_connections_per_client > 0 && from_ip >= o.max_connections_per_client;
    if (too_many || too_many_here) {
      // Best effort: one non-blocking write of a canned reply, then close.
      std::string reply = too_many ? CannedReply(503, "too_many_connections",
                                                 "the server has too many open connections: retry in a moment", true,
                                                 {{"Retry-After", "1"}})
                                   : CannedReply(429, "too_many_connections",
                                                 "too many open connections from your address: close some and retry", true,
                                                 {{"Retry-After", "1"}});
      ssize_t n = ::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      (void)n;
      ::close(fd);
      ++st_refused;
      if (o.on_refused) o.on_refused(too_many ? 503 : 429, "too_many_connections");
      continue;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto c = std::make_unique<Conn>();
    c->fd = fd;
    c->id = next_id++;
    c->ip = std::move(ip);
    c->last_ms = now;
    c->idle_since_ms = now;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.u64 = c->id;
    if (::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
      ::close(fd);
      continue;
    }
    c->events = ev.events;
    ++per_ip[c->ip];
    conns.emplace(c->id, std::move(c));
    st_open = conns.size();
  }
}

void Server::Impl::OnReadable(Conn& c, int64_t now) {
  // Read only what the current phase may hold: a head up to its limit, a body up to its length.
  char buf[64 << 10];
  if (c.phase == Phase::kLinger) {
    for (int round = 0; round < 16; ++round) {
      ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
      if (n > 0) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (n < 0 && errno == EINTR) continue;
      Close(c.id);  // the client closed its side (or failed): done
      return;
    }
    return;
  }
  for (int round = 0; round < 16; ++round) {
    if (c.phase != Phase::kHead && c.phase != Phase::kBody) return;
    ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
    if (n == 0) {
      Close(c.id);  // the client closed its side: nothing to answer
      return;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) Close(c.id);
      return;
    }
    if (c.phase == Phase::kHead && c.in.empty() && c.req == nullptr) c.started_ms = now;
    c.last_ms = now;
    c.in.append(buf, static_cast<size_t>(n));
    const uint64_t id = c.id;
    Process(c, now);
    if (!conns.count(id)) return;
    if (static_cast<size_t>(n) < sizeof buf) return;
  }
}

// Consumes buffered input: finds and parses the head, reads the body, dispatches. Leaves the
// connection in the phase it reached.
void Server::Impl::Process(Conn& c, int64_t now) {
  if (c.phase == Phase::kHead) {
    // Empty lines before a request line are allowed (RFC 9112 2.2).
    size_t skip = 0;
    while (skip < c.in.size() && (c.in[skip] == '\r' || c.in[skip] == '\n')) ++skip;
    if (skip > 0) {
      c.in.erase(0, skip);
      c.scan = 0;
    }
    if (c.in.empty()) return;
    size_t end = std::string::npos, term = 0;
    for (size_t i = c.scan; i < c.in.size(); ++i) {
      if (c.in[i] != '\n') continue;
      if (i + 1 < c.in.size() && c.in[i + 1] == '\n') {
        end = i;
        term = 2;
        break;
      }
      if (i + 2 < c.in.size() && c.in[i + 1] == '\r' && c.in[i + 2] == '\n') {
        end = i;
        term = 3;
        break;
      }
    }
    if (end == std::string::npos) {
      c.scan = c.in.size() > 2 ? c.in.size() - 2 : 0;
      size_t first_nl = c.in.find('\n');
      if (first_nl == std::string::npos && c.in.size() > o.max_request_line_bytes) {
        Refuse(c, 414, "uri_too_long", "the request line is longer than " + std::to_string(o.max_request_line_bytes) +
                                           " bytes: send long parameters in a POST body");
        return;
      }
      if (c.in.size() > o.max_header_bytes) {
        Refuse(c, 431, "header_too_large", "the request headers are larger than " + std::to_string(o.max_header_bytes) + " bytes");
      }
      return;
    }
    const size_t head_len = end + term;
    if (head_len > o.max_header_bytes + 4) {
      Refuse(c, 431, "header_too_large", "the request headers are larger than " + std::to_string(o.max_header_bytes) + " bytes");
      return;
    }
    if (!ParseHead(c, head_len, now)) return;
  }
  if (c.phase == Phase::kBody) {
    if (!ReadBody(c)) return;
  }
  if (c.phase == Phase::kBody && c.req && ((!c.chunked && c.body_left == 0))) Dispatch(c);
}

// Parses the head at the front of c.in (head_len bytes). False when it refused the request.
bool Server::Impl::ParseHead(Conn& c, size_t head_len, int64_t now) {
  std::string_view head(c.in.data(), head_len);
  auto req = std::make_unique<Request>();
  req->remote_ip = c.ip;
  size_t line_end = head.find('\n');
  std::string_view line = head.substr(0, line_end);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.size() > o.max_request_line_bytes) {
    Refuse(c, 414, "uri_too_long", "the request line is longer than " + std::to_string(o.max_request_line_bytes) +
                                       " bytes: send long parameters in a POST body");
    return false;
  }
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    Refuse(c, 400, "bad_request", "malformed request line: expected METHOD TARGET HTTP/1.1");
    return false;
  }
  std::string_view method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1), version = line.substr(sp2 + 1);
  if (method.empty() || method.size() > 16 || !std::all_of(method.begin(), method.end(), IsTokenChar)) {
    Refuse(c, 400, "bad_request", "malformed request method");
    return false;
  }
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    if (version.substr(0, 5) == "HTTP/") {
      Refuse(c, 505, "http_version_not_supported", "only HTTP/1.0 and HTTP/1.1 are served");
    } else {
      Refuse(c, 400, "bad_request", "malformed request line: expected METHOD TARGET HTTP/1.1");
    }
    return false;
  }
  if (target.empty() || target[0] != '/') {
    Refuse(c, 400, "bad_request", "the request target must be a path starting with '/'");
    return false;
  }
  for (char ch : target) {
    if (static_cast<unsigned char>(ch) <= 0x20 || ch == 0x7f) {
      Refuse(c, 400, "bad_request", "the request target holds a control character or a space: percent-encode it");
      return false;
    }
  }
  req->method = std::string(method);
  req->target = std::string(target);
  size_t qmark = target.find('?');
  std::string_view raw_path = target.substr(0, qmark);
  if (raw_path.find('#') != std::string_view::npos) raw_path = raw_path.substr(0, raw_path.find('#'));
  if (!PercentDecode(raw_path, false, &req->path)) {
    Refuse(c, 400, "bad_request", "the request path has a bad percent escape");
    return false;
  }
  if (qmark != std::string_view::npos) {
    std::string_view query = target.substr(qmark + 1);
    if (query.find('#') != std::string_view::npos) query = query.substr(0, query.find('#'));
    if (!ParseQuery(query, &req->params)) {
      Refuse(c, 400, "invalid_argument", "the query string has a bad percent escape (a '%' not followed by two hex digits)");
      return false;
    }
  }
  // Header lines.
  size_t pos = line_end + 1;
  size_t count = 0;
  std::string content_length, transfer_encoding;
  bool content_length_seen = false;
  while (pos < head_len) {
    size_t nl = head.find('\n', pos);
    if (nl == std::string_view::npos) nl = head_len;
    std::string_view h = head.substr(pos, nl - pos);
    pos = nl + 1;
    if (!h.empty() && h.back() == '\r') h.remove_suffix(1);
    if (h.empty()) break;
    if (++count > o.max_header_count) {
      Refuse(c, 431, "header_too_large", "more than " + std::to_string(o.max_header_count) + " header lines");
      return false;
    }
    if (h[0] == ' ' || h[0] == '\t') {
      Refuse(c, 400, "bad_request", "folded header lines (obs-fold) are not accepted");
      return false;
    }
    size_t colon = h.find(':');
    if (colon == std::string_view::npos || colon == 0 ||
        !std::all_of(h.begin(), h.begin() + static_cast<std::ptrdiff_t>(colon), IsTokenChar)) {
      Refuse(c, 400, "bad_request", "malformed header line");
      return false;
    }
    std::string name = Lower(h.substr(0, colon));
    std::string_view value = h.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    for (char ch : value) {
      if ((static_cast<unsigned char>(ch) < 0x20 && ch != '\t') || ch == 0x7f) {
        Refuse(c, 400, "bad_request", "header " + name + " holds a control character");
        return false;
      }
    }
    if (name == "content-length") {
      if (content_length_seen && content_length != value) {
        Refuse(c, 400, "bad_request", "conflicting Content-Length headers");
        return false;
      }
      content_length_seen = true;
      content_length = std::string(value);
    } else if (name == "transfer-encoding") {
      transfer_encoding += (transfer_encoding.empty() ? "" : ",") + std::string(value);
    }
    req->headers.emplace_back(std::move(name), std::string(value));
  }
  // Connection management (before the head's bytes, which `version` views, are dropped).
  const std::string connection = req->get_header_value("connection");
  c.keep_alive = version == "HTTP/1.1" ? !HasToken(connection, "close") : HasToken(connection, "keep-alive");
  c.in.erase(0, head_len);
  c.scan = 0;
  if (req->method == "HEAD") {
    req->method = "GET";
    req->head = true;
  }

  // Body framing (RFC 9112 6): chunked or Content-Length, never both (request smuggling).
  c.chunked = false;
  c.body_left = 0;
  if (!transfer_encoding.empty()) {
    if (content_length_seen) {
      Refuse(c, 400, "bad_request", "a request may not carry both Transfer-Encoding and Content-Length");
      return false;
    }
    if (Lower(transfer_encoding) != "chunked") {
      Refuse(c, 501, "not_implemented", "only the chunked transfer coding is accepted");
      return false;
    }
    c.chunked = true;
    c.chunk_phase = ChunkPhase::kSize;
    c.chunk_left = 0;
    c.trailer_bytes = 0;
  } else if (content_length_seen) {
    uint64_t n = 0;
    bool ok = !content_length.empty() && content_length.size() <= 19 &&
              std::all_of(content_length.begin(), content_length.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
    if (ok) n = std::stoull(content_length);
    if (!ok) {
      Refuse(c, 400, "bad_request", "Content-Length must be a decimal number of bytes");
      return false;
    }
    if (n > o.max_body_bytes) {
      Refuse(c, 413, "payload_too_large",
             "the request body is larger than the server's limit of " + std::to_string(o.max_body_bytes) + " bytes");
      return false;
    }
    c.body_left = n;
  }
  if (!TakeToken(c.ip, now)) {
    ++st_rate;
    Refuse(c, 429, "rate_limited", "too many requests from your address: slow down and retry", {{"Retry-After", "1"}});
    return false;
  }
  // The bodies buffered at once share one budget, so many large uploads cannot exhaust memory.
  const uint64_t budget = BodyBudget();
  if (c.body_left > 0) {
    if (body_budget_used + c.body_left > budget) {
      Refuse(c, 503, "server_busy", "the server is receiving too many uploads at once: retry in a moment", {{"Retry-After", "1"}});
      return false;
    }
    body_budget_used += c.body_left;
    c.reserved = c.body_left;
    req->body.reserve(c.body_left);
  }
  std::string expect = Lower(req->get_header_value("expect"));
  if (!expect.empty()) {
    if (expect != "100-continue") {
      Refuse(c, 417, "expectation_failed", "only Expect: 100-continue is understood");
      return false;
    }
    if ((c.chunked || c.body_left > 0) && c.in.empty()) {
      static const char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
      ssize_t n = ::send(c.fd, kContinue, sizeof kContinue - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
      (void)n;
    }
  }
  c.req = std::move(req);
  c.phase = Phase::kBody;
  c.started_ms = now;
  const uint64_t declared = c.chunked ? o.max_body_bytes : c.body_left;
  c.body_deadline_ms = now + o.body_timeout_ms + static_cast<int64_t>(declared / (64 << 10)) * 1000;
  return true;
}

// Moves body bytes from c.in into the request. False when it refused the request.
bool Server::Impl::ReadBody(Conn& c) {
  std::string& body = c.req->body;
  if (!c.chunked) {
    const size_t take = static_cast<size_t>(std::min<uint64_t>(c.body_left, c.in.size()));
    body.append(c.in, 0, take);
    c.in.erase(0, take);
    c.body_left -= take;
    return true;
  }
  size_t pos = 0;
  bool ok = true;
  while (ok) {
    if (c.chunk_phase == ChunkPhase::kData) {
      const size_t take = static_cast<size_t>(std::min<uint64_t>(c.chunk_left, c.in.size() - pos));
      body.append(c.in, pos, take);
      pos += take;
      c.chunk_left -= take;
      if (c.chunk_left > 0) break;
      c.chunk_phase = ChunkPhase::kDataEnd;
      continue;
    }
    size_t nl = c.in.find('\n', pos);
    if (nl == std::string::npos) {
      if (c.in.size() - pos > 4096) {
        Refuse(c, 400, "bad_request", "malformed chunked body: a chunk line is too long");
        return false;
      }
      break;
    }
    std::string_view line(c.in.data() + pos, nl - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos = nl + 1;
    if (c.chunk_phase == ChunkPhase::kDataEnd) {
      if (!line.empty()) {
        Refuse(c, 400, "bad_request", "malformed chunked body: a chunk does not end with a line end");
        return false;
      }
      c.chunk_phase = ChunkPhase::kSize;
    } else if (c.chunk_phase == ChunkPhase::kSize) {
      std::string_view digits = line.substr(0, line.find(';'));
      while (!digits.empty() && (digits.back() == ' ' || digits.back() == '\t')) digits.remove_suffix(1);
      uint64_t size = 0;
      if (digits.empty() || digits.size() > 15) {
        Refuse(c, 400, "bad_request", "malformed chunked body: bad chunk size");
        return false;
      }
      for (char ch : digits) {
        const int v = HexDigitValue(ch);
        if (v < 0) {
          Refuse(c, 400, "bad_request", "malformed chunked body: bad chunk size");
          return false;
        }
        size = size * 16 + static_cast<uint64_t>(v);
      }
      if (size == 0) {
        c.chunk_phase = ChunkPhase::kTrailer;
        continue;
      }
      const uint64_t budget = BodyBudget();
      if (body.size() + size > o.max_body_bytes) {
        Refuse(c, 413, "payload_too_large",
               "the request body is larger than the server's limit of " + std::to_string(o.max_body_bytes) + " bytes");
        return false;
      }
      if (body_budget_used + size > budget) {
        Refuse(c, 503, "server_busy", "the server is receiving too many uploads at once: retry in a moment", {{"Retry-After", "1"}});
        return false;
      }
      body_budget_used += size;
      c.reserved += size;
      c.chunk_left = size;
      c.chunk_phase = ChunkPhase::kData;
    } else {  // trailer lines until an empty one; their content is ignored
      c.trailer_bytes += line.size();
      if (c.trailer_bytes > o.max_header_bytes) {
        Refuse(c, 431, "header_too_large", "the chunked body's trailer is too large");
        return false;
      }
      if (line.empty()) {
        c.in.erase(0, pos);
        c.chunked = false;
        c.body_left = 0;
        return true;  // complete
      }
    }
  }
  c.in.erase(0, pos);
  return true;
}

void Server::Impl::Dispatch(Conn& c) {
  bool full = false;
  {
    std::lock_guard lock(q_mu);
    full = queued >= o.max_queued_requests;
    if (!full) {
      auto& q = queues[c.ip];
      if (q.empty()) ring.push_back(c.ip);
      q.push_back(Job{c.id, std::move(c.req), c.keep_alive});
      ++queued;
    }
  }
  if (full) {
    Refuse(c, 503, "server_busy", "the server has too many requests waiting: retry in a moment", {{"Retry-After", "1"}});
    return;
  }
  c.phase = Phase::kHandler;
  Watch(c, 0);  // no reading while the handler runs; pipelined bytes wait in the socket
  q_cv.notify_one();
}

void Server::Impl::Flush(Conn& c, int64_t now) {
  for (;;) {
    if (c.out_off == c.out.size()) {
      c.out.clear();
      c.out_off = 0;
      if (c.file && c.file_pos < c.file_end) {
        const size_t piece = static_cast<size_t>(std::min<uint64_t>(c.file_end - c.file_pos, 256 << 10));
        c.out.resize(piece);
        const size_t n = c.file->ReadAt(c.file_pos, c.out.data(), piece);
        if (n == 0) {  // the file shrank: the reply cannot be completed, so the connection ends
          Close(c.id);
          return;
        }
        c.out.resize(n);
        c.file_pos += n;
      } else {
        Finished(c, now);
        return;
      }
    }
    ssize_t n = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        Watch(c, EPOLLOUT);  // not EPOLLRDHUP: a half-closed reader would wake us for ever
        return;
      }
      Close(c.id);
      return;
    }
    c.out_off += static_cast<size_t>(n);
    c.last_ms = now;
  }
}

// A reply is out: close, or start on the next request.
void Server::Impl::Finished(Conn& c, int64_t now) {
  c.file.reset();
  if (c.reserved) {
    body_budget_used -= std::min(body_budget_used, c.reserved);
    c.reserved = 0;
  }
  if (c.close_after_write || !c.keep_alive || stopping) {
    ::shutdown(c.fd, SHUT_WR);
    if (stopping) {
      Close(c.id);
      return;
    }
    c.phase = Phase::kLinger;
    c.in.clear();
    c.last_ms = now;
    Watch(c, EPOLLIN | EPOLLRDHUP);
    return;
  }
  c.phase = Phase::kHead;
  c.req.reset();
  c.scan = 0;
  c.last_ms = now;
  c.idle_since_ms = now;
  c.started_ms = now;
  Watch(c, EPOLLIN | EPOLLRDHUP);
  if (!c.in.empty()) Process(c, now);  // a pipelined request is already here
}

void Server::Impl::TakeDone(int64_t now) {
  std::vector<Done> batch;
  {
    std::lock_guard lock(done_mu);
    batch.swap(done);
  }
  for (Done& d : batch) {
    auto it = conns.find(d.conn_id);
    if (it == conns.end()) continue;  // the client went away meanwhile
    Conn& c = *it->second;
    c.phase = Phase::kWrite;
    c.out = std::move(d.out);
    c.out_off = 0;
    c.file = std::move(d.file);
    c.file_pos = d.file_pos;
    c.file_end = d.file_end;
    c.close_after_write = d.close;
    c.last_ms = now;
    Flush(c, now);
  }
}

void Server::Impl::Sweep(int64_t now) {
  std::vector<uint64_t> idle, slow, drained;
  for (auto& [id, cp] : conns) {
    Conn& c = *cp;
    switch (c.phase) {
      case Phase::kHead:
        if (c.in.empty() && c.req == nullptr) {
          if (now - c.idle_since_ms > o.idle_timeout_ms || stopping) idle.push_back(id);
        } else if (now - c.started_ms > o.header_timeout_ms || stopping) {
          slow.push_back(id);
        }
        break;
      case Phase::kBody:
        if (now > c.body_deadline_ms || stopping) slow.push_back(id);
        break;
      case Phase::kHandler: break;
      case Phase::kWrite:
        if (now - c.last_ms > o.write_timeout_ms) idle.push_back(id);
        break;
      case Phase::kLinger:
        if (now - c.last_ms > kLingerMs || stopping) drained.push_back(id);  // not a timeout: the reply is out
        break;
    }
  }
  for (uint64_t id : idle) {
    ++st_timeouts;
    Close(id);
  }
  for (uint64_t id : drained) Close(id);
  for (uint64_t id : slow) {
    auto it = conns.find(id);
    if (it == conns.end()) continue;
    ++st_timeouts;
    if (stopping) {
      Close(id);
      continue;
    }
    Refuse(*it->second, 408, "request_timeout", "the request did not arrive in time: send it whole, promptly");
  }
  // Forget rate buckets that have refilled.
  if (o.requests_per_second_per_client > 0 && buckets.size() > 1024) {
    std::erase_if(buckets, [now](const auto& kv) { return now - kv.second.at_ms > 60'000; });
  }
}

void Server::Impl::Loop() {
  std::vector<epoll_event> events(256);
  int64_t next_sweep = NowMs() + 250;
  int64_t stop_deadline = 0;
  bool stop_seen = false;
  for (;;) {
    int n = ::epoll_wait(epoll_fd, events.data(), static_cast<int>(events.size()), 100);
    int64_t now = NowMs();
    if (stopping && !stop_seen) {
      stop_seen = true;
      stop_deadline = now + o.shutdown_grace_ms;
      if (!listener_paused) ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, listen_fd, nullptr);
      listener_paused = true;
      Sweep(now);  // idle and half-received connections go at once
    }
    for (int i = 0; i < n; ++i) {
      const uint64_t id = events[static_cast<size_t>(i)].data.u64;
      const uint32_t ev = events[static_cast<size_t>(i)].events;
      if (id == kListenerId) {
        if (!stopping) Accept(now);
        continue;
      }
      if (id == kWakeId) {
        uint64_t v;
        ssize_t r = ::read(wake_fd, &v, sizeof v);
        (void)r;
        TakeDone(now);
        continue;
      }
      auto it = conns.find(id);
      if (it == conns.end()) continue;
      Conn& c = *it->second;
      if (ev & (EPOLLERR | EPOLLHUP)) {
        Close(id);
        continue;
      }
      if (ev & EPOLLOUT) {
        Flush(c, now);
        continue;
      }
      if (ev & (EPOLLIN | EPOLLRDHUP)) OnReadable(c, now);
    }
    if (now >= next_sweep) {
      Sweep(now);
      next_sweep = now + 250;
      if (listener_paused && !stopping && now >= listener_resume_ms) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = kListenerId;
        ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listen_fd, &ev);
        listener_paused = false;
      }
    }
    if (stop_seen) {
      if (conns.empty() || now >= stop_deadline) break;
    }
  }
  std::vector<uint64_t> ids;
  for (auto& [id, c] : conns) ids.push_back(id);
  for (uint64_t id : ids) Close(id);
}

// ---- workers ----

void Server::Impl::Work() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(q_mu);
      q_cv.wait(lock, [this] { return workers_stop || queued > 0; });
      if (queued == 0) return;  // stopping and nothing left
      // Round-robin over client addresses: take the next address's oldest request.
      std::string ip = std::move(ring.front());
      ring.pop_front();
      std::deque<Job>& q = queues[ip];
      if (q.empty()) continue;  // cannot happen: an address is in the ring only with jobs
      job = std::move(q.front());
      q.pop_front();
      if (q.empty()) queues.erase(ip);
      else ring.push_back(std::move(ip));
      --queued;
    }
    ++st_busy;
    Done d = Handle(job);
    --st_busy;
    {
      std::lock_guard lock(done_mu);
      done.push_back(std::move(d));
    }
    Wake();
  }
}

Done Server::Impl::Handle(Job& job) {
  Request& req = *job.req;
  Response res;
  bool parsed = true;
  if (req.is_multipart_form_data()) {
    Status st = ParseMultipart(req.get_header_value("content-type"), req.body, &req.files);
    if (!st.ok()) {
      parsed = false;
      res.status = 400;
      res.body = ErrorJson("invalid_argument", st.message());
    }
  }
  if (parsed) {
    try {
      o.handler(req, res);
    } catch (const std::exception& e) {
      LogError(std::string("http: a handler threw: ") + e.what());
      res = Response{};
      res.status = 500;
      res.body = ErrorJson("internal", "internal error; the server log has details");
    } catch (...) {
      res = Response{};
      res.status = 500;
      res.body = ErrorJson("internal", "internal error; the server log has details");
    }
  }
  Done d;
  d.conn_id = job.conn_id;
  d.close = !job.keep_alive || stopping;
  int status = res.status;
  uint64_t length = res.body.size();
  std::vector<std::pair<std::string, std::string>> extra;
  if (res.file && status == 200) {
    const uint64_t size = res.file->size();
    ByteRange range = req.has_header("range") ? ParseRange(req.get_header_value("range"), size) : ByteRange{};
    extra.emplace_back("Accept-Ranges", "bytes");
    if (range.kind == ByteRange::kUnsatisfiable) {
      status = 416;
      res.content_type = "application/json";
      res.body = ErrorJson("range_not_satisfiable", "the Range starts past the end of the file");
      length = res.body.size();
      extra.emplace_back("Content-Range", "bytes */" + std::to_string(size));
      res.file.reset();
    } else if (range.kind == ByteRange::kSatisfiable) {
      status = 206;
      d.file_pos = range.first;
      d.file_end = range.last + 1;
      length = d.file_end - d.file_pos;
      extra.emplace_back("Content-Range", "bytes " + std::to_string(range.first) + "-" + std::to_string(range.last) + "/" +
                                              std::to_string(size));
    } else {
      d.file_pos = 0;
      d.file_end = size;
      length = size;
    }
  } else {
    res.file.reset();
  }
  std::string& out = d.out;
  out.reserve(512 + (res.file ? 0 : res.body.size()));
  out += "HTTP/1.1 " + std::to_string(status) + " " + Reason(status) + "\r\n";
  const bool no_body_status = status == 204 || status == 304 || (status >= 100 && status < 200);
  if (!no_body_status) {
    out += "Content-Type: " + (SafeHeaderText(res.content_type) ? res.content_type : "application/octet-stream") + "\r\n";
    out += "Content-Length: " + std::to_string(length) + "\r\n";
  }
  out += "Date: " + HttpDate() + "\r\n";
  for (const auto& [k, v] : extra) out += k + ": " + v + "\r\n";
  for (const auto& [k, v] : res.headers) {
    if (k.empty() || !std::all_of(k.begin(), k.end(), IsTokenChar) || !SafeHeaderText(v)) continue;  // no response splitting
    out += k + ": " + v + "\r\n";
  }
  out += d.close ? "Connection: close\r\n\r\n" : "Connection: keep-alive\r\n\r\n";
  if (!req.head && !no_body_status) {
    if (res.file) d.file = std::move(res.file);
    else out += res.body;
  } else {
    d.file_pos = d.file_end = 0;
  }
  return d;
}

// ---- lifecycle ----

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() { Stop(); }

Result<std::unique_ptr<Server>> Server::Create(Options options) {
  if (!options.handler) return Status::InvalidArgument("the HTTP server needs a handler");
  if (options.worker_threads < 1) return Status::InvalidArgument("the HTTP server needs at least one worker thread");
  if (options.max_connections < 1) return Status::InvalidArgument("max_connections must be at least 1");
  if (options.max_header_bytes < 1024) return Status::InvalidArgument("max_header_bytes must be at least 1024");
  if (options.requests_per_second_per_client < 0) return Status::InvalidArgument("the request rate limit must not be negative");
  auto impl = std::make_unique<Impl>();
  impl->o = std::move(options);
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Status Server::Start() {
  Impl& m = *impl_;
  if (m.started) return Status::FailedPrecondition("the server is already running");
  // Room for max_connections sockets plus the store, the model and logs.
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0) {
    const rlim_t want = static_cast<rlim_t>(m.o.max_connections) + 256;
    if (lim.rlim_cur < want) {
      rlimit raised = lim;
      raised.rlim_cur = std::min(want, lim.rlim_max);
      if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
    }
    if (lim.rlim_cur < want) {
      const size_t fit = lim.rlim_cur > 512 ? static_cast<size_t>(lim.rlim_cur) - 256 : 256;
      LogWarn("http: the open-file limit (" + std::to_string(lim.rlim_cur) + ") allows " + std::to_string(fit) +
              " connections, not " + std::to_string(m.o.max_connections) + "; raise it with 'ulimit -n' to allow more");
      m.o.max_connections = fit;
    }
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string port_text = std::to_string(m.o.port);
  int rc = ::getaddrinfo(m.o.host.empty() ? nullptr : m.o.host.c_str(), port_text.c_str(), &hints, &res);
  if (rc != 0) return Status::InvalidArgument("cannot resolve --host '" + m.o.host + "': " + ::gai_strerror(rc));
  std::string last_error = "no address";
  int fd = -1;
  bool in_use = false;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    // SO_REUSEADDR lets a restarted server bind while old connections sit in TIME_WAIT; it does not
    // let two servers listen on one port. SO_REUSEPORT would, so it is never set.
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && ::listen(fd, m.o.listen_backlog) == 0) break;
    in_use = in_use || errno == EADDRINUSE;
    last_error = std::strerror(errno);
    ::close(fd);
    fd = -1;
  }
  ::freeaddrinfo(res);
  const std::string where = m.o.host + ":" + port_text;
  if (fd < 0) {
    if (in_use) {
      return Status::Unavailable("cannot listen on " + where + ": the port is already in use by another program (is another " +
                                 "'filesearch serve' running?): stop it or choose another --port");
    }
    return Status::Unavailable("cannot listen on " + where + ": " + last_error);
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  m.bound_port = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                                   : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  m.listen_fd = fd;
  m.epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  m.wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (m.epoll_fd < 0 || m.wake_fd < 0) {
    ::close(fd);
    return Status::IOError(std::string("cannot create the event loop: ") + std::strerror(errno));
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenerId;
  ::epoll_ctl(m.epoll_fd, EPOLL_CTL_ADD, fd, &ev);
  ev.data.u64 = kWakeId;
  ::epoll_ctl(m.epoll_fd, EPOLL_CTL_ADD, m.wake_fd, &ev);
  m.stopping = false;
  m.workers_stop = false;
  m.started = true;
  for (int i = 0; i < m.o.worker_threads; ++i) m.workers.emplace_back([&m] { m.Work(); });
  m.io = std::thread([&m] { m.Loop(); });
  return Status::Ok();
}

int Server::port() const { return impl_->bound_port; }

void Server::Stop() {
  Impl& m = *impl_;
  if (!m.started) return;
  m.stopping = true;
  m.Wake();
  if (m.io.joinable()) m.io.join();
  {
    std::lock_guard lock(m.q_mu);
    m.workers_stop = true;
    // Requests still queued are dropped: their connections are closed already.
    m.queues.clear();
    m.ring.clear();
    m.queued = 0;
  }
  m.q_cv.notify_all();
  for (auto& t : m.workers) t.join();
  m.workers.clear();
  ::close(m.listen_fd);
  ::close(m.epoll_fd);
  ::close(m.wake_fd);
  m.listen_fd = m.epoll_fd = m.wake_fd = -1;
  m.started = false;
}

Stats Server::stats() const {
  Stats s;
  s.open_connections = impl_->st_open;
  {
    std::lock_guard lock(impl_->q_mu);
    s.queued_requests = impl_->queued;
  }
  s.busy_workers = impl_->st_busy;
  s.accepted_connections = impl_->st_accepted;
  s.refused_connections = impl_->st_refused;
  s.rate_limited_requests = impl_->st_rate;
  s.timed_out_connections = impl_->st_timeouts;
  return s;
}

}  // namespace fs::server::http
