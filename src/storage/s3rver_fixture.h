// Test helper (test-only library fs_storage_testing): a real S3 server for tests. Runs the npm
// package s3rver (tests/node/node_modules, installed by scripts/node-deps) under node on 127.0.0.1
// on a free port, over a fresh temporary directory, with the given buckets created at start, and
// stops it (SIGTERM, then SIGKILL) and deletes the directory when destroyed. The child also dies
// with the test process. Not thread-safe; one owner.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "storage/s3_client.h"

namespace fs::storage::testing {

class S3rver {
 public:
  // nullptr with *skip = true and the reason in *why when node or s3rver is not installed (the
  // test should GTEST_SKIP), or *skip = false when it is installed but failed to start.
  static std::unique_ptr<S3rver> Start(const std::vector<std::string>& buckets, std::string* why, bool* skip);
  ~S3rver();
  S3rver(const S3rver&) = delete;
  S3rver& operator=(const S3rver&) = delete;

  int port() const { return port_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // Endpoint, region us-east-1 and s3rver's built-in account (S3RVER / S3RVER).
  S3Options ClientOptions() const;

 private:
  S3rver(pid_t pid, int port, std::string dir) : pid_(pid), port_(port), dir_(std::move(dir)) {}
  pid_t pid_;
  int port_;
  std::string dir_;
};

}  // namespace fs::storage::testing
