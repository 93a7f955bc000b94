// The shared embedding caches against real servers: Debian's redis-server and moto's DynamoDB
// (server mode), each started once for this binary on 127.0.0.1 (cache_servers_fixture.h).
// Every behaviour is checked on both back ends: miss / put / hit and counters, model isolation,
// two processes' caches sharing entries, batched lookups (BatchGetItem's 100-key pages, MGET),
// a server that is down or dies mid-run (a miss, counted, never an error). DynamoDB only: expired
// items are misses on read (moto, like DynamoDB for days, keeps them), conditional writes never
// clobber a live entry, `cache setup` is idempotent. moto does not check SigV4 signatures;
// src/core/sigv4_test.cpp checks the signer against AWS's published vectors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>

#include "cache/cache_servers_fixture.h"
#include "cache/embedding_cache.h"
#include "cache/redis_client.h"
#include "cache/remote_caches.h"

namespace fs {
namespace {

using cache::testing::ServerProcess;

constexpr const char* kTable = "cis-image-embedding-cache";

// A content hash: 64 hex characters, distinct per n.
std::string Sha(int n) {
  char buf[65];
  std::snprintf(buf, sizeof buf, "%064x", n);
  return buf;
}

std::vector<float> Vec(float seed, size_t dim = 8) {
  std::vector<float> v(dim);
  for (size_t i = 0; i < dim; ++i) v[i] = seed + static_cast<float>(i) * 0.25f;
  return v;
}

// A model id unique to the running test, so tests sharing a server never see each other's entries.
std::string TestModel(const std::string& suffix = "") {
  return std::string("test/") + ::testing::UnitTest::GetInstance()->current_test_info()->name() + suffix;
}

class RemoteCacheTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const cache::testing::SharedServer& s = cache::testing::Shared(GetParam());
    if (!s.server) {
      if (s.skip) GTEST_SKIP() << s.why;
      FAIL() << s.why;
    }
    if (GetParam() == "dynamodb") {
      static bool table_made = [&] {
        auto made = SetupEmbeddingCache(Spec());
        EXPECT_TRUE(made.ok()) << made.status().ToString();
        return made.ok();
      }();
      ASSERT_TRUE(table_made);
    }
  }

  EmbeddingCacheSpec Spec(EmbeddingCacheOptions options = {}) const {
    EmbeddingCacheSpec spec;
    spec.options = std::move(options);
    if (GetParam() == "redis") {
      spec.spec = cache::testing::Shared("redis").server->url();
    } else {
      spec.spec = std::string("dynamodb://") + kTable;
      spec.endpoint = cache::testing::Shared("dynamodb").server->url();
    }
    return spec;
  }

  std::unique_ptr<EmbeddingCache> Open(EmbeddingCacheOptions options = {}) const {
    auto c = OpenEmbeddingCache(Spec(std::move(options)));
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(c).value() : nullptr;
  }
};

TEST_P(RemoteCacheTest, MissPutHitAndCounters) {
  auto cache = Open();
  ASSERT_TRUE(cache);
  EXPECT_EQ(cache->kind(), GetParam());
  const std::string model = TestModel();
  auto miss = cache->Get(Sha(1), model);
  ASSERT_TRUE(miss.ok());
  EXPECT_FALSE(miss->has_value());
  ASSERT_TRUE(cache->Put(Sha(1), model, Vec(1.5f)).ok());
  auto hit = cache->Get(Sha(1), model);
  ASSERT_TRUE(hit.ok());
  ASSERT_TRUE(hit->has_value());
  EXPECT_EQ(**hit, Vec(1.5f));  // bit for bit: little-endian float32 both ways
  const EmbeddingCacheCounters c = cache->counters();
  EXPECT_EQ(c.hits, 1u);
  EXPECT_EQ(c.misses, 1u);
  EXPECT_EQ(c.puts, 1u);
  EXPECT_EQ(c.errors, 0u);
  EXPECT_DOUBLE_EQ(c.hit_ratio(), 0.5);
  auto size = cache->Size();
  ASSERT_TRUE(size.ok()) << size.status().ToString();
  EXPECT_GE(*size, GetParam() == "redis" ? 1u : 0u);  // DynamoDB's ItemCount is refreshed every ~6 hours
}

TEST_P(RemoteCacheTest, TwoModelsNeverShareAVector) {
  auto cache = Open();
  ASSERT_TRUE(cache);
  ASSERT_TRUE(cache->Put(Sha(2), TestModel("/a"), Vec(2.0f)).ok());
  auto other = cache->Get(Sha(2), TestModel("/b"));
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->has_value());
  ASSERT_TRUE(cache->Put(Sha(2), TestModel("/b"), Vec(3.0f, 4)).ok());
  auto a = cache->Get(Sha(2), TestModel("/a"));
  auto b = cache->Get(Sha(2), TestModel("/b"));
  ASSERT_TRUE(a.ok() && a->has_value() && b.ok() && b->has_value());
  EXPECT_EQ(**a, Vec(2.0f));
  EXPECT_EQ(**b, Vec(3.0f, 4));
}

TEST_P(RemoteCacheTest, SecondWorkerHitsWhatTheFirstStored) {
  // Two caches = two worker processes: their own connections, their own counters.
  auto first = Open();
  auto second = Open();
  ASSERT_TRUE(first && second);
  const std::string model = TestModel();
  ASSERT_TRUE(first->Put(Sha(3), model, Vec(3.0f)).ok());
  auto got = second->Get(Sha(3), model);
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ(**got, Vec(3.0f));
  EXPECT_EQ(second->counters().hits, 1u);
  EXPECT_EQ(first->counters().hits, 0u);
}

TEST_P(RemoteCacheTest, ManyLookupsInOneCallKeepTheirOrder) {
  auto cache = Open();
  ASSERT_TRUE(cache);
  const std::string model = TestModel();
  // 250 keys: three BatchGetItem pages of at most 100; every third stored; one hash asked twice.
  std::vector<std::string> keys;
  for (int i = 0; i < 250; ++i) {
    keys.push_back(Sha(1000 + i));
    if (i % 3 == 0) {
      ASSERT_TRUE(cache->Put(keys.back(), model, Vec(static_cast<float>(i))).ok());
    }
  }
  keys.push_back(Sha(1000));
  auto got = cache->GetMany(keys, model);
  ASSERT_EQ(got.size(), keys.size());
  for (int i = 0; i < 250; ++i) {
    if (i % 3 == 0) {
      ASSERT_TRUE(got[i].has_value()) << i;
      EXPECT_EQ(*got[i], Vec(static_cast<float>(i))) << i;
    } else {
      EXPECT_FALSE(got[i].has_value()) << i;
    }
  }
  ASSERT_TRUE(got.back().has_value());
  EXPECT_EQ(*got.back(), Vec(0.0f));
  EXPECT_EQ(cache->counters().hits, 85u);
  EXPECT_EQ(cache->counters().misses, 166u);
}

TEST_P(RemoteCacheTest, ACacheThatIsDownIsAMissNeverAnError) {
  // Nothing listens on the port of a server started and killed: refused at once.
  std::string why;
  bool skip = false;
  auto doomed = ServerProcess::Start(GetParam(), &why, &skip);
  ASSERT_TRUE(doomed) << why;
  EmbeddingCacheSpec spec = Spec();
  (GetParam() == "redis" ? spec.spec : spec.endpoint) = doomed->url();
  spec.timeout_ms = 500;
  auto opened = OpenEmbeddingCache(spec);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  auto cache = std::move(opened).value();
  if (GetParam() == "dynamodb") {
    ASSERT_TRUE(SetupEmbeddingCache(spec).ok());
  }
  const std::string model = TestModel();
  ASSERT_TRUE(cache->Put(Sha(5), model, Vec(5.0f)).ok());
  auto before = cache->Get(Sha(5), model);
  ASSERT_TRUE(before.ok() && before->has_value());
  doomed->Kill();  // the server dies mid-run
  auto after = cache->Get(Sha(5), model);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_FALSE(after->has_value());
  EXPECT_TRUE(cache->Put(Sha(6), model, Vec(6.0f)).ok());
  auto many = cache->GetMany(std::vector<std::string>{Sha(5), Sha(6)}, model);
  EXPECT_FALSE(many[0].has_value() || many[1].has_value());
  const EmbeddingCacheCounters c = cache->counters();
  EXPECT_EQ(c.errors, 3u);  // one Get, one Put, one GetMany
  EXPECT_EQ(c.hits, 1u);
  EXPECT_EQ(c.misses, 3u);
  EXPECT_EQ(c.puts, 1u);
}

INSTANTIATE_TEST_SUITE_P(Backends, RemoteCacheTest, ::testing::Values("redis", "dynamodb"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

class DynamoCacheTest : public RemoteCacheTest {};

TEST_P(DynamoCacheTest, ExpiredItemsAreMissesAndMayBeReplaced) {
  // A writer whose clock is two TTLs behind stores an item whose `ttl` is already past.
  EmbeddingCacheOptions past;
  past.ttl_seconds = 3600;
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  past.now = [now] { return now - 7200; };
  auto stale_writer = Open(past);
  auto reader = Open();
  ASSERT_TRUE(stale_writer && reader);
  const std::string model = TestModel();
  ASSERT_TRUE(stale_writer->Put(Sha(7), model, Vec(7.0f)).ok());
  auto got = reader->Get(Sha(7), model);
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());  // moto keeps it, as DynamoDB does for a while: ignored on read
  EXPECT_EQ(reader->counters().expiries, 1u);
  EXPECT_EQ(reader->counters().misses, 1u);
  // The conditional write accepts replacing an expired item...
  ASSERT_TRUE(reader->Put(Sha(7), model, Vec(8.0f)).ok());
  auto fresh = reader->Get(Sha(7), model);
  ASSERT_TRUE(fresh.ok() && fresh->has_value());
  EXPECT_EQ(**fresh, Vec(8.0f));
  // ...but never clobbers a live one: a second writer's vector loses, and that is not an error.
  auto other = Open();
  ASSERT_TRUE(other->Put(Sha(7), model, Vec(9.0f)).ok());
  EXPECT_EQ(other->counters().errors, 0u);
  auto kept = other->Get(Sha(7), model);
  ASSERT_TRUE(kept.ok() && kept->has_value());
  EXPECT_EQ(**kept, Vec(8.0f));
}

TEST_P(DynamoCacheTest, SetupIsIdempotentAndTurnsTtlOn) {
  auto again = SetupEmbeddingCache(Spec());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_NE(again->find("exists"), std::string::npos) << *again;
  EXPECT_NE(again->find("TTL on attribute ttl already ENABLED"), std::string::npos) << *again;
}

TEST_P(DynamoCacheTest, ItemsKeepTheOriginalSchema) {
  // The key is image_hash = "<sha256>#<model>", nothing else: the original table's hash key.
  EXPECT_EQ(cache_internal::DynamoImageHash(Sha(1), "m/x"), Sha(1) + "#m/x");
  auto cache = Open();
  ASSERT_TRUE(cache);
  EXPECT_EQ(cache->kind(), "dynamodb");
}

INSTANTIATE_TEST_SUITE_P(Dynamo, DynamoCacheTest, ::testing::Values("dynamodb"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

class RedisCacheTest : public RemoteCacheTest {};

TEST_P(RedisCacheTest, EntriesCarryTheTtl) {
  EmbeddingCacheOptions o;
  o.ttl_seconds = 5000;
  auto cache = Open(o);
  ASSERT_TRUE(cache);
  const std::string model = TestModel();
  ASSERT_TRUE(cache->Put(Sha(9), model, Vec(9.0f)).ok());
  auto address = cache_internal::ParseRedisUrl(cache::testing::Shared("redis").server->url());
  ASSERT_TRUE(address.ok());
  auto conn = cache_internal::RedisConnection::Connect(*address, 2000);
  ASSERT_TRUE(conn.ok()) << conn.status().ToString();
  auto ttl = (*conn)->Command({"TTL", cache_internal::RedisKey(Sha(9), model)});
  ASSERT_TRUE(ttl.ok());
  EXPECT_EQ(ttl->type, cache_internal::RedisReply::Type::kInteger);
  EXPECT_GT(ttl->integer, 4000);
  EXPECT_LE(ttl->integer, 5000);
  // Redis expires keys itself: an expired key is simply absent.
  auto gone = (*conn)->Command({"EXPIRE", cache_internal::RedisKey(Sha(9), model), "0"});
  ASSERT_TRUE(gone.ok());
  auto got = cache->Get(Sha(9), model);
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());
}

TEST_P(RedisCacheTest, PipelinedRepliesComeBackInOrder) {
  auto address = cache_internal::ParseRedisUrl(cache::testing::Shared("redis").server->url());
  ASSERT_TRUE(address.ok());
  auto conn = cache_internal::RedisConnection::Connect(*address, 2000);
  ASSERT_TRUE(conn.ok());
  const std::string key = "filesearch:test:" + TestModel();
  std::string binary("a\r\n$3\r\n\0b", 10);  // RESP framing inside a value must not confuse the reader
  auto replies =
      (*conn)->Pipeline({{"PING"}, {"SET", key, binary}, {"GET", key}, {"NOSUCHCOMMAND"}, {"DEL", key}});
  ASSERT_TRUE(replies.ok()) << replies.status().ToString();
  ASSERT_EQ(replies->size(), 5u);
  EXPECT_EQ((*replies)[0].text, "PONG");
  EXPECT_EQ((*replies)[1].type, cache_internal::RedisReply::Type::kStatus);
  EXPECT_EQ((*replies)[2].text, binary);
  EXPECT_EQ((*replies)[3].type, cache_internal::RedisReply::Type::kError);
  EXPECT_EQ((*replies)[4].integer, 1);
}

INSTANTIATE_TEST_SUITE_P(Redis, RedisCacheTest, ::testing::Values("redis"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

TEST(RedisUrl, Parses) {
  auto a = cache_internal::ParseRedisUrl("redis://:s3cret@cache.internal:6380/2");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->host, "cache.internal");
  EXPECT_EQ(a->port, 6380);
  EXPECT_EQ(a->password, "s3cret");
  EXPECT_EQ(a->db, 2);
  auto plain = cache_internal::ParseRedisUrl("redis://10.0.0.5");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->port, 6379);
  auto v6 = cache_internal::ParseRedisUrl("redis://[::1]:7000");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 7000);
  EXPECT_FALSE(cache_internal::ParseRedisUrl("rediss://host:1").ok());
  EXPECT_FALSE(cache_internal::ParseRedisUrl("redis://host:99999").ok());
}

TEST(OpenEmbeddingCache, RefusesUnknownSpecsAndMissingCredentials) {
  EmbeddingCacheSpec spec;
  spec.spec = "memcached://x";
  EXPECT_EQ(OpenEmbeddingCache(spec).status().code(), StatusCode::kInvalidArgument);
  spec.spec = "dynamodb://";
  EXPECT_EQ(OpenEmbeddingCache(spec).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fs
