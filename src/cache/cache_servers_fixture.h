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
  // `redis_dir`: a Redis that keeps its data there in an append-only file synced on every write
  // (the queue server a test kills and restarts); empty: no persistence.
  static std::unique_ptr<ServerProcess> Start(const std::string& kind, std::string* why, bool* skip,
                                              const std::string& redis_dir = "");
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  int port() const { return port_; }
  // redis://127.0.0.1:PORT or http://127.0.0.1:PORT
  std::string url() const;
  // Stops the server now (SIGKILL: a cache that vanishes mid-run).
  void Kill();
  // Starts it again, on the same port with the same flags, after Kill(); false (why set) when it did
  // not accept connections within 30 s.
  bool Restart(std::string* why);
  // The running server's process (-1 after Kill): a test may SIGSTOP and SIGCONT it.
  pid_t pid() const { return pid_; }

 private:
  ServerProcess(std::string kind, pid_t pid, int port, std::string log, std::vector<std::string> argv)
      : kind_(std::move(kind)), pid_(pid), port_(port), log_(std::move(log)), argv_(std::move(argv)) {}
  // Spawns argv_ and waits until the port accepts; false (why set) when it does not.
  bool Launch(std::string* why);
  std::string kind_;
  pid_t pid_;
  int port_;
  std::string log_;
  std::vector<std::string> argv_;
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
