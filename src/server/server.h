// Server: the HTTP API and web UI of `filesearch serve`. Routes: GET/POST /search, POST /embed,
// GET /documents/{id}[/thumbnail|/content], /healthz, /readyz, /metrics, /config, the UI at /, and
// POST /admin/vector-search (admin tokens only), the run-time switch of vector search.
// Every reply to a failed request is JSON {"error":{"code","message"}} with a stable code; handlers
// never let an exception out (it becomes a 500 `internal`).
//
// Ownership: the Server borrows `engine` and `embedder` (both must outlive it); it owns its
// listening socket, its event loop and worker threads. Thread-safety: Start/Stop from one controlling
// thread; requests are served concurrently on `threads` workers (Engine::Search is thread-safe; calls to
// the QueryEmbedder are serialised by the server).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "engine/embedder.h"
#include "engine/engine.h"
#include "server/auth.h"
#include "server/metrics.h"
#include "storage/s3_client.h"

namespace fs::server {

struct ServerLimits {
  uint64_t max_body_bytes = 16ull << 20;       // request bodies (JSON, uploads); 413 above
  uint64_t max_image_bytes = 10ull << 20;      // one image (upload, base64, imageUrl file)
  uint64_t max_image_pixels = 40'000'000;      // width x height read from the image header
  size_t max_query_bytes = 1024;               // `q`
  size_t max_vector_dim = 4096;                // imageEmbedding entries
  uint64_t max_thumbnail_bytes = 64ull << 20;  // images read to make a thumbnail up to this size
  uint64_t max_content_bytes = 256ull << 20;   // /documents/{id}/content
  int request_timeout_s = 30;                  // a body must arrive (plus 1 s per 64 KiB), a reply be read, in this
  // The front door (see http_server.h): what one client, or all of them, may hold.
  int header_timeout_s = 10;                   // a request head must arrive whole within this (slowloris): 408
  int idle_timeout_s = 60;                     // keep-alive connections with no request are closed after this
  size_t max_connections = 8192;               // open connections in all (the open-file limit is raised to fit)
  size_t max_connections_per_client = 256;     // per client address; 0 = no limit
  double requests_per_second_per_client = 0;   // token-bucket rate per client address; 0 = no limit
  double request_burst_per_client = 0;         // bucket size; 0 = 2x the rate, at least 10
  size_t max_request_line_bytes = 16 << 10;    // request line (the URL); 414 above
  size_t max_header_bytes = 64 << 10;          // all request headers; 431 above (tokens up to ~60 KB reach auth)
  size_t max_header_count = 100;               // header lines; 431 above
  int listen_backlog = 1024;                   // kernel accept queue (capped by net.core.somaxconn)
};

// Whether vector search (image upload, find-similar, imageEmbedding, text-to-image) is offered, and
// why not when it is off: `reason` is shown to users ("" = none given).
struct VectorSearchSwitch {
  bool enabled = true;
  std::string reason;
};

// Parses a run-time config file (`serve --runtime-config FILE`, re-read on SIGHUP):
//   {"vector_search": {"enabled": false, "reason": "image search is being repaired"}}
// InvalidArgument says what is wrong with the text.
Result<VectorSearchSwitch> ParseRuntimeConfig(std::string_view json);

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                  // 0 = any free port (see Server::port())
  Engine* engine = nullptr;         // required, borrowed
  QueryEmbedder* embedder = nullptr;  // optional, borrowed: text-to-vector and image search; Create
                                      // makes it the engine's query embedder too
  bool vector_search = true;        // at start; false hides every vector feature (API refuses, UI hides)
  std::string vector_search_reason;  // why it is off at start, shown to users ("" = none given)
  AuthOptions auth;                 // auth.disabled must be set explicitly to turn auth off
  bool admin_without_auth = false;  // with auth.disabled: allow /admin/ requests from anyone (else 403)
  bool metrics_open = true;         // /metrics without a token
  std::vector<std::string> storage_roots;  // folders /embed imageUrl may name (file://)
  std::vector<std::string> s3_buckets;     // S3 buckets /embed imageUrl may name (s3://bucket/key)
  storage::S3Options s3;                   // endpoint, region, credentials for s3_buckets (unused without)
  ServerLimits limits;
  int threads = 32;                 // worker threads (concurrent requests)
  std::string model_note;           // why there is no query embedder, shown by the UI ("" = default text)
};

class Server {
 public:
  // Validates the options (keys, roots, bucket names, S3 endpoint) and prepares routes; does not
  // bind and does not contact S3.
  static Result<std::unique_ptr<Server>> Create(const ServerOptions& options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds host:port and starts serving on a background thread. Unavailable if the port is taken.
  Status Start();
  // The bound port (useful with port 0); 0 before Start.
  int port() const;
  // Stops accepting, finishes in-flight requests, joins the threads. Idempotent.
  void Stop();
  // Turns vector search on or off from the next request on (SIGHUP reload, admin requests);
  // `who` names the source in the log. Thread-safe.
  void SetVectorSearch(const VectorSearchSwitch& state, const std::string& who);
  VectorSearchSwitch vector_search() const;
  // The registry /metrics renders. `serve --watch` counts its indexing into it
  // (server/indexing_metrics.h); thread-safe.
  Metrics& metrics();

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace fs::server
