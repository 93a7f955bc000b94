#include "storage/s3rver_fixture.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace fs::storage::testing {
namespace {

namespace stdfs = std::filesystem;

std::string FindNode() {
  if (const char* given = std::getenv("FILESEARCH_NODE"); given && *given) return given;
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const std::string candidate = (dir.empty() ? "." : dir) + "/node";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

std::unique_ptr<S3rver> S3rver::Start(const std::vector<std::string>& buckets, std::string* why, bool* skip) {
  *skip = true;
  const std::string node = FindNode();
  if (node.empty()) {
    *why = "node is not installed (scripts/setup installs it): the S3 tests need s3rver, which runs on node";
    return nullptr;
  }
  const char* source = std::getenv("FILESEARCH_SOURCE_DIR");
  const std::string script =
      std::string(source ? source : ".") + "/tests/node/node_modules/s3rver/bin/s3rver.js";
  if (!stdfs::exists(script)) {
    *why = "s3rver is not installed at " + script + ": run scripts/node-deps (or set FILESEARCH_SOURCE_DIR)";
    return nullptr;
  }
  *skip = false;
  std::string tmpl = (stdfs::temp_directory_path() / "fs_s3rver_XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) {
    *why = "cannot create a temporary directory for s3rver";
    return nullptr;
  }
  const std::string dir = tmpl;
  const std::string data = dir + "/data", log = dir + "/s3rver.log";
  stdfs::create_directories(data);
  // s3rver 3.7 makes ListObjectsV2 continuation tokens with DES, which OpenSSL 3 only offers
  // through its legacy provider (node >= 17 takes this flag).
  std::vector<std::string> argv = {node, "--openssl-legacy-provider", script, "-d", data, "-a", "127.0.0.1",
                                   "-p", "0", "-s"};
  for (const auto& b : buckets) {
    argv.push_back("--configure-bucket");
    argv.push_back(b);
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test
    if (::getppid() != parent) _exit(1);
    const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(out, 1);
    ::dup2(out, 2);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    _exit(127);
  }
  if (pid < 0) {
    *why = "fork failed";
    stdfs::remove_all(dir);
    return nullptr;
  }
  std::unique_ptr<S3rver> server(new S3rver(pid, 0, dir));
  // It prints "S3rver listening on 127.0.0.1:PORT" once it accepts connections (node starts slowly
  // on a busy machine: allow a minute).
  const std::string marker = "listening on 127.0.0.1:";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    const std::string text = ReadAll(log);
    const size_t at = text.find(marker);
    if (at != std::string::npos && text.find('\n', at) != std::string::npos) {
      server->port_ = std::atoi(text.c_str() + at + marker.size());
      if (server->port_ > 0) return server;
    }
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      server->pid_ = -1;
      *why = "s3rver exited at start: " + text.substr(0, 2000);
      return nullptr;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  *why = "s3rver did not start within 60 s: " + ReadAll(log).substr(0, 2000);
  return nullptr;
}

S3rver::~S3rver() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    int status = 0;
    bool gone = false;
    for (int i = 0; i < 100 && !gone; ++i) {
      gone = ::waitpid(pid_, &status, WNOHANG) == pid_;
      if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (!gone) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
    }
  }
  std::error_code ec;
  stdfs::remove_all(dir_, ec);
}

S3Options S3rver::ClientOptions() const {
  S3Options o;
  o.endpoint = endpoint();
  o.region = "us-east-1";
  o.access_key_id = "S3RVER";
  o.secret_access_key = "S3RVER";
  o.connect_timeout_ms = 2000;
  o.request_timeout_ms = 10000;
  return o;
}

}  // namespace fs::storage::testing
