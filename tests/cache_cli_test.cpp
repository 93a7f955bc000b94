// The embedding cache through the binary: `cache setup` on the DynamoDB emulator (twice:
// idempotent), `cache status` on a live and a dead Redis, and two data directories (two workers)
// indexing the same bytes through one Redis: the second embeds nothing, and `index` and `stats`
// say which cache answered and how often. Servers: cache_servers_fixture (once for this binary).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "cache/cache_servers_fixture.h"
#include "spawn_util.h"

namespace fs {
namespace {

namespace stdfs = std::filesystem;
using cache::testing::ServerProcess;
using cache::testing::Shared;

class CacheCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = stdfs::weakly_canonical(::testing::TempDir()).string() + "/cache_cli_test_" +
            std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    stdfs::remove_all(base_);
    stdfs::create_directories(base_ + "/files");
  }
  void TearDown() override { stdfs::remove_all(base_); }
  int Run(const std::vector<std::string>& args, std::string* out) {
    std::vector<std::string> argv = {FILESEARCH_BINARY, "--no-progress"};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::RunCapture(argv, base_ + "/out.log", out);
  }
  std::string base_;
};

TEST_F(CacheCliTest, SetupCreatesTheTableOnceWithTtl) {
  const auto& s = Shared("dynamodb");
  if (!s.server) {
    if (s.skip) GTEST_SKIP() << s.why;
    FAIL() << s.why;
  }
  std::string out;
  const std::vector<std::string> flags = {"--cache", "dynamodb://cli-cache", "--cache-endpoint",
                                          s.server->url()};
  std::vector<std::string> setup = flags;
  setup.insert(setup.end(), {"cache", "setup"});
  ASSERT_EQ(Run(setup, &out), 0) << out;
  EXPECT_NE(out.find("created table cli-cache; TTL enabled on attribute ttl"), std::string::npos) << out;
  ASSERT_EQ(Run(setup, &out), 0) << out;
  EXPECT_NE(out.find("table cli-cache exists; TTL on attribute ttl already ENABLED"), std::string::npos)
      << out;
  std::vector<std::string> status = flags;
  status.insert(status.end(), {"cache", "status"});
  ASSERT_EQ(Run(status, &out), 0) << out;
  EXPECT_NE(out.find("reachable:  yes"), std::string::npos) << out;
}

TEST_F(CacheCliTest, TwoWorkersShareOneRedis) {
  const auto& s = Shared("redis");
  if (!s.server) {
    if (s.skip) GTEST_SKIP() << s.why;
    FAIL() << s.why;
  }
  for (int i = 0; i < 3; ++i) {
    std::ofstream(base_ + "/files/img" + std::to_string(i) + ".png", std::ios::binary) << "\x89PNG\r\n\x1A\n"
                                                                                       << base_ << i;
  }
  std::string out;
  ASSERT_EQ(Run({"--cache", s.server->url(), "--data-dir", base_ + "/one", "index", "--test-embedder",
                 base_ + "/files"},
                &out),
            0)
      << out;
  EXPECT_NE(out.find("embedding cache (redis): 0 hits, 3 misses (0.0% hits), 0 errors"), std::string::npos)
      << out;
  ASSERT_EQ(Run({"--cache", s.server->url(), "--data-dir", base_ + "/two", "index", "--test-embedder",
                 base_ + "/files"},
                &out),
            0)
      << out;
  EXPECT_NE(out.find("3 images embedded (3 from the embedding cache)"), std::string::npos) << out;
  EXPECT_NE(out.find("embedding cache (redis): 3 hits, 0 misses (100.0% hits), 0 errors"), std::string::npos)
      << out;
  ASSERT_EQ(Run({"--cache", s.server->url(), "--data-dir", base_ + "/two", "stats"}, &out), 0) << out;
  EXPECT_NE(out.find("embedding cache: redis,"), std::string::npos) << out;
}

TEST_F(CacheCliTest, ACacheThatIsDownIsReportedAndIndexingGoesOn) {
  std::string why;
  bool skip = false;
  auto dead = ServerProcess::Start("redis", &why, &skip);
  if (!dead) {
    if (skip) GTEST_SKIP() << why;
    FAIL() << why;
  }
  const std::string url = dead->url();
  dead->Kill();
  std::string out;
  EXPECT_EQ(Run({"--cache", url, "cache", "status"}, &out), 1) << out;
  EXPECT_NE(out.find("reachable:  no"), std::string::npos) << out;
  std::ofstream(base_ + "/files/a.png", std::ios::binary) << "\x89PNG\r\n\x1A\n" << base_;
  ASSERT_EQ(Run({"--cache", url, "--data-dir", base_ + "/data", "index", "--test-embedder", base_ + "/files"},
                &out),
            0)
      << out;
  EXPECT_NE(out.find("1 images embedded"), std::string::npos) << out;
  EXPECT_NE(out.find("embedding cache (redis): 0 hits, 1 misses (0.0% hits), 2 errors"), std::string::npos)
      << out;
  EXPECT_NE(out.find("embedding without it"), std::string::npos) << "the failure is logged:\n" << out;
}

}  // namespace
}  // namespace fs
