#include "vector/hnsw.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <random>
#include <thread>
#include <unordered_set>

#include "core/env.h"
#include "vector/hnsw_snapshot_internal.h"
#include "vector/synthetic.h"

namespace fs::vec {
namespace {

constexpr uint32_t kDim = 512;
constexpr size_t kK = 10;

struct Dataset {
  std::vector<float> base;     // n x kDim
  std::vector<float> queries;  // nq x kDim
  size_t n = 0;
  size_t nq = 0;
  std::span<const float> Row(size_t i) const { return {base.data() + i * kDim, kDim}; }
  std::span<const float> Query(size_t i) const { return {queries.data() + i * kDim, kDim}; }
};

// Uniform on the sphere (clusters == 0), or Gaussian clusters around random centres.
Dataset MakeDataset(size_t n, size_t nq, size_t clusters, uint64_t seed) {
  Dataset ds;
  ds.n = n;
  ds.nq = nq;
  ds.base = testing::MakeEmbeddings({n, kDim, clusters, 0.6f, seed}, seed);
  ds.queries = testing::MakeEmbeddings({nq, kDim, clusters, 0.6f, seed + 1000}, seed);
  return ds;
}

HnswOptions TestOptions() {
  HnswOptions o;
  o.dim = kDim;
  o.m = 16;
  o.ef_construction = 100;
  o.model_id = "test-model";
  return o;
}

std::unique_ptr<HnswIndex> Build(const Dataset& ds) {
  auto index = std::make_unique<HnswIndex>(TestOptions());
  for (size_t row = 0; row < ds.n; ++row) EXPECT_TRUE(index->Add(row, ds.Row(row)).ok());
  return index;
}

// Mean recall@k of `index` over the queries, against the oracle restricted to `live`.
double Recall(const HnswIndex& index, const Dataset& ds, size_t ef, const LabelFilter* filter,
              const std::function<bool(uint64_t)>& live) {
  size_t hits = 0, total = 0;
  for (size_t qi = 0; qi < ds.nq; ++qi) {
    auto got = index.Search(ds.Query(qi), kK, ef, filter);
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    if (!got.ok()) return 0;
    std::vector<uint64_t> want = testing::ExactTopK(ds.base, kDim, ds.Query(qi), kK, live);
    std::unordered_set<uint64_t> want_set(want.begin(), want.end());
    for (const Neighbor& nb : *got) {
      EXPECT_TRUE(live(nb.label)) << "returned label " << nb.label << " the filter excludes";
      hits += want_set.count(nb.label);
    }
    for (size_t i = 1; i < got->size(); ++i) EXPECT_GE((*got)[i - 1].score, (*got)[i].score);
    total += want.size();
  }
  return total == 0 ? 1.0 : static_cast<double>(hits) / static_cast<double>(total);
}

LabelFilter RandomFilter(size_t n, double selectivity, uint64_t seed) {
  LabelFilter f(n);
  std::mt19937_64 rng(seed);
  std::bernoulli_distribution keep(selectivity);
  for (size_t row = 0; row < n; ++row) {
    if (keep(rng)) f.Set(row);
  }
  return f;
}

// One uniform and one clustered index, built once for the whole suite.
class HnswRecallTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    uniform_ = new Dataset(MakeDataset(10000, 100, 0, 1));
    clustered_ = new Dataset(MakeDataset(10000, 100, 100, 2));
    uniform_index_ = Build(*uniform_).release();
    clustered_index_ = Build(*clustered_).release();
  }
  static void TearDownTestSuite() {
    delete uniform_index_;
    delete clustered_index_;
    delete uniform_;
    delete clustered_;
  }
  static Dataset* uniform_;
  static Dataset* clustered_;
  static HnswIndex* uniform_index_;
  static HnswIndex* clustered_index_;
};
Dataset* HnswRecallTest::uniform_ = nullptr;
Dataset* HnswRecallTest::clustered_ = nullptr;
HnswIndex* HnswRecallTest::uniform_index_ = nullptr;
HnswIndex* HnswRecallTest::clustered_index_ = nullptr;

const auto kAll = [](uint64_t) { return true; };

// Uniform points on the 512-d sphere have no neighbourhood structure (every pair is nearly
// orthogonal), so any graph index must visit a large share of them: hnswlib needs ef ~800 on the
// same data for 0.95. Clustered data, closer to real embeddings, gets there at ef 64.
constexpr size_t kUniformEf = 800;
constexpr size_t kClusteredEf = 64;

TEST_F(HnswRecallTest, UnfilteredRecallUniform) {
  EXPECT_EQ(uniform_index_->size(), uniform_->n);
  EXPECT_GE(Recall(*uniform_index_, *uniform_, kUniformEf, nullptr, kAll), 0.95);
}

TEST_F(HnswRecallTest, UnfilteredRecallClustered) {
  EXPECT_GE(Recall(*clustered_index_, *clustered_, kClusteredEf, nullptr, kAll), 0.95);
}

TEST_F(HnswRecallTest, FilteredRecallAtEachSelectivity) {
  for (const Dataset* ds : {uniform_, clustered_}) {
    HnswIndex& index = ds == uniform_ ? *uniform_index_ : *clustered_index_;
    const size_t ef = ds == uniform_ ? kUniformEf : kClusteredEf;
    for (double selectivity : {0.5, 0.1, 0.01}) {
      LabelFilter filter = RandomFilter(ds->n, selectivity, 99);
      auto live = [&](uint64_t label) { return filter.Test(label); };
      // Default thresholds (1% goes to the exact scan), then the graph walk forced everywhere.
      index.set_exact_search(HnswOptions{}.exact_search_below, HnswOptions{}.exact_search_fraction);
      EXPECT_GE(Recall(index, *ds, ef, &filter, live), 0.95)
          << (ds == uniform_ ? "uniform" : "clustered") << " selectivity " << selectivity;
      index.set_exact_search(0, 0.0);
      EXPECT_GE(Recall(index, *ds, ef, &filter, live), 0.95)
          << "graph walk only, " << (ds == uniform_ ? "uniform" : "clustered") << " selectivity "
          << selectivity;
    }
    index.set_exact_search(HnswOptions{}.exact_search_below, HnswOptions{}.exact_search_fraction);
  }
}

// A filter that admits only the clusters unlike the query (10% of the rows): the walk must
// leave the query's neighbourhood to find admitted nodes. Graph walk forced.
TEST_F(HnswRecallTest, FilterAdmittingOnlyFarRowsKeepsRecall) {
  const Dataset& ds = *clustered_;
  HnswIndex& index = *clustered_index_;
  index.set_exact_search(0, 0.0);
  size_t hits = 0, total = 0;
  for (size_t qi = 0; qi < 20; ++qi) {
    // Admit the 10% of rows least similar to the query.
    std::vector<std::pair<float, uint64_t>> scored;
    for (size_t row = 0; row < ds.n; ++row) {
      float s = 0;
      for (uint32_t d = 0; d < kDim; ++d) s += ds.base[row * kDim + d] * ds.queries[qi * kDim + d];
      scored.push_back({s, row});
    }
    std::sort(scored.begin(), scored.end());
    LabelFilter filter(ds.n);
    for (size_t i = 0; i < ds.n / 10; ++i) filter.Set(scored[i].second);
    auto live = [&](uint64_t label) { return filter.Test(label); };
    auto got = index.Search(ds.Query(qi), kK, kClusteredEf, &filter);
    ASSERT_TRUE(got.ok());
    std::vector<uint64_t> want = testing::ExactTopK(ds.base, kDim, ds.Query(qi), kK, live);
    std::unordered_set<uint64_t> want_set(want.begin(), want.end());
    for (const Neighbor& nb : *got) {
      EXPECT_TRUE(filter.Test(nb.label));
      hits += want_set.count(nb.label);
    }
    total += want.size();
  }
  index.set_exact_search(HnswOptions{}.exact_search_below, HnswOptions{}.exact_search_fraction);
  EXPECT_GE(static_cast<double>(hits) / static_cast<double>(total), 0.95);
}

TEST_F(HnswRecallTest, MemoryIsWithinBudget) {
  // At most 1.2x the raw fp32 vectors: vectors + graph + labels + label map.
  const double raw = static_cast<double>(clustered_->n) * kDim * sizeof(float);
  EXPECT_LE(static_cast<double>(clustered_index_->memory_bytes()), 1.2 * raw);
  EXPECT_GE(static_cast<double>(clustered_index_->memory_bytes()), raw);
}

TEST_F(HnswRecallTest, ConcurrentSearchesAgree) {
  std::vector<std::vector<Neighbor>> expected(clustered_->nq);
  for (size_t qi = 0; qi < clustered_->nq; ++qi) {
    expected[qi] = clustered_index_->Search(clustered_->Query(qi), kK, 64, nullptr).value();
  }
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (size_t qi = 0; qi < clustered_->nq; ++qi) {
        auto got = clustered_index_->Search(clustered_->Query(qi), kK, 64, nullptr);
        if (!got.ok() || got->size() != expected[qi].size()) {
          ++mismatches;
          continue;
        }
        for (size_t i = 0; i < got->size(); ++i) {
          if ((*got)[i].label != expected[qi][i].label) ++mismatches;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(HnswTest, DeletesAreNeverReturnedAndRecallHolds) {
  Dataset ds = MakeDataset(5000, 50, 50, 3);
  auto index = Build(ds);
  std::vector<bool> removed(ds.n, false);
  for (size_t row = 0; row < ds.n; row += 7) {
    ASSERT_TRUE(index->Remove(row).ok());
    removed[row] = true;
  }
  EXPECT_EQ(index->Remove(0).code(), StatusCode::kNotFound);
  EXPECT_FALSE(index->Contains(0));
  EXPECT_TRUE(index->Contains(1));
  EXPECT_EQ(index->size(), ds.n - (ds.n + 6) / 7);
  auto live = [&](uint64_t label) { return !removed[label]; };
  EXPECT_GE(Recall(*index, ds, 64, nullptr, live), 0.95);
  // Querying with a removed vector itself must not return it.
  auto got = index->Search(ds.Row(7), 1, 64, nullptr);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), 1u);
  EXPECT_NE(got->front().label, 7u);
}

TEST(HnswTest, UpsertReplacesTheVectorAndReusesSlots) {
  Dataset ds = MakeDataset(5000, 50, 50, 4);
  auto index = Build(ds);
  const size_t memory_before = index->memory_bytes();
  Dataset fresh = MakeDataset(ds.n / 5, 0, 50, 5);
  // Re-add every fifth label with a new vector; the oracle data is updated the same way.
  for (size_t i = 0; i < fresh.n; ++i) {
    const uint64_t label = i * 5;
    ASSERT_TRUE(index->Add(label, fresh.Row(i)).ok());
    std::copy(fresh.Row(i).begin(), fresh.Row(i).end(), ds.base.begin() + static_cast<long>(label * kDim));
  }
  EXPECT_EQ(index->size(), ds.n);
  EXPECT_LE(index->memory_bytes(), memory_before + memory_before / 10);
  for (size_t i = 0; i < fresh.n; i += 37) {
    auto got = index->Search(fresh.Row(i), 1, 64, nullptr);
    ASSERT_TRUE(got.ok());
    ASSERT_FALSE(got->empty());
    EXPECT_EQ(got->front().label, i * 5);
    EXPECT_NEAR(got->front().score, 1.0f, 1e-4);
  }
  EXPECT_GE(Recall(*index, ds, 64, nullptr, kAll), 0.95);
}

TEST(HnswTest, AddBatchOnSeveralThreadsKeepsRecallAndUpserts) {
  Dataset ds = MakeDataset(6000, 50, 60, 8);
  std::vector<uint64_t> labels(ds.n);
  for (size_t row = 0; row < ds.n; ++row) labels[row] = row;
  HnswIndex index(TestOptions());
  // Half first, then everything again: the second batch upserts the first half.
  ASSERT_TRUE(index
                  .AddBatch(std::span(labels).first(ds.n / 2),
                            std::span<const float>(ds.base).first(ds.n / 2 * kDim), 3)
                  .ok());
  ASSERT_TRUE(index.AddBatch(labels, ds.base, 3).ok());
  EXPECT_EQ(index.size(), ds.n);
  EXPECT_GE(Recall(index, ds, 64, nullptr, kAll), 0.95);
}

TEST(HnswTest, AddBatchRefusesBadRowsAndAddsNothing) {
  HnswIndex index(TestOptions());
  std::vector<float> rows(3 * kDim, 1.0f);
  const std::vector<uint64_t> repeated = {1, 2, 1};
  EXPECT_EQ(index.AddBatch(repeated, rows, 2).code(), StatusCode::kInvalidArgument);
  std::fill(rows.begin() + 2 * kDim, rows.end(), 0.0f);  // row 2 is zero
  const std::vector<uint64_t> labels = {1, 2, 3};
  Status bad_row = index.AddBatch(labels, rows, 2);
  EXPECT_EQ(bad_row.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad_row.message().find("row 2"), std::string::npos) << bad_row.message();
  EXPECT_EQ(index.AddBatch(labels, std::span<const float>(rows).first(kDim), 2).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(index.size(), 0u);
}

TEST(HnswTest, AddNormalisesAndScoresAreCosines) {
  HnswOptions o = TestOptions();
  o.dim = 4;
  HnswIndex index(o);
  const float a[4] = {3, 0, 0, 0}, b[4] = {0, 2, 0, 0}, c[4] = {1, 1, 0, 0};
  ASSERT_TRUE(index.Add(1, a).ok());
  ASSERT_TRUE(index.Add(2, b).ok());
  ASSERT_TRUE(index.Add(3, c).ok());
  const float q[4] = {10, 0, 0, 0};
  auto got = index.Search(q, 5, 0, nullptr);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), 3u);
  EXPECT_EQ((*got)[0].label, 1u);
  EXPECT_NEAR((*got)[0].score, 1.0f, 1e-6);
  EXPECT_EQ((*got)[1].label, 3u);
  EXPECT_NEAR((*got)[1].score, std::sqrt(0.5f), 1e-6);
  EXPECT_EQ((*got)[2].label, 2u);
  EXPECT_NEAR((*got)[2].score, 0.0f, 1e-6);
}

TEST(HnswTest, BadInputsAreRefusedWithClearStatus) {
  HnswIndex index(TestOptions());
  std::vector<float> wrong(384, 1.0f), zero(kDim, 0.0f), good(kDim, 1.0f);
  Status add = index.Add(1, wrong);
  EXPECT_EQ(add.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(add.message().find("384"), std::string::npos) << add.message();
  EXPECT_NE(add.message().find("512"), std::string::npos) << add.message();
  EXPECT_EQ(index.Add(1, zero).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(index.Add(uint64_t{1} << 40, good).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(index.Add(1, good).ok());
  auto search = index.Search(wrong, 10, 0, nullptr);
  ASSERT_FALSE(search.ok());
  EXPECT_EQ(search.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(search.status().message().find("test-model"), std::string::npos);
  std::vector<float> nan(kDim, std::nanf(""));
  EXPECT_EQ(index.Search(nan, 10, 0, nullptr).status().code(), StatusCode::kInvalidArgument);
}

TEST(HnswTest, EmptyIndexEmptyFilterAndSmallIndex) {
  HnswIndex index(TestOptions());
  std::vector<float> q(kDim, 1.0f);
  auto empty = index.Search(q, 10, 0, nullptr);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  ASSERT_TRUE(index.Add(5, q).ok());
  LabelFilter none(100);
  EXPECT_TRUE(index.Search(q, 10, 0, &none)->empty());
  EXPECT_EQ(index.Search(q, 10, 0, nullptr)->size(), 1u);
  ASSERT_TRUE(index.Remove(5).ok());
  EXPECT_TRUE(index.Search(q, 10, 0, nullptr)->empty());
  ASSERT_TRUE(index.Add(6, q).ok());  // reuses no entry-point slot, still found
  EXPECT_EQ(index.Search(q, 10, 0, nullptr)->front().label, 6u);
}

TEST(LabelFilterTest, SetTestCountAndIterate) {
  LabelFilter f(200);
  f.Set(3);
  f.Set(3);
  f.Set(64);
  f.Set(199);
  EXPECT_EQ(f.count(), 3u);
  EXPECT_TRUE(f.Test(64));
  EXPECT_FALSE(f.Test(65));
  EXPECT_FALSE(f.Test(1000));
  std::vector<uint64_t> seen;
  f.ForEach([&](uint64_t label) { seen.push_back(label); });
  EXPECT_EQ(seen, (std::vector<uint64_t>{3, 64, 199}));
}

TEST(HnswSnapshotTest, RoundTripKeepsResultsOptionsAndSequence) {
  Dataset ds = MakeDataset(2000, 20, 20, 6);
  auto index = Build(ds);
  ASSERT_TRUE(index->Remove(10).ok());
  auto env = NewMemEnv();
  ASSERT_TRUE(index->Save(env.get(), "idx.hnsw", 12345).ok());
  uint64_t seq = 0;
  auto loaded = HnswIndex::Load(env.get(), "idx.hnsw", &seq);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  HnswIndex& copy = **loaded;
  EXPECT_EQ(seq, 12345u);
  EXPECT_EQ(copy.size(), index->size());
  EXPECT_EQ(copy.options().model_id, "test-model");
  EXPECT_EQ(copy.options().dim, kDim);
  EXPECT_EQ(copy.options().m, 16u);
  EXPECT_FALSE(copy.Contains(10));
  for (size_t qi = 0; qi < ds.nq; ++qi) {
    auto a = index->Search(ds.Query(qi), kK, 64, nullptr).value();
    auto b = copy.Search(ds.Query(qi), kK, 64, nullptr).value();
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].label, b[i].label);
      EXPECT_EQ(a[i].score, b[i].score);
    }
  }
  // The loaded index stays writable: its free slot and its graph are usable.
  ASSERT_TRUE(copy.Add(10, ds.Row(10)).ok());
  EXPECT_EQ(copy.Search(ds.Row(10), 1, 64, nullptr)->front().label, 10u);
}

TEST(HnswSnapshotTest, TruncatedOrDamagedSnapshotIsCorruption) {
  Dataset ds = MakeDataset(500, 0, 5, 7);
  auto index = Build(ds);
  auto mem = NewMemEnv();
  FaultInjectionEnv env(mem.get());
  ASSERT_TRUE(index->Save(&env, "good", 1).ok());
  const std::string good = mem->ReadFile("good").value();

  env.TruncateNextWrite(good.size() / 2);
  ASSERT_TRUE(index->Save(&env, "truncated", 1).ok());  // the fault reports success
  EXPECT_EQ(HnswIndex::Load(&env, "truncated", nullptr).status().code(), StatusCode::kCorruption);

  for (size_t pos : {size_t{9}, good.size() / 3, good.size() - 1}) {
    std::string bad = good;
    bad[pos] = static_cast<char>(bad[pos] ^ 0x10);
    ASSERT_TRUE(mem->WriteFileAtomic("flipped", bad).ok());
    auto loaded = HnswIndex::Load(mem.get(), "flipped", nullptr);
    EXPECT_EQ(loaded.status().code(), StatusCode::kCorruption) << "byte " << pos;
  }
  ASSERT_TRUE(mem->WriteFileAtomic("empty", "").ok());
  EXPECT_EQ(HnswIndex::Load(mem.get(), "empty", nullptr).status().code(), StatusCode::kCorruption);
  ASSERT_TRUE(mem->WriteFileAtomic("other", "SQLite format 3\0 and more bytes").ok());
  EXPECT_EQ(HnswIndex::Load(mem.get(), "other", nullptr).status().code(), StatusCode::kCorruption);
  EXPECT_EQ(HnswIndex::Load(mem.get(), "missing", nullptr).status().code(), StatusCode::kNotFound);
}

TEST(HnswSnapshotTest, NewerFormatVersionIsUnsupported) {
  HnswIndex index(TestOptions());
  std::vector<float> v(kDim, 1.0f);
  ASSERT_TRUE(index.Add(1, v).ok());
  auto env = NewMemEnv();
  ASSERT_TRUE(index.Save(env.get(), "s", 7).ok());
  std::string data = env->ReadFile("s").value();
  const uint32_t future_version = 2;
  std::memcpy(data.data() + 8, &future_version, sizeof(future_version));  // after the magic
  const uint64_t checksum = internal::SnapshotChecksum(data.data(), data.size() - 8);
  std::memcpy(data.data() + data.size() - 8, &checksum, sizeof(checksum));
  ASSERT_TRUE(env->WriteFileAtomic("s", data).ok());
  auto loaded = HnswIndex::Load(env.get(), "s", nullptr);
  EXPECT_EQ(loaded.status().code(), StatusCode::kUnsupported) << loaded.status().ToString();
}

TEST(HnswSnapshotTest, EmptyIndexRoundTrips) {
  HnswIndex index(TestOptions());
  auto env = NewMemEnv();
  ASSERT_TRUE(index.Save(env.get(), "e", 0).ok());
  auto loaded = HnswIndex::Load(env.get(), "e", nullptr);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ((*loaded)->size(), 0u);
}

}  // namespace
}  // namespace fs::vec
