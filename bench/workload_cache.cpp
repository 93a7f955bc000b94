// fs_bench cache: embedding-cache round trips, the three back ends of EmbeddingCache side by side
// in one run: embedded (SQLite table in the data directory), Redis (Debian redis-server on
// 127.0.0.1 through our RESP client) and DynamoDB (moto's emulator in server mode on 127.0.0.1,
// through our SigV4 JSON client), plus raw Redis through hiredis as a peer for our Redis client.
// Servers are started and stopped here (cache_servers_fixture). Same keys (content SHA-256), same
// model id, same 512-float values, same seeded random order; each lookup timed on its own, and
// batched lookups (GetMany of --batch hashes: MGET, BatchGetItem) timed per batch.
#include <hiredis/hiredis.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>

#include "bench/bench.h"
#include "cache/cache_servers_fixture.h"
#include "cache/embedding_cache.h"
#include "cache/remote_caches.h"
#include "core/hash.h"

namespace fs::bench {
namespace {

using cache::testing::ServerProcess;

struct Percentiles {
  double p50 = 0, p95 = 0, p99 = 0, mean = 0;
};

Percentiles Summarise(std::vector<double>& us) {
  if (us.empty()) return {};
  std::sort(us.begin(), us.end());
  double sum = 0;
  for (double v : us) sum += v;
  auto at = [&](double q) { return us[static_cast<size_t>(q * static_cast<double>(us.size() - 1))]; };
  return {at(0.50), at(0.95), at(0.99), sum / static_cast<double>(us.size())};
}

struct Row {
  std::string name;
  Percentiles single, batch;
  double fill_s = 0;
  size_t entries = 0, lookups = 0;
};

struct Workload {
  std::vector<std::string> keys;
  std::vector<float> vec;
  std::vector<size_t> order;  // indexes into keys
  size_t batch = 16;
  std::string model = "openai/clip-vit-base-patch32";
};

// Fills `cache` with the first `entries` keys, then times `lookups` single hits and lookups/batch
// batched ones. Empty name on a miss or failure (printed).
Row Measure(const std::string& name, EmbeddingCache& cache, const Workload& w, size_t entries,
            size_t lookups) {
  Row row{name, {}, {}, 0, entries, lookups};
  auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < entries; ++i) {
    if (!cache.Put(w.keys[i], w.model, w.vec).ok()) return {};
  }
  row.fill_s = Seconds(t0);
  std::vector<double> single, batched;
  std::vector<std::string> batch_keys;
  for (size_t j = 0; j < lookups; ++j) {
    const std::string& key = w.keys[w.order[j] % entries];
    auto start = std::chrono::steady_clock::now();
    auto got = cache.Get(key, w.model);
    single.push_back(Seconds(start) * 1e6);
    if (!got.ok() || !got->has_value() || (*got)->size() != w.vec.size()) {
      std::fprintf(stderr, "cache: %s: lookup %zu missed\n", name.c_str(), j);
      return {};
    }
    batch_keys.push_back(key);
    if (batch_keys.size() == w.batch) {
      start = std::chrono::steady_clock::now();
      auto many = cache.GetMany(batch_keys, w.model);
      batched.push_back(Seconds(start) * 1e6);
      for (const auto& v : many) {
        if (!v) {
          std::fprintf(stderr, "cache: %s: a batched lookup missed\n", name.c_str());
          return {};
        }
      }
      batch_keys.clear();
    }
  }
  if (cache.counters().errors != 0) {
    std::fprintf(stderr, "cache: %s: %llu errors\n", name.c_str(),
                 static_cast<unsigned long long>(cache.counters().errors));
    return {};
  }
  row.single = Summarise(single);
  row.batch = Summarise(batched);
  return row;
}

// Raw GET through hiredis on the same server: what our RESP client adds.
Row MeasureHiredis(const ServerProcess& redis, const Workload& w, size_t entries, size_t lookups) {
  Row row{"Redis, hiredis GET (peer)", {}, {}, 0, entries, lookups};
  redisContext* rc = redisConnect("127.0.0.1", redis.port());
  if (rc == nullptr || rc->err) {
    if (rc) redisFree(rc);
    return {};
  }
  std::vector<double> single;
  bool ok = true;
  for (size_t j = 0; j < lookups && ok; ++j) {
    const std::string key = cache_internal::RedisKey(w.keys[w.order[j] % entries], w.model);
    auto start = std::chrono::steady_clock::now();
    auto* r = static_cast<redisReply*>(redisCommand(rc, "GET %b", key.data(), key.size()));
    std::vector<float> out;
    ok = r && r->type == REDIS_REPLY_STRING && static_cast<size_t>(r->len) == w.vec.size() * sizeof(float);
    if (ok) {
      out.resize(w.vec.size());
      std::memcpy(out.data(), r->str, out.size() * sizeof(float));
    }
    single.push_back(Seconds(start) * 1e6);
    freeReplyObject(r);
  }
  redisFree(rc);
  if (!ok) return {};
  row.single = Summarise(single);
  return row;
}

int RunCache(const Args& args) {
  const auto n = static_cast<size_t>(args.Int("n", 20000));
  const auto lookups = static_cast<size_t>(args.Int("lookups", 20000));
  const auto emulator_n = static_cast<size_t>(args.Int("emulator-n", 2000));
  const auto emulator_lookups = static_cast<size_t>(args.Int("emulator-lookups", 2000));
  const auto dim = static_cast<size_t>(args.Int("dim", 512));
  Workload w;
  w.batch = static_cast<size_t>(args.Int("batch", 16));
  std::mt19937_64 rng(1);
  w.keys.resize(n);
  for (size_t i = 0; i < n; ++i) w.keys[i] = Sha256Hex("image bytes " + std::to_string(i));
  w.vec.resize(dim);
  std::normal_distribution<float> normal;
  for (float& x : w.vec) x = normal(rng);
  w.order.resize(std::max(lookups, emulator_lookups));
  for (size_t& o : w.order) o = rng() % n;
  std::printf(
      "cache: %zu floats per entry; embedded and Redis %zu entries / %zu hits, DynamoDB emulator %zu / %zu; "
      "batches of %zu; %s\n",
      dim, n, lookups, emulator_n, emulator_lookups, w.batch, CpuDescription().c_str());

  std::vector<Row> rows;
  // Embedded.
  const std::string dir =
      std::filesystem::temp_directory_path().string() + "/fs_bench_cache_" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  {
    auto cache = EmbeddingCache::Open(dir + "/filesearch.db");
    if (!cache.ok()) {
      std::fprintf(stderr, "cache: %s\n", cache.status().ToString().c_str());
      return 1;
    }
    rows.push_back(Measure("embedded (SQLite)", **cache, w, n, lookups));
  }
  std::filesystem::remove_all(dir);

  // Redis: ours, then hiredis on the same server.
  std::string why;
  bool skip = false;
  auto redis = ServerProcess::Start("redis", &why, &skip);
  if (!redis) {
    std::fprintf(stderr, "cache: %s (scripts/setup installs redis-server)\n", why.c_str());
    return 1;
  }
  EmbeddingCacheSpec spec;
  spec.spec = redis->url();
  auto redis_cache = OpenEmbeddingCache(spec);
  if (!redis_cache.ok()) return 1;
  rows.push_back(Measure("Redis 7 (our RESP client)", **redis_cache, w, n, lookups));
  rows.push_back(MeasureHiredis(*redis, w, n, lookups));
  redis.reset();

  // DynamoDB: moto in server mode, fake credentials (moto checks none).
  auto dynamo = ServerProcess::Start("dynamodb", &why, &skip);
  if (!dynamo) {
    std::fprintf(stderr, "cache: %s\n", why.c_str());
    return 1;
  }
  ::setenv("AWS_ACCESS_KEY_ID", "bench", 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", "bench", 1);
  spec.spec = "dynamodb://cis-image-embedding-cache";
  spec.endpoint = dynamo->url();
  spec.timeout_ms = 10000;
  if (auto made = SetupEmbeddingCache(spec); !made.ok()) {
    std::fprintf(stderr, "cache: %s\n", made.status().ToString().c_str());
    return 1;
  }
  auto dynamo_cache = OpenEmbeddingCache(spec);
  if (!dynamo_cache.ok()) return 1;
  rows.push_back(Measure("DynamoDB emulator (moto 5.2.1)", **dynamo_cache, w, emulator_n, emulator_lookups));
  dynamo.reset();

  for (const Row& r : rows) {
    if (r.name.empty()) return 1;
  }
  const Row& base = rows[0];
  std::printf(
      "\n| round trip (µs) | entries / hits | Get p50 | Get p95 | Get p99 | Get mean | p50 / embedded | "
      "p95 / embedded | GetMany(%zu) p50 | GetMany(%zu) p95 | fill (s) |\n",
      w.batch, w.batch);
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const Row& r : rows) {
    std::printf("| %s | %zu / %zu | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | ", r.name.c_str(), r.entries,
                r.lookups, r.single.p50, r.single.p95, r.single.p99, r.single.mean,
                r.single.p50 / base.single.p50, r.single.p95 / base.single.p95);
    if (r.batch.p50 > 0) {
      std::printf("%.1f | %.1f | %.2f |\n", r.batch.p50, r.batch.p95, r.fill_s);
    } else {
      std::printf("- | - | - |\n");
    }
  }
  return 0;
}

}  // namespace

FS_BENCH_WORKLOAD(
    cache, "cache",
    "embedding-cache round trips, embedded vs Redis vs DynamoDB emulator (+ hiredis peer): --n 20000 "
    "--lookups 20000 --emulator-n 2000 --emulator-lookups 2000 --dim 512 --batch 16",
    RunCache);

}  // namespace fs::bench
