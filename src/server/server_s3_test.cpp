// POST /embed with s3:// imageUrl over real HTTP: a running Server reading a bucket of a real S3
// server (s3rver from npm on 127.0.0.1; the test skips when node or s3rver is missing). The same
// bytes through s3:// and file:// give the same reply; refusals get their stable codes; the server
// keeps serving after each. Replies are checked against docs/openapi.json. Documents indexed from
// s3:// are served by /documents/{id}/content and /thumbnail from the bucket, under the user's scope.
#include <httplib.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/hash.h"
#include "engine/engine.h"
#include "image/image.h"
#include "server/openapi_validator.h"
#include "server/server.h"
#include "server/test_images.h"
#include "server/test_tokens.h"
#include "storage/s3rver_fixture.h"

namespace fs::server {
namespace {

namespace stdfs = std::filesystem;
using Json = nlohmann::json;
using testing::FakePng;

struct Reply {
  int status = 0;
  Json body;
  std::string raw;
};

constexpr uint64_t kMaxImageBytes = 64 << 10;

class S3EmbedTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    bool skip = false;
    s3rver_ = storage::testing::S3rver::Start({"photos", "private"}, &why_, &skip).release();
    if (!s3rver_) {
      if (!skip) FAIL() << why_;
      return;
    }
    base_ = new stdfs::path(stdfs::temp_directory_path() / ("fs_s3_embed_" + std::to_string(::getpid())));
    stdfs::remove_all(*base_);
    stdfs::create_directories(*base_ / "share");
    cat_ = new std::string(FakePng(64, 48, 1));
    std::ofstream(*base_ / "share/cat.png", std::ios::binary) << *cat_;

    auto client = storage::S3Client::Create(s3rver_->ClientOptions());
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    for (const auto& [bucket, key, bytes] : std::vector<std::tuple<std::string, std::string, std::string>>{
             {"photos", "cat.png", *cat_},
             {"photos", "2024/dog one.png", FakePng(32, 32, 2)},
             {"photos", "notes.txt", "meeting notes, not a picture"},
             {"photos", "huge.png", FakePng(100, 100, 3, kMaxImageBytes)},  // 16 + 8 + 64 KiB > limit
             {"photos", "bomb.png", FakePng(50000, 50000, 4)},
             {"private", "cat.png", *cat_}}) {
      ASSERT_TRUE((*client)->PutObject(bucket, key, bytes, "image/png").ok()) << key;
    }

    EngineOptions eo;
    eo.data_dir = (*base_ / "data").string();
    eo.progress = false;
    eo.source.s3 = s3rver_->ClientOptions();  // `index s3://...` reads the same server
    auto engine = Engine::Open(eo);
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    engine_ = engine->release();
    embedder_ = NewHashQueryEmbedder(64).release();
    server_ = StartServer(s3rver_->ClientOptions()).release();
    ASSERT_NE(server_, nullptr);

    const char* source = std::getenv("FILESEARCH_SOURCE_DIR");
    std::ifstream spec(std::string(source ? source : ".") + "/docs/openapi.json");
    ASSERT_TRUE(spec.good()) << "docs/openapi.json not found (set FILESEARCH_SOURCE_DIR)";
    validator_ = new testing::OpenApiValidator(Json::parse(spec));
  }

  static void TearDownTestSuite() {
    delete server_;
    delete embedder_;
    delete engine_;
    delete validator_;
    delete cat_;
    delete s3rver_;
    if (base_) stdfs::remove_all(*base_);
    delete base_;
  }

  void SetUp() override {
    if (!s3rver_) GTEST_SKIP() << why_;
    ASSERT_NE(server_, nullptr);
  }

  // A server over the shared engine reading bucket "photos" through `s3`; auth is off unless an
  // HS256 secret is given.
  static std::unique_ptr<Server> StartServer(const storage::S3Options& s3, const std::string& secret = "") {
    ServerOptions so;
    so.port = 0;
    so.engine = engine_;
    so.embedder = embedder_;
    so.auth.disabled = secret.empty();
    so.auth.hs256_secret = secret;
    so.storage_roots = {(*base_ / "share").string()};
    so.s3_buckets = {"photos"};
    so.s3 = s3;
    so.limits.max_image_bytes = kMaxImageBytes;
    so.limits.max_image_pixels = 1000000;
    so.threads = 4;
    auto srv = Server::Create(so);
    if (!srv.ok()) {
      ADD_FAILURE() << srv.status().ToString();
      return nullptr;
    }
    if (!(*srv)->Start().ok()) return nullptr;
    return std::move(srv).value();
  }

  static Reply Post(Server* srv, const Json& body, const std::string& token = "") {
    httplib::Client c("127.0.0.1", srv->port());
    c.set_read_timeout(30, 0);
    httplib::Headers headers;
    if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
    auto r = c.Post("/embed", headers, body.dump(), "application/json");
    Reply out;
    if (!r) return out;
    out.status = r->status;
    out.raw = r->body;
    out.body = Json::parse(r->body, nullptr, false);
    return out;
  }
  static Reply Embed(const std::string& url, bool use_cache = true, Server* srv = nullptr) {
    Json body = {{"imageUrl", url}};
    if (!use_cache) body["useCache"] = false;
    return Post(srv ? srv : server_, body);
  }
  void Conforms(const Reply& r) {
    for (const auto& p : validator_->Validate("/embed", "post", r.status, r.body)) {
      ADD_FAILURE() << r.status << ": " << p << "\n" << r.raw.substr(0, 400);
    }
  }
  void ExpectError(const Reply& r, int status, const std::string& code) {
    EXPECT_EQ(r.status, status) << r.raw;
    ASSERT_TRUE(r.body.is_object()) << r.raw;
    EXPECT_EQ(r.body["success"], false) << r.raw;
    EXPECT_EQ(r.body["error"]["code"], code) << r.raw;
    EXPECT_FALSE(r.body["error"]["message"].get<std::string>().empty());
    Conforms(r);
  }
  // The server still answers, and still reads S3.
  void ExpectStillServing() {
    httplib::Client c("127.0.0.1", server_->port());
    auto health = c.Get("/healthz");
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200);
    EXPECT_EQ(Embed("s3://photos/2024/dog one.png").status, 200);
  }
  static std::string FileUrl(const std::string& rel) {
    return "file://" + stdfs::canonical(*base_ / "share" / rel).string();
  }

  static storage::testing::S3rver* s3rver_;
  static std::string why_;
  static stdfs::path* base_;
  static std::string* cat_;
  static Engine* engine_;
  static QueryEmbedder* embedder_;
  static Server* server_;
  static testing::OpenApiValidator* validator_;
};
storage::testing::S3rver* S3EmbedTest::s3rver_ = nullptr;
std::string S3EmbedTest::why_;
stdfs::path* S3EmbedTest::base_ = nullptr;
std::string* S3EmbedTest::cat_ = nullptr;
Engine* S3EmbedTest::engine_ = nullptr;
QueryEmbedder* S3EmbedTest::embedder_ = nullptr;
Server* S3EmbedTest::server_ = nullptr;
testing::OpenApiValidator* S3EmbedTest::validator_ = nullptr;

TEST_F(S3EmbedTest, SameReplyAsTheFileUrlOfTheSameBytes) {
  const Reply s3 = Embed("s3://photos/cat.png", false);
  ASSERT_EQ(s3.status, 200) << s3.raw;
  Conforms(s3);
  const Reply file = Embed(FileUrl("cat.png"), false);
  ASSERT_EQ(file.status, 200) << file.raw;
  EXPECT_EQ(s3.body["success"], true);
  const Json& d = s3.body["data"];
  for (const char* field : {"embedding", "dimension", "model", "inferenceTime", "cached", "imageHash"}) {
    EXPECT_TRUE(d.contains(field)) << field << ": " << s3.raw.substr(0, 300);
  }
  EXPECT_EQ(d["embedding"], file.body["data"]["embedding"]);
  EXPECT_EQ(d["embedding"].size(), 64u);
  EXPECT_EQ(d["dimension"], 64);
  EXPECT_EQ(d["model"], file.body["data"]["model"]);
  EXPECT_EQ(d["imageHash"], Sha256Hex(*cat_));
  EXPECT_EQ(d["imageHash"], file.body["data"]["imageHash"]);
  EXPECT_EQ(d["cached"], false);
  // A key with a space and a folder.
  const Reply dog = Embed("s3://photos/2024/dog one.png");
  ASSERT_EQ(dog.status, 200) << dog.raw;
  EXPECT_NE(dog.body["data"]["embedding"], d["embedding"]);
}

TEST_F(S3EmbedTest, TheEmbeddingCacheApplies) {
  // Bytes nothing else has: the first request embeds, the second is a cache hit (also for the
  // file:// url of the same bytes: the cache is keyed by content), useCache false bypasses it.
  auto client = storage::S3Client::Create(s3rver_->ClientOptions());
  ASSERT_TRUE(client.ok());
  const std::string fresh = FakePng(40, 40, std::random_device{}());
  ASSERT_TRUE((*client)->PutObject("photos", "fresh.png", fresh).ok());
  std::ofstream(*base_ / "share/fresh.png", std::ios::binary) << fresh;
  const Reply first = Embed("s3://photos/fresh.png");
  ASSERT_EQ(first.status, 200) << first.raw;
  EXPECT_EQ(first.body["data"]["cached"], false);
  const Reply second = Embed("s3://photos/fresh.png");
  ASSERT_EQ(second.status, 200) << second.raw;
  EXPECT_EQ(second.body["data"]["cached"], true);
  EXPECT_EQ(second.body["data"]["embedding"], first.body["data"]["embedding"]);
  const Reply file = Embed(FileUrl("fresh.png"));
  EXPECT_EQ(file.body["data"]["cached"], true) << file.raw;
  const Reply bypass = Embed("s3://photos/fresh.png", false);
  ASSERT_EQ(bypass.status, 200) << bypass.raw;
  EXPECT_EQ(bypass.body["data"]["cached"], false);
  EXPECT_EQ(bypass.body["data"]["embedding"], first.body["data"]["embedding"]);
}

TEST_F(S3EmbedTest, RefusalsHaveStableCodesAndTheServerKeepsServing) {
  struct Case {
    std::string url;
    int status;
    const char* code;
  };
  for (const Case& c : std::vector<Case>{
           {"s3://private/cat.png", 403, "bucket_not_allowed"},        // exists, but not configured
           {"s3://no-such-bucket/cat.png", 403, "bucket_not_allowed"},
           {"s3://127.0.0.1:1/photos/cat.png", 403, "bucket_not_allowed"},  // the url never picks the host
           {"s3://photos/missing.png", 404, "not_found"},
           {"s3://photos/../private/cat.png", 400, "invalid_path"},
           {"s3://photos/%2e%2e/private/cat.png", 400, "invalid_path"},
           {"s3://photos/a/./../cat.png", 400, "invalid_path"},
           {"s3://photos//cat.png", 400, "invalid_path"},
           {"s3://photos/", 400, "invalid_path"},
           {"s3://photos/cat\x01.png", 400, "invalid_path"},
           {"s3://photos/huge.png", 413, "payload_too_large"},   // refused from its Content-Length
           {"s3://photos/bomb.png", 413, "payload_too_large"},   // 50000 x 50000 in its header
           {"s3://photos/notes.txt", 415, "not_an_image"}}) {
    SCOPED_TRACE(c.url);
    ExpectError(Embed(c.url), c.status, c.code);
    ExpectStillServing();
  }
  Json nul = {{"imageUrl", std::string("s3://photos/cat.png\0.jpg", 24)}};
  ExpectError(Post(server_, nul), 400, "invalid_path");
  ExpectStillServing();
}

// An object's display path is its url, s3://bucket/key: a token's folders admit objects under
// such a prefix, and an object outside them gets exactly the reply of a missing one.
TEST_F(S3EmbedTest, ObjectsOutsideTheUsersFoldersLookMissing) {
  const std::string secret = "s3-scope-test-secret-0123456789abcdef";
  auto srv = StartServer(s3rver_->ClientOptions(), secret);
  ASSERT_NE(srv, nullptr);
  auto token = [&](const Json& paths) {
    Json claims = {{"sub", "bob"}, {"exp", testing::NowSeconds() + 600}};
    if (!paths.is_null()) claims["paths"] = paths;
    return testing::SignHs256(secret, claims);
  };
  auto embed = [&](const std::string& url, const std::string& t) { return Post(srv.get(), {{"imageUrl", url}}, t); };
  const std::string album = token(Json::array({"s3://photos/2024/"}));
  const std::string files = token(Json::array({(*base_ / "share").string() + "/"}));
  Reply inside = embed("s3://photos/2024/dog one.png", album);
  EXPECT_EQ(inside.status, 200) << inside.raw;
  Conforms(inside);
  Reply missing = embed("s3://photos/2024/missing.png", album);
  ExpectError(missing, 404, "not_found");
  for (const auto& [url, t] : std::vector<std::pair<std::string, std::string>>{{"s3://photos/cat.png", album},
                                                                             {"s3://photos/missing.png", album},
                                                                             {"s3://photos/cat.png", files}}) {
    SCOPED_TRACE(url);
    Reply hidden = embed(url, t);
    EXPECT_EQ(hidden.status, missing.status);
    EXPECT_EQ(hidden.body, missing.body) << "an object outside the user's folders must look missing";
  }
  EXPECT_EQ(embed("s3://photos/cat.png", token(nullptr)).status, 200) << "a token without folders sees every object";
}

// `index s3://...` keeps s3:// uris; the server reads those documents' bytes from the bucket for
// /content and thumbnails, and a token's s3:// prefixes decide who sees them.
TEST_F(S3EmbedTest, IndexedObjectsAreServedFromTheBucketUnderTheUsersScope) {
  auto client = std::move(storage::S3Client::Create(s3rver_->ClientOptions())).value();
  image::RgbImage img;
  img.width = 40;
  img.height = 30;
  for (int i = 0; i < 40 * 30; ++i) img.pixels.insert(img.pixels.end(), {200, static_cast<uint8_t>(i % 256), 50});
  const std::string jpeg = std::move(image::MakeThumbnail(img, 64)).value();  // a real JPEG to decode
  ASSERT_TRUE(client->PutObject("photos", "served/sun set+1.jpg", jpeg, "image/jpeg").ok());
  ASSERT_TRUE(client->PutObject("photos", "served/read me.txt", "served from the bucket").ok());
  ASSERT_TRUE(client->PutObject("private", "secret.txt", "not for bob").ok());
  for (const char* uri : {"s3://photos/served/", "s3://private"}) {
    auto report = engine_->Index(uri, {});
    ASSERT_TRUE(report.ok()) << uri << ": " << report.status().ToString();
  }
  auto id_of = [](const std::string& uri) {
    auto doc = engine_->store()->GetByUri(uri);
    EXPECT_TRUE(doc.ok()) << uri;
    return doc.ok() ? std::to_string(doc->id) : std::string("0");
  };
  const std::string photo = id_of("s3://photos/served/sun set+1.jpg");
  const std::string text = id_of("s3://photos/served/read me.txt");
  const std::string secret_doc = id_of("s3://private/secret.txt");

  const std::string secret = "s3-documents-test-secret-0123456789abcdef";
  auto srv = StartServer(s3rver_->ClientOptions(), secret);
  ASSERT_NE(srv, nullptr);
  const std::string bob = testing::SignHs256(
      secret, {{"sub", "bob"}, {"exp", testing::NowSeconds() + 600}, {"paths", Json::array({"s3://photos/served/"})}});
  httplib::Client c("127.0.0.1", srv->port());
  const httplib::Headers auth = {{"Authorization", "Bearer " + bob}};
  auto content = c.Get("/documents/" + text + "/content", auth);
  ASSERT_TRUE(content);
  EXPECT_EQ(content->status, 200) << content->body;
  EXPECT_EQ(content->body, "served from the bucket");
  EXPECT_EQ(content->get_header_value("Content-Type"), "text/plain");
  auto raw = c.Get("/documents/" + photo + "/content", auth);
  ASSERT_TRUE(raw);
  EXPECT_EQ(raw->status, 200);
  EXPECT_EQ(raw->body, jpeg);
  auto thumb = c.Get("/documents/" + photo + "/thumbnail", auth);
  ASSERT_TRUE(thumb);
  EXPECT_EQ(thumb->status, 200) << thumb->body;
  EXPECT_EQ(thumb->get_header_value("Content-Type"), "image/jpeg");
  EXPECT_EQ(thumb->body.substr(0, 3), std::string("\xFF\xD8\xFF", 3));
  // Outside bob's prefixes: exactly the reply of an id that does not exist.
  auto hidden = c.Get("/documents/" + secret_doc + "/content", auth);
  auto missing = c.Get("/documents/987654/content", auth);
  ASSERT_TRUE(hidden && missing);
  EXPECT_EQ(hidden->status, 404);
  EXPECT_EQ(missing->status, 404);
  std::string expected = missing->body;  // the same words, with its own id
  expected.replace(expected.find("987654"), 6, secret_doc);
  EXPECT_EQ(hidden->body, expected);
  // The object is gone from the bucket (not yet re-indexed): 404 file_unavailable, and the
  // server keeps serving.
  ASSERT_TRUE(client->DeleteObject("photos", "served/read me.txt").ok());
  auto gone = c.Get("/documents/" + text + "/content", auth);
  ASSERT_TRUE(gone);
  EXPECT_EQ(gone->status, 404);
  EXPECT_EQ(Json::parse(gone->body)["error"]["code"], "file_unavailable") << gone->body;
  ExpectStillServing();
}

TEST_F(S3EmbedTest, StorageFailuresAreTheOperatorsToFix) {
  // S3 does not know the server's access key: 502 storage_error.
  storage::S3Options wrong_key = s3rver_->ClientOptions();
  wrong_key.access_key_id = "NOT-A-KEY";
  auto denied = StartServer(wrong_key);
  ASSERT_NE(denied, nullptr);
  ExpectError(Embed("s3://photos/cat.png", true, denied.get()), 502, "storage_error");

  // Nothing listens at the endpoint: 503 storage_unavailable.
  storage::S3Options dead = s3rver_->ClientOptions();
  dead.endpoint = "http://127.0.0.1:1";
  auto down = StartServer(dead);
  ASSERT_NE(down, nullptr);
  const Reply r = Embed("s3://photos/cat.png", true, down.get());
  ExpectError(r, 503, "storage_unavailable");
  EXPECT_EQ(r.raw.find("127.0.0.1:1"), std::string::npos) << "the endpoint is the operator's, not the client's business";
  ExpectStillServing();
}

TEST(S3EmbedOptions, BadBucketNamesAndEndpointsAreRefusedAtStart) {
  EngineOptions eo;
  const stdfs::path dir = stdfs::temp_directory_path() / ("fs_s3_opts_" + std::to_string(::getpid()));
  eo.data_dir = dir.string();
  eo.progress = false;
  auto engine = Engine::Open(eo);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  for (const char* bucket : {"Photos", "a/b", "photos@evil", ".."}) {
    ServerOptions so;
    so.engine = engine->get();
    so.auth.disabled = true;
    so.s3_buckets = {bucket};
    so.s3.endpoint = "http://127.0.0.1:9000";
    EXPECT_EQ(Server::Create(so).status().code(), StatusCode::kInvalidArgument) << bucket;
  }
  ServerOptions so;
  so.engine = engine->get();
  so.auth.disabled = true;
  so.s3_buckets = {"photos"};
  so.s3.endpoint = "http://127.0.0.1:9000/some/path";
  EXPECT_EQ(Server::Create(so).status().code(), StatusCode::kInvalidArgument);
  engine->reset();
  stdfs::remove_all(dir);
}

}  // namespace
}  // namespace fs::server
