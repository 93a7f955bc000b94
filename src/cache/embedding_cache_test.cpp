#include "cache/embedding_cache.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

namespace fs {
namespace {

class EmbeddingCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("cache_test_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    db_ = (dir_ / "filesearch.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::unique_ptr<EmbeddingCache> OpenCache(int64_t ttl = 100) {
    EmbeddingCacheOptions o;
    o.ttl_seconds = ttl;
    o.now = [this] { return now_; };
    auto c = EmbeddingCache::Open(db_, o);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(*c) : nullptr;
  }
  std::filesystem::path dir_;
  std::string db_;
  int64_t now_ = 1'000'000;
};

TEST_F(EmbeddingCacheTest, MissPutHitAndCounters) {
  auto cache = OpenCache();
  const std::vector<float> v = {0.25f, -0.5f, 1.0f};
  auto miss = cache->Get("aa", "m1");
  ASSERT_TRUE(miss.ok());
  EXPECT_FALSE(miss->has_value());
  ASSERT_TRUE(cache->Put("aa", "m1", v).ok());
  auto hit = cache->Get("aa", "m1");
  ASSERT_TRUE(hit.ok());
  ASSERT_TRUE(hit->has_value());
  EXPECT_EQ(**hit, v);
  const auto c = cache->counters();
  EXPECT_EQ(c.hits, 1u);
  EXPECT_EQ(c.misses, 1u);
  EXPECT_EQ(c.puts, 1u);
  EXPECT_DOUBLE_EQ(c.hit_ratio(), 0.5);
}

TEST_F(EmbeddingCacheTest, KeyIncludesTheModel) {
  auto cache = OpenCache();
  ASSERT_TRUE(cache->Put("aa", "m1", std::vector<float>{1.0f}).ok());
  auto other = cache->Get("aa", "m2");
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->has_value());
  ASSERT_TRUE(cache->Put("aa", "m2", std::vector<float>{2.0f, 3.0f}).ok());
  EXPECT_EQ(cache->Get("aa", "m1")->value(), std::vector<float>{1.0f});
  EXPECT_EQ(cache->Get("aa", "m2")->value(), (std::vector<float>{2.0f, 3.0f}));
  EXPECT_EQ(*cache->Size(), 2u);
}

TEST_F(EmbeddingCacheTest, EntriesExpireAfterTheTtlAndRefreshOnPut) {
  auto cache = OpenCache(/*ttl=*/100);
  ASSERT_TRUE(cache->Put("aa", "m", std::vector<float>{1.0f}).ok());
  now_ += 99;
  EXPECT_TRUE(cache->Get("aa", "m")->has_value());
  now_ += 1;  // exactly the TTL old: expired
  EXPECT_FALSE(cache->Get("aa", "m")->has_value());
  EXPECT_EQ(cache->counters().expiries, 1u);
  EXPECT_EQ(*cache->Size(), 0u) << "an expired entry is deleted on lookup";
  ASSERT_TRUE(cache->Put("aa", "m", std::vector<float>{1.0f}).ok());
  ASSERT_TRUE(cache->Put("bb", "m", std::vector<float>{1.0f}).ok());
  now_ += 50;
  ASSERT_TRUE(cache->Put("bb", "m", std::vector<float>{2.0f}).ok());  // refreshed
  now_ += 60;
  auto purged = cache->PurgeExpired();
  ASSERT_TRUE(purged.ok());
  EXPECT_EQ(*purged, 1u);
  EXPECT_EQ(cache->Get("bb", "m")->value(), std::vector<float>{2.0f});
}

TEST_F(EmbeddingCacheTest, SurvivesReopenAndRefusesBadInput) {
  {
    auto cache = OpenCache();
    ASSERT_TRUE(cache->Put("aa", "m", std::vector<float>{4.0f, 5.0f}).ok());
    EXPECT_EQ(cache->Put("", "m", std::vector<float>{1.0f}).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(cache->Put("bb", "m", std::vector<float>{}).code(), StatusCode::kInvalidArgument);
  }
  auto cache = OpenCache();
  EXPECT_EQ(cache->Get("aa", "m")->value(), (std::vector<float>{4.0f, 5.0f}));
  EmbeddingCacheOptions bad;
  bad.ttl_seconds = 0;
  EXPECT_EQ(EmbeddingCache::Open(db_, bad).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(EmbeddingCacheTest, ConcurrentUseCountsEveryLookup) {
  auto cache = OpenCache();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        const std::string key = "k" + std::to_string(i % 10);
        auto got = cache->Get(key, "m");
        ASSERT_TRUE(got.ok());
        if (!got->has_value()) {
          ASSERT_TRUE(cache->Put(key, "m", std::vector<float>{float(t)}).ok());
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  const auto c = cache->counters();
  EXPECT_EQ(c.hits + c.misses, 200u);
  EXPECT_GE(c.hits, 150u) << "10 distinct keys: at most a few misses per key";
}

}  // namespace
}  // namespace fs
