// API tests over real HTTP: an Engine over a generated folder, the Server on an ephemeral
// 127.0.0.1 port, and httplib's client. Replies are checked against docs/openapi.json.
#include <httplib.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <chrono>
#include <cstring>
#include <thread>

#include "core/base64.h"
#include "core/env.h"
#include "core/hash.h"
#include "engine/engine.h"
#include "engine/eval.h"
#include "index/opensearch_client.h"
#include "index/opensearch_query.h"
#include "index/opensearch_setup.h"
#include "server/auth.h"
#include "image/image.h"
#include "server/openapi_validator.h"
#include "server/server.h"
#include "server/test_images.h"
#include "server/test_tokens.h"

namespace fs::server {
namespace {

namespace stdfs = std::filesystem;
using Json = nlohmann::json;
using testing::FakePng;
using testing::NowSeconds;
using testing::SignHs256;
using testing::TestKey;

const std::string kSecret = "api-test-secret-0123456789abcdef0123456789";
constexpr int kReports = 23;

void WriteFile(const stdfs::path& p, const std::string& data) {
  stdfs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << data;
}

struct Reply {
  int status = 0;
  Json body;
  std::string raw;
  httplib::Headers headers;
};

std::string Header(const Reply& r, const std::string& key) {
  auto it = r.headers.find(key);
  return it == r.headers.end() ? "" : it->second;
}

// Percent-encodes everything but unreserved characters.
std::string Enc(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

class ApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    base_ = new stdfs::path(stdfs::temp_directory_path() / ("fs_api_" + std::to_string(::getpid())));
    stdfs::remove_all(*base_);
    const stdfs::path share = *base_ / "share";
    for (int i = 0; i < kReports; ++i) {
      WriteFile(share / "finance" / ("report-" + std::to_string(100 + i) + ".txt"),
                "quarterly report number " + std::to_string(i) + " revenue");
    }
    WriteFile(share / "hr/policy.txt", "holiday policy report for staff");
    WriteFile(share / "hr/secret.txt", "salaries of everyone");
    std::string big;
    for (int i = 0; big.size() < (700 << 10); ++i) big += "line " + std::to_string(i) + " of a long log\n";
    WriteFile(share / "hr/big.log", big);
    WriteFile(share / "photos/cat.png", FakePng(64, 48, 1));
    WriteFile(share / "photos/dog.png", FakePng(64, 48, 2));
    WriteFile(share / "photos/bird.png", FakePng(64, 48, 3));
    WriteFile(share / "hr/badge.png", FakePng(32, 32, 4));
    WriteFile(*base_ / "outside/private.png", FakePng(8, 8, 5));
    WriteFile(*base_ / "outside/passwd.txt", "root:x:0:0");
    stdfs::create_symlink(*base_ / "outside/private.png", share / "photos/escape.png");
    source_dir_ = std::getenv("FILESEARCH_SOURCE_DIR") ? std::getenv("FILESEARCH_SOURCE_DIR") : ".";

    EngineOptions eo;
    eo.data_dir = (*base_ / "data").string();
    eo.progress = false;
    std::unique_ptr<OpenSearchClient>& node = node_;
    if (OnOpenSearch()) {
      // The same suite over the opensearch back end: a fresh index on the test node (CTest fixture
      // opensearch_node; FILESEARCH_OPENSEARCH_NODE_DIR names it).
      const char* dir = std::getenv("FILESEARCH_OPENSEARCH_NODE_DIR");
      std::string url = dir ? ReadSmallFile(std::string(dir) + "/url") : "";
      while (!url.empty() && (url.back() == '\n' || url.back() == ' ')) url.pop_back();
      if (url.empty()) {
        skip_reason_ = new std::string("no OpenSearch test node (run through ctest: fixture opensearch_node)");
        return;
      }
      eo.remote.enabled = true;
      eo.remote.client.url = url;
      eo.remote.index = "api-" + std::to_string(::getpid());
      auto client = OpenSearchClient::Create(eo.remote.client);
      ASSERT_TRUE(client.ok()) << client.status().ToString();
      node = std::move(*client);
      OpenSearchIndexSpec spec;
      spec.index = eo.remote.index;
      spec.dimension = 64;
      spec.engine = "lucene";  // the test node has no native faiss library (docs/opensearch.md)
      std::ostringstream out;
      Status setup = SetupOpenSearchIndex(*node, spec, out);
      ASSERT_TRUE(setup.ok()) << setup.ToString() << "\n" << out.str();
    }
    auto engine = Engine::Open(eo);
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    engine_ = engine->release();
    ASSERT_TRUE(engine_->SetEmbedder(NewHashEmbedder(64)).ok());
    CrawlOptions co;
    co.progress = false;
    auto report = engine_->Index(share.string(), co);
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    remote_index_ = eo.remote.index;
    Refresh();
    // After indexing, swap a file for a link to a secret outside the share.
    stdfs::remove(share / "hr/secret.txt");
    stdfs::create_symlink(*base_ / "outside/passwd.txt", share / "hr/secret.txt");

    embedder_ = NewHashQueryEmbedder(64).release();
    rsa_ = TestKey::Rsa("rsa-1").release();
    ServerOptions so;
    so.port = 0;
    so.engine = engine_;
    so.embedder = embedder_;
    so.auth.hs256_secret = kSecret;
    so.auth.jwks_json = Json{{"keys", {rsa_->Jwk()}}}.dump();
    so.auth.issuer = "https://login.test";
    so.auth.audience = "filesearch";
    so.storage_roots = {(share / "photos").string()};
    so.limits.max_body_bytes = 1 << 20;
    so.limits.max_image_bytes = 64 << 10;
    so.limits.max_image_pixels = 1000000;
    so.threads = 4;
    auto srv = Server::Create(so);
    ASSERT_TRUE(srv.ok()) << srv.status().ToString();
    server_ = srv->release();
    ASSERT_TRUE(server_->Start().ok());

    std::ifstream spec(source_dir_ + "/docs/openapi.json");
    ASSERT_TRUE(spec.good()) << "docs/openapi.json not found under " << source_dir_;
    validator_ = new testing::OpenApiValidator(Json::parse(spec));
  }

  void SetUp() override {
    if (skip_reason_) GTEST_SKIP() << *skip_reason_;
  }

  static bool OnOpenSearch() {
    const char* backend = std::getenv("FILESEARCH_TEST_BACKEND");
    return backend && std::string(backend) == "opensearch";
  }
  static std::string ReadSmallFile(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  // opensearch back end: what was written is searchable now, not at the next periodic refresh.
  static void Refresh() {
    if (!node_) return;
    OpenSearchRequest refresh;
    refresh.method = "POST";
    refresh.path = "/" + remote_index_ + "/_refresh";
    refresh.read_only_post = true;
    auto refreshed = node_->Send(refresh);
    ASSERT_TRUE(refreshed.ok() && refreshed->ok()) << "refresh failed";
  }
  // Writes a document into the store, and through to the node with the opensearch back end;
  // returns its id as the back end knows it.
  static int64_t Publish(const Document& d) {
    auto id = engine_->store()->Upsert(d);
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    if (!node_) return id.ok() ? *id : 0;
    auto synced = engine_->SyncRemote();
    EXPECT_TRUE(synced.ok()) << synced.status().ToString();
    Refresh();
    return opensearch::StableDocId(d.uri);
  }

  static void Unpublish(const std::string& uri) {
    ASSERT_TRUE(engine_->store()->Delete(uri).ok());
    if (!node_) return;
    auto synced = engine_->SyncRemote();
    EXPECT_TRUE(synced.ok()) << synced.status().ToString();
    Refresh();
  }

  static void TearDownTestSuite() {
    node_.reset();
    delete skip_reason_;
    skip_reason_ = nullptr;
    delete server_;
    delete embedder_;
    delete engine_;
    delete rsa_;
    delete validator_;
    stdfs::remove_all(*base_);
    delete base_;
  }

  static Json Claims() {
    return {{"sub", "alice"}, {"iss", "https://login.test"}, {"aud", "filesearch"}, {"exp", NowSeconds() + 600}};
  }
  static std::string Token() { return SignHs256(kSecret, Claims()); }

  static Reply Wrap(const httplib::Result& r) {
    Reply out;
    if (!r) return out;
    out.status = r->status;
    out.raw = r->body;
    out.headers = r->headers;
    if (r->get_header_value("Content-Type").rfind("application/json", 0) == 0) out.body = Json::parse(r->body, nullptr, false);
    return out;
  }
  static httplib::Headers Auth(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

  Reply Get(const std::string& path, const std::string& token = Token(), Server* srv = nullptr) {
    httplib::Client c("127.0.0.1", (srv ? srv : server_)->port());
    return Wrap(c.Get(path, token.empty() ? httplib::Headers{} : Auth(token)));
  }
  Reply PostJson(const std::string& path, const std::string& body, const std::string& token = Token(), Server* srv = nullptr) {
    httplib::Client c("127.0.0.1", (srv ? srv : server_)->port());
    return Wrap(c.Post(path, Auth(token), body, "application/json"));
  }
  // Validates a JSON reply against the spec operation `op` (a path template).
  void Conforms(const Reply& r, const std::string& op, const std::string& method = "get") {
    auto problems = validator_->Validate(op, method, r.status, r.body);
    for (const auto& p : problems) ADD_FAILURE() << method << " " << op << " " << r.status << ": " << p << "\n" << r.raw.substr(0, 400);
  }
  void ExpectError(const Reply& r, int status, const std::string& code, const std::string& op = "/search",
                   const std::string& method = "get") {
    EXPECT_EQ(r.status, status) << r.raw;
    ASSERT_TRUE(r.body.is_object()) << r.raw;
    EXPECT_EQ(r.body["error"]["code"], code) << r.raw;
    EXPECT_FALSE(r.body["error"]["message"].get<std::string>().empty());
    Conforms(r, op, method);
  }
  // A document's id as the back end knows it (the opensearch back end's ids are not the store's).
  static int64_t IdOf(const std::string& name) {
    SearchRequest r;
    r.query = name;
    r.mode = SearchMode::kText;
    r.size = 5;
    auto page = engine_->Search(r);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    if (!page.ok()) return 0;
    for (const auto& h : page->hits) {
      if (h.doc.name == name) return h.doc.id;
    }
    ADD_FAILURE() << "no document named " << name;
    return 0;
  }
  static std::string Share() { return (*base_ / "share").string(); }
  static std::string PhotosUrl(const std::string& rel) { return "file://" + stdfs::canonical(*base_ / "share/photos").string() + "/" + rel; }

  static stdfs::path* base_;
  static std::string* skip_reason_;
  static std::unique_ptr<OpenSearchClient> node_;  // opensearch back end: the test node
  static std::string remote_index_;
  static std::string source_dir_;
  static Engine* engine_;
  static QueryEmbedder* embedder_;
  static TestKey* rsa_;
  static Server* server_;
  static testing::OpenApiValidator* validator_;
};

stdfs::path* ApiTest::base_ = nullptr;
std::string* ApiTest::skip_reason_ = nullptr;
std::unique_ptr<OpenSearchClient> ApiTest::node_;
std::string ApiTest::remote_index_;
std::string ApiTest::source_dir_;
Engine* ApiTest::engine_ = nullptr;
QueryEmbedder* ApiTest::embedder_ = nullptr;
TestKey* ApiTest::rsa_ = nullptr;
Server* ApiTest::server_ = nullptr;
testing::OpenApiValidator* ApiTest::validator_ = nullptr;

TEST_F(ApiTest, HealthReadyConfigAndUiAreOpen) {
  Reply h = Get("/healthz", "");
  EXPECT_EQ(h.status, 200);
  Conforms(h, "/healthz");
  Reply r = Get("/readyz", "");
  EXPECT_EQ(r.status, 200);
  Conforms(r, "/readyz");
  Reply c = Get("/config", "");
  EXPECT_EQ(c.status, 200);
  Conforms(c, "/config");
  EXPECT_EQ(c.body["vectorSearch"], true);
  EXPECT_EQ(c.body["imageSearch"], true);
  EXPECT_EQ(c.body["model"], "test/hash-64");
  EXPECT_EQ(c.body["authRequired"], true);
  Reply ui = Get("/", "");
  EXPECT_EQ(ui.status, 200);
  EXPECT_NE(ui.raw.find("<html"), std::string::npos);
  Reply js = Get("/ui/app.js", "");
  EXPECT_EQ(js.status, 200);
  ExpectError(Get("/ui/nope.js", ""), 404, "not_found");
  ExpectError(Get("/no/such/route", ""), 404, "not_found");
}

TEST_F(ApiTest, RequestIdIsEchoedOrGenerated) {
  httplib::Client c("127.0.0.1", server_->port());
  auto r = c.Get("/healthz", {{"X-Request-Id", "abc-123"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->get_header_value("X-Request-Id"), "abc-123");
  auto g = c.Get("/healthz", {{"X-Request-Id", "bad id with spaces"}});
  ASSERT_TRUE(g);
  EXPECT_EQ(g->get_header_value("X-Request-Id").size(), 16u);
}

TEST_F(ApiTest, TokensAreRequiredAndChecked) {
  Reply missing = Get("/search?q=report", "");
  ExpectError(missing, 401, "unauthorized");
  EXPECT_NE(missing.raw.find("Bearer"), std::string::npos);
  Json c = Claims();
  c["exp"] = NowSeconds() - 3600;
  ExpectError(Get("/search?q=report", SignHs256(kSecret, c)), 401, "unauthorized");
  c = Claims();
  c["nbf"] = NowSeconds() + 3600;
  ExpectError(Get("/search?q=report", SignHs256(kSecret, c)), 401, "unauthorized");
  ExpectError(Get("/search?q=report", SignHs256("forged-secret-forged-secret-forged-secret", Claims())), 401, "unauthorized");
  ExpectError(Get("/search?q=report", testing::UnsignedToken(Claims())), 401, "unauthorized");
  ExpectError(Get("/search?q=report", SignHs256(rsa_->PublicPem(), Claims(), {{"kid", "rsa-1"}})), 401, "unauthorized");
  c = Claims();
  c["iss"] = "https://other.test";
  ExpectError(Get("/search?q=report", SignHs256(kSecret, c)), 401, "unauthorized");
  c = Claims();
  c["aud"] = "someone-else";
  ExpectError(Get("/search?q=report", SignHs256(kSecret, c)), 401, "unauthorized");
  ExpectError(Get("/documents/1", "garbage"), 401, "unauthorized", "/documents/{id}");
  // RS256 from the JWKS works.
  Reply rs = Get("/search?q=report", rsa_->Sign({{"alg", "RS256"}, {"kid", "rsa-1"}}, Claims()));
  EXPECT_EQ(rs.status, 200) << rs.raw;
}

TEST_F(ApiTest, KeywordSearch) {
  Reply r = Get("/search?q=holiday");
  ASSERT_EQ(r.status, 200) << r.raw;
  Conforms(r, "/search");
  EXPECT_EQ(r.body["mode"], "hybrid");  // a text query reaches the vector leg through the embedder
  bool found = false;
  for (const auto& h : r.body["hits"]) {
    if (h["name"] == "policy.txt") {
      found = true;
      EXPECT_EQ(h["textRank"], 1);
    }
  }
  EXPECT_TRUE(found) << r.raw;
  Reply t = Get("/search?q=holiday&mode=text");
  ASSERT_EQ(t.status, 200);
  EXPECT_EQ(t.body["mode"], "text");
  EXPECT_EQ(t.body["total"], 1);
  EXPECT_TRUE(t.body["hits"][0]["vectorScore"].is_null());
  EXPECT_GE(t.body["tookMs"].get<double>(), 0.0);
}

TEST_F(ApiTest, VectorSearchWithImageEmbeddingFindsTheImage) {
  Reply e = PostJson("/embed", Json{{"imageUrl", PhotosUrl("cat.png")}, {"useCache", false}}.dump());
  ASSERT_EQ(e.status, 200) << e.raw;
  Conforms(e, "/embed", "post");
  EXPECT_EQ(e.body["success"], true);
  EXPECT_EQ(e.body["data"]["dimension"], 64);
  EXPECT_EQ(e.body["data"]["model"], "test/hash-64");
  EXPECT_EQ(e.body["data"]["cached"], false) << "useCache=false bypasses the cache";
  EXPECT_EQ(e.body["data"]["imageHash"].get<std::string>().size(), 64u);
  // cat.png was embedded when it was indexed: with the cache on, its content hash answers.
  Reply c = PostJson("/embed", Json{{"imageUrl", PhotosUrl("cat.png")}, {"useCache", true}}.dump());
  ASSERT_EQ(c.status, 200) << c.raw;
  Conforms(c, "/embed", "post");
  EXPECT_EQ(c.body["data"]["cached"], true);
  EXPECT_EQ(c.body["data"]["imageHash"], e.body["data"]["imageHash"]);
  EXPECT_EQ(c.body["data"]["embedding"], e.body["data"]["embedding"]);
  std::string csv;
  for (const auto& x : e.body["data"]["embedding"]) csv += (csv.empty() ? "" : ",") + std::to_string(x.get<double>());
  Reply r = Get("/search?mode=vector&limit=3&imageEmbedding=" + Enc(csv));
  ASSERT_EQ(r.status, 200) << r.raw;
  Conforms(r, "/search");
  EXPECT_EQ(r.body["mode"], "vector");
  EXPECT_EQ(r.body["hits"][0]["name"], "cat.png");
  EXPECT_NEAR(r.body["hits"][0]["vectorScore"].get<double>(), 1.0, 1e-4);
  EXPECT_EQ(r.body["hits"][0]["thumbnailUrl"], "/documents/" + std::to_string(r.body["hits"][0]["id"].get<int64_t>()) + "/thumbnail");
  // The same vector as a JSON array, via POST.
  Reply p = PostJson("/search", Json{{"imageEmbedding", e.body["data"]["embedding"]}, {"limit", 2}}.dump());
  ASSERT_EQ(p.status, 200) << p.raw;
  Conforms(p, "/search", "post");
  EXPECT_EQ(p.body["hits"][0]["name"], "cat.png");
}

TEST_F(ApiTest, HybridFusesBothLegs) {
  Reply e = PostJson("/embed", Json{{"imageUrl", PhotosUrl("dog.png")}}.dump());
  ASSERT_EQ(e.status, 200);
  Json body = {{"q", "dog"}, {"imageEmbedding", e.body["data"]["embedding"]}, {"fusion", "rrf"}, {"rrfK", 10}};
  Reply r = PostJson("/search", body.dump());
  ASSERT_EQ(r.status, 200) << r.raw;
  Conforms(r, "/search", "post");
  EXPECT_EQ(r.body["mode"], "hybrid");
  const Json& top = r.body["hits"][0];
  EXPECT_EQ(top["name"], "dog.png");
  EXPECT_EQ(top["textRank"], 1);
  EXPECT_EQ(top["vectorRank"], 1);
  EXPECT_NEAR(top["score"].get<double>(), 2.0 / 11.0, 1e-9);
  body["fusion"] = "linear";
  body["textWeight"] = 0.25;
  Reply l = PostJson("/search", body.dump());
  ASSERT_EQ(l.status, 200) << l.raw;
  EXPECT_EQ(l.body["hits"][0]["name"], "dog.png");
}

TEST_F(ApiTest, SimilarToExcludesItself) {
  int64_t cat = IdOf("cat.png");
  Reply r = Get("/search?similarTo=" + std::to_string(cat));
  ASSERT_EQ(r.status, 200) << r.raw;
  Conforms(r, "/search");
  EXPECT_EQ(r.body["mode"], "vector");
  EXPECT_FALSE(r.body["hits"].empty());
  for (const auto& h : r.body["hits"]) EXPECT_NE(h["id"], cat);
  ExpectError(Get("/search?similarTo=999999"), 404, "not_found");
  ExpectError(Get("/search?similarTo=" + std::to_string(IdOf("policy.txt"))), 400, "failed_precondition");
}

TEST_F(ApiTest, MultipartImageUploadFindsTheSameImage) {
  auto read = Env::Default()->ReadFile((*base_ / "share/photos/bird.png").string());
  ASSERT_TRUE(read.ok());
  const std::string bytes = *read;
  httplib::Client c("127.0.0.1", server_->port());
  httplib::MultipartFormDataItems items = {{"image", bytes, "upload.png", "image/png"}, {"limit", "3", "", ""}};
  Reply r = Wrap(c.Post("/search", Auth(Token()), items));
  ASSERT_EQ(r.status, 200) << r.raw;
  Conforms(r, "/search", "post");
  EXPECT_EQ(r.body["hits"][0]["name"], "bird.png");
  EXPECT_EQ(r.body["hits"].size(), 3u);
  // Not an image: refused before any embedding, although the hash embedder would take anything.
  httplib::MultipartFormDataItems text = {{"image", "just some text, not pixels", "x.png", "image/png"}};
  ExpectError(Wrap(c.Post("/search", Auth(Token()), text)), 415, "not_an_image", "/search", "post");
  // Too many pixels, according to the header.
  httplib::MultipartFormDataItems huge = {{"image", FakePng(5000, 5000, 9), "big.png", "image/png"}};
  ExpectError(Wrap(c.Post("/search", Auth(Token()), huge)), 413, "payload_too_large", "/search", "post");
  // Too many bytes for an image (but under the body limit).
  httplib::MultipartFormDataItems heavy = {{"image", FakePng(10, 10, 9, 100 << 10), "heavy.png", "image/png"}};
  ExpectError(Wrap(c.Post("/search", Auth(Token()), heavy)), 413, "payload_too_large", "/search", "post");
  httplib::MultipartFormDataItems no_image = {{"q", "cat", "", ""}};
  ExpectError(Wrap(c.Post("/search", Auth(Token()), no_image)), 400, "invalid_argument", "/search", "post");
}

TEST_F(ApiTest, PaginationWithFromAndCursor) {
  Reply p1 = Get("/search?q=quarterly&mode=text&limit=10");
  ASSERT_EQ(p1.status, 200) << p1.raw;
  EXPECT_EQ(p1.body["total"], kReports);
  ASSERT_EQ(p1.body["hits"].size(), 10u);
  ASSERT_TRUE(p1.body["nextCursor"].is_string());
  Reply p2 = Get("/search?q=quarterly&mode=text&limit=10&from=10");
  ASSERT_EQ(p2.status, 200);
  Reply c2 = Get("/search?q=quarterly&mode=text&limit=10&searchAfter=" + p1.body["nextCursor"].get<std::string>());
  ASSERT_EQ(c2.status, 200) << c2.raw;
  Conforms(c2, "/search");
  ASSERT_EQ(c2.body["hits"].size(), 10u);
  std::set<int64_t> seen;
  for (const auto& h : p1.body["hits"]) seen.insert(h["id"].get<int64_t>());
  for (size_t i = 0; i < 10; ++i) {
    EXPECT_EQ(c2.body["hits"][i]["id"], p2.body["hits"][i]["id"]);
    EXPECT_EQ(seen.count(c2.body["hits"][i]["id"].get<int64_t>()), 0u);
  }
  Reply c3 = Get("/search?q=quarterly&mode=text&limit=10&searchAfter=" + c2.body["nextCursor"].get<std::string>());
  ASSERT_EQ(c3.status, 200);
  EXPECT_EQ(c3.body["hits"].size(), 3u);
  EXPECT_TRUE(c3.body["nextCursor"].is_null());
  ExpectError(Get("/search?q=quarterly&searchAfter=not-a-cursor!"), 400, "invalid_argument");
}

TEST_F(ApiTest, Filters) {
  Reply png = Get("/search?q=png&mode=text&extension=png&limit=50");
  ASSERT_EQ(png.status, 200) << png.raw;
  for (const auto& h : png.body["hits"]) EXPECT_EQ(h["extension"], "png");
  Reply img = Get("/search?q=photos&mode=text&type=image");
  ASSERT_EQ(img.status, 200);
  EXPECT_EQ(img.body["total"], 3);
  Reply prefix = Get("/search?q=report&mode=text&limit=50&pathPrefix=" + Enc(Share() + "/hr/"));
  ASSERT_EQ(prefix.status, 200);
  EXPECT_EQ(prefix.body["total"], 1);
  Reply sizes = Get("/search?q=quarterly&mode=text&minSize=1000000");
  EXPECT_EQ(sizes.body["total"], 0);
  Reply future = Get("/search?q=quarterly&mode=text&modifiedAfter=2999-01-01");
  EXPECT_EQ(future.body["total"], 0);
  Reply past = Get("/search?q=quarterly&mode=text&modifiedAfter=2000-01-01T00:00:00Z&modifiedBefore=2999-01-01");
  EXPECT_EQ(past.body["total"], kReports);
  ExpectError(Get("/search?q=quarterly&modifiedAfter=yesterday"), 400, "invalid_argument");
}

TEST_F(ApiTest, PerUserPathPrefixesHideEverythingElse) {
  Json c = Claims();
  c["paths"] = {Share() + "/finance/"};
  const std::string finance = SignHs256(kSecret, c);
  Reply r = Get("/search?q=report&mode=text&limit=100", finance);
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body["total"], kReports);  // policy.txt in hr/ matches "report" but is not counted
  for (const auto& h : r.body["hits"]) EXPECT_EQ(h["path"].get<std::string>().rfind(Share() + "/finance/", 0), 0u);
  // Asking for another folder gives nothing rather than widening access.
  Reply other = Get("/search?q=report&mode=text&pathPrefix=" + Enc(Share() + "/hr/"), finance);
  EXPECT_EQ(other.body["total"], 0);
  const std::string policy = std::to_string(IdOf("policy.txt"));
  const std::string badge = std::to_string(IdOf("badge.png"));
  ExpectError(Get("/documents/" + policy, finance), 404, "not_found", "/documents/{id}");
  ExpectError(Get("/documents/" + policy + "/content", finance), 404, "not_found", "/documents/{id}/content");
  ExpectError(Get("/documents/" + badge + "/thumbnail", finance), 404, "not_found", "/documents/{id}/thumbnail");
  ExpectError(Get("/search?similarTo=" + badge, finance), 404, "not_found");
  // Vector search is filtered inside the search too: no image lives under finance/.
  Reply v = Get("/search?similarTo=" + std::to_string(IdOf("cat.png")), SignHs256(kSecret, [&] {
                  Json x = Claims();
                  x["paths"] = {Share() + "/hr/"};
                  return x;
                }()));
  ASSERT_EQ(v.status, 404) << v.raw;  // cat.png itself is outside hr/
  Json hr = Claims();
  hr["paths"] = {Share() + "/hr/", Share() + "/photos/"};
  Reply multi = Get("/search?similarTo=" + badge + "&pathPrefix=" + Enc(Share() + "/photos/"),
                    SignHs256(kSecret, hr));
  ASSERT_EQ(multi.status, 200) << multi.raw;
  EXPECT_EQ(multi.body["total"], 3);
  ExpectError(Get("/search?q=report", SignHs256(kSecret, hr)), 400, "invalid_argument");
}

// A real JPEG photo of width x height: a grey ramp from left to right.
Result<std::string> GradientJpeg(int width, int height) {
  image::RgbImage img;
  img.width = width;
  img.height = height;
  img.pixels.resize(static_cast<size_t>(width) * height * 3);
  for (size_t i = 0; i < img.pixels.size(); ++i) {
    img.pixels[i] = static_cast<uint8_t>((i / 3) % static_cast<size_t>(width) * 255 / static_cast<size_t>(width));
  }
  return image::MakeThumbnail(img, std::max(width, height));
}

TEST_F(ApiTest, DocumentsMetadataThumbnailAndContent) {
  const std::string cat = std::to_string(IdOf("cat.png"));
  Reply m = Get("/documents/" + cat);
  ASSERT_EQ(m.status, 200) << m.raw;
  Conforms(m, "/documents/{id}");
  EXPECT_EQ(m.body["name"], "cat.png");
  // cat.png is a fake (a PNG header and noise): no thumbnail, with the decoder's reason.
  ExpectError(Get("/documents/" + cat + "/thumbnail"), 404, "thumbnail_unavailable", "/documents/{id}/thumbnail");
  {
    // A real 900 x 600 photo gets a 256 x 171 JPEG thumbnail, cached by content hash.
    auto jpeg = GradientJpeg(900, 600);
    ASSERT_TRUE(jpeg.ok());
    WriteFile(*base_ / "share/photos/wide.jpg", *jpeg);
    Document d;
    d.uri = FileUri((*base_ / "share/photos/wide.jpg").string());
    d.path = (*base_ / "share/photos/wide.jpg").string();
    d.name = "wide.jpg";
    d.ext = "jpg";
    d.mime = "image/jpeg";
    d.size = jpeg->size();
    d.sha256 = std::string(64, 'a');
    const int64_t id = Publish(d);
    Reply t = Get("/documents/" + std::to_string(id) + "/thumbnail");
    EXPECT_EQ(t.status, 200) << t.raw;
    EXPECT_EQ(Header(t, "Content-Type"), std::string("image/jpeg"));
    auto thumb = image::DecodeMemory(t.raw, {});
    ASSERT_TRUE(thumb.ok()) << thumb.status().ToString();
    EXPECT_EQ(thumb->width, 256);
    EXPECT_NEAR(thumb->height, 171, 1);
    EXPECT_TRUE(stdfs::exists(*base_ / "data" / "thumbs" / "aa" / (d.sha256 + ".jpg")));
    stdfs::remove(*base_ / "share/photos/wide.jpg");  // the cached thumbnail still answers
    Reply t2 = Get("/documents/" + std::to_string(id) + "/thumbnail");
    EXPECT_EQ(t2.raw, t.raw);
    Unpublish(d.uri);
  }
  const std::string policy = std::to_string(IdOf("policy.txt"));
  Reply content = Get("/documents/" + policy + "/content");
  EXPECT_EQ(content.status, 200);
  EXPECT_EQ(content.raw, "holiday policy report for staff");
  EXPECT_NE(Header(content, "Content-Security-Policy").find("sandbox"),
            std::string::npos);
  ExpectError(Get("/documents/" + policy + "/thumbnail"), 404, "thumbnail_unavailable", "/documents/{id}/thumbnail");
  // A larger file is streamed whole, and byte ranges work.
  auto big = Env::Default()->ReadFile((*base_ / "share/hr/big.log").string());
  ASSERT_TRUE(big.ok());
  const std::string big_id = std::to_string(IdOf("big.log"));
  Reply whole = Get("/documents/" + big_id + "/content");
  EXPECT_EQ(whole.status, 200);
  EXPECT_TRUE(whole.raw == *big) << whole.raw.size() << " vs " << big->size();
  httplib::Client c("127.0.0.1", server_->port());
  auto ranged = c.Get("/documents/" + big_id + "/content", {{"Authorization", "Bearer " + Token()}, {"Range", "bytes=100000-100099"}});
  ASSERT_TRUE(ranged);
  EXPECT_EQ(ranged->status, 206);
  EXPECT_EQ(ranged->body, big->substr(100000, 100));
  ExpectError(Get("/documents/0"), 404, "not_found", "/documents/{id}");
  ExpectError(Get("/documents/abc"), 404, "not_found", "/documents/{id}");
  ExpectError(Get("/documents/99999999"), 404, "not_found", "/documents/{id}");
}

// A one-page PDF (US Letter, portrait) with a line of text, xref offsets computed.
std::string OnePagePdf(const std::string& line) {
  const std::string stream = "BT /F1 24 Tf 72 700 Td (" + line + ") Tj ET";
  const std::vector<std::string> objs = {
      "<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
      "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
      "<< /Length " + std::to_string(stream.size()) + " >>\nstream\n" + stream + "\nendstream",
      "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"};
  std::string out = "%PDF-1.4\n";
  std::vector<size_t> offsets;
  for (size_t i = 0; i < objs.size(); ++i) {
    offsets.push_back(out.size());
    out += std::to_string(i + 1) + " 0 obj\n" + objs[i] + "\nendobj\n";
  }
  const size_t xref = out.size();
  out += "xref\n0 " + std::to_string(objs.size() + 1) + "\n0000000000 65535 f \n";
  for (size_t o : offsets) {
    char entry[32];
    std::snprintf(entry, sizeof entry, "%010zu 00000 n \n", o);
    out += entry;
  }
  out += "trailer\n<< /Size " + std::to_string(objs.size() + 1) + " /Root 1 0 R >>\nstartxref\n" + std::to_string(xref) + "\n%%EOF\n";
  return out;
}

TEST_F(ApiTest, SnippetsTextAndPreviews) {
  // Hits carry the passage of their stored text with the matched words marked.
  Reply r = Get("/search?q=holidays&mode=text");
  ASSERT_EQ(r.status, 200) << r.raw;
  Conforms(r, "/search");
  ASSERT_EQ(r.body["hits"].size(), 1u) << r.raw;
  EXPECT_EQ(r.body["hits"][0]["snippet"], Json::parse(R"([{"text":"holiday","match":true},
                                                         {"text":" policy report for staff","match":false}])"));
  Reply bare = Get("/search?q=holidays&mode=text&snippets=false");
  ASSERT_EQ(bare.status, 200) << bare.raw;
  Conforms(bare, "/search");
  EXPECT_FALSE(bare.body["hits"][0].contains("snippet")) << bare.raw;
  ExpectError(Get("/search?q=holidays&snippets=maybe"), 400, "invalid_argument");
  // The stored text, never the file's bytes; no picture for a text file.
  const std::string policy = std::to_string(IdOf("policy.txt"));
  Reply t = Get("/documents/" + policy + "/text");
  ASSERT_EQ(t.status, 200) << t.raw;
  Conforms(t, "/documents/{id}/text");
  EXPECT_EQ(t.body["text"], "holiday policy report for staff");
  EXPECT_EQ(t.body["bytes"], 31);
  ExpectError(Get("/documents/" + policy + "/preview"), 404, "preview_unavailable", "/documents/{id}/preview");
  // Scope and hostile ids: as for every document route.
  Json c = Claims();
  c["paths"] = {Share() + "/finance/"};
  const std::string finance = SignHs256(kSecret, c);
  ExpectError(Get("/documents/" + policy + "/text", finance), 404, "not_found", "/documents/{id}/text");
  ExpectError(Get("/documents/" + policy + "/preview", finance), 404, "not_found", "/documents/{id}/preview");
  for (const char* bad : {"abc", "0", "-1", "99999999", "1e3"}) {
    ExpectError(Get(std::string("/documents/") + bad + "/text"), 404, "not_found", "/documents/{id}/text");
    ExpectError(Get(std::string("/documents/") + bad + "/preview"), 404, "not_found", "/documents/{id}/preview");
  }
  ExpectError(Get("/documents/" + policy + "/text", "not-a-token"), 401, "unauthorized", "/documents/{id}/text");

  // Whatever fails below, the documents and files go again (later tests count the share).
  std::vector<std::string> published;
  struct Cleanup {
    std::vector<std::string>* uris;
    ~Cleanup() {
      for (const auto& uri : *uris) Unpublish(uri);
      stdfs::remove_all(*base_ / "share/previews");
    }
  } cleanup{&published};
  auto publish = [&published](const std::string& name, const std::string& mime, const std::string& bytes, char hash) {
    WriteFile(*base_ / "share/previews" / name, bytes);
    Document d;
    d.path = (*base_ / "share/previews" / name).string();
    d.uri = FileUri(d.path);
    d.name = name;
    d.ext = name.substr(name.rfind('.') + 1);
    d.mime = mime;
    d.size = bytes.size();
    d.sha256 = std::string(64, hash);
    published.push_back(d.uri);
    return std::make_pair(Publish(d), d);
  };
  // A 1200 x 800 photo (under this server's 1 Mpixel limit): shown whole, never enlarged (the
  // thumbnail is 256), cached by content hash.
  auto jpeg = GradientJpeg(1200, 800);
  ASSERT_TRUE(jpeg.ok());
  auto [photo_id, photo_doc] = publish("big.jpg", "image/jpeg", *jpeg, 'c');
  Reply p = Get("/documents/" + std::to_string(photo_id) + "/preview");
  ASSERT_EQ(p.status, 200) << p.raw.substr(0, 300);
  EXPECT_EQ(Header(p, "Content-Type"), std::string("image/jpeg"));
  auto shown = image::DecodeMemory(p.raw, {});
  ASSERT_TRUE(shown.ok()) << shown.status().ToString();
  EXPECT_EQ(shown->width, 1200);
  EXPECT_EQ(shown->height, 800);
  EXPECT_TRUE(stdfs::exists(*base_ / "data" / "previews" / "cc" / (photo_doc.sha256 + ".jpg")));
  // A PDF: its first page, 1600 px on the longer side, mostly white paper with dark text.
  const int64_t pdf_id = publish("letter.pdf", "application/pdf", OnePagePdf("Annual budget"), 'd').first;
  Reply page = Get("/documents/" + std::to_string(pdf_id) + "/preview");
  ASSERT_EQ(page.status, 200) << page.raw.substr(0, 300);
  auto rendered = image::DecodeMemory(page.raw, {});
  ASSERT_TRUE(rendered.ok()) << rendered.status().ToString();
  EXPECT_EQ(rendered->height, 1600);
  EXPECT_NEAR(rendered->width, 1236, 1);  // 612 x 792 points
  // The line sits at the top left (x from 72 pt, about 170 pt long, 700 pt up): dark pixels there,
  // none in the right half or the lower half of the page.
  size_t white = 0, dark_where_text = 0, dark_elsewhere = 0;
  for (int y = 0; y < rendered->height; ++y) {
    for (int x = 0; x < rendered->width; ++x) {
      const uint8_t* px = &rendered->pixels[(static_cast<size_t>(y) * rendered->width + x) * 3];
      const bool dark = px[0] < 100 && px[1] < 100 && px[2] < 100;
      white += px[0] > 240 && px[1] > 240 && px[2] > 240;
      if (!dark) continue;
      (x < rendered->width / 2 && y < rendered->height / 4 ? dark_where_text : dark_elsewhere) += 1;
    }
  }
  EXPECT_GT(white, static_cast<size_t>(rendered->width) * rendered->height * 9 / 10);
  EXPECT_GT(dark_where_text, 100u) << "the line of text is drawn";
  EXPECT_EQ(dark_elsewhere, 0u) << "and drawn once, where the page puts it";
  // Damaged files: a clear 404 with the reason, and the server keeps serving.
  const int64_t broken_id = publish("broken.pdf", "application/pdf", "%PDF-1.4\nthis is not a pdf", 'e').first;
  ExpectError(Get("/documents/" + std::to_string(broken_id) + "/preview"), 404, "preview_unavailable",
              "/documents/{id}/preview");
  const int64_t noise_id = publish("noise.png", "image/png", FakePng(64, 48, 9), 'f').first;
  ExpectError(Get("/documents/" + std::to_string(noise_id) + "/preview"), 404, "preview_unavailable",
              "/documents/{id}/preview");
  EXPECT_EQ(Get("/healthz").status, 200);
}

TEST_F(ApiTest, ContentIsPathTraversalSafe) {
  // secret.txt was replaced by a symlink to a file outside the share after indexing.
  Reply r = Get("/documents/" + std::to_string(IdOf("secret.txt")) + "/content");
  ExpectError(r, 404, "file_unavailable", "/documents/{id}/content");
  EXPECT_EQ(r.raw.find("root:x"), std::string::npos);
  for (std::string path : {"/documents/../../etc/passwd", "/documents/%2e%2e%2fetc%2fpasswd/content", "/documents/1/../../etc/passwd"}) {
    Reply t = Get(path);
    EXPECT_EQ(t.status, 404) << path;
    EXPECT_EQ(t.raw.find("root:"), std::string::npos);
  }
}

TEST_F(ApiTest, EmbedRefusesSsrfAndEscapes) {
  auto embed = [&](const std::string& url) { return PostJson("/embed", Json{{"imageUrl", url}}.dump()); };
  const std::string own = "http://127.0.0.1:" + std::to_string(server_->port()) + "/healthz";
  for (const std::string& url : {own, std::string("http://169.254.169.254/latest/meta-data/"),
                                 std::string("https://10.0.0.1/x.png"), std::string("ftp://127.0.0.1/x")}) {
    Reply r = embed(url);
    ExpectError(r, 400, "url_scheme_not_allowed", "/embed", "post");
    EXPECT_EQ(r.body["success"], false);
  }
  ExpectError(embed("file:///etc/passwd"), 403, "path_outside_storage_roots", "/embed", "post");
  ExpectError(embed(PhotosUrl("../hr/badge.png")), 400, "invalid_path", "/embed", "post");
  ExpectError(embed(PhotosUrl("%2e%2e/hr/badge.png")), 400, "invalid_path", "/embed", "post");
  ExpectError(embed(PhotosUrl("cat.png%00.jpg")), 400, "invalid_path", "/embed", "post");
  ExpectError(embed(PhotosUrl("escape.png")), 403, "path_outside_storage_roots", "/embed", "post");
  ExpectError(embed(PhotosUrl("missing.png")), 404, "not_found", "/embed", "post");
  // This server reads no S3 buckets (src/server/server_s3_test.cpp covers those that do).
  ExpectError(embed("s3://bucket/cat.png"), 403, "bucket_not_allowed", "/embed", "post");
  // Bytes and text work.
  Reply b = PostJson("/embed", Json{{"imageBase64", "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="}}.dump());
  EXPECT_EQ(b.status, 200) << b.raw;
  Reply t = PostJson("/embed", Json{{"text", "a red car"}}.dump());
  EXPECT_EQ(t.status, 200) << t.raw;
  EXPECT_FALSE(t.body["data"].contains("imageHash"));
  ExpectError(PostJson("/embed", Json{{"imageBase64", "aGVsbG8="}}.dump()), 415, "not_an_image", "/embed", "post");
  ExpectError(PostJson("/embed", Json{{"text", "a"}, {"imageUrl", PhotosUrl("cat.png")}}.dump()), 400, "invalid_argument", "/embed", "post");
}

TEST_F(ApiTest, BadInputGetsClearErrors) {
  ExpectError(PostJson("/search", "{not json"), 400, "invalid_argument", "/search", "post");
  ExpectError(PostJson("/search", "[1,2]"), 400, "invalid_argument", "/search", "post");
  // No field is nullable in the description: a null is refused, not read as absent.
  ExpectError(PostJson("/search", R"({"q": "report", "takenBefore": null})"), 400, "invalid_argument", "/search", "post");
  ExpectError(PostJson("/embed", "{\"imageUrl\": "), 400, "invalid_argument", "/embed", "post");
  ExpectError(Get("/search?imageEmbedding=%5BNaN%5D"), 400, "invalid_argument");
  ExpectError(Get("/search?imageEmbedding=1,nan,3"), 400, "invalid_argument");
  ExpectError(PostJson("/search", "{\"imageEmbedding\": [1e400]}"), 400, "invalid_argument", "/search", "post");
  ExpectError(Get("/search?imageEmbedding=1,2,3"), 400, "invalid_argument");  // wrong dimension
  ExpectError(Get("/search?q=report&limit=1000"), 400, "invalid_argument");
  ExpectError(Get("/search?q=report&limit=abc"), 400, "invalid_argument");
  ExpectError(Get("/search?q=report&from=-1"), 400, "invalid_argument");
  ExpectError(Get("/search?q=report&mode=fuzzy"), 400, "invalid_argument");
  ExpectError(Get("/search?q=report&sizee=3"), 400, "invalid_argument");
  ExpectError(Get("/search?q=" + std::string(2000, 'a')), 400, "invalid_argument");
  ExpectError(Get("/search"), 400, "invalid_argument");
  ExpectError(PostJson("/search", "{\"q\": \"x\", \"limit\": \"" + std::string(2 << 20, '9') + "\"}"), 413, "payload_too_large",
              "/search", "post");
  httplib::Client c("127.0.0.1", server_->port());
  ExpectError(Wrap(c.Post("/search", Auth(Token()), "q=x", "text/plain")), 415, "unsupported_media_type", "/search", "post");
}

// The value of an unlabelled metric in a /metrics page, or -1.
double MetricValue(const std::string& page, const std::string& name) {
  const size_t at = page.find("\n" + name + " ");
  return at == std::string::npos ? -1.0 : std::stod(page.substr(at + name.size() + 2));
}

TEST_F(ApiTest, EmbedCachesNewImageBytesAndCountsHits) {
  // Bytes no indexed file has (a fresh random tail: the server may outlive this test): the first
  // request embeds them, the second is a cache hit.
  const std::string png = std::string("\x89PNG\r\n\x1A\n", 8) + "never indexed pixels " + std::to_string(std::random_device{}());
  std::string b64 = Base64UrlEncode(png);  // to the standard alphabet, padded
  for (char& ch : b64) ch = ch == '-' ? '+' : ch == '_' ? '/' : ch;
  while (b64.size() % 4 != 0) b64 += '=';
  Reply before = Get("/metrics", "");
  ASSERT_EQ(before.status, 200);
  Reply first = PostJson("/embed", Json{{"imageBase64", b64}}.dump());
  ASSERT_EQ(first.status, 200) << first.raw;
  EXPECT_EQ(first.body["data"]["cached"], false);
  Reply second = PostJson("/embed", Json{{"imageBase64", b64}}.dump());
  ASSERT_EQ(second.status, 200) << second.raw;
  EXPECT_EQ(second.body["data"]["cached"], true);
  EXPECT_EQ(second.body["data"]["embedding"], first.body["data"]["embedding"]);
  EXPECT_EQ(second.body["data"]["imageHash"], Sha256Hex(png));
  Reply after = Get("/metrics", "");
  ASSERT_EQ(after.status, 200);
  for (const char* name : {"filesearch_embedding_cache_hits_total", "filesearch_embedding_cache_misses_total"}) {
    ASSERT_GE(MetricValue(before.raw, name), 0.0) << name << "\n" << before.raw;
    EXPECT_EQ(MetricValue(after.raw, name) - MetricValue(before.raw, name), 1.0) << name;
  }
  EXPECT_GT(MetricValue(after.raw, "filesearch_embedding_cache_hit_ratio"), 0.0);
}

TEST_F(ApiTest, MetricsExposeLatencyErrorsAndIndexSize) {
  ASSERT_EQ(Get("/search?q=report&mode=text").status, 200);
  ASSERT_EQ(Get("/search?q=report", "").status, 401);
  Reply m = Get("/metrics", "");
  ASSERT_EQ(m.status, 200);
  for (const char* needle : {"filesearch_search_duration_seconds_bucket{mode=\"text\",le=\"+Inf\"}",
                             "filesearch_http_requests_total{route=\"/search\",method=\"GET\",status=\"401\"}",
                             "filesearch_http_errors_total{code=\"unauthorized\"}", "filesearch_index_documents 30",
                             "filesearch_index_vectors 4", "filesearch_worker_queue_depth 0",
                             "filesearch_embedding_cache_hit_ratio 0", "# TYPE filesearch_embedding_duration_seconds histogram"}) {
    EXPECT_NE(m.raw.find(needle), std::string::npos) << needle << "\n" << m.raw;
  }
}

TEST_F(ApiTest, ConcurrentRequestsAllSucceedWithTheSameAnswers) {
  const std::string cat = std::to_string(IdOf("cat.png"));
  const std::vector<std::string> paths = {"/search?q=quarterly&mode=text&limit=5", "/search?q=holiday",
                                          "/search?similarTo=" + cat, "/documents/" + cat, "/metrics", "/healthz"};
  std::vector<std::string> expected;
  for (const auto& p : paths) expected.push_back(Get(p).raw);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      httplib::Client c("127.0.0.1", server_->port());
      for (int i = 0; i < 15; ++i) {
        size_t which = static_cast<size_t>(t + i) % paths.size();
        auto r = c.Get(paths[which], Auth(Token()));
        if (!r || r->status != 200) {
          ++failures;
          continue;
        }
        // Searches and documents answer identically every time (tookMs aside).
        if (which < 4) {
          Json a = Json::parse(r->body), b = Json::parse(expected[which]);
          a.erase("tookMs");
          b.erase("tookMs");
          if (a != b) ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST_F(ApiTest, VectorSearchFlagHidesVectorFeatures) {
  ServerOptions so;
  so.port = 0;
  so.engine = engine_;
  so.embedder = nullptr;
  so.vector_search = false;
  so.auth.disabled = true;
  auto srv = Server::Create(so);
  ASSERT_TRUE(srv.ok());
  ASSERT_TRUE((*srv)->Start().ok());
  Reply c = Get("/config", "", srv->get());
  Conforms(c, "/config");
  EXPECT_EQ(c.body["vectorSearch"], false);
  EXPECT_EQ(c.body["imageSearch"], false);
  EXPECT_TRUE(c.body["reason"].is_string());
  Reply k = Get("/search?q=report", "", srv->get());  // no auth on this one
  ASSERT_EQ(k.status, 200) << k.raw;
  EXPECT_EQ(k.body["mode"], "text");
  ExpectError(Get("/search?imageEmbedding=1,2", "", srv->get()), 400, "vector_search_disabled");
  ExpectError(Get("/search?q=x&mode=hybrid", "", srv->get()), 400, "vector_search_disabled");
  ExpectError(Get("/search?similarTo=1", "", srv->get()), 400, "vector_search_disabled");
  httplib::Client cl("127.0.0.1", (*srv)->port());
  ExpectError(Wrap(cl.Post("/embed", "{\"text\":\"x\"}", "application/json")), 400, "vector_search_disabled", "/embed", "post");
  (*srv)->Stop();
}

// Found by the API fuzz test: a NUL in the keywords reached FTS5 and came back as a 500.
TEST_F(ApiTest, NulInKeywordsIsABadRequest) {
  ExpectError(Get("/search?q=a%00b"), 400, "invalid_argument");
  ExpectError(PostJson("/search", Json{{"q", std::string("report\0x", 8)}}.dump()), 400, "invalid_argument", "/search", "post");
}

// Found by the API fuzz test: httplib refuses TRACE before reading its body and then parses that
// body as the next request on the connection; the reply must tell the client not to reuse it.
// A method a route does not take gets 405 with Allow, and its body is read as its body: a body
// that looks like a request is never run as the next request on the connection.
TEST_F(ApiTest, AnotherMethodGets405AndItsBodyIsNotANextRequest) {
  httplib::Client c("127.0.0.1", server_->port());
  c.set_keep_alive(true);
  httplib::Request req;
  req.method = "TRACE";
  req.path = "/embed";
  req.body = "GET /healthz HTTP/1.1\r\n\r\n";
  req.set_header("Content-Type", "application/json");
  auto r = c.send(req);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->get_header_value("Allow"), "POST");
  EXPECT_NE(r->body.find("method_not_allowed"), std::string::npos);
  auto next = c.Get("/healthz");  // the same connection: its reply is this request's, not the body's
  ASSERT_TRUE(next);
  EXPECT_EQ(next->status, 200);
  auto search = c.Delete("/search");
  ASSERT_TRUE(search);
  EXPECT_EQ(search->status, 405);
  EXPECT_EQ(search->get_header_value("Allow"), "GET, POST");
}

// A server of its own: the switch it flips would otherwise change what the other tests see.
TEST_F(ApiTest, AdminSwitchesVectorSearchOffAndOnAtRunTime) {
  ServerOptions so;
  so.port = 0;
  so.engine = engine_;
  so.embedder = embedder_;
  so.auth.hs256_secret = kSecret;
  auto srv = Server::Create(so);
  ASSERT_TRUE(srv.ok()) << srv.status().ToString();
  ASSERT_TRUE((*srv)->Start().ok());
  Server* s = srv->get();
  const std::string route = "/admin/vector-search";
  const std::string off = R"({"enabled": false, "reason": "the photo index is being rebuilt"})";
  Json claims = Claims();
  const std::string user = SignHs256(kSecret, claims);
  claims["admin"] = true;
  const std::string admin = SignHs256(kSecret, claims);
  claims["admin"] = "yes";
  ExpectError(PostJson(route, off, SignHs256(kSecret, claims), s), 401, "unauthorized", route, "post");
  ExpectError(PostJson(route, off, "", s), 401, "unauthorized", route, "post");
  Reply refused = PostJson(route, off, user, s);
  ExpectError(refused, 403, "admin_required", route, "post");
  EXPECT_NE(refused.body["error"]["message"].get<std::string>().find("\"admin\": true"), std::string::npos) << refused.raw;
  ExpectError(PostJson(route, R"({"reason": "no enabled"})", admin, s), 400, "invalid_argument", route, "post");
  ExpectError(PostJson(route, R"({"enabled": "no"})", admin, s), 400, "invalid_argument", route, "post");
  ExpectError(PostJson(route, R"({"enabled": false, "why": "x"})", admin, s), 400, "invalid_argument", route, "post");
  EXPECT_TRUE((*srv)->vector_search().enabled) << "refused requests change nothing";

  const std::string vector = "/search?mode=vector&imageEmbedding=" + Enc(Json(std::vector<float>(64, 0.5f)).dump());
  ASSERT_EQ(Get(vector, user, s).status, 200);
  Reply turned_off = PostJson(route, off, admin, s);
  ASSERT_EQ(turned_off.status, 200) << turned_off.raw;
  Conforms(turned_off, route, "post");
  EXPECT_EQ(turned_off.body["vectorSearch"], false);
  EXPECT_EQ(turned_off.body["reason"], "the photo index is being rebuilt");
  Reply c = Get("/config", "", s);
  Conforms(c, "/config");
  EXPECT_EQ(c.body["vectorSearch"], false);
  EXPECT_EQ(c.body["imageSearch"], false);
  EXPECT_EQ(c.body["similarSearch"], false);
  EXPECT_EQ(c.body["reason"], "Image search is turned off by the administrator: the photo index is being rebuilt");
  Reply no_vector = Get(vector, user, s);
  ExpectError(no_vector, 400, "vector_search_disabled");
  EXPECT_NE(no_vector.body["error"]["message"].get<std::string>().find("the photo index is being rebuilt"), std::string::npos);
  ExpectError(PostJson("/embed", R"({"text": "a cat"})", user, s), 400, "vector_search_disabled", "/embed", "post");
  Reply keywords = Get("/search?q=report", user, s);
  ASSERT_EQ(keywords.status, 200) << keywords.raw;
  EXPECT_EQ(keywords.body["mode"], "text");
  EXPECT_NE(Get("/metrics", "", s).raw.find("filesearch_vector_search_enabled 0"), std::string::npos);

  Reply turned_on = PostJson(route, R"({"enabled": true})", admin, s);
  ASSERT_EQ(turned_on.status, 200) << turned_on.raw;
  Conforms(turned_on, route, "post");
  EXPECT_TRUE(turned_on.body["reason"].is_null());
  c = Get("/config", "", s);
  EXPECT_EQ(c.body["vectorSearch"], true);
  EXPECT_EQ(c.body["imageSearch"], true);
  EXPECT_TRUE(c.body["reason"].is_null());
  Reply again = Get(vector, user, s);
  ASSERT_EQ(again.status, 200) << again.raw;
  EXPECT_EQ(again.body["mode"], "vector");
  EXPECT_NE(Get("/metrics", "", s).raw.find("filesearch_vector_search_enabled 1"), std::string::npos);
  (*srv)->Stop();
}

TEST_F(ApiTest, AdminRequestsWithoutAuthNeedTheExplicitFlag) {
  for (bool allowed : {false, true}) {
    ServerOptions so;
    so.port = 0;
    so.engine = engine_;
    so.auth.disabled = true;
    so.admin_without_auth = allowed;
    auto srv = Server::Create(so);
    ASSERT_TRUE(srv.ok()) << srv.status().ToString();
    ASSERT_TRUE((*srv)->Start().ok());
    Reply r = PostJson("/admin/vector-search", R"({"enabled": false})", "", srv->get());
    if (allowed) {
      EXPECT_EQ(r.status, 200) << r.raw;
      Conforms(r, "/admin/vector-search", "post");
    } else {
      ExpectError(r, 403, "admin_required", "/admin/vector-search", "post");
      EXPECT_NE(r.body["error"]["message"].get<std::string>().find("--admin-without-auth"), std::string::npos) << r.raw;
    }
    EXPECT_EQ((*srv)->vector_search().enabled, !allowed);
    (*srv)->Stop();
  }
}

TEST_F(ApiTest, KeywordOnlyWithoutEmbedderSaysWhy) {
  ServerOptions so;
  so.port = 0;
  so.engine = engine_;
  so.auth.disabled = true;
  auto srv = Server::Create(so);
  ASSERT_TRUE(srv.ok());
  ASSERT_TRUE((*srv)->Start().ok());
  Reply c = Get("/config", "", srv->get());
  EXPECT_EQ(c.body["imageSearch"], false);
  EXPECT_EQ(c.body["similarSearch"], true);
  EXPECT_NE(c.body["reason"].get<std::string>().find("no CLIP model"), std::string::npos);
  Reply k = Get("/search?q=holiday", "", srv->get());
  EXPECT_EQ(k.body["mode"], "text");
  httplib::Client cl("127.0.0.1", (*srv)->port());
  ExpectError(Wrap(cl.Post("/embed", "{\"text\":\"x\"}", "application/json")), 503, "unavailable", "/embed", "post");
}

TEST_F(ApiTest, EmbedImageUrlHonoursTheUsersFolders) {
  auto embed = [&](const std::string& url, const std::string& token) {
    return PostJson("/embed", Json{{"imageUrl", url}}.dump(), token);
  };
  Json c = Claims();
  c["paths"] = {Share() + "/finance/"};
  const std::string finance = SignHs256(kSecret, c);
  c["paths"] = {Share() + "/photos/"};
  const std::string photos = SignHs256(kSecret, c);
  // A user of photos/ gets the image; a user of finance/ gets exactly what a missing file gets.
  Reply mine = embed(PhotosUrl("cat.png"), photos);
  ASSERT_EQ(mine.status, 200) << mine.raw;
  Conforms(mine, "/embed", "post");
  Reply hidden = embed(PhotosUrl("cat.png"), finance);
  Reply missing = embed(PhotosUrl("missing.png"), finance);
  ExpectError(hidden, 404, "not_found", "/embed", "post");
  EXPECT_EQ(hidden.body, missing.body) << "a file outside the user's folders must look missing";
  EXPECT_EQ(hidden.raw.find("imageHash"), std::string::npos);
  EXPECT_EQ(missing.body, embed(PhotosUrl("missing.png"), photos).body);
  // Where an unscoped user learns "outside the roots" (a link out of the share, a path elsewhere),
  // a user asking outside their folders learns nothing either.
  ExpectError(embed(PhotosUrl("escape.png"), Token()), 403, "path_outside_storage_roots", "/embed", "post");
  EXPECT_EQ(embed(PhotosUrl("escape.png"), finance).body, missing.body);
  EXPECT_EQ(embed("file:///etc/passwd", finance).body, missing.body);
  // A folder given as a prefix of the real path: a file reached through a link is judged where it lives.
  stdfs::create_directories(*base_ / "share/photos/album");
  stdfs::create_symlink(*base_ / "share/photos/dog.png", *base_ / "share/photos/album/dog-link.png");
  c["paths"] = {stdfs::canonical(*base_ / "share/photos").string() + "/album/"};
  const std::string album = SignHs256(kSecret, c);
  EXPECT_EQ(embed(PhotosUrl("album/dog-link.png"), album).body, missing.body);
  stdfs::remove_all(*base_ / "share/photos/album");
}

TEST_F(ApiTest, LenientFormsAreRefused) {
  // A host in a file:// url, localhost included.
  const std::string cat = stdfs::canonical(*base_ / "share/photos/cat.png").string();
  ExpectError(PostJson("/embed", Json{{"imageUrl", "file://localhost" + cat}}.dump()), 400, "invalid_path", "/embed",
              "post");
  // Numbers in a query string follow JSON's number grammar.
  const std::string rest = ",0.5,0.25";
  for (const std::string& bad : {"0x1p3", "inf", "-inf", "+1", "1.", ".5", "01", "1e", "0x10", "infinity"}) {
    Reply r = Get("/search?mode=vector&imageEmbedding=" + Enc(bad + rest));
    ExpectError(r, 400, "invalid_argument");
    EXPECT_NE(r.body["error"]["message"].get<std::string>().find("decimal"), std::string::npos) << bad << ": " << r.raw;
  }
  ExpectError(Get("/search?q=report&limit=%2B5"), 400, "invalid_argument");
  ExpectError(Get("/search?q=report&rrfK=0x10"), 400, "invalid_argument");
  // q must be UTF-8 (an overlong '/', a lone continuation byte, a truncated sequence) and hold no NUL.
  for (const char* q : {"%C0%AF", "%80abc", "caf%C3", "%ED%A0%80", "a%00b"}) {
    Reply r = Get(std::string("/search?mode=text&q=") + q);
    ExpectError(r, 400, "invalid_argument");
    EXPECT_NE(r.body["error"]["message"].get<std::string>().find("q "), std::string::npos) << q << ": " << r.raw;
  }
  httplib::Client cl("127.0.0.1", server_->port());
  httplib::MultipartFormDataItems nul = {{"image", FakePng(8, 8, 7), "x.png", "image/png"}, {"q", std::string("a\0b", 3), "", ""}};
  ExpectError(Wrap(cl.Post("/search", Auth(Token()), nul)), 400, "invalid_argument", "/search", "post");
  ASSERT_EQ(Get("/search?mode=text&q=" + Enc("café report")).status, 200);
  // from and searchAfter together: one of them.
  Reply p1 = Get("/search?q=quarterly&mode=text&limit=5");
  ASSERT_EQ(p1.status, 200) << p1.raw;
  const std::string cursor = p1.body["nextCursor"].get<std::string>();
  Reply both = Get("/search?q=quarterly&mode=text&limit=5&from=5&searchAfter=" + cursor);
  ExpectError(both, 400, "invalid_argument");
  EXPECT_NE(both.body["error"]["message"].get<std::string>().find("from or searchAfter"), std::string::npos) << both.raw;
  ExpectError(PostJson("/search", Json{{"q", "quarterly"}, {"from", 0}, {"searchAfter", cursor}}.dump()), 400,
              "invalid_argument", "/search", "post");
  // An edited cursor offset is an invalid cursor, never a 500 or a wrapped offset.
  auto raw = Base64UrlDecode(cursor);
  ASSERT_TRUE(raw.ok());
  for (const char* offset : {"-5", "18446744073709551616", "18446744073709551615", "2.5"}) {
    Json edited = Json::parse(*raw);
    edited["o"] = Json::parse(offset);
    Reply r = Get("/search?q=quarterly&mode=text&limit=5&searchAfter=" + Base64UrlEncode(edited.dump()));
    ExpectError(r, 400, "invalid_argument");
    EXPECT_NE(r.body["error"]["message"].get<std::string>().find("invalid searchAfter cursor"), std::string::npos)
        << offset << ": " << r.raw;
  }
}

TEST_F(ApiTest, SizeIsAnAliasOfLimit) {
  Reply s = Get("/search?q=quarterly&mode=text&size=3&from=3");
  ASSERT_EQ(s.status, 200) << s.raw;
  Conforms(s, "/search");
  Reply l = Get("/search?q=quarterly&mode=text&limit=3&from=3");
  ASSERT_EQ(s.body["hits"].size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(s.body["hits"][i]["id"], l.body["hits"][i]["id"]);
  Reply post = PostJson("/search", Json{{"q", "quarterly"}, {"mode", "text"}, {"size", 4}}.dump());
  ASSERT_EQ(post.status, 200) << post.raw;
  EXPECT_EQ(post.body["hits"].size(), 4u);
  Reply twice = Get("/search?q=quarterly&size=3&limit=3");
  ExpectError(twice, 400, "invalid_argument");
  EXPECT_NE(twice.body["error"]["message"].get<std::string>().find("limit or size"), std::string::npos) << twice.raw;
  ExpectError(Get("/search?q=quarterly&size=101"), 400, "invalid_argument");
}

// The numbers of an /embed reply's embedding, as printed.
std::vector<std::string> PrintedNumbers(const std::string& raw) {
  const size_t open = raw.find("\"embedding\":[");
  const size_t close = raw.find(']', open);
  std::vector<std::string> out;
  if (open == std::string::npos || close == std::string::npos) return out;
  std::string list = raw.substr(open + 13, close - open - 13);
  for (size_t start = 0; start <= list.size();) {
    size_t end = std::min(list.find(',', start), list.size());
    out.push_back(list.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// Significant digits of a decimal number as printed ("-0.00125" -> 3, "1.5e-05" -> 2).
size_t SignificantDigits(const std::string& number) {
  std::string digits;
  for (char ch : number.substr(0, number.find_first_of("eE"))) {
    if (std::isdigit(static_cast<unsigned char>(ch))) digits += ch;
  }
  digits.erase(0, std::min(digits.find_first_not_of('0'), digits.size()));
  return digits.size();
}

// /embed prints each float in its shortest exact form and inferenceTime in seconds; the vector,
// pasted without its brackets, is a valid GET /search?imageEmbedding= that finds the image.
void ExpectEmbedRoundTrips(const std::string& raw, const Json& body, double wall_seconds) {
  const std::vector<std::string> printed = PrintedNumbers(raw);
  ASSERT_EQ(printed.size(), body["data"]["embedding"].size()) << raw.substr(0, 300);
  for (size_t i = 0; i < printed.size(); ++i) {
    EXPECT_LE(SignificantDigits(printed[i]), 9u) << printed[i];
    // Exact: the printed text reads back as the float the server computed.
    EXPECT_EQ(std::strtof(printed[i].c_str(), nullptr), body["data"]["embedding"][i].get<float>()) << printed[i];
  }
  const double seconds = body["data"]["inferenceTime"].get<double>();
  EXPECT_GE(seconds, 0.0);
  EXPECT_LE(seconds, wall_seconds) << "inferenceTime is in seconds: it cannot exceed the request's wall time";
}

TEST_F(ApiTest, EmbedOutputIsAGetSearchVector) {
  const auto start = std::chrono::steady_clock::now();
  Reply e = PostJson("/embed", Json{{"imageUrl", PhotosUrl("bird.png")}}.dump());
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(e.status, 200) << e.raw;
  Conforms(e, "/embed", "post");
  ExpectEmbedRoundTrips(e.raw, e.body, wall);
  std::string csv;
  for (const auto& n : PrintedNumbers(e.raw)) csv += (csv.empty() ? "" : ",") + n;
  Reply r = Get("/search?mode=vector&limit=1&imageEmbedding=" + csv);
  ASSERT_EQ(r.status, 200) << r.raw;
  ASSERT_EQ(r.body["hits"].size(), 1u);
  EXPECT_EQ(r.body["hits"][0]["name"], "bird.png");
  EXPECT_NEAR(r.body["hits"][0]["vectorScore"].get<double>(), 1.0, 1e-5);
}

// CLIP B/32's 512 dimensions, printed by /embed, fit the request line of GET /search as they are.
TEST_F(ApiTest, A512DimensionalEmbeddingFitsTheSearchUrl) {
  const stdfs::path dir = *base_ / "wide";
  WriteFile(dir / "share/sky.png", FakePng(64, 48, 11));
  EngineOptions eo;
  eo.data_dir = (dir / "data").string();
  eo.progress = false;
  auto engine = Engine::Open(eo);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  ASSERT_TRUE((*engine)->SetEmbedder(NewHashEmbedder(512)).ok());
  CrawlOptions co;
  co.progress = false;
  ASSERT_TRUE((*engine)->Index((dir / "share").string(), co).ok());
  auto embedder = NewHashQueryEmbedder(512);
  ServerOptions so;
  so.port = 0;
  so.engine = engine->get();
  so.embedder = embedder.get();
  so.auth.disabled = true;
  so.storage_roots = {(dir / "share").string()};
  auto srv = Server::Create(so);
  ASSERT_TRUE(srv.ok()) << srv.status().ToString();
  ASSERT_TRUE((*srv)->Start().ok());
  httplib::Client cl("127.0.0.1", (*srv)->port());
  const std::string url = "file://" + stdfs::canonical(dir / "share/sky.png").string();
  const auto start = std::chrono::steady_clock::now();
  Reply e = Wrap(cl.Post("/embed", Json{{"imageUrl", url}}.dump(), "application/json"));
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(e.status, 200) << e.raw;
  ExpectEmbedRoundTrips(e.raw, e.body, wall);
  std::string csv;
  for (const auto& n : PrintedNumbers(e.raw)) csv += (csv.empty() ? "" : ",") + n;
  const std::string target = "/search?mode=vector&limit=1&imageEmbedding=" + csv;
  // Today's transport takes 8 KiB request lines, the coming one 16 KiB.
  EXPECT_LT(target.size(), 8192u - 64) << "512 printed floats take " << csv.size() << " bytes";
  Reply r = Get(target, "", srv->get());
  ASSERT_EQ(r.status, 200) << r.raw.substr(0, 300);
  ASSERT_EQ(r.body["hits"].size(), 1u);
  EXPECT_EQ(r.body["hits"][0]["name"], "sky.png");
  (*srv)->Stop();
}

// Decodes image bytes before embedding them, as CLIP does: the hash embedder alone takes anything.
class DecodingQueryEmbedder : public QueryEmbedder {
 public:
  DecodingQueryEmbedder() : inner_(NewHashQueryEmbedder(64)) {}
  const std::string& model_id() const override { return inner_->model_id(); }
  size_t dim() const override { return inner_->dim(); }
  Result<std::vector<float>> EmbedText(std::string_view text) override { return inner_->EmbedText(text); }
  Result<std::vector<float>> EmbedImageBytes(std::string_view bytes) override {
    FS_ASSIGN_OR_RETURN(image::RgbImage decoded, image::DecodeMemory(bytes, {}));
    return inner_->EmbedImageBytes(bytes);
  }

 private:
  std::unique_ptr<QueryEmbedder> inner_;
};

TEST_F(ApiTest, DamagedImageIsTheClientsError) {
  DecodingQueryEmbedder embedder;
  ServerOptions so;
  so.port = 0;
  so.engine = engine_;
  so.embedder = &embedder;
  so.auth.disabled = true;
  auto srv = Server::Create(so);
  ASSERT_TRUE(srv.ok()) << srv.status().ToString();
  ASSERT_TRUE((*srv)->Start().ok());
  httplib::Client cl("127.0.0.1", (*srv)->port());
  // A PNG signature and header, then noise: it sniffs as an image and fails to decode.
  const std::string damaged = FakePng(16, 16, 21);
  httplib::MultipartFormDataItems upload = {{"image", damaged, "damaged.png", "image/png"}};
  Reply r = Wrap(cl.Post("/search", upload));
  ExpectError(r, 422, "invalid_image", "/search", "post");
  EXPECT_NE(r.body["error"]["message"].get<std::string>().find("intact"), std::string::npos) << r.raw;
  std::string b64 = Base64UrlEncode(damaged);
  for (char& ch : b64) ch = ch == '-' ? '+' : ch == '_' ? '/' : ch;
  while (b64.size() % 4 != 0) b64 += '=';
  Reply e = Wrap(cl.Post("/embed", Json{{"imageBase64", b64}}.dump(), "application/json"));
  ExpectError(e, 422, "invalid_image", "/embed", "post");
  EXPECT_EQ(e.body["success"], false);
  (*srv)->Stop();
}

// Last in the file: it leaves entries on the shared store's failure list.
TEST_F(ApiTest, FeedbackIsStoredPerUserWithinTheirFoldersAndExportsAsJudgments) {
  const int64_t r100 = IdOf("report-100.txt");
  const std::string r101_path = Share() + "/finance/report-101.txt";
  const std::string query = "quarterly feedback " + std::to_string(::getpid());
  const std::string q = Enc(query);
  auto body = [&](const Json& doc, int vote, const std::string& mode = "hybrid") {
    return Json{{"query", query}, {"mode", mode}, {"doc", doc}, {"vote", vote}}.dump();
  };
  // Up by id, down by path.
  Reply up = PostJson("/api/feedback", body(r100, 1));
  ASSERT_EQ(up.status, 201) << up.raw;
  EXPECT_EQ(up.body, Json({{"stored", true}}));
  Conforms(up, "/api/feedback", "post");
  Reply down = PostJson("/api/feedback", body(r101_path, -1, "text"));
  ASSERT_EQ(down.status, 201) << down.raw;
  Reply mine = Get("/api/feedback?query=" + q);
  ASSERT_EQ(mine.status, 200) << mine.raw;
  Conforms(mine, "/api/feedback");
  ASSERT_EQ(mine.body["votes"].size(), 2u) << mine.raw;
  EXPECT_EQ(mine.body["votes"][0]["doc"], r100);
  EXPECT_EQ(mine.body["votes"][0]["vote"], 1);
  EXPECT_EQ(mine.body["votes"][0]["mode"], "hybrid");
  EXPECT_EQ(mine.body["votes"][1]["path"], r101_path);
  EXPECT_EQ(mine.body["votes"][1]["vote"], -1);
  EXPECT_EQ(mine.body["votes"][1]["doc"], IdOf("report-101.txt"));
  // A second vote replaces the first; vote 0 withdraws.
  ASSERT_EQ(PostJson("/api/feedback", body(r100, -1)).status, 201);
  ASSERT_EQ(PostJson("/api/feedback", body(r101_path, 0)).status, 201);
  mine = Get("/api/feedback?query=" + q);
  ASSERT_EQ(mine.body["votes"].size(), 1u) << mine.raw;
  EXPECT_EQ(mine.body["votes"][0]["vote"], -1);
  ASSERT_EQ(PostJson("/api/feedback", body(r100, 1)).status, 201);
  // Votes are the user's own: bob sees none of alice's, and his vote is his.
  Json bob_claims = Claims();
  bob_claims["sub"] = "bob";
  const std::string bob = SignHs256(kSecret, bob_claims);
  EXPECT_EQ(Get("/api/feedback?query=" + q, bob).body["votes"].size(), 0u);
  ASSERT_EQ(PostJson("/api/feedback", body(r100, 1), bob).status, 201);
  ASSERT_EQ(PostJson("/api/feedback", body(r101_path, 1), bob).status, 201);
  EXPECT_EQ(Get("/api/feedback?query=" + q, bob).body["votes"].size(), 2u);
  // Scope: a user limited to finance/ cannot vote on (or learn of) hr/policy.txt, by id or path.
  Json c = Claims();
  c["sub"] = "carol";
  c["paths"] = {Share() + "/finance/"};
  const std::string finance = SignHs256(kSecret, c);
  ExpectError(PostJson("/api/feedback", body(IdOf("policy.txt"), 1), finance), 404, "not_found", "/api/feedback", "post");
  ExpectError(PostJson("/api/feedback", body(Share() + "/hr/policy.txt", 1), finance), 404, "not_found", "/api/feedback",
              "post");
  ExpectError(PostJson("/api/feedback", body(Share() + "/hr/../finance/report-100.txt", 1)), 404, "not_found",
              "/api/feedback", "post");
  // Hostile or wrong input: a clear 4xx each, and nothing stored.
  for (const std::string& bad : {std::string("{"), std::string("[]"), std::string("{}"),
                                 Json{{"query", query}, {"mode", "hybrid"}, {"doc", r100}, {"vote", 2}}.dump(),
                                 Json{{"query", query}, {"mode", "fuzzy"}, {"doc", r100}, {"vote", 1}}.dump(),
                                 Json{{"query", ""}, {"mode", "text"}, {"doc", r100}, {"vote", 1}}.dump(),
                                 Json{{"query", std::string(5000, 'x')}, {"mode", "text"}, {"doc", r100}, {"vote", 1}}.dump(),
                                 Json{{"query", query}, {"mode", "text"}, {"doc", Json::object()}, {"vote", 1}}.dump(),
                                 Json{{"query", query}, {"mode", "text"}, {"doc", r100}, {"vote", "up"}}.dump(),
                                 Json{{"query", query}, {"mode", "text"}, {"doc", r100}, {"vote", 1}, {"user", "eve"}}.dump()}) {
    ExpectError(PostJson("/api/feedback", bad), 400, "invalid_argument", "/api/feedback", "post");
  }
  ExpectError(PostJson("/api/feedback", body(0, 1)), 404, "not_found", "/api/feedback", "post");
  ExpectError(PostJson("/api/feedback", body(999999999, 1)), 404, "not_found", "/api/feedback", "post");
  ExpectError(Get("/api/feedback?user=bob"), 400, "invalid_argument", "/api/feedback");
  EXPECT_EQ(PostJson("/api/feedback", body(r100, 1), "").status, 401);
  EXPECT_EQ(Get("/api/feedback", "").status, 401);
  EXPECT_EQ(Get("/healthz", "").status, 200);  // still serving
  // The votes as judgments: both users up on report-100 (grade 1); report-101 alice withdrew,
  // bob up (grade 1). Exported and read back as eval reads them.
  auto votes = engine_->store()->ListFeedback("", query);
  ASSERT_TRUE(votes.ok()) << votes.status().ToString();
  EXPECT_EQ(votes->size(), 3u);
  auto exported = ExportFeedback(*votes, "jsonl");
  ASSERT_TRUE(exported.ok());
  auto judgments = ParseJudgments(exported->judgments, std::nullopt);
  ASSERT_TRUE(judgments.ok()) << judgments.status().ToString();
  ASSERT_EQ(judgments->queries.size(), 1u);
  EXPECT_EQ(judgments->queries[0].text, query);
  EXPECT_EQ(judgments->queries[0].grades.at(Share() + "/finance/report-100.txt"), 1);
  EXPECT_EQ(judgments->queries[0].grades.at(r101_path), 1);
}

TEST_F(ApiTest, FailureListIsServedPerUserAndCounted) {
  const std::vector<FailureInput> failed = {
      {"file://" + Share() + "/finance/broken.jpg", Share() + "/finance/broken.jpg", "embed", "corruption: bad JPEG", true},
      {"file://" + Share() + "/hr/locked.docx", Share() + "/hr/locked.docx", "read", "cannot open: I/O error", false}};
  ASSERT_TRUE(engine_->store()->RecordFailures(failed, RetryPolicy{}, 1'700'000'000'000'000'000).ok());
  Reply all = Get("/failures");
  ASSERT_EQ(all.status, 200) << all.raw;
  Conforms(all, "/failures");
  EXPECT_EQ(all.body["dead"], 1);
  EXPECT_EQ(all.body["retrying"], 1);
  ASSERT_EQ(all.body["failures"].size(), 2u);
  Reply dead = Get("/failures?dead=true");
  ASSERT_EQ(dead.status, 200);
  ASSERT_EQ(dead.body["failures"].size(), 1u);
  EXPECT_EQ(dead.body["failures"][0]["reason"], "corruption: bad JPEG");
  EXPECT_TRUE(dead.body["failures"][0]["nextRetry"].is_null());
  EXPECT_EQ(dead.body["failures"][0]["firstFailed"], "2023-11-14T22:13:20Z");
  EXPECT_EQ(dead.body["retrying"], 1) << "the counts cover the whole list";
  Reply retrying = Get("/failures?dead=false");
  ASSERT_EQ(retrying.status, 200) << retrying.raw;
  Conforms(retrying, "/failures");
  ASSERT_EQ(retrying.body["failures"].size(), 1u) << retrying.raw;
  EXPECT_EQ(retrying.body["failures"][0]["stage"], "read");
  EXPECT_FALSE(retrying.body["failures"][0]["dead"].get<bool>());
  EXPECT_EQ(retrying.body["dead"], 1);
  // A user limited to finance/ sees only the failure there.
  Json c = Claims();
  c["paths"] = {Share() + "/finance/"};
  Reply mine = Get("/failures", SignHs256(kSecret, c));
  ASSERT_EQ(mine.status, 200);
  ASSERT_EQ(mine.body["failures"].size(), 1u);
  EXPECT_EQ(mine.body["failures"][0]["stage"], "embed");
  EXPECT_EQ(mine.body["retrying"], 0);
  ExpectError(Get("/failures?limit=0"), 400, "invalid_argument", "/failures");
  ExpectError(Get("/failures?dead=maybe"), 400, "invalid_argument", "/failures");
  ExpectError(Get("/failures", ""), 401, "unauthorized", "/failures");
}

// `serve --watch` indexes through a second engine over the same data directory, sharing the
// serving engine's embedding cache: /metrics counts its lookups, and the vector gauge catches up
// with its writes without a search first.
TEST_F(ApiTest, MetricsFollowASecondEnginesIndexing) {
  if (OnOpenSearch()) {
    GTEST_SKIP() << "the embedded run covers it: with the opensearch back end /metrics counts the node's index, "
                    "read at most every 5 s, so a second writer shows there at the next read";
  }
  const stdfs::path watched = *base_ / "watched";
  WriteFile(watched / "again.png", FakePng(64, 48, 2));  // the bytes of photos/dog.png: a cache hit
  WriteFile(watched / "new.png", FakePng(64, 48, 31));   // new bytes: a miss
  ASSERT_EQ(Get("/search?q=quarterly&mode=text").status, 200);
  Reply before = Get("/metrics", "");
  ASSERT_EQ(before.status, 200);
  EngineOptions eo;
  eo.data_dir = (*base_ / "data").string();
  eo.progress = false;
  eo.shared_cache = engine_->cache();
  auto watcher = Engine::Open(eo);
  ASSERT_TRUE(watcher.ok()) << watcher.status().ToString();
  ASSERT_TRUE((*watcher)->SetEmbedder(NewHashEmbedder(64)).ok());
  CrawlOptions co;
  co.progress = false;
  auto report = (*watcher)->Index(watched.string(), co);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_EQ(report->embedded, 2u);
  Reply after = Get("/metrics", "");
  ASSERT_EQ(after.status, 200);
  EXPECT_EQ(MetricValue(after.raw, "filesearch_index_vectors") - MetricValue(before.raw, "filesearch_index_vectors"), 2.0)
      << after.raw;
  EXPECT_EQ(MetricValue(after.raw, "filesearch_embedding_cache_hits_total") -
                MetricValue(before.raw, "filesearch_embedding_cache_hits_total"), 1.0);
  EXPECT_EQ(MetricValue(after.raw, "filesearch_embedding_cache_misses_total") -
                MetricValue(before.raw, "filesearch_embedding_cache_misses_total"), 1.0);
  for (const char* name : {"again.png", "new.png"}) {
    ASSERT_TRUE(engine_->store()->Delete(FileUri(stdfs::canonical(watched / name).string())).ok());
  }
}

}  // namespace
}  // namespace fs::server
