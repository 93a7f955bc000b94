#include "cache/cache_servers_fixture.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/spawn_util.h"

namespace fs::cache::testing {
namespace {

// The first executable `name` on $PATH, or "".
std::string OnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

bool Accepts(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// moto is importable by this python3 (the module, not a path, is what `-m` needs).
bool HasMoto(const std::string& python) {
  const std::string cmd = python + " -c 'import moto.server' >/dev/null 2>&1";
  return std::system(cmd.c_str()) == 0;
}

}  // namespace

std::unique_ptr<ServerProcess> ServerProcess::Start(const std::string& kind, std::string* why, bool* skip,
                                                    const std::string& redis_dir) {
  *skip = true;
  const int port = fs::testing::FreePort();
  std::vector<std::string> argv;
  if (kind == "redis") {
    const std::string redis = OnPath("redis-server");
    if (redis.empty()) {
      *why = "redis-server is not installed (scripts/setup installs it)";
      return nullptr;
    }
    argv = {redis, "--bind", "127.0.0.1", "--port", std::to_string(port), "--save", "", "--daemonize", "no",
            "--protected-mode", "yes"};
    if (redis_dir.empty()) {
      argv.insert(argv.end(), {"--appendonly", "no"});
    } else {
      argv.insert(argv.end(), {"--appendonly", "yes", "--appendfsync", "always", "--dir", redis_dir});
    }
  } else {
    // The project's .venv (scripts/py-deps) first, then python3 on PATH.
    const char* source = std::getenv("FILESEARCH_SOURCE_DIR");
    std::string python = std::string(source ? source : ".") + "/.venv/bin/python3";
    if (::access(python.c_str(), X_OK) != 0 || !HasMoto(python)) python = OnPath("python3");
    if (python.empty() || !HasMoto(python)) {
      *why = "moto (server mode) is not installed for python3: run scripts/py-deps";
      return nullptr;
    }
    argv = {python, "-m", "moto.server", "-H", "127.0.0.1", "-p", std::to_string(port)};
  }
  *skip = false;
  const std::string log =
      "/tmp/fs_" + kind + "_" + std::to_string(::getpid()) + "_" + std::to_string(port) + ".log";
  ::unlink(log.c_str());
  std::unique_ptr<ServerProcess> server(new ServerProcess(kind, -1, port, log, std::move(argv)));
  if (!server->Launch(why)) return nullptr;
  return server;
}

bool ServerProcess::Launch(std::string* why) {
  pid_ = fs::testing::Spawn(argv_, log_, /*die_with_parent=*/true);
  if (pid_ < 0) {
    *why = "fork failed";
    return false;
  }
  // Ready once it accepts a connection; a child that exited (port taken, bad flag) is reaped.
  int status = 0;
  bool exited = false;
  for (int waited_ms = 0; waited_ms < 30000 && !exited; waited_ms += 25) {
    if (Accepts(port_)) return true;
    exited = ::waitpid(pid_, &status, WNOHANG) == pid_;
    if (!exited) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  if (exited) pid_ = -1;
  *why = kind_ + (exited ? " server exited at start: " : " server did not accept connections within 30 s: ") +
         ReadAll(log_).substr(0, 2000);
  return false;
}

bool ServerProcess::Restart(std::string* why) {
  Kill();
  return Launch(why);
}

std::string ServerProcess::url() const {
  return (kind_ == "redis" ? "redis://127.0.0.1:" : "http://127.0.0.1:") + std::to_string(port_);
}

void ServerProcess::Kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

ServerProcess::~ServerProcess() {
  fs::testing::StopChild(pid_);
  ::unlink(log_.c_str());
}

const SharedServer& Shared(const std::string& kind) {
  static SharedServer* redis = nullptr;
  static SharedServer* dynamo = nullptr;
  SharedServer*& slot = kind == "redis" ? redis : dynamo;
  if (slot == nullptr) {
    slot = new SharedServer;  // never freed: tests may use it until exit
    slot->server = ServerProcess::Start(kind, &slot->why, &slot->skip).release();
    if (kind != "redis") {
      ::setenv("AWS_ACCESS_KEY_ID", "testing", 1);
      ::setenv("AWS_SECRET_ACCESS_KEY", "testing", 1);
      ::setenv("AWS_REGION", "us-east-1", 1);
    }
  }
  return *slot;
}

}  // namespace fs::cache::testing
