#include "server/metrics_endpoint.h"

#include "server/http_server.h"

namespace fs::server {

struct MetricsEndpoint::Impl {
  std::unique_ptr<http::Server> http;
};

MetricsEndpoint::MetricsEndpoint(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MetricsEndpoint::~MetricsEndpoint() { Stop(); }

Result<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::Start(const std::string& host, int port,
                                                                std::function<std::string()> render) {
  http::Options o;
  o.host = host;
  o.port = port;
  o.worker_threads = 2;
  o.max_connections = 64;
  o.max_connections_per_client = 16;
  o.max_body_bytes = 4096;  // a scrape has no body
  o.handler = [render = std::move(render)](http::Request& req, http::Response& res) {
    res.content_type = "text/plain; charset=utf-8";
    if (req.path != "/metrics") {
      res.status = 404;
      res.body = "not found: this port serves /metrics only\n";
      return;
    }
    if (req.method != "GET") {
      res.status = 405;
      res.headers.emplace_back("Allow", "GET, HEAD");
      res.body = "method not allowed: GET /metrics\n";
      return;
    }
    res.content_type = "text/plain; version=0.0.4; charset=utf-8";
    res.body = render();
  };
  FS_ASSIGN_OR_RETURN(auto http, http::Server::Create(std::move(o)));
  FS_RETURN_IF_ERROR(http->Start());
  auto impl = std::make_unique<Impl>();
  impl->http = std::move(http);
  return std::unique_ptr<MetricsEndpoint>(new MetricsEndpoint(std::move(impl)));
}

int MetricsEndpoint::port() const { return impl_->http ? impl_->http->port() : 0; }

void MetricsEndpoint::Stop() {
  if (impl_ && impl_->http) impl_->http->Stop();
}

}  // namespace fs::server
