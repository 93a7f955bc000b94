// Test helper (test-only library fs_cache_testing): real servers for the shared embedding caches.
// Redis: Debian's redis-server (scripts/setup) with no persistence. DynamoDB: the PyPI package
// moto in server mode (scripts/py-deps pins it), `python3 -m moto.server`. Each runs on 127.0.0.1
// on a free port and is stopped (SIGTERM, then SIGKILL) when destroyed; the child also dies with
// the test process. Not thread-safe; one owner. Start a server once per test binary (a static in
// the test's environment or suite) and give each test its own keys or table.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

namespace fs::cache::testing {

class ServerProcess {
 public:
  // Starts `kind` ("redis" or "dynamodb"). nullptr with *skip = true and the reason in *why when
  // the program is not installed (the test should GTEST_SKIP), or *skip = false when it is
  // installed but did not start within 30 s.
  static std::unique_ptr<ServerProcess> Start(const std::string& kind, std::string* why, bool* skip);
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  int port() const { return port_; }
  // redis://127.0.0.1:PORT or http://127.0.0.1:PORT
  std::string url() const;
  // Stops the server now (SIGKILL: a cache that vanishes mid-run).
  void Kill();

 private:
  ServerProcess(std::string kind, pid_t pid, int port, std::string log)
      : kind_(std::move(kind)), pid_(pid), port_(port), log_(std::move(log)) {}
  std::string kind_;
  pid_t pid_;
  int port_;
  std::string log_;
};

// The server of `kind` shared by every test of this binary: started on first use (and, for
// "dynamodb", with fake AWS credentials and region put in the environment: moto takes any), never
// stopped before exit (the child dies with the process). server is null when it could not start:
// skip says whether that is because it is not installed (GTEST_SKIP) and why says why.
struct SharedServer {
  ServerProcess* server = nullptr;
  std::string why;
  bool skip = false;
};
const SharedServer& Shared(const std::string& kind);

}  // namespace fs::cache::testing
