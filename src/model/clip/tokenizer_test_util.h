// Internal header of model/clip's tokenizer tests (tests only): a temporary folder, environment
// look-ups and a command runner for the Hugging Face oracles. Not thread-safe.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "core/check.h"
#include "core/utf8.h"

namespace fs::clip::testing {

// A fresh folder under /tmp, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/clip_tokenizer_test_XXXXXX";
    FS_CHECK(::mkdtemp(tmpl) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  // Writes `data` to path()/name and returns that path.
  std::string Write(const std::string& name, std::string_view data) const {
    const std::string p = path_ + "/" + name;
    std::ofstream f(p, std::ios::binary);
    f.write(data.data(), static_cast<std::streamsize>(data.size()));
    FS_CHECK(f.good());
    return p;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline std::string EnvOr(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

inline bool Exists(const std::string& path) {
  return ::access(path.c_str(), F_OK) == 0;
}

// Runs `command` with the shell, returns its stdout; *rc gets its exit status (-1: not started).
inline std::string Capture(const std::string& command, int* rc) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) {
    *rc = -1;
    return out;
  }
  char buf[1 << 16];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) out.append(buf, n);
  *rc = ::pclose(pipe);
  return out;
}

// Why a Hugging Face oracle cannot run, or "" when it can: `file` (from ../shared) is missing, node
// is not installed, or the npm `package` is not in `node_dir`/node_modules.
inline std::string NodeOracleMissing(const std::string& file, const std::string& node_dir,
                                     const std::string& package) {
  if (!Exists(file)) return "no " + file + " (FILESEARCH_SHARED_DIR)";
  int rc = 0;
  Capture("node --version >/dev/null 2>&1", &rc);
  if (rc != 0) return "node is not installed: the Hugging Face reference needs it";
  if (!Exists(node_dir + "/node_modules/" + package + "/package.json")) {
    return "the npm package " + package + " is not installed in " + node_dir +
           "/node_modules: run scripts/node-deps";
  }
  return "";
}

// Each invalid UTF-8 byte of `s` replaced by U+FFFD (what the tokenizers do with invalid input).
inline std::string ReplaceInvalidUtf8(std::string_view s) {
  std::string out;
  size_t pos = 0;
  while (pos < s.size()) AppendUtf8(NextCodePoint(s, &pos), &out);
  return out;
}

}  // namespace fs::clip::testing
