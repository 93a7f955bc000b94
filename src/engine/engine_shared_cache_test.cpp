// The engine on a shared embedding cache (Redis, DynamoDB via moto; each server started once for
// this binary): two engines with their own data directories (two workers) embed each content once
// between them, and a cache server that dies in the middle of an index run never stops the run:
// every image still gets its embedding, and the failures are counted.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>

#include "cache/cache_servers_fixture.h"
#include "engine/engine.h"

namespace fs {
namespace {

namespace stdfs = std::filesystem;
using cache::testing::ServerProcess;

// The hash model, counting the files it embeds and calling `during` on each batch.
class HookedEmbedder : public ImageEmbedder {
 public:
  HookedEmbedder(int* calls, std::function<void()> during)
      : inner_(NewHashEmbedder(8)), calls_(calls), during_(std::move(during)) {}
  const std::string& model_id() const override { return inner_->model_id(); }
  size_t dim() const override { return inner_->dim(); }
  Status EmbedFiles(std::span<const std::string> paths, std::span<float> out, std::vector<Status>* per_file,
                    std::vector<uint64_t>* phash) override {
    *calls_ += static_cast<int>(paths.size());
    if (during_) during_();
    return inner_->EmbedFiles(paths, out, per_file, phash);
  }

 private:
  std::unique_ptr<ImageEmbedder> inner_;
  int* calls_;
  std::function<void()> during_;
};

class EngineSharedCacheTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const cache::testing::SharedServer& shared = cache::testing::Shared(GetParam());
    if (!shared.server) {
      if (shared.skip) GTEST_SKIP() << shared.why;
      FAIL() << shared.why;
    }
    base_ = stdfs::weakly_canonical(::testing::TempDir()).string() + "/engine_shared_cache_" +
            std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    stdfs::remove_all(base_);
    stdfs::create_directories(base_ + "/files");
    // 6 distinct contents (unique to this test and process: the servers outlive a test), 2 paths each.
    const std::string tag = base_;
    for (int i = 0; i < 6; ++i) {
      for (const char* name : {"/files/img", "/files/copy_img"}) {
        std::ofstream(base_ + name + std::to_string(i) + ".png", std::ios::binary) << "\x89PNG\r\n\x1A\n"
                                                                                   << tag << i;
      }
    }
  }
  void TearDown() override {
    if (!base_.empty()) stdfs::remove_all(base_);
  }

  EngineOptions Options(const std::string& data, ServerProcess* server) const {
    EngineOptions o;
    o.data_dir = base_ + "/" + data;
    o.progress = false;
    o.embed_batch = 2;
    o.cache_timeout_ms = 1000;
    if (GetParam() == "redis") {
      o.cache = server->url();
    } else {
      o.cache = "dynamodb://engine-shared-cache";
      o.cache_endpoint = server->url();
      EmbeddingCacheSpec spec;
      spec.spec = o.cache;
      spec.endpoint = o.cache_endpoint;
      auto made = SetupEmbeddingCache(spec);
      EXPECT_TRUE(made.ok()) << made.status().ToString();
    }
    return o;
  }
  ServerProcess* Server() const { return cache::testing::Shared(GetParam()).server; }

  std::string base_;
};

TEST_P(EngineSharedCacheTest, TheSecondWorkerEmbedsNothingTheFirstDid) {
  int first_calls = 0, second_calls = 0;
  {
    auto engine = Engine::Open(Options("worker1", Server()));
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    ASSERT_TRUE((*engine)->SetEmbedder(std::make_unique<HookedEmbedder>(&first_calls, nullptr)).ok());
    auto r = (*engine)->Index(base_ + "/files");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->embedded, 12u);
    EXPECT_EQ((*engine)->cache()->kind(), GetParam());
  }
  EXPECT_EQ(first_calls, 6);
  auto engine = Engine::Open(Options("worker2", Server()));
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  ASSERT_TRUE((*engine)->SetEmbedder(std::make_unique<HookedEmbedder>(&second_calls, nullptr)).ok());
  auto r = (*engine)->Index(base_ + "/files");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->embedded, 12u);
  EXPECT_EQ(r->from_cache, 12u) << "every image of another data directory came from the shared cache";
  EXPECT_EQ(second_calls, 0);
  const EmbeddingCacheCounters c = (*engine)->cache()->counters();
  EXPECT_EQ(c.hits, 12u);
  EXPECT_EQ(c.misses, 0u);
  EXPECT_DOUBLE_EQ(c.hit_ratio(), 1.0);
}

TEST_P(EngineSharedCacheTest, ACacheServerThatDiesMidRunNeverStopsIndexing) {
  std::string why;
  bool skip = false;
  auto doomed = ServerProcess::Start(GetParam(), &why, &skip);
  ASSERT_TRUE(doomed) << why;
  int calls = 0;
  ServerProcess* victim = doomed.get();
  auto engine = Engine::Open(Options("data", victim));
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  // The server dies while the model works: the lookups before went through (all misses), the
  // stores after fail.
  auto kill = [victim] { victim->Kill(); };
  ASSERT_TRUE((*engine)->SetEmbedder(std::make_unique<HookedEmbedder>(&calls, kill)).ok());
  auto r = (*engine)->Index(base_ + "/files");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->embedded, 12u) << "every image has its embedding";
  EXPECT_TRUE(r->embed_failures.empty());
  auto missing = (*engine)->store()->ImagesMissingEmbedding("test/hash-8", 0, 100);
  ASSERT_TRUE(missing.ok());
  EXPECT_TRUE(missing->empty());
  const EmbeddingCacheCounters c = (*engine)->cache()->counters();
  EXPECT_EQ(c.misses, 12u) << "looked up while the server was up";
  EXPECT_EQ(c.errors, 6u) << "one failed store per distinct content";
  EXPECT_EQ(c.puts, 0u);
  EXPECT_EQ(calls, 6);
  // A later run on the dead cache: lookups fail too, and the run still succeeds.
  std::ofstream(base_ + "/files/late.png", std::ios::binary) << "\x89PNG\r\n\x1A\n" << base_ << "late";
  auto again = (*engine)->Index(base_ + "/files");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->embedded, 1u);
  EXPECT_EQ((*engine)->cache()->counters().errors, 8u) << "its lookup and its store";
}

INSTANTIATE_TEST_SUITE_P(Backends, EngineSharedCacheTest, ::testing::Values("redis", "dynamodb"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
}  // namespace fs
