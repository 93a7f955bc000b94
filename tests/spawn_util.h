// Test helper: start the filesearch binary (or any program) as a child process.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <csignal>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace fs::testing {

// fork + execv; the child's stdout and stderr go to `output` (appended), or /dev/null when empty.
// With `die_with_parent`, the child is killed when the test process dies (servers a test starts).
inline pid_t Spawn(const std::vector<std::string>& argv, const std::string& output = "", bool die_with_parent = false) {
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) {
    if (die_with_parent) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) _exit(1);
    }
    int out = output.empty() ? ::open("/dev/null", O_WRONLY) : ::open(output.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(out, 1);
    ::dup2(out, 2);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    _exit(127);
  }
  return pid;
}

// Stops a child: SIGTERM, up to 2 s to exit, then SIGKILL; reaps it either way.
inline void StopChild(pid_t pid) {
  if (pid <= 0) return;
  ::kill(pid, SIGTERM);
  int status = 0;
  for (int waited_ms = 0; waited_ms < 2000; waited_ms += 20) {
    if (::waitpid(pid, &status, WNOHANG) == pid) return;
    ::usleep(20000);
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
}

// Spawn, then wait: true when the program exited with status 0.
inline bool RunToSuccess(const std::vector<std::string>& argv) {
  const pid_t pid = Spawn(argv);
  int status = 0;
  if (pid <= 0 || ::waitpid(pid, &status, 0) != pid) return false;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// Spawn, wait, and read what the program printed (stdout and stderr, through the file `log`, which is
// replaced) into *out. Returns its exit status, or 128 + the signal that ended it.
inline int RunCapture(const std::vector<std::string>& argv, const std::string& log, std::string* out) {
  ::unlink(log.c_str());
  const pid_t pid = Spawn(argv, log);
  int status = 0;
  ::waitpid(pid, &status, 0);
  std::ifstream f(log);
  std::stringstream ss;
  ss << f.rdbuf();
  *out = ss.str();
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// The shared folder (corpus, models): $FILESEARCH_SHARED_DIR, else ../shared.
inline std::string SharedDir() {
  const char* env = std::getenv("FILESEARCH_SHARED_DIR");
  return std::string(env != nullptr && *env != '\0' ? env : "../shared");
}

// A free port on 127.0.0.1 (bound, read back, released: another program could take it meanwhile).
inline int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

}  // namespace fs::testing
