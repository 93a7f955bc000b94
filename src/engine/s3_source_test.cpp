// `index s3://bucket/prefix` against a real S3 server (s3rver from npm on 127.0.0.1, one for the
// whole binary; skips when node or s3rver is missing): ListObjectsV2 paging, keys with spaces,
// unicode and '+', incremental runs by ETag/size/LastModified, deleted objects, the size limit,
// embeddings of images through the spool, virtual-hosted requests, and 503 SlowDown retried
// (a small stub in front of s3rver answers 503 before it forwards).
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <filesystem>
#include <random>
#include <thread>

#include "core/env.h"
#include "engine/engine.h"
#include "storage/s3rver_fixture.h"
#include "storage/source.h"

namespace fs {
namespace {

namespace stdfs = std::filesystem;

// PNG signature + IHDR + noise: enough for type sniffing and the hash embedder.
std::string FakePng(uint32_t seed) {
  std::string s = std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10", 24);
  std::mt19937 rng(seed);
  for (int i = 0; i < 200; ++i) s += static_cast<char>(rng() & 0xFF);
  return s;
}

// Answers 503 SlowDown to the requests `fail(n)` picks (n counts from 0), forwards the rest to
// s3rver with their headers (Host and Authorization included, so the signature still holds).
class SlowDownStub {
 public:
  SlowDownStub(int upstream_port, std::function<bool(int)> fail) : upstream_(upstream_port), fail_(std::move(fail)) {
    auto handle = [this](const httplib::Request& req, httplib::Response& res) { Handle(req, res); };
    server_.Get(".*", handle);
    server_.Put(".*", handle);
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~SlowDownStub() {
    server_.stop();
    thread_.join();
  }
  int port() const { return port_; }
  int refused() const { return refused_; }
  int forwarded() const { return forwarded_; }

 private:
  void Handle(const httplib::Request& req, httplib::Response& res) {
    const int n = seen_++;
    if (fail_(n)) {
      ++refused_;
      res.status = 503;
      res.set_content("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code>"
                      "<Message>Please reduce your request rate.</Message></Error>",
                      "application/xml");
      return;
    }
    ++forwarded_;
    httplib::Client up("127.0.0.1", upstream_);
    up.set_url_encode(false);
    httplib::Headers headers;
    for (const auto& [k, v] : req.headers) {
      if (k == "REMOTE_ADDR" || k == "REMOTE_PORT" || k == "LOCAL_ADDR" || k == "LOCAL_PORT" || k == "Content-Length") continue;
      headers.emplace(k, v);
    }
    auto got = req.method == "PUT" ? up.Put(req.target, headers, req.body, req.get_header_value("Content-Type"))
                                   : up.Get(req.target, headers);
    if (!got) {
      res.status = 502;
      return;
    }
    res.status = got->status;
    for (const auto& [k, v] : got->headers) {
      if (k == "Content-Length" || k == "Transfer-Encoding" || k == "Connection" || k == "Content-Type") continue;
      res.set_header(k, v);
    }
    res.set_content(got->body, got->get_header_value("Content-Type"));
  }
  int upstream_;
  std::function<bool(int)> fail_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::atomic<int> seen_{0}, refused_{0}, forwarded_{0};
};

class S3IndexTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    bool skip = false;
    s3rver_ = storage::testing::S3rver::Start({"media", "paged", "vhost", "flaky"}, &why_, &skip).release();
    if (!s3rver_ && !skip) FAIL() << why_;
  }
  static void TearDownTestSuite() {
    delete s3rver_;
    s3rver_ = nullptr;
  }
  void SetUp() override {
    if (!s3rver_) GTEST_SKIP() << why_;
    client_ = std::move(storage::S3Client::Create(s3rver_->ClientOptions())).value();
    dir_ = stdfs::weakly_canonical(::testing::TempDir()).string() + "/s3_source_test_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    stdfs::remove_all(dir_);
  }
  void TearDown() override { stdfs::remove_all(dir_); }

  std::unique_ptr<Engine> OpenEngine(storage::S3Options s3, int page_keys = 1000) {
    EngineOptions o;
    o.data_dir = dir_;
    o.progress = false;
    o.embed_batch = 2;
    o.source.s3 = std::move(s3);
    o.source.list_page_keys = page_keys;
    auto engine = Engine::Open(o);
    EXPECT_TRUE(engine.ok()) << engine.status().ToString();
    EXPECT_TRUE((*engine)->SetEmbedder(NewHashEmbedder(64)).ok());
    return std::move(engine).value();
  }
  void Put(const std::string& bucket, const std::string& key, const std::string& bytes) {
    ASSERT_TRUE(client_->PutObject(bucket, key, bytes).ok()) << key;
  }
  static size_t Hits(Engine* engine, const std::string& q) {
    return engine->store()->KeywordSearch(q, {}, 0, 100)->hits.size();
  }

  static storage::testing::S3rver* s3rver_;
  static std::string why_;
  std::unique_ptr<storage::S3Client> client_;
  std::string dir_;
};
storage::testing::S3rver* S3IndexTest::s3rver_ = nullptr;
std::string S3IndexTest::why_;

TEST_F(S3IndexTest, IndexesABucketIncrementallyAndRemovesDeletedObjects) {
  Put("media", "notes/a b.txt", "the giraffe stands tall");
  Put("media", "notes/日本語 メモ.txt", "a kangaroo in tokyo");
  Put("media", "notes/c+d.txt", "plus signs and a walrus");
  Put("media", "photos/red.png", FakePng(1));
  Put("media", "photos/copy of red.png", FakePng(1));  // same bytes: one embedding computed, two stored
  Put("media", "big/huge.txt", std::string(5000, 'h') + " hippopotamus");
  Put("media", "folder/", "");  // a console's "folder" marker: not a document
  auto engine = OpenEngine(s3rver_->ClientOptions());
  CrawlOptions co;
  co.max_object_bytes = 4096;
  auto first = engine->Index("s3://media", co);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->crawl.files_seen, 6u);
  EXPECT_EQ(first->crawl.added, 6u);
  EXPECT_EQ(first->crawl.skipped, 1u);
  EXPECT_EQ(first->embedded, 2u);
  ASSERT_EQ(first->crawl.problems.size(), 1u);
  EXPECT_EQ(first->crawl.problems[0].path, "s3://media/big/huge.txt");
  EXPECT_NE(first->crawl.problems[0].reason.find("over the limit of 4096"), std::string::npos) << first->crawl.problems[0].reason;

  // Documents keep their s3:// uri as uri and path; keys that need encoding round-trip.
  for (const char* key : {"notes/a b.txt", "notes/日本語 メモ.txt", "notes/c+d.txt"}) {
    auto doc = engine->store()->GetByUri(std::string("s3://media/") + key);
    ASSERT_TRUE(doc.ok()) << key << ": " << doc.status().ToString();
    EXPECT_EQ(doc->path, std::string("s3://media/") + key);
    EXPECT_EQ(doc->mime, "text/plain");
    EXPECT_EQ(doc->etag.size(), 32u) << doc->etag;
  }
  EXPECT_EQ(Hits(engine.get(), "giraffe"), 1u);
  EXPECT_EQ(Hits(engine.get(), "kangaroo"), 1u);
  EXPECT_EQ(Hits(engine.get(), "walrus"), 1u);
  // Over the limit: found by name, no text read, a dead letter on the failure list.
  EXPECT_EQ(Hits(engine.get(), "hippopotamus"), 0u);
  EXPECT_EQ(Hits(engine.get(), "huge"), 1u);
  auto failures = engine->store()->ListFailures(false, 100);
  ASSERT_TRUE(failures.ok());
  ASSERT_EQ(failures->size(), 1u);
  EXPECT_EQ((*failures)[0].uri, "s3://media/big/huge.txt");
  EXPECT_TRUE((*failures)[0].dead());
  // Both images have the vector of their bytes.
  auto red = engine->store()->GetByUri("s3://media/photos/red.png");
  auto copy = engine->store()->GetByUri("s3://media/photos/copy of red.png");
  ASSERT_TRUE(red.ok() && copy.ok());
  auto v1 = engine->store()->GetEmbedding(red->id, "test/hash-64");
  auto v2 = engine->store()->GetEmbedding(copy->id, "test/hash-64");
  ASSERT_TRUE(v1.ok() && v1->has_value() && v2.ok() && v2->has_value());
  EXPECT_EQ(**v1, **v2);
  EXPECT_FALSE(stdfs::exists(dir_ + "/spool/index-" + std::to_string(::getpid())));  // the spool is cleaned up

  // Nothing changed: nothing is read again.
  auto second = engine->Index("s3://media", co);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->crawl.unchanged, 6u);
  EXPECT_EQ(second->crawl.added + second->crawl.updated + second->crawl.removed, 0u);

  // Changed objects are read again (same size here: the ETag or LastModified tells them apart);
  // deleted ones leave the index, with their failure entries.
  Put("media", "notes/a b.txt", "the buffalo stands tall");  // as long as the giraffe's text
  Put("media", "notes/c+d.txt", "plus signs and a possum");   // as long as the walrus's
  Put("media", "photos/copy of red.png", FakePng(2));
  ASSERT_TRUE(client_->DeleteObject("media", "notes/日本語 メモ.txt").ok());
  ASSERT_TRUE(client_->DeleteObject("media", "big/huge.txt").ok());
  auto third = engine->Index("s3://media", co);
  ASSERT_TRUE(third.ok()) << third.status().ToString();
  EXPECT_EQ(third->crawl.updated, 3u);
  EXPECT_EQ(third->crawl.removed, 2u);
  EXPECT_EQ(Hits(engine.get(), "giraffe"), 0u);
  EXPECT_EQ(Hits(engine.get(), "buffalo"), 1u);
  EXPECT_EQ(Hits(engine.get(), "walrus"), 0u);
  EXPECT_EQ(Hits(engine.get(), "possum"), 1u);
  EXPECT_EQ(Hits(engine.get(), "kangaroo"), 0u);
  EXPECT_FALSE(engine->store()->GetByUri("s3://media/notes/日本語 メモ.txt").ok());
  EXPECT_TRUE(engine->store()->ListFailures(false, 100)->empty());
  auto v3 = engine->store()->GetEmbedding(copy->id, "test/hash-64");
  ASSERT_TRUE(v3.ok() && v3->has_value());
  EXPECT_NE(**v3, **v1);  // re-embedded from its new bytes
}

TEST_F(S3IndexTest, PagesThroughListingsAndIndexesAPrefixOnly) {
  for (int i = 0; i < 11; ++i) Put("paged", "in/doc" + std::to_string(i) + ".txt", "ocelot number " + std::to_string(i));
  Put("paged", "out/other.txt", "ocelot outside the prefix");
  auto engine = OpenEngine(s3rver_->ClientOptions(), /*page_keys=*/3);  // 4 pages of ListObjectsV2
  auto report = engine->Index("s3://paged/in/", {});
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->crawl.added, 11u);
  EXPECT_EQ(Hits(engine.get(), "ocelot"), 11u);
  EXPECT_FALSE(engine->store()->GetByUri("s3://paged/out/other.txt").ok());
  // Removing is scoped to the prefix: indexing another prefix leaves these alone.
  auto other = engine->Index("s3://paged/out/", {});
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  EXPECT_EQ(other->crawl.removed, 0u);
  EXPECT_EQ(Hits(engine.get(), "ocelot"), 12u);
}

TEST_F(S3IndexTest, VirtualHostedRequestsReachTheBucketByName) {
  Put("vhost", "dir/x y+z.txt", "virtually a quokka");
  storage::S3Options o = s3rver_->ClientOptions();
  // The bucket goes in the host name (vhost.s3.us-east-1.amazonaws.com:PORT); the connection goes to
  // s3rver on 127.0.0.1, which routes by that Host header. Nothing leaves the machine.
  o.endpoint = "http://s3.us-east-1.amazonaws.com:" + std::to_string(s3rver_->port());
  o.addressing = storage::S3Addressing::kVirtualHosted;
  o.connect_to = "127.0.0.1:" + std::to_string(s3rver_->port());
  auto client = storage::S3Client::Create(o);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  const auto target = (*client)->TargetFor("vhost", "dir/x y+z.txt");
  EXPECT_EQ(target.host, "vhost.s3.us-east-1.amazonaws.com:" + std::to_string(s3rver_->port()));
  EXPECT_EQ(target.path, "/dir/x%20y%2Bz.txt");
  auto engine = OpenEngine(o);
  auto report = engine->Index("s3://vhost", {});
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->crawl.added, 1u);
  EXPECT_EQ(Hits(engine.get(), "quokka"), 1u);
}

TEST_F(S3IndexTest, SlowDownIsRetriedWithBackoff) {
  for (int i = 0; i < 5; ++i) Put("flaky", "f" + std::to_string(i) + ".txt", "tapir " + std::to_string(i));
  Put("flaky", "pic.png", FakePng(3));
  // Every other request of the first twenty is refused with 503 SlowDown: the listing and reads
  // each meet it, and each succeeds on its retry.
  SlowDownStub stub(s3rver_->port(), [](int n) { return n < 20 && n % 2 == 0; });
  storage::S3Options o = s3rver_->ClientOptions();
  o.endpoint = "http://127.0.0.1:" + std::to_string(stub.port());
  o.retry_base_ms = 5;
  auto engine = OpenEngine(o, /*page_keys=*/2);
  auto report = engine->Index("s3://flaky", {});
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->crawl.added, 6u);
  EXPECT_TRUE(report->crawl.problems.empty()) << report->crawl.problems[0].reason;
  EXPECT_EQ(report->embedded, 1u);
  EXPECT_EQ(Hits(engine.get(), "tapir"), 5u);
  // Each request (3 listing pages, 6 reads) was refused once, then forwarded.
  EXPECT_GE(stub.refused(), 9);
  EXPECT_EQ(stub.refused(), stub.forwarded());
  engine.reset();

  // A server that keeps refusing: the listing fails after the retries, the run says so and nothing
  // already indexed is removed.
  SlowDownStub down(s3rver_->port(), [](int) { return true; });
  o.endpoint = "http://127.0.0.1:" + std::to_string(down.port());
  o.max_retries = 2;
  auto engine2 = OpenEngine(o);
  auto failed = engine2->Index("s3://flaky", {});
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), StatusCode::kUnavailable) << failed.status().ToString();
  EXPECT_NE(failed.status().message().find("try again later"), std::string::npos) << failed.status().ToString();
  EXPECT_EQ(down.refused(), 3);  // the first try and two retries
  EXPECT_EQ(Hits(engine2.get(), "tapir"), 5u);
}

}  // namespace
}  // namespace fs
