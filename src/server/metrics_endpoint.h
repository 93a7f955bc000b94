// MetricsEndpoint: a listener that serves GET /metrics only, for processes without the API (the
// standalone `worker --metrics-port`). Same transport and limits as `serve` (http_server.h), two
// worker threads; any other path is 404, any other method 405.
// Ownership: owns its socket and threads. Thread-safety: Start/Stop from one thread; `render` is
// called on the transport's threads and must be thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/status.h"

namespace fs::server {

class MetricsEndpoint {
 public:
  // Binds host:port (0 = any free port) and starts serving `render()`'s text (Prometheus format).
  // Unavailable (with the address) when the port is taken.
  static Result<std::unique_ptr<MetricsEndpoint>> Start(const std::string& host, int port,
                                                        std::function<std::string()> render);
  ~MetricsEndpoint();
  MetricsEndpoint(const MetricsEndpoint&) = delete;
  MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;
  int port() const;
  void Stop();  // idempotent

 private:
  struct Impl;
  explicit MetricsEndpoint(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace fs::server
