// fs_bench cache: embedding-cache hit latency. Ours (EmbeddingCache: SQLite table in the data
// directory, looked up by content SHA-256 + model) against Redis (Debian redis-server on
// 127.0.0.1, started and stopped here, reached through hiredis), the kind of networked cache
// the original design used (DynamoDB). Same keys, same 512-float values, same random order.
#include <hiredis/hiredis.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <thread>

#include "bench/bench.h"
#include "cache/embedding_cache.h"
#include "core/hash.h"

namespace fs::bench {
namespace {

struct Percentiles {
  double p50, p95, p99, mean;
};

Percentiles Summarise(std::vector<double>& us) {
  std::sort(us.begin(), us.end());
  double sum = 0;
  for (double v : us) sum += v;
  auto at = [&](double q) { return us[static_cast<size_t>(q * static_cast<double>(us.size() - 1))]; };
  return {at(0.50), at(0.95), at(0.99), sum / static_cast<double>(us.size())};
}

int RunCache(const Args& args) {
  const auto n = static_cast<size_t>(args.Int("n", 20000));
  const auto lookups = static_cast<size_t>(args.Int("lookups", 20000));
  const auto dim = static_cast<size_t>(args.Int("dim", 512));
  const int port = static_cast<int>(args.Int("redis-port", 16379));
  const std::string model = "openai/clip-vit-base-patch32";
  std::mt19937_64 rng(1);
  std::vector<std::string> keys(n);
  for (size_t i = 0; i < n; ++i) keys[i] = Sha256Hex("image bytes " + std::to_string(i));
  std::vector<float> vec(dim);
  std::normal_distribution<float> normal;
  for (float& x : vec) x = normal(rng);
  std::vector<size_t> order(lookups);
  for (size_t& o : order) o = rng() % n;
  std::printf("cache: %zu entries of %zu floats, %zu random hits; %s\n", n, dim, lookups, CpuDescription().c_str());

  // Ours.
  const std::string dir = std::filesystem::temp_directory_path().string() + "/fs_bench_cache_" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto cache = EmbeddingCache::Open(dir + "/filesearch.db");
  if (!cache.ok()) {
    std::fprintf(stderr, "cache: %s\n", cache.status().ToString().c_str());
    return 1;
  }
  auto t0 = std::chrono::steady_clock::now();
  for (const auto& k : keys) {
    if (!(*cache)->Put(k, model, vec).ok()) return 1;
  }
  const double ours_fill = Seconds(t0);
  std::vector<double> ours_us;
  ours_us.reserve(lookups);
  for (size_t i : order) {
    auto start = std::chrono::steady_clock::now();
    auto got = (*cache)->Get(keys[i], model);
    ours_us.push_back(Seconds(start) * 1e6);
    if (!got.ok() || !got->has_value() || (*got)->size() != dim) {
      std::fprintf(stderr, "cache: our lookup missed\n");
      return 1;
    }
  }
  cache->reset();
  std::filesystem::remove_all(dir);

  // Redis.
  const pid_t redis = ::fork();
  if (redis == 0) {
    const std::string p = std::to_string(port);
    ::execlp("redis-server", "redis-server", "--port", p.c_str(), "--bind", "127.0.0.1", "--save", "", "--appendonly",
             "no", "--loglevel", "warning", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  redisContext* rc = nullptr;
  for (int attempt = 0; attempt < 100 && (rc == nullptr || rc->err); ++attempt) {
    if (rc) redisFree(rc);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    rc = redisConnect("127.0.0.1", port);
  }
  if (rc == nullptr || rc->err) {
    std::fprintf(stderr, "cache: cannot reach redis-server on 127.0.0.1:%d (scripts/setup --bench installs it)\n", port);
    ::kill(redis, SIGTERM);
    ::waitpid(redis, nullptr, 0);
    return 1;
  }
  t0 = std::chrono::steady_clock::now();
  for (const auto& k : keys) {
    const std::string key = k + ":" + model;
    auto* r = static_cast<redisReply*>(
        redisCommand(rc, "SET %b %b", key.data(), key.size(), vec.data(), vec.size() * sizeof(float)));
    freeReplyObject(r);
  }
  const double redis_fill = Seconds(t0);
  std::vector<double> redis_us;
  redis_us.reserve(lookups);
  bool redis_ok = true;
  for (size_t i : order) {
    const std::string key = keys[i] + ":" + model;
    auto start = std::chrono::steady_clock::now();
    auto* r = static_cast<redisReply*>(redisCommand(rc, "GET %b", key.data(), key.size()));
    std::vector<float> out;
    if (r && r->type == REDIS_REPLY_STRING && r->len == static_cast<long>(dim * sizeof(float))) {
      out.resize(dim);
      std::memcpy(out.data(), r->str, dim * sizeof(float));
    } else {
      redis_ok = false;
    }
    redis_us.push_back(Seconds(start) * 1e6);
    freeReplyObject(r);
  }
  redisFree(rc);
  ::kill(redis, SIGTERM);
  ::waitpid(redis, nullptr, 0);
  if (!redis_ok) {
    std::fprintf(stderr, "cache: a Redis lookup missed\n");
    return 1;
  }

  const Percentiles o = Summarise(ours_us), r = Summarise(redis_us);
  std::printf("\n| hit latency (us) | p50 | p95 | p99 | mean | fill (s) |\n|---|---:|---:|---:|---:|---:|\n");
  std::printf("| filesearch EmbeddingCache (SQLite) | %.1f | %.1f | %.1f | %.1f | %.2f |\n", o.p50, o.p95, o.p99, o.mean, ours_fill);
  std::printf("| Redis 7 on 127.0.0.1 (hiredis) | %.1f | %.1f | %.1f | %.1f | %.2f |\n", r.p50, r.p95, r.p99, r.mean, redis_fill);
  std::printf("\np95 ratio ours / Redis: %.2f\n", o.p95 / r.p95);
  return 0;
}

}  // namespace

FS_BENCH_WORKLOAD(cache, "cache",
                  "embedding-cache hit latency, ours vs Redis on 127.0.0.1: --n 20000 --lookups 20000 --dim 512 "
                  "--redis-port 16379",
                  RunCache);

}  // namespace fs::bench
