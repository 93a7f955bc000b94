// Internal header of server/: an event-driven HTTP/1.1 server (epoll, one I/O thread, a worker pool).
// The I/O thread owns every socket: it accepts, reads request heads and bodies under limits and
// deadlines, and writes replies; a connection costs a socket and a small buffer, never a thread, so
// idle, slow (slowloris) and greedy clients cannot take the workers. Only complete requests reach
// the workers, and they are handed out round-robin by client address, so one client's burst waits
// behind everyone else's single request.
//
// Thread-safety: Start/Stop/stats from one controlling thread (stats from any). The handler runs
// on the worker threads, concurrently; it must not throw (an exception becomes a 500).
// Ownership: the server owns its listening socket, the connections and its threads.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace fs::server::http {

// One part of a multipart/form-data body.
struct FormPart {
  std::string name;
  std::string filename;
  std::string content_type;
  std::string content;
};

struct Request {
  std::string method;  // GET, POST, ... (HEAD is served as GET without a body)
  std::string target;  // the raw request-target, "/search?q=x"
  std::string path;    // percent-decoded path, "/search"
  std::multimap<std::string, std::string> params;            // decoded query parameters
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, in order
  std::string body;                                          // decoded (chunked bodies are joined)
  std::multimap<std::string, FormPart> files;                // multipart/form-data parts by name
  std::vector<std::string> matches;                          // set by the caller's router
  std::string remote_ip;
  bool head = false;  // a HEAD request: the reply's body is dropped

  // The first header of that name (case-insensitive), or "".
  std::string get_header_value(std::string_view name) const;
  bool has_header(std::string_view name) const;
  bool has_param(const std::string& key) const { return params.count(key) != 0; }
  std::string get_param_value(const std::string& key) const;
  bool is_multipart_form_data() const;
};

// A body read in pieces (a file): the server streams it and serves Range requests from it.
class BodySource {
 public:
  virtual ~BodySource() = default;
  virtual uint64_t size() const = 0;
  // Up to n bytes at offset; fewer (0 at the end, or when the source shrank) ends the reply early.
  virtual size_t ReadAt(uint64_t offset, char* out, size_t n) const = 0;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers, as given
  std::string body;
  // When set (and status is 200), streamed instead of `body`; a single `Range: bytes=` request gets
  // 206 with that part, a range past the end 416, anything else the whole body.
  std::shared_ptr<const BodySource> file;
};

// Every limit, with its default. Zero turns a per-client limit off.
struct Options {
  std::string host = "127.0.0.1";
  int port = 8080;               // 0 = any free port
  int worker_threads = 32;       // requests handled at once
  int listen_backlog = 1024;     // pending connections the kernel queues (capped by net.core.somaxconn)
  size_t max_connections = 8192;          // open connections in all; above, new ones get 503 and close
  size_t max_connections_per_client = 256;  // per remote address; above, 429 and close
  double requests_per_second_per_client = 0;  // token bucket refill per remote address; 0 = no limit
  double request_burst_per_client = 0;        // bucket size (default: 2x the rate, at least 10)
  size_t max_queued_requests = 4096;  // complete requests waiting for a worker; above, 503
  size_t max_request_line_bytes = 16 << 10;  // method + target + version; 414 above
  size_t max_header_bytes = 64 << 10;        // the whole head; 431 above
  size_t max_header_count = 100;             // header lines; 431 above
  uint64_t max_body_bytes = 16ull << 20;     // decoded body; 413 above (from Content-Length, unread)
  uint64_t max_buffered_body_bytes = 256ull << 20;  // bodies of all connections at once; 503 above
  int header_timeout_ms = 10'000;  // a head must arrive whole this long after its first byte: 408
  int body_timeout_ms = 30'000;    // plus 1 s per 64 KiB of declared body: 408
  int idle_timeout_ms = 60'000;    // a connection with no request in progress is closed after this
  int write_timeout_ms = 30'000;   // a reply the client stops reading for this long is dropped
  int shutdown_grace_ms = 1'500;   // Stop() lets in-flight replies finish this long, then closes all
  // Called on the worker threads for every complete request. Must not throw.
  std::function<void(Request&, Response&)> handler;
  // Called (I/O thread) when the transport itself refuses a request or connection, with the status
  // and the stable error code it sent ("header_too_large", "too_many_connections", ...).
  std::function<void(int status, std::string_view code)> on_refused;
};

struct Stats {
  uint64_t open_connections = 0;
  uint64_t queued_requests = 0;
  uint64_t busy_workers = 0;
  uint64_t accepted_connections = 0;
  uint64_t refused_connections = 0;  // over max_connections or the per-client limit
  uint64_t rate_limited_requests = 0;
  uint64_t timed_out_connections = 0;  // header, body, idle or write deadline
};

class Server {
 public:
  // Validates the options; binds nothing.
  static Result<std::unique_ptr<Server>> Create(Options options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds host:port (no SO_REUSEPORT: a second server on a busy port fails here with a message
  // saying so), raises the open-file limit to fit max_connections, and starts the threads.
  Status Start();
  int port() const;
  // Stops accepting, lets in-flight requests finish for shutdown_grace_ms, closes every connection
  // and joins the threads. Idle and half-sent connections do not delay it. Idempotent.
  void Stop();
  Stats stats() const;

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// ---- Parsing, exposed for tests ----

// 0-15 for a hex digit, -1 otherwise (percent escapes, chunk sizes).
int HexDigitValue(char c);

// Percent-decodes `s` ('+' becomes a space when `plus_is_space`). False on a bad escape.
bool PercentDecode(std::string_view s, bool plus_is_space, std::string* out);
// Splits a query string into decoded key/value pairs. False on a bad escape.
bool ParseQuery(std::string_view query, std::multimap<std::string, std::string>* out);
// Parses a multipart/form-data body given the Content-Type header value. Error on a malformed body.
Status ParseMultipart(std::string_view content_type, std::string_view body, std::multimap<std::string, FormPart>* out);

// A single byte range of a body of `size` bytes, from a Range header value.
struct ByteRange {
  enum Kind { kNone, kSatisfiable, kUnsatisfiable } kind = kNone;  // kNone: serve the whole body
  uint64_t first = 0;
  uint64_t last = 0;  // inclusive
};
ByteRange ParseRange(std::string_view header, uint64_t size);

}  // namespace fs::server::http
