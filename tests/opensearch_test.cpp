// `filesearch opensearch setup|status|ef-search` and the index it creates, against a real OpenSearch
// 2.19.1 node with the k-NN plugin (tests/opensearch/node, started once by the CTest fixture
// opensearch_node). The node's k-NN plugin from Maven Central has no native faiss/nmslib libraries,
// so every index here uses the lucene engine. Exits 77 (skipped) with the reason when the node is
// unavailable (no Java, no Maven, no artifacts).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <map>

#include "cache/cache_servers_fixture.h"
#include "engine/engine.h"
#include "engine/mirror.h"
#include "engine/search.h"
#include "index/opensearch_backend.h"
#include "index/opensearch_client.h"
#include "index/opensearch_query.h"
#include "queue/job_queue.h"
#include "spawn_util.h"

namespace fs {
namespace {

using nlohmann::json;

std::string g_url;  // the node, "http://127.0.0.1:PORT"

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

struct CliRun {
  int rc = -1;
  std::string output;  // stdout and stderr together
};

CliRun RunCli(std::vector<std::string> args) {
  args.insert(args.begin(), FILESEARCH_BINARY);
  const std::string log = ::testing::TempDir() + "opensearch_cli_" + std::to_string(::getpid()) + ".log";
  std::filesystem::remove(log);
  const pid_t pid = testing::Spawn(args, log);
  int status = 0;
  CliRun run;
  if (pid > 0 && ::waitpid(pid, &status, 0) == pid && WIFEXITED(status)) run.rc = WEXITSTATUS(status);
  run.output = ReadFile(log);
  return run;
}

// `filesearch opensearch COMMAND --opensearch-url <node> --opensearch-index INDEX ARGS...`
CliRun Os(const std::string& command, const std::string& index, std::vector<std::string> args = {}) {
  std::vector<std::string> all = {"opensearch", command, "--opensearch-url", g_url, "--opensearch-index", index};
  all.insert(all.end(), args.begin(), args.end());
  return RunCli(all);
}

// Setup with the spec these tests use: 4-d vectors, lucene (the only engine this node has).
CliRun SetupIndex(const std::string& index, std::vector<std::string> args = {}) {
  std::vector<std::string> all = {"--engine", "lucene", "--dimension", "4"};
  all.insert(all.end(), args.begin(), args.end());
  return Os("setup", index, all);
}

class OpenSearchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    OpenSearchOptions options;
    options.url = g_url;
    auto client = OpenSearchClient::Create(options);
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    client_ = std::move(*client);
  }

  // A request straight to the node; fails the test on a transport error.
  OpenSearchReply Http(const std::string& method, const std::string& path, const json& body = nullptr) {
    OpenSearchRequest request;
    request.method = method;
    request.path = path.substr(0, path.find('?'));
    if (path.find('?') != std::string::npos) {  // "name=value&..." (plain words only here)
      std::stringstream query(path.substr(path.find('?') + 1));
      for (std::string pair; std::getline(query, pair, '&');) {
        request.query.emplace_back(pair.substr(0, pair.find('=')), pair.substr(pair.find('=') + 1));
      }
    }
    request.read_only_post = true;
    if (!body.is_null()) request.body = body.dump();
    auto reply = client_->Send(request);
    EXPECT_TRUE(reply.ok()) << reply.status().ToString();
    return reply.ok() ? *reply : OpenSearchReply{};
  }
  json HttpJson(const std::string& method, const std::string& path, const json& body = nullptr) {
    const OpenSearchReply reply = Http(method, path, body);
    EXPECT_TRUE(reply.ok()) << method << " " << path << ": " << reply.status << " " << reply.body;
    return json::parse(reply.body, nullptr, false);
  }
  // Indexes base/share with 16-d stand-in vectors into a new engine at base/data, mirrors it into
  // `index` (expecting `count` documents), and fills `bo` for a back end over that index.
  void IndexAndMirror(const std::string& base, const std::string& index, size_t count, std::unique_ptr<Engine>* engine,
                      OpenSearchBackendOptions* bo) {
    EngineOptions eo;
    eo.data_dir = base + "/data";
    eo.progress = false;
    auto opened = Engine::Open(eo);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    *engine = std::move(*opened);
    ASSERT_TRUE((*engine)->SetEmbedder(NewHashEmbedder(16)).ok());
    ASSERT_TRUE((*engine)->Index(base + "/share").ok());
    Store* store = (*engine)->store();
    ASSERT_TRUE(store->EnableMirror("opensearch " + g_url + "/" + index).ok());
    MirrorOptions mo;
    mo.index = index;
    mo.model = "test/hash-16";
    auto sink = NewOpenSearchBulkSink(client_.get());
    auto synced = SyncMirror(store, sink.get(), mo);
    ASSERT_TRUE(synced.ok()) << synced.status().ToString();
    ASSERT_EQ(synced->indexed, count);
    HttpJson("POST", "/" + index + "/_refresh");
    bo->index = index;
    bo->model = "test/hash-16";
    bo->dimension = 16;
    bo->request = RequestsThrough(client_.get());
  }
  void Index(const std::string& index, const std::string& id, const json& doc) {
    HttpJson("PUT", "/" + index + "/_doc/" + id + "?refresh=true", doc);
  }
  // The ids a query finds, best first.
  std::vector<std::string> Ids(const std::string& index, const json& query) {
    const json reply = HttpJson("POST", "/" + index + "/_search", {{"query", query}, {"size", 20}});
    std::vector<std::string> ids;
    for (const json& hit : reply["hits"]["hits"]) ids.push_back(hit["_id"]);
    return ids;
  }

  std::unique_ptr<OpenSearchClient> client_;
};

TEST_F(OpenSearchTest, SetupFromScratchRunsFiveStepsAndCreatesTheKnnMapping) {
  const CliRun run = SetupIndex("t-scratch");
  ASSERT_EQ(run.rc, 0) << run.output;
  for (const char* step : {"[1/5] k-NN plugin: installed", "[2/5] index t-scratch: absent", "[3/5] create: created",
                           "[4/5] settings: index.knn true, ef_search 512", "[5/5] mapping: image_embedding knn_vector 4"}) {
    EXPECT_NE(run.output.find(step), std::string::npos) << step << "\n" << run.output;
  }
  // What the node itself reports.
  const json mapping = HttpJson("GET", "/t-scratch/_mapping")["t-scratch"]["mappings"]["properties"];
  const json& vector = mapping["image_embedding"];
  EXPECT_EQ(vector["type"], "knn_vector");
  EXPECT_EQ(vector["dimension"], 4);
  EXPECT_EQ(vector["method"]["name"], "hnsw");
  EXPECT_EQ(vector["method"]["space_type"], "innerproduct");
  EXPECT_EQ(vector["method"]["engine"], "lucene");
  for (const char* field : {"doc_id", "uri", "name", "path", "content", "extension", "mime", "mime_family", "size",
                            "mtime_ns", "taken_ns", "sha256", "embedding_model", "has_image_embedding"}) {
    EXPECT_TRUE(mapping.contains(field)) << field;
  }
  const json settings = HttpJson("GET", "/t-scratch/_settings?flat_settings=true")["t-scratch"]["settings"];
  EXPECT_EQ(settings["index.knn"], "true");
  EXPECT_EQ(settings["index.knn.algo_param.ef_search"], "512");
}

TEST_F(OpenSearchTest, RerunningSetupChangesNothing) {
  ASSERT_EQ(SetupIndex("t-rerun").rc, 0);
  const json before = HttpJson("GET", "/t-rerun");
  const CliRun again = SetupIndex("t-rerun");
  ASSERT_EQ(again.rc, 0) << again.output;
  EXPECT_NE(again.output.find("[3/5] create: skipped, the index exists"), std::string::npos) << again.output;
  EXPECT_NE(again.output.find("nothing changed"), std::string::npos) << again.output;
  const json after = HttpJson("GET", "/t-rerun");
  EXPECT_EQ(before["t-rerun"]["mappings"], after["t-rerun"]["mappings"]);
  EXPECT_EQ(before["t-rerun"]["settings"], after["t-rerun"]["settings"]);
}

// An index made by hand with a k-NN field that is not what filesearch writes is refused, and the
// message names the difference.
TEST_F(OpenSearchTest, RefusesAnIndexWithAnotherDimensionOrSpace) {
  const json settings = {{"index", {{"knn", true}}}};
  auto field = [](int dimension, const std::string& space) {
    return json{{"type", "knn_vector"}, {"dimension", dimension},
                {"method", {{"name", "hnsw"}, {"space_type", space}, {"engine", "lucene"}}}};
  };
  HttpJson("PUT", "/t-dim256", {{"settings", settings}, {"mappings", {{"properties", {{"image_embedding", field(256, "innerproduct")}}}}}});
  CliRun run = SetupIndex("t-dim256");
  EXPECT_EQ(run.rc, 1) << run.output;
  EXPECT_NE(run.output.find("dimension is 256, filesearch wants 4"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("--opensearch-index"), std::string::npos) << run.output;  // what to do

  HttpJson("PUT", "/t-l2", {{"settings", settings}, {"mappings", {{"properties", {{"image_embedding", field(4, "l2")}}}}}});
  run = SetupIndex("t-l2");
  EXPECT_EQ(run.rc, 1) << run.output;
  EXPECT_NE(run.output.find("space_type is l2, filesearch wants innerproduct"), std::string::npos) << run.output;

  HttpJson("PUT", "/t-nofield", {{"settings", settings}, {"mappings", {{"properties", {{"name", {{"type", "text"}}}}}}}});
  run = SetupIndex("t-nofield");
  EXPECT_EQ(run.rc, 1) << run.output;
  EXPECT_NE(run.output.find("has no image_embedding field"), std::string::npos) << run.output;

  HttpJson("PUT", "/t-noknn", {{"mappings", {{"properties", {{"name", {{"type", "text"}}}}}}}});
  run = SetupIndex("t-noknn");
  EXPECT_EQ(run.rc, 1) << run.output;
  EXPECT_NE(run.output.find("index.knn"), std::string::npos) << run.output;

  // The refused indexes are untouched.
  EXPECT_EQ(HttpJson("GET", "/t-dim256/_mapping")["t-dim256"]["mappings"]["properties"].size(), 1u);
}

TEST_F(OpenSearchTest, EfSearchChangesTheSetting) {
  ASSERT_EQ(SetupIndex("t-ef").rc, 0);
  const CliRun run = Os("ef-search", "t-ef", {"64"});
  ASSERT_EQ(run.rc, 0) << run.output;
  EXPECT_NE(run.output.find("ef_search is now 64"), std::string::npos) << run.output;
  EXPECT_EQ(HttpJson("GET", "/t-ef/_settings?flat_settings=true")["t-ef"]["settings"]["index.knn.algo_param.ef_search"], "64");
  // setup puts the requested value back, and says so.
  const CliRun again = SetupIndex("t-ef");
  ASSERT_EQ(again.rc, 0) << again.output;
  EXPECT_NE(again.output.find("ef_search 64 -> 512"), std::string::npos) << again.output;
  EXPECT_EQ(Os("ef-search", "t-missing", {"64"}).rc, 1);
}

TEST_F(OpenSearchTest, StatusReportsHealthAndCounts) {
  ASSERT_EQ(SetupIndex("t-status").rc, 0);
  Index("t-status", "1", {{"name", "a.jpg"}, {"image_embedding", {1, 0, 0, 0}}, {"has_image_embedding", true}});
  Index("t-status", "2", {{"name", "b.jpg"}, {"image_embedding", {0, 1, 0, 0}}, {"has_image_embedding", true}});
  Index("t-status", "3", {{"name", "notes.txt"}, {"has_image_embedding", false}});
  const CliRun run = Os("status", "t-status");
  ASSERT_EQ(run.rc, 0) << run.output;
  EXPECT_NE(run.output.find("cluster:   filesearch-test"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("documents: 3\n"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("vectors:   2 documents"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("ef_search: 512"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("hybrid:    the node can fuse too"), std::string::npos) << run.output;

  const CliRun missing = Os("status", "t-never-made");
  EXPECT_EQ(missing.rc, 1);
  EXPECT_NE(missing.output.find("index 't-never-made' does not exist"), std::string::npos) << missing.output;
}

TEST_F(OpenSearchTest, DryRunSendsNothing) {
  const CliRun run = SetupIndex("t-dry", {"--dry-run"});
  ASSERT_EQ(run.rc, 0) << run.output;
  EXPECT_NE(run.output.find("would send: PUT " + g_url + "/t-dry"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("\"dimension\": 4"), std::string::npos) << run.output;
  EXPECT_EQ(Http("HEAD", "/t-dry").status, 404);  // not created
  // Where nothing listens, a dry run still succeeds: it never connects.
  const std::string nowhere = "http://127.0.0.1:" + std::to_string(testing::FreePort());
  const CliRun offline = RunCli({"opensearch", "ef-search", "5", "--opensearch-url", nowhere, "--dry-run"});
  EXPECT_EQ(offline.rc, 0) << offline.output;
  EXPECT_NE(offline.output.find("would send: PUT " + nowhere + "/cis-files/_settings"), std::string::npos) << offline.output;
}

TEST_F(OpenSearchTest, NodeDownIsAClearErrorNamingTheUrl) {
  const std::string nowhere = "http://127.0.0.1:" + std::to_string(testing::FreePort());
  for (const char* command : {"setup", "status"}) {
    const CliRun run = RunCli({"opensearch", command, "--opensearch-url", nowhere});
    EXPECT_EQ(run.rc, 1) << run.output;
    EXPECT_NE(run.output.find("cannot reach OpenSearch at " + nowhere + ": connection refused"), std::string::npos)
        << run.output;
    EXPECT_NE(run.output.find("is it running? check --opensearch-url"), std::string::npos) << run.output;
  }
  const CliRun no_url = RunCli({"opensearch", "status"});  // OPENSEARCH_ENDPOINT unset in CTest
  EXPECT_EQ(no_url.rc, 2) << no_url.output;
  EXPECT_NE(no_url.output.find("--opensearch-url"), std::string::npos) << no_url.output;
}

// The analyzers setup creates keep the embedded back end's guarantees: Latin is case- and
// accent-insensitive, and one- or two-character Japanese/Chinese queries find their word.
TEST_F(OpenSearchTest, AnalyzersFoldAccentsAndFindCjkWords) {
  ASSERT_EQ(SetupIndex("t-text").rc, 0);
  Index("t-text", "invoice", {{"name", "2024年請求書.pdf"}, {"path", "/docs/経理/2024年請求書.pdf"}});
  Index("t-text", "cafe", {{"name", "Café Crème.txt"}, {"content", "RÉSUMÉ of the Naïve plan"}});
  Index("t-text", "list", {{"name", "ファイル一覧.xlsx"}, {"content", "文件列表"}});
  Index("t-text", "other", {{"name", "quarterly_report.final.md"}, {"content", "plain words"}});

  auto match = [](const std::string& field, const std::string& text) {
    return json{{"match", {{field, {{"query", text}, {"operator", "and"}}}}}};
  };
  const std::vector<std::string> invoice = {"invoice"}, cafe = {"cafe"}, list = {"list"};
  EXPECT_EQ(Ids("t-text", match("name", "請求")), invoice);
  EXPECT_EQ(Ids("t-text", match("name", "請")), invoice);
  EXPECT_EQ(Ids("t-text", match("name", "請求書")), invoice);
  EXPECT_EQ(Ids("t-text", match("path.text", "経理")), invoice);
  EXPECT_EQ(Ids("t-text", match("name", "一覧")), list);
  EXPECT_EQ(Ids("t-text", match("name", "ファイル")), list);
  EXPECT_EQ(Ids("t-text", match("content", "列表")), list);  // Chinese
  EXPECT_EQ(Ids("t-text", match("name", "cafe")), cafe);
  EXPECT_EQ(Ids("t-text", match("name", "CAFÉ crème")), cafe);
  EXPECT_EQ(Ids("t-text", match("content", "resume naive")), cafe);
  EXPECT_TRUE(Ids("t-text", match("name", "請求 cafe")).empty());
  // File-name separators split words: "quarterly_report.final.md".
  EXPECT_EQ(Ids("t-text", match("name", "report final")), std::vector<std::string>{"other"});
  EXPECT_EQ(Ids("t-text", match("name", "md")), std::vector<std::string>{"other"});
  // path keyword: prefix filtering.
  EXPECT_EQ(Ids("t-text", json{{"prefix", {{"path", "/docs/経理/"}}}}), invoice);

  // The analyzer's tokens as the node produces them.
  const json tokens = HttpJson("POST", "/t-text/_analyze", {{"analyzer", "fs_text"}, {"text", "2024年請求書 Crème"}});
  std::vector<std::string> words;
  for (const json& token : tokens["tokens"]) words.push_back(token["token"]);
  for (const char* expected : {"2024", "請", "請求", "求書", "creme"}) {
    EXPECT_NE(std::find(words.begin(), words.end(), expected), words.end()) << expected << " in " << tokens.dump();
  }

  // English word forms (Snowball English, as libstemmer in the embedded back end) and parts of
  // names (the name.parts and path.parts subfields).
  Index("t-text", "kodim", {{"name", "kodim01.png"}, {"path", "/photos/kodak/kodim01.png"}});
  Index("t-text", "elephants", {{"name", "MyInvoiceDraft.docx"}, {"content", "Elephants at the waterholes"}});
  const std::vector<std::string> kodim = {"kodim"}, elephants = {"elephants"};
  EXPECT_EQ(Ids("t-text", match("content", "elephant")), elephants);
  EXPECT_EQ(Ids("t-text", match("content", "waterhole")), elephants);
  EXPECT_EQ(Ids("t-text", match("name.parts", "kodim")), kodim);
  EXPECT_EQ(Ids("t-text", match("path.parts", "kodim")), kodim);
  EXPECT_TRUE(Ids("t-text", match("name", "kodim")).empty());  // the whole-word field keeps words whole
  EXPECT_EQ(Ids("t-text", match("name.parts", "invoice")), elephants);
  const json parts = HttpJson("POST", "/t-text/_analyze", {{"analyzer", "fs_parts"}, {"text", "MyInvoiceDraft kodim01 q3"}});
  std::vector<std::string> part_words;
  for (const json& token : parts["tokens"]) part_words.push_back(token["token"]);
  EXPECT_EQ(part_words, (std::vector<std::string>{"my", "invoic", "draft", "kodim", "01"})) << parts.dump();
}

// k-NN through the created mapping: a filter applies inside the search, and _score follows the
// plugin's documented inner-product formula (1 + dot for dot >= 0, 1 / (1 - dot) below 0).
TEST_F(OpenSearchTest, KnnWithFilterScoresByInnerProduct) {
  ASSERT_EQ(SetupIndex("t-knn").rc, 0);
  const std::vector<std::pair<std::string, std::vector<double>>> docs = {
      {"same", {1, 0, 0, 0}}, {"near", {0.6, 0.8, 0, 0}}, {"orthogonal", {0, 1, 0, 0}},
      {"away", {-0.6, 0.8, 0, 0}}, {"opposite", {-1, 0, 0, 0}}, {"text", {0.8, 0.6, 0, 0}}};
  for (const auto& [id, vector] : docs) {
    Index("t-knn", id, {{"image_embedding", vector}, {"extension", id == "text" ? "TXT" : "jpg"}, {"has_image_embedding", true}});
  }
  const json query = {{"size", 10},
                      {"query", {{"knn", {{"image_embedding", {{"vector", {1, 0, 0, 0}}, {"k", 10},
                                                               {"filter", {{"term", {{"extension", "jpg"}}}}}}}}}}}};
  const json reply = HttpJson("POST", "/t-knn/_search", query);
  std::map<std::string, double> score;
  for (const json& hit : reply["hits"]["hits"]) score[hit["_id"]] = hit["_score"];
  EXPECT_EQ(score.count("text"), 0u);  // filtered out inside the search
  ASSERT_EQ(score.size(), 5u) << reply.dump();
  auto expected = [](double dot) { return dot >= 0 ? 1 + dot : 1 / (1 - dot); };
  EXPECT_NEAR(score["same"], expected(1), 1e-6);
  EXPECT_NEAR(score["near"], expected(0.6), 1e-6);
  EXPECT_NEAR(score["orthogonal"], expected(0), 1e-6);
  EXPECT_NEAR(score["away"], expected(-0.6), 1e-6);
  EXPECT_NEAR(score["opposite"], expected(-1), 1e-6);
  // The normaliser lower-cases extensions: "TXT" is found as "txt".
  EXPECT_EQ(Ids("t-knn", json{{"term", {{"extension", "txt"}}}}), std::vector<std::string>{"text"});
}

// One corpus in both back ends: the embedded store is mirrored into the node through _bulk (the
// outbox path of index/worker/backfill), a mirror pointed at a dead address loses nothing, and the
// same planner (RunSearch) over either back end finds the same documents: vector hits equal the
// exact order (the corpus is small, so both are exact), keyword totals and sets agree, filters
// apply inside k-NN, the model never mixes, pages and cursors work.
TEST_F(OpenSearchTest, TheEmbeddedIndexMirroredAnswersTheSameSearches) {
  ASSERT_EQ(SetupIndex("t-mirror").rc, 0);
  const std::string base = ::testing::TempDir() + "opensearch_mirror_" + std::to_string(::getpid());
  std::filesystem::remove_all(base);
  std::filesystem::create_directories(base + "/share/photos");
  for (int i = 0; i < 12; ++i) {
    std::ofstream(base + "/share/report" + std::to_string(i) + ".txt")
        << "quarterly report " << i << (i % 3 == 0 ? " invoice" : "") << "\n";
  }
  std::ofstream(base + "/share/2024年請求書.txt") << "請求書 for March";
  for (int i = 0; i < 10; ++i) {
    std::ofstream(base + "/share/photos/img" + std::to_string(i) + (i % 2 ? ".png" : ".jpg"), std::ios::binary)
        << "\x89PNG\r\n\x1A\n" << i;
  }
  EngineOptions eo;
  eo.data_dir = base + "/data";
  eo.progress = false;
  auto engine = Engine::Open(eo);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  ASSERT_TRUE((*engine)->SetEmbedder(NewHashEmbedder(4)).ok());
  ASSERT_TRUE((*engine)->Index(base + "/share").ok());
  Store* store = (*engine)->store();
  ASSERT_TRUE(store->EnableMirror("opensearch " + g_url + "/t-mirror").ok());

  MirrorOptions mo;
  mo.index = "t-mirror";
  mo.model = "test/hash-4";
  mo.max_items = 7;
  // The node is unreachable for the first sync (a dead port): nothing is lost, nothing trimmed.
  OpenSearchOptions dead;
  dead.url = "http://127.0.0.1:1";
  dead.max_attempts = 1;
  auto dead_client = OpenSearchClient::Create(dead);
  ASSERT_TRUE(dead_client.ok());
  auto dead_sink = NewOpenSearchBulkSink(dead_client->get());
  auto failed = SyncMirror(store, dead_sink.get(), mo);
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.status().message().find("127.0.0.1:1"), std::string::npos) << failed.status().ToString();
  EXPECT_EQ(*store->MirrorBacklog(), 23u);
  auto sink = NewOpenSearchBulkSink(client_.get());
  auto synced = SyncMirror(store, sink.get(), mo);
  ASSERT_TRUE(synced.ok()) << synced.status().ToString();
  EXPECT_EQ(synced->indexed, 23u);
  EXPECT_EQ(synced->failed, 0u);
  EXPECT_EQ(synced->requests, 4u);  // 23 items in batches of 7
  // A second full sync of the same state writes every document again: still 23, none duplicated.
  ASSERT_TRUE(store->QueueMirror(std::vector<std::string>{"file://" + base + "/share/report1.txt"}).ok());
  ASSERT_TRUE(SyncMirror(store, sink.get(), mo).ok());
  HttpJson("POST", "/t-mirror/_refresh");
  EXPECT_EQ(HttpJson("GET", "/t-mirror/_count")["count"], 23);
  EXPECT_EQ(HttpJson("POST", "/t-mirror/_count", {{"query", {{"term", {{"has_image_embedding", true}}}}}})["count"], 10);

  OpenSearchBackendOptions bo;
  bo.index = "t-mirror";
  bo.model = "test/hash-4";
  bo.dimension = 4;
  bo.request = RequestsThrough(client_.get());
  auto remote = NewOpenSearchBackend(bo);
  ASSERT_TRUE(remote.ok());
  auto local = NewEmbeddedBackend(store, (*engine)->vectors());
  auto uris = [](const Result<SearchResult>& r) {
    std::vector<std::string> out;
    if (r.ok()) {
      for (const auto& h : r->hits) out.push_back(h.doc.uri);
    }
    return out;
  };

  // Vector leg: the first photo's own vector; both back ends list all 10 photos in the same order.
  auto photo = store->GetByUri("file://" + base + "/share/photos/img0.jpg");
  ASSERT_TRUE(photo.ok());
  auto vec = store->GetEmbedding(photo->id, "test/hash-4");
  ASSERT_TRUE(vec.ok() && vec->has_value());
  SearchRequest v;
  v.vector = **vec;
  v.vector_model = "test/hash-4";
  v.size = 10;
  auto lv = RunSearch(*local, v);
  auto rv = RunSearch(**remote, v);
  ASSERT_TRUE(lv.ok() && rv.ok()) << (rv.ok() ? lv.status().ToString() : rv.status().ToString());
  EXPECT_EQ(uris(rv), uris(lv));
  ASSERT_EQ(rv->hits.size(), 10u);
  for (size_t i = 0; i < rv->hits.size(); ++i) {
    EXPECT_NEAR(rv->hits[i].vector.score, lv->hits[i].vector.score, 1e-4) << "cosines from _score, hit " << i;
  }
  // Filters inside the k-NN search; another model's vector is refused before any request.
  v.filters.extensions = {"png"};
  auto lpng = RunSearch(*local, v), rpng = RunSearch(**remote, v);
  EXPECT_EQ(uris(rpng), uris(lpng));
  EXPECT_EQ(rpng->hits.size(), 5u);
  v.vector_model = "other/model";
  EXPECT_FALSE(RunSearch(**remote, v).ok());

  // Keyword leg: the same matches and totals (scores differ: BM25 in FTS5 and in Lucene).
  SearchRequest k;
  k.query = "invoice";
  k.mode = SearchMode::kText;
  k.size = 10;
  auto lk = RunSearch(*local, k), rk = RunSearch(**remote, k);
  ASSERT_TRUE(lk.ok() && rk.ok()) << (rk.ok() ? "" : rk.status().ToString());
  EXPECT_EQ(rk->total, lk->total);
  auto sorted = [](std::vector<std::string> u) {
    std::sort(u.begin(), u.end());
    return u;
  };
  EXPECT_EQ(sorted(uris(rk)), sorted(uris(lk)));
  // Word forms and parts of names ("report" is part of "report0.txt") match alike.
  k.size = 50;
  for (const char* q : {"invoices", "report", "reports", "report0"}) {
    k.query = q;
    auto lq = RunSearch(*local, k), rq = RunSearch(**remote, k);
    ASSERT_TRUE(lq.ok() && rq.ok()) << q;
    EXPECT_EQ(rq->total, lq->total) << q;
    EXPECT_EQ(sorted(uris(rq)), sorted(uris(lq))) << q;
  }
  k.size = 10;
  k.query = "請求";
  auto cjk = RunSearch(**remote, k);
  ASSERT_TRUE(cjk.ok());
  ASSERT_EQ(cjk->hits.size(), 1u);
  EXPECT_EQ(cjk->hits[0].doc.name, "2024年請求書.txt");

  // Hybrid paging: two pages of 5 by cursor equal one page of 10.
  SearchRequest h;
  h.query = "quarterly report";
  h.vector = **vec;
  h.vector_model = "test/hash-4";
  h.size = 10;
  auto whole = RunSearch(**remote, h);
  ASSERT_TRUE(whole.ok()) << whole.status().ToString();
  h.size = 5;
  auto first = RunSearch(**remote, h);
  ASSERT_TRUE(first.ok() && !first->next_cursor.empty());
  h.search_after = first->next_cursor;
  auto second = RunSearch(**remote, h);
  ASSERT_TRUE(second.ok());
  std::vector<std::string> paged = uris(first), rest = uris(second);
  paged.insert(paged.end(), rest.begin(), rest.end());
  EXPECT_EQ(paged, uris(whole));

  // Deletes reach the index.
  std::filesystem::remove(base + "/share/report0.txt");
  ASSERT_TRUE((*engine)->Index(base + "/share").ok());
  auto after_delete = SyncMirror(store, sink.get(), mo);
  ASSERT_TRUE(after_delete.ok());
  EXPECT_EQ(after_delete->deleted, 1u);
  HttpJson("POST", "/t-mirror/_refresh");
  EXPECT_EQ(HttpJson("GET", "/t-mirror/_count")["count"], 22);
  engine->reset();
  std::filesystem::remove_all(base);
}

// Forwards everything but SearchLegs, so the planner asks its legs one request at a time (the
// base class's SearchLegs): the reference the one-round-trip paths must equal.
class LegByLeg final : public SearchBackend {
 public:
  explicit LegByLeg(const SearchBackend* b) : b_(b) {}
  std::string_view kind() const override { return b_->kind(); }
  Result<uint64_t> Generation() const override { return b_->Generation(); }
  Result<KeywordPage> KeywordSearch(std::string_view q, const SearchFilters& f, size_t offset, size_t limit,
                                    const std::optional<KeywordAfter>& after) const override {
    return b_->KeywordSearch(q, f, offset, limit, after);
  }
  bool has_vectors() const override { return b_->has_vectors(); }
  std::string vector_model() const override { return b_->vector_model(); }
  size_t vector_dim() const override { return b_->vector_dim(); }
  Result<std::vector<VectorHit>> VectorSearch(std::span<const float> q, size_t k, const SearchFilters& f,
                                              size_t ef) const override {
    return b_->VectorSearch(q, k, f, ef);
  }
  Result<std::vector<Document>> GetMany(std::span<const int64_t> ids) const override { return b_->GetMany(ids); }
  Result<std::optional<std::vector<float>>> GetVector(int64_t id) const override { return b_->GetVector(id); }
  Result<IndexCounts> Counts() const override { return b_->Counts(); }

 private:
  const SearchBackend* b_;
};

// Parity at a size where the vector indexes are approximate: 1,200 images (16-d vectors) and 300
// texts in both back ends. Vector hits agree with exact brute force at recall@10 >= 0.95 on each;
// the hybrid order each back end gives equals reciprocal rank fusion computed here from the legs
// that back end returns; the one-round-trip paths (_msearch for both legs, a leg with its page's
// documents) equal the leg-by-leg requests; totals, from-paging and cursors agree.
TEST_F(OpenSearchTest, ParityWithBruteForceAndFusionAtScale) {
  Http("DELETE", "/t-parity");  // a fresh index, also when run again on one node
  ASSERT_EQ(Os("setup", "t-parity", {"--engine", "lucene", "--dimension", "16"}).rc, 0);
  const std::string base = ::testing::TempDir() + "opensearch_parity_" + std::to_string(::getpid());
  std::filesystem::remove_all(base);
  std::filesystem::create_directories(base + "/share/img");
  std::filesystem::create_directories(base + "/share/txt");
  const char* words[] = {"alpha", "bravo", "charlie", "delta", "echo"};
  for (int i = 0; i < 1200; ++i) {
    std::ofstream(base + "/share/img/p" + std::to_string(i) + (i % 3 ? ".png" : ".jpg"), std::ios::binary)
        << "\x89PNG\r\n\x1A\n" << i;
  }
  for (int i = 0; i < 300; ++i) {
    std::ofstream(base + "/share/txt/t" + std::to_string(i) + ".txt")
        << words[i % 5] << " " << words[(i / 5) % 5] << " note " << i;
  }
  std::unique_ptr<Engine> engine_holder;
  OpenSearchBackendOptions bo;
  ASSERT_NO_FATAL_FAILURE(IndexAndMirror(base, "t-parity", 1500, &engine_holder, &bo));
  auto engine = &engine_holder;
  Store* store = engine_holder->store();
  auto remote_or = NewOpenSearchBackend(bo);
  ASSERT_TRUE(remote_or.ok());
  const SearchBackend& remote = **remote_or;
  auto local_ptr = NewEmbeddedBackend(store, (*engine)->vectors());
  const SearchBackend& local = *local_ptr;
  const LegByLeg remote_legs(&remote);

  // Exact neighbours by brute force over the stored vectors, by uri (ids differ between back ends).
  std::vector<std::pair<std::string, std::vector<float>>> all;
  ASSERT_TRUE(store->ForEachEmbedding("test/hash-16", [&](const EmbeddingRow& row) {
    all.push_back({store->Get(row.doc_id)->uri, row.vector});
  }).ok());
  ASSERT_EQ(all.size(), 1200u);
  auto unit = [](std::vector<float> v) {
    double n = 0;
    for (float x : v) n += double(x) * x;
    for (float& x : v) x = float(x / std::sqrt(n));
    return v;
  };
  auto uris = [](const SearchResult& r) {
    std::vector<std::string> out;
    for (const auto& h : r.hits) out.push_back(h.doc.uri);
    return out;
  };
  std::mt19937 rng(7);
  std::normal_distribution<float> gauss;
  size_t found_local = 0, found_remote = 0, wanted = 0;
  for (int q = 0; q < 40; ++q) {
    std::vector<float> query(16);
    for (float& x : query) x = gauss(rng);
    query = unit(query);
    std::vector<std::pair<double, std::string>> exact;
    for (const auto& [uri, v] : all) {
      const auto u = unit(v);
      double dot = 0;
      for (int i = 0; i < 16; ++i) dot += double(u[i]) * query[i];
      exact.push_back({-dot, uri});
    }
    std::sort(exact.begin(), exact.end());
    std::set<std::string> truth;
    for (int i = 0; i < 10; ++i) truth.insert(exact[i].second);
    SearchRequest v;
    v.vector = query;
    v.vector_model = "test/hash-16";
    v.size = 10;
    auto lr = RunSearch(local, v), rr = RunSearch(remote, v), rl = RunSearch(remote_legs, v);
    ASSERT_TRUE(lr.ok() && rr.ok() && rl.ok()) << rr.status().ToString();
    EXPECT_EQ(uris(*rr), uris(*rl)) << "a vector page with its documents equals leg, then documents";
    EXPECT_EQ(rr->total, rl->total);
    for (const auto& u : uris(*lr)) found_local += truth.count(u);
    for (const auto& u : uris(*rr)) found_remote += truth.count(u);
    wanted += 10;
  }
  EXPECT_GE(double(found_local) / wanted, 0.95) << "embedded recall@10";
  EXPECT_GE(double(found_remote) / wanted, 0.95) << "opensearch recall@10";

  // Hybrid: the fused order is RRF (k = 60) of the legs each back end returns for the window.
  std::vector<float> query(16);
  for (float& x : query) x = gauss(rng);
  for (const char* text : {"alpha", "bravo note", "delta echo"}) {
    SearchRequest h;
    h.query = text;
    h.vector = unit(query);
    h.vector_model = "test/hash-16";
    h.size = 20;
    for (const SearchBackend* b : {&local, &remote}) {
      auto result = RunSearch(*b, h);
      ASSERT_TRUE(result.ok()) << result.status().ToString();
      const size_t window = 100;
      auto kp = b->KeywordSearch(text, {}, 0, window);
      auto vh = b->VectorSearch(h.vector, window, {}, 0);
      ASSERT_TRUE(kp.ok() && vh.ok());
      std::map<int64_t, double> fused;
      for (size_t i = 0; i < kp->hits.size(); ++i) fused[kp->hits[i].id] += 1.0 / (60.0 + double(i + 1));
      for (size_t i = 0; i < vh->size(); ++i) fused[(*vh)[i].id] += 1.0 / (60.0 + double(i + 1));
      std::vector<std::pair<double, int64_t>> order;
      for (auto [id, score] : fused) order.push_back({-score, id});
      std::sort(order.begin(), order.end());
      ASSERT_EQ(result->hits.size(), 20u);
      for (size_t i = 0; i < 20; ++i) {
        EXPECT_EQ(result->hits[i].doc.id, order[i].second) << b->kind() << " '" << text << "' hit " << i;
      }
      EXPECT_EQ(result->total, [&] {
        std::set<int64_t> union_ids;
        for (const auto& k : kp->hits) union_ids.insert(k.id);
        for (const auto& x : *vh) union_ids.insert(x.id);
        return kp->total + (union_ids.size() - kp->hits.size());
      }()) << b->kind();
    }
    auto one_trip = RunSearch(remote, h), leg_by_leg = RunSearch(remote_legs, h);
    ASSERT_TRUE(one_trip.ok() && leg_by_leg.ok());
    EXPECT_EQ(uris(*one_trip), uris(*leg_by_leg)) << "_msearch equals the legs one by one";
  }

  // Totals, from-paging and cursors behave the same on both back ends.
  for (SearchMode mode : {SearchMode::kText, SearchMode::kVector, SearchMode::kHybrid}) {
    SearchRequest r;
    r.mode = mode;
    if (mode != SearchMode::kVector) r.query = "note";
    if (mode != SearchMode::kText) {
      r.vector = unit(query);
      r.vector_model = "test/hash-16";
    }
    r.filters.extensions = mode == SearchMode::kText ? std::vector<std::string>{"txt"} : std::vector<std::string>{"jpg"};
    r.size = 30;
    auto lw = RunSearch(local, r), rw = RunSearch(remote, r);
    ASSERT_TRUE(lw.ok() && rw.ok()) << rw.status().ToString();
    EXPECT_EQ(rw->total, lw->total) << SearchModeName(mode);
    EXPECT_EQ(rw->total_exact, lw->total_exact) << SearchModeName(mode);
    if (mode == SearchMode::kText) EXPECT_EQ(rw->total, 300u);
    if (mode == SearchMode::kVector) EXPECT_EQ(rw->total, 100u) << "k-NN totals count the window (100)";
    for (const SearchBackend* b : {&local, &remote}) {
      auto whole = RunSearch(*b, r);
      SearchRequest p = r;
      p.size = 10;
      p.from = 10;
      auto by_from = RunSearch(*b, p);
      p.from = 0;
      auto first = RunSearch(*b, p);
      ASSERT_TRUE(whole.ok() && by_from.ok() && first.ok() && !first->next_cursor.empty());
      p.search_after = first->next_cursor;
      auto by_cursor = RunSearch(*b, p);
      ASSERT_TRUE(by_cursor.ok());
      const auto w = uris(*whole);
      const std::vector<std::string> middle(w.begin() + 10, w.begin() + 20);
      EXPECT_EQ(uris(*by_from), middle) << b->kind() << " " << SearchModeName(mode);
      EXPECT_EQ(uris(*by_cursor), middle) << b->kind() << " " << SearchModeName(mode);
    }
  }
  engine->reset();
  std::filesystem::remove_all(base);
}

// The server-side option: hybrid searches fused by OpenSearch (a `hybrid` query with a temporary
// search pipeline: score-ranker-processor for RRF, normalization-processor for min-max linear)
// give the scores and order filesearch's planner gives for the legs that node returns, page by
// page and by cursor; the picture floor reaches it as a radial k-NN (min_score); what it cannot
// fuse as filesearch would (weighted RRF on 2.19) stays with the planner, and the reply says who
// fused. The corpus has no ties within a leg (distinct BM25 scores), since a node breaks ties by
// its own document order and filesearch by id: equal fused scores may still come in either order.
TEST_F(OpenSearchTest, ServerSideHybridFusesAsFilesearchDoes) {
  Http("DELETE", "/t-fusion");  // a fresh index, also when run again on one node
  ASSERT_EQ(Os("setup", "t-fusion", {"--engine", "lucene", "--dimension", "16"}).rc, 0);
  const std::string base = ::testing::TempDir() + "opensearch_fusion_" + std::to_string(::getpid());
  std::filesystem::remove_all(base);
  std::filesystem::create_directories(base + "/share/img");
  std::filesystem::create_directories(base + "/share/txt");
  for (int i = 0; i < 400; ++i) {
    std::ofstream(base + "/share/img/p" + std::to_string(i) + ".png", std::ios::binary) << "\x89PNG\r\n\x1A\n" << i;
  }
  // Images the word finds by name too (both legs), at distinct name lengths.
  for (int j = 0; j < 12; ++j) {
    std::string name = "alpha";
    for (int w = 0; w < j; ++w) name += " w" + std::to_string(w);
    std::ofstream(base + "/share/img/" + name + ".png", std::ios::binary) << "\x89PNG\r\n\x1A\n" << "named" << j;
  }
  // Texts with distinct (term frequency, length) pairs: distinct BM25 scores.
  for (int i = 0; i < 60; ++i) {
    std::ofstream f(base + "/share/txt/t" + std::to_string(i) + ".txt");
    for (int k = 0; k <= i % 3; ++k) f << "alpha ";
    for (int k = 0; k < i / 3; ++k) f << "filler" << k << " ";
  }
  std::unique_ptr<Engine> engine_holder;
  OpenSearchBackendOptions bo;
  ASSERT_NO_FATAL_FAILURE(IndexAndMirror(base, "t-fusion", 472, &engine_holder, &bo));
  auto engine = &engine_holder;
  auto planner_or = NewOpenSearchBackend(bo);
  bo.server_fusion = true;
  auto server_or = NewOpenSearchBackend(bo);
  ASSERT_TRUE(planner_or.ok() && server_or.ok());
  const SearchBackend& planner = **planner_or;
  const SearchBackend& server = **server_or;
  EXPECT_FALSE(planner.fuses_hybrid());
  EXPECT_TRUE(server.fuses_hybrid());

  // A query vector whose 100 nearest all have cosine > 0: OpenSearch normalises the k-NN's _score
  // (1 + cos there), filesearch the cosine, which agree up to an affine map only above 0.
  std::mt19937 rng(11);
  std::normal_distribution<float> gauss;
  std::vector<float> query(16);
  for (int attempt = 0;; ++attempt) {
    ASSERT_LT(attempt, 50);
    for (float& x : query) x = gauss(rng);
    auto vh = planner.VectorSearch(query, 100, {}, 0);
    ASSERT_TRUE(vh.ok());
    if (vh->size() == 100 && vh->back().score > 0.05f) break;
  }
  struct Variant {
    FusionMethod fusion;
    double text_weight, vector_weight;
  };
  size_t compared = 0;
  for (const Variant& v : {Variant{FusionMethod::kRrf, 1, 1}, Variant{FusionMethod::kLinear, 1, 1},
                           Variant{FusionMethod::kLinear, 0.3, 0.7}}) {
    SearchRequest r;
    r.query = "alpha";
    r.vector = query;
    r.vector_model = "test/hash-16";
    r.mode = SearchMode::kHybrid;
    r.fusion = v.fusion;
    r.text_weight = v.text_weight;
    r.vector_weight = v.vector_weight;
    r.size = 20;
    // The planner's fused score of every document down to 80 (window 100 on every page).
    std::map<int64_t, double> expected;
    std::vector<double> expected_scores;
    for (size_t from = 0; from < 80; from += 20) {
      SearchRequest p = r;
      p.from = from;
      auto page = RunSearch(planner, p);
      ASSERT_TRUE(page.ok()) << page.status().ToString();
      EXPECT_EQ(page->fused_by, "filesearch");
      for (const auto& h : page->hits) {
        expected[h.doc.id] = h.score;
        expected_scores.push_back(h.score);
      }
    }
    const std::string what = std::string(v.fusion == FusionMethod::kRrf ? "rrf" : "linear") + " " +
                             std::to_string(v.text_weight) + "/" + std::to_string(v.vector_weight);
    const double tol = v.fusion == FusionMethod::kRrf ? 1e-6 : 1e-5;
    std::string cursor;
    for (size_t from = 0; from < 80; from += 20) {
      SearchRequest p = r;
      p.from = from;
      auto page = RunSearch(server, p);
      ASSERT_TRUE(page.ok()) << what << ": " << page.status().ToString();
      EXPECT_EQ(page->fused_by, "opensearch") << what;
      ASSERT_EQ(page->hits.size(), 20u) << what;
      for (size_t i = 0; i < page->hits.size(); ++i) {
        const auto& h = page->hits[i];
        ASSERT_TRUE(expected.count(h.doc.id)) << what << ": hit " << from + i << " (" << h.doc.uri
                                              << ") is not in the planner's first 80";
        EXPECT_NEAR(h.score, expected[h.doc.id], tol) << what << " " << h.doc.uri;
        EXPECT_NEAR(h.score, expected_scores[from + i], tol) << what << " rank " << from + i;
        EXPECT_FALSE(h.text.present || h.vector.present) << "OpenSearch does not say which leg found a hit";
        ++compared;
      }
      // The cursor of the previous page gives this page.
      if (!cursor.empty()) {
        SearchRequest c = r;
        c.search_after = cursor;
        auto by_cursor = RunSearch(server, c);
        ASSERT_TRUE(by_cursor.ok());
        ASSERT_EQ(by_cursor->hits.size(), page->hits.size());
        for (size_t i = 0; i < page->hits.size(); ++i) {
          EXPECT_EQ(by_cursor->hits[i].doc.id, page->hits[i].doc.id) << what << " cursor page at " << from;
        }
      }
      ASSERT_FALSE(page->next_cursor.empty());
      cursor = page->next_cursor;
      if (from == 0) {
        auto first = RunSearch(planner, r);
        ASSERT_TRUE(first.ok());
        EXPECT_EQ(page->total, first->total) << what << ": documents either leg found";
      }
    }
  }
  EXPECT_EQ(compared, 240u);

  // Weighted RRF: OpenSearch 2.19's score-ranker takes no weights, so the planner fuses.
  SearchRequest weighted;
  weighted.query = "alpha";
  weighted.vector = query;
  weighted.vector_model = "test/hash-16";
  weighted.text_weight = 2;
  auto w_server = RunSearch(server, weighted), w_planner = RunSearch(planner, weighted);
  ASSERT_TRUE(w_server.ok() && w_planner.ok());
  EXPECT_EQ(w_server->fused_by, "filesearch");
  ASSERT_EQ(w_server->hits.size(), w_planner->hits.size());
  for (size_t i = 0; i < w_server->hits.size(); ++i) EXPECT_EQ(w_server->hits[i].doc.id, w_planner->hits[i].doc.id);

  // The picture floor as the k-NN's min_score: a text query's vector made from the query itself
  // (the hash embedder: no image stands out) brings no picture on either side; the word's
  // documents keep their order; a word nothing has finds nothing.
  for (const char* text : {"alpha", "zzyzx"}) {
    SearchRequest f;
    f.query = text;
    f.vector = query;
    f.vector_model = "test/hash-16";
    f.vector_from_text = true;
    f.size = 30;
    auto fs_ = RunSearch(server, f), fp = RunSearch(planner, f);
    ASSERT_TRUE(fs_.ok() && fp.ok()) << fs_.status().ToString();
    EXPECT_EQ(fs_->fused_by, "opensearch");
    ASSERT_EQ(fs_->hits.size(), fp->hits.size()) << text;
    for (size_t i = 0; i < fp->hits.size(); ++i) {
      EXPECT_EQ(fs_->hits[i].doc.id, fp->hits[i].doc.id) << text << " hit " << i;
      EXPECT_NEAR(fs_->hits[i].score, fp->hits[i].score, 1e-6) << text << " hit " << i;
    }
    if (std::string(text) == "zzyzx") EXPECT_EQ(fs_->hits.size(), 0u);
  }
  engine->reset();
  std::filesystem::remove_all(base);
}

// Cursor pages of a text search read one point in time, opened at the first cursor page: after
// every document is deleted, the cursor still pages through the snapshot while a new search finds
// nothing; a point in time that is gone (closed or expired) is replaced, and paging goes on from
// the index as it is.
TEST_F(OpenSearchTest, CursorPagesReadOnePointInTime) {
  Http("DELETE", "/t-pit");
  ASSERT_EQ(Os("setup", "t-pit", {"--engine", "lucene", "--dimension", "16"}).rc, 0);
  const std::string base = ::testing::TempDir() + "opensearch_pit_" + std::to_string(::getpid());
  std::filesystem::remove_all(base);
  std::filesystem::create_directories(base + "/share");
  for (int i = 0; i < 40; ++i) std::ofstream(base + "/share/n" + std::to_string(i) + ".txt") << "note " << i;
  std::unique_ptr<Engine> engine;
  OpenSearchBackendOptions bo;
  ASSERT_NO_FATAL_FAILURE(IndexAndMirror(base, "t-pit", 40, &engine, &bo));
  auto remote_or = NewOpenSearchBackend(bo);
  ASSERT_TRUE(remote_or.ok());
  const SearchBackend& remote = **remote_or;
  SearchRequest r;
  r.query = "note";
  r.mode = SearchMode::kText;
  r.size = 10;
  auto whole = [&] {
    SearchRequest all = r;
    all.size = 40;
    return RunSearch(remote, all);
  }();
  ASSERT_TRUE(whole.ok());
  ASSERT_EQ(whole->hits.size(), 40u);
  auto first = RunSearch(remote, r);
  ASSERT_TRUE(first.ok() && !first->next_cursor.empty());
  SearchRequest next = r;
  next.search_after = first->next_cursor;
  auto second = RunSearch(remote, next);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  ASSERT_EQ(second->hits.size(), 10u);
  EXPECT_EQ(second->hits[0].doc.id, whole->hits[10].doc.id);
  EXPECT_GE(HttpJson("GET", "/_search/point_in_time/_all")["pits"].size(), 1u) << "the cursor opened a point in time";

  // Every document goes; the cursor's snapshot keeps them.
  const json all_ids = HttpJson("POST", "/t-pit/_search", {{"size", 100}, {"_source", false}});
  ASSERT_EQ(all_ids["hits"]["hits"].size(), 40u);
  for (const json& hit : all_ids["hits"]["hits"]) HttpJson("DELETE", "/t-pit/_doc/" + hit["_id"].get<std::string>());
  HttpJson("POST", "/t-pit/_refresh");
  auto now = RunSearch(remote, r);
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(now->hits.size(), 0u);
  next.search_after = second->next_cursor;
  auto third = RunSearch(remote, next);
  ASSERT_TRUE(third.ok()) << third.status().ToString();
  ASSERT_EQ(third->hits.size(), 10u);
  EXPECT_EQ(third->hits[0].doc.id, whole->hits[20].doc.id);
  EXPECT_EQ(third->total, 40u);

  // Closed: the next page opens a new point in time on today's index (empty), without an error.
  HttpJson("DELETE", "/_search/point_in_time/_all");
  next.search_after = third->next_cursor;
  auto fourth = RunSearch(remote, next);
  ASSERT_TRUE(fourth.ok()) << fourth.status().ToString();
  EXPECT_EQ(fourth->hits.size(), 0u);
  // A tampered point in time is refused as a bad cursor, not sent.
  next.search_after = first->next_cursor + "x";
  EXPECT_FALSE(RunSearch(remote, next).ok());
  engine.reset();
  std::filesystem::remove_all(base);
}

// Queue workers on two machines (two data folders, no shared disk) write one OpenSearch index: a
// job is acknowledged only once its document and vector are on the node, machine B is SIGKILLed
// holding a job that machine A then does, and every file is in the index once (the _id is the
// uri's hash, whichever machine wrote it).
TEST_F(OpenSearchTest, QueueWorkersOnTwoMachinesWriteEachFileOnce) {
  const auto& redis = cache::testing::Shared("redis");
  if (redis.server == nullptr) {
    if (redis.skip) GTEST_SKIP() << redis.why;
    FAIL() << redis.why;
  }
  ASSERT_EQ(Os("setup", "t-queue", {"--engine", "lucene", "--dimension", "64"}).rc, 0);  // test/hash-64
  const std::string base = ::testing::TempDir() + "opensearch_queue_" + std::to_string(::getpid());
  std::filesystem::remove_all(base);
  std::filesystem::create_directories(base + "/share");
  constexpr int kImages = 9;
  for (int i = 0; i < kImages; ++i) {
    std::ofstream(base + "/share/img" + std::to_string(i) + ".png", std::ios::binary) << "\x89PNG\r\n\x1A\nq" << i;
  }
  std::ofstream(base + "/share/notes.txt") << "minutes of the queue meeting";
  const std::string url = redis.server->url() + "/fs-os-queue-" + std::to_string(::getpid());
  CliRun enqueue = RunCli({"--no-progress", "enqueue", base + "/share", "--queue", url, "--create-queue"});
  ASSERT_EQ(enqueue.rc, 0) << enqueue.output;
  queue::QueueOptions qo;
  qo.visibility_timeout_s = 2;
  auto q = queue::OpenJobQueue(url, qo);
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  auto worker = [&](const std::string& machine, std::vector<std::string> extra) {
    std::vector<std::string> argv = {FILESEARCH_BINARY, "--data-dir", base + "/" + machine, "--no-progress",
                                     "--backend", "opensearch", "--opensearch-url", g_url, "--opensearch-index",
                                     "t-queue", "worker", "--queue", url, "--test-embedder", "--visibility-timeout", "2"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return testing::Spawn(argv, base + "/" + machine + ".log");
  };
  auto stats_until = [&](const std::function<bool(const queue::QueueStats&)>& done) {
    for (int i = 0; i < 600; ++i) {  // 60 s
      auto s = (*q)->Stats();
      if (s.ok() && done(*s)) return true;
      ::usleep(100000);
    }
    return false;
  };
  // Machine B takes one job and is killed holding it.
  const pid_t b = worker("machine-b", {"--batch", "1", "--test-hold-ms", "600000"});
  ASSERT_TRUE(stats_until([](const queue::QueueStats& s) { return s.in_flight == 1; })) << ReadFile(base + "/machine-b.log");
  ::kill(b, SIGKILL);
  ::waitpid(b, nullptr, 0);
  // Machine A does everything, B's job once the visibility timeout has passed.
  const pid_t a = worker("machine-a", {});
  const bool drained = stats_until([](const queue::QueueStats& s) { return s.visible == 0 && s.in_flight == 0; });
  ::kill(a, SIGTERM);
  int status = 0;
  ::waitpid(a, &status, 0);
  const std::string log = ReadFile(base + "/machine-a.log");
  ASSERT_TRUE(drained) << log;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << log;
  EXPECT_NE(log.find("delivery 2"), std::string::npos) << log;
  HttpJson("POST", "/t-queue/_refresh");
  EXPECT_EQ(HttpJson("POST", "/t-queue/_count")["count"], kImages + 1) << log;
  const json with_vector = {{"query", {{"term", {{"has_image_embedding", true}}}}}};
  EXPECT_EQ(HttpJson("POST", "/t-queue/_count", with_vector)["count"], kImages) << log;
  // Each uri once.
  const json per_uri = HttpJson("POST", "/t-queue/_search",
                                {{"size", 0}, {"aggs", {{"uris", {{"terms", {{"field", "uri"}, {"size", 100}, {"min_doc_count", 2}}}}}}}});
  EXPECT_TRUE(per_uri["aggregations"]["uris"]["buckets"].empty()) << per_uri.dump();
  std::filesystem::remove_all(base);
}

// Two machines, one index. Machine A crawls a share without a model; machine B, which crawled
// nothing, backfills the whole index: a scan (point in time + search_after) finds the images
// without a vector, B embeds the files it can read and updates them in place (the original
// design's {"doc": {"image_embedding": ...}}), in pieces (--limit) and resumably; then `stats`
// counts and `duplicates` groups what both wrote, from the index, not from B's empty journal.
TEST_F(OpenSearchTest, ABackfillAndDuplicatesCoverTheWholeIndex) {
  ASSERT_EQ(SetupIndex("t-fleet").rc, 0);
  const std::string base = ::testing::TempDir() + "opensearch_fleet_" + std::to_string(::getpid());
  std::filesystem::remove_all(base);
  std::filesystem::create_directories(base + "/share/photos");
  for (int i = 0; i < 7; ++i) {
    std::ofstream(base + "/share/photos/img" + std::to_string(i) + ".png", std::ios::binary) << "\x89PNG\r\n\x1A\n" << i;
  }
  // Two copies of one picture, and two copies of one text.
  std::ofstream(base + "/share/photos/copy-of-img3.png", std::ios::binary) << "\x89PNG\r\n\x1A\n" << 3;
  std::ofstream(base + "/share/notes.txt") << "minutes of the meeting";
  std::ofstream(base + "/share/notes-copy.txt") << "minutes of the meeting";
  std::ofstream(base + "/share/empty.txt");
  std::ofstream(base + "/share/empty2.txt");

  auto open = [&](const std::string& name) {
    EngineOptions eo;
    eo.data_dir = base + "/" + name;
    eo.progress = false;
    eo.remote.enabled = true;
    eo.remote.client.url = g_url;
    eo.remote.index = "t-fleet";
    return Engine::Open(eo);
  };
  {
    auto a = open("machine-a");
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    auto indexed = (*a)->Index(base + "/share");
    ASSERT_TRUE(indexed.ok()) << indexed.status().ToString();
    EXPECT_EQ(indexed->remote.indexed, 12u);
  }
  HttpJson("POST", "/t-fleet/_refresh");
  const json no_vector = {{"query", {{"bool", {{"filter", {{{"term", {{"mime_family", "image"}}}}}},
                                                {"must_not", {{{"term", {{"has_image_embedding", true}}}}}}}}}}};
  EXPECT_EQ(HttpJson("POST", "/t-fleet/_count", no_vector)["count"], 8);

  auto b = open("machine-b");
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  ASSERT_TRUE((*b)->SetEmbedder(NewHashEmbedder(4)).ok());
  BackfillOptions bo;
  bo.progress = false;
  bo.limit = 3;
  auto first = (*b)->Backfill(bo);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->index_embedded, 3u);
  EXPECT_EQ(first->processed, 3u);
  EXPECT_TRUE(first->failures.empty());
  HttpJson("POST", "/t-fleet/_refresh");
  EXPECT_EQ(HttpJson("POST", "/t-fleet/_count", no_vector)["count"], 5) << "a stopped backfill left the rest";
  bo.limit = 0;
  auto rest = (*b)->Backfill(bo);
  ASSERT_TRUE(rest.ok()) << rest.status().ToString();
  EXPECT_EQ(rest->index_embedded, 5u);
  EXPECT_EQ(rest->index_not_here, 0u);
  HttpJson("POST", "/t-fleet/_refresh");
  EXPECT_EQ(HttpJson("POST", "/t-fleet/_count", no_vector)["count"], 0);
  auto again = (*b)->Backfill(bo);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->index_candidates, 0u) << "nothing is embedded twice";
  EXPECT_EQ(again->index_embedded, 0u);
  // The updates kept every other field, and the vectors are B's model's: a vector search finds
  // each picture first by its own vector.
  const json img5 = HttpJson("POST", "/t-fleet/_search", {{"query", {{"term", {{"name.keyword", "img5.png"}}}}}});
  ASSERT_EQ(img5["hits"]["hits"].size(), 1u);
  const json& source = img5["hits"]["hits"][0]["_source"];
  EXPECT_EQ(source["embedding_model"], "test/hash-4");
  EXPECT_EQ(source["mime"], "image/png");
  EXPECT_FALSE(source["path"].get<std::string>().empty());
  std::vector<float> own;
  for (const json& x : source["image_embedding"]) own.push_back(x.get<float>());
  SearchRequest v;
  v.vector = own;
  v.vector_model = "test/hash-4";
  v.size = 3;
  auto found = (*b)->Search(v);
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  ASSERT_FALSE(found->hits.empty());
  EXPECT_EQ(found->hits[0].doc.name, "img5.png");

  // Counts of the whole index from B, whose own journal is empty.
  auto counts = (*b)->CountIndex();
  ASSERT_TRUE(counts.ok()) << counts.status().ToString();
  EXPECT_EQ(counts->documents, 12u);
  ASSERT_EQ(counts->vectors_by_model.size(), 1u);
  EXPECT_EQ(counts->vectors_by_model[0], (std::pair<std::string, uint64_t>("test/hash-4", 8)));
  EXPECT_EQ((*b)->store()->Stats().value().documents, 0u);

  // Duplicates from the index: the two exact groups (empty files left out), ids as the index
  // knows them; the two copies of img3 are exact, never a near pair.
  DuplicateOptions d;
  d.progress = false;
  d.min_cosine = 0.9999f;
  auto dups = (*b)->FindDuplicates(d);
  ASSERT_TRUE(dups.ok()) << dups.status().ToString();
  ASSERT_EQ(dups->exact.size(), 2u);
  std::set<std::set<int64_t>> groups;
  for (const auto& g : dups->exact) groups.insert(std::set<int64_t>(g.begin(), g.end()));
  auto id_of = [&](const std::string& rel) { return opensearch::StableDocId("file://" + std::filesystem::canonical(base + "/share/" + rel).string()); };
  EXPECT_TRUE(groups.count({id_of("photos/img3.png"), id_of("photos/copy-of-img3.png")}));
  EXPECT_TRUE(groups.count({id_of("notes.txt"), id_of("notes-copy.txt")}));
  EXPECT_EQ(dups->model, "test/hash-4");
  for (const NearDuplicate& n : dups->near) {
    EXPECT_FALSE(n.a == std::min(id_of("photos/img3.png"), id_of("photos/copy-of-img3.png")) &&
                 n.b == std::max(id_of("photos/img3.png"), id_of("photos/copy-of-img3.png")));
  }
  b->reset();
  std::filesystem::remove_all(base);
}

// A node of a failure test's own (tests/opensearch/node in a directory of its own, on a fixed
// port so a restart keeps its url): the test kills, restarts or loads it without disturbing the
// shared node. Stopped and its data deleted at the end.
class OwnNode {
 public:
  explicit OwnNode(const std::string& name)
      : dir_(::testing::TempDir() + "opensearch_own_" + name + "_" + std::to_string(::getpid())),
        port_(testing::FreePort()) {}
  ~OwnNode() { Node("stop"); }
  // start [--keep-data] [--setting k=v]...: true when it is up (green).
  bool Start(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"--port", std::to_string(port_)};
    args.insert(args.end(), extra.begin(), extra.end());
    return Node("start", args) == 0;
  }
  void Kill() { Node("kill"); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  int Node(const std::string& command, const std::vector<std::string>& args = {}) {
    // The launcher the shared node compiled, not one more Maven build per node.
    const char* shared = std::getenv("FILESEARCH_OPENSEARCH_NODE_DIR");
    std::vector<std::string> argv = {"/usr/bin/env", "FILESEARCH_NODE_LAUNCHER=" + std::string(shared ? shared : dir_.c_str()) + "/launcher",
                                     FILESEARCH_NODE_SCRIPT, command, dir_};
    argv.insert(argv.end(), args.begin(), args.end());
    const pid_t pid = testing::Spawn(argv, dir_ + ".log");
    int status = 0;
    if (pid <= 0 || ::waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
    return WEXITSTATUS(status);
  }
  std::string dir_;
  int port_;
};

// Requests to a node by url (these tests' own nodes).
json NodeJson(const std::string& url, const std::string& method, const std::string& path, const json& body = nullptr) {
  OpenSearchOptions options;
  options.url = url;
  auto client = OpenSearchClient::Create(options);
  if (!client.ok()) return json();
  OpenSearchRequest request;
  request.method = method;
  request.path = path;
  request.read_only_post = true;
  if (!body.is_null()) request.body = body.dump();
  auto reply = (*client)->Send(request);
  return reply.ok() ? json::parse(reply->body, nullptr, false) : json();
}

uint64_t CountOf(const std::string& url, const std::string& index) {
  const json count = NodeJson(url, "GET", "/" + index + "/_count");
  return count.is_object() && count.contains("count") ? count["count"].get<uint64_t>() : 0;
}

// `filesearch index DIR` into INDEX of the node at URL, in the background.
pid_t StartIndexing(const std::string& data, const std::string& dir, const std::string& url, const std::string& index,
                    const std::string& log, int bulk_docs) {
  return testing::Spawn({FILESEARCH_BINARY, "--data-dir", data, "--no-progress", "index", dir, "--backend", "opensearch",
                         "--opensearch-url", url, "--opensearch-index", index, "--opensearch-bulk-docs",
                         std::to_string(bulk_docs)},
                        log);
}

int WaitExit(pid_t pid) {
  int status = 0;
  if (pid <= 0 || ::waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

// The node is killed (SIGKILL) while `filesearch index` is sending its documents through _bulk,
// and started again on its data: the run says how many changes wait and exits 1; the next run sends
// them; every file ends up in the index exactly once.
TEST_F(OpenSearchTest, NodeKilledMidIngestAndRestartedLosesNothing) {
  OwnNode node("crash");
  ASSERT_TRUE(node.Start()) << "could not start a node of this test's own";
  const std::string index = "t-crash";
  ASSERT_EQ(RunCli({"opensearch", "setup", "--opensearch-url", node.url(), "--opensearch-index", index, "--engine",
                    "lucene", "--dimension", "4"}).rc, 0);
  NodeJson(node.url(), "PUT", "/" + index + "/_settings", {{"index", {{"refresh_interval", "100ms"}}}});
  const std::string base = ::testing::TempDir() + "opensearch_crash_" + std::to_string(::getpid());
  std::filesystem::remove_all(base);
  constexpr int kFiles = 3000;
  for (int i = 0; i < kFiles; ++i) {
    const std::string sub = base + "/share/d" + std::to_string(i / 100);
    if (i % 100 == 0) std::filesystem::create_directories(sub);
    std::ofstream(sub + "/note" + std::to_string(i) + ".txt") << "note number " << i;
  }
  const std::string log = base + "/index1.log";
  const pid_t run = StartIndexing(base + "/data", base + "/share", node.url(), index, log, 10);
  ASSERT_GT(run, 0);
  // Kill the node once some batches landed, while the run is still sending.
  bool killed = false;
  for (int i = 0; i < 1200 && !killed; ++i) {
    int status = 0;
    if (::waitpid(run, &status, WNOHANG) == run) {
      FAIL() << "the run finished before the node was killed: more files are needed\n" << ReadFile(log);
    }
    if (CountOf(node.url(), index) >= 100) {
      node.Kill();
      killed = true;
    } else {
      ::usleep(25 * 1000);
    }
  }
  ASSERT_TRUE(killed) << "no batch reached the node in 30 s";
  EXPECT_EQ(WaitExit(run), 1) << ReadFile(log);
  const std::string first = ReadFile(log);
  EXPECT_NE(first.find("changes wait for OpenSearch"), std::string::npos) << first;
  EXPECT_NE(first.find(node.url()), std::string::npos) << "the error names the node: " << first;

  ASSERT_TRUE(node.Start({"--keep-data"})) << "the node did not restart on its data";
  const uint64_t survived = CountOf(node.url(), index);
  EXPECT_GE(survived, 100u) << "acknowledged batches survive the crash";
  EXPECT_LT(survived, uint64_t{kFiles});
  const std::string log2 = base + "/index2.log";
  EXPECT_EQ(WaitExit(StartIndexing(base + "/data", base + "/share", node.url(), index, log2, 500)), 0) << ReadFile(log2);
  NodeJson(node.url(), "POST", "/" + index + "/_refresh");
  EXPECT_EQ(CountOf(node.url(), index), uint64_t{kFiles});
  // No uri twice (a terms aggregation of the uris held by two or more documents finds none).
  const json twice = NodeJson(node.url(), "POST", "/" + index + "/_search",
                              {{"size", 0}, {"aggs", {{"uris", {{"terms", {{"field", "uri"}, {"min_doc_count", 2}, {"size", 10}}}}}}}});
  ASSERT_TRUE(twice["aggregations"]["uris"]["buckets"].is_array()) << twice.dump();
  EXPECT_TRUE(twice["aggregations"]["uris"]["buckets"].empty()) << "every file exactly once: " << twice.dump();
  std::filesystem::remove_all(base);
}

// A burst the node cannot take: one write thread and a write queue of one, three `filesearch index`
// runs at once. The node turns whole shard batches away with 429 inside its _bulk replies; the
// items go again after a backoff, and every document lands, none on the failure list.
TEST_F(OpenSearchTest, A429BurstIsRetriedAndEverythingLands) {
  OwnNode node("burst");
  ASSERT_TRUE(node.Start({"--setting", "thread_pool.write.size=1", "--setting", "thread_pool.write.queue_size=1"}));
  const std::string index = "t-burst";
  ASSERT_EQ(RunCli({"opensearch", "setup", "--opensearch-url", node.url(), "--opensearch-index", index, "--engine",
                    "lucene", "--dimension", "4"}).rc, 0);
  const std::string base = ::testing::TempDir() + "opensearch_burst_" + std::to_string(::getpid());
  std::filesystem::remove_all(base);
  constexpr int kRuns = 3, kFilesEach = 300;
  std::vector<pid_t> runs;
  for (int r = 0; r < kRuns; ++r) {
    const std::string share = base + "/share" + std::to_string(r);
    std::filesystem::create_directories(share);
    for (int i = 0; i < kFilesEach; ++i) std::ofstream(share + "/f" + std::to_string(i) + ".txt") << "run " << r << " file " << i;
  }
  for (int r = 0; r < kRuns; ++r) {
    const std::string n = std::to_string(r);
    runs.push_back(StartIndexing(base + "/data" + n, base + "/share" + n, node.url(), index, base + "/run" + n + ".log", 5));
  }
  std::string said;
  for (int r = 0; r < kRuns; ++r) {
    const std::string out = ReadFile(base + "/run" + std::to_string(r) + ".log");
    EXPECT_EQ(WaitExit(runs[r]), 0) << out;
    said += ReadFile(base + "/run" + std::to_string(r) + ".log");
  }
  const json stats = NodeJson(node.url(), "GET", "/_nodes/stats/thread_pool");
  uint64_t rejected = 0;
  if (stats.is_object() && stats.contains("nodes")) {
    for (const auto& [id, n] : stats["nodes"].items()) rejected += n["thread_pool"]["write"].value("rejected", uint64_t{0});
  }
  ASSERT_GT(rejected, 0u) << "the burst never met a full write queue: this test checked nothing";
  EXPECT_NE(said.find("sent again after the node turned them away"), std::string::npos) << said;
  NodeJson(node.url(), "POST", "/" + index + "/_refresh");
  EXPECT_EQ(CountOf(node.url(), index), uint64_t{kRuns * kFilesEach});
  for (int r = 0; r < kRuns; ++r) {
    const CliRun failures = RunCli({"--data-dir", base + "/data" + std::to_string(r), "failures"});
    EXPECT_EQ(failures.output.find("mirror"), std::string::npos) << failures.output;
  }
  std::filesystem::remove_all(base);
}

// The same binary with --backend opensearch: `index` writes through _bulk, `search` and `serve`
// answer from the node, /documents/{id} and similarTo work on its ids.
TEST_F(OpenSearchTest, IndexSearchAndServeWithTheOpenSearchBackEnd) {
  ASSERT_EQ(Os("setup", "t-cli", {"--engine", "lucene", "--dimension", "64"}).rc, 0);
  const std::string base = ::testing::TempDir() + "opensearch_cli_" + std::to_string(::getpid());
  std::filesystem::remove_all(base);
  std::filesystem::create_directories(base + "/share");
  std::ofstream(base + "/share/invoice-march.txt") << "invoice for March";
  std::ofstream(base + "/share/notes.txt") << "meeting notes";
  for (int i = 0; i < 4; ++i) {
    std::ofstream(base + "/share/photo" + std::to_string(i) + ".png", std::ios::binary) << "\x89PNG\r\n\x1A\n" << i;
  }
  const std::vector<std::string> backend = {"--backend", "opensearch", "--opensearch-url", g_url,
                                            "--opensearch-index", "t-cli", "--data-dir", base + "/data", "--no-progress"};
  auto with = [&backend](std::vector<std::string> args) {
    args.insert(args.end(), backend.begin(), backend.end());
    return args;
  };
  CliRun indexed = RunCli(with({"index", base + "/share", "--test-embedder"}));
  ASSERT_EQ(indexed.rc, 0) << indexed.output;
  EXPECT_NE(indexed.output.find("opensearch t-cli: 6 documents written"), std::string::npos) << indexed.output;
  HttpJson("POST", "/t-cli/_refresh");
  EXPECT_EQ(HttpJson("GET", "/t-cli/_count")["count"], 6);
  CliRun found = RunCli(with({"search", "invoice", "--mode", "text", "--json"}));
  ASSERT_EQ(found.rc, 0) << found.output;
  const json hits = json::parse(found.output.substr(found.output.find('{')), nullptr, false);
  ASSERT_TRUE(hits.is_object()) << found.output;
  ASSERT_EQ(hits["hits"].size(), 1u) << found.output;
  EXPECT_EQ(hits["hits"][0]["name"], "invoice-march.txt");
  // Without --backend the local store answers the same words.
  EXPECT_EQ(RunCli({"search", "invoice", "--mode", "text", "--data-dir", base + "/data"}).rc, 0);

  // serve: the HTTP API on the node's index.
  const int port = testing::FreePort();
  std::vector<std::string> serve = with({"serve", "--no-auth", "--test-embedder", "--port", std::to_string(port)});
  serve.insert(serve.begin(), FILESEARCH_BINARY);
  const pid_t server = testing::Spawn(serve, base + "/serve.log");
  ASSERT_GT(server, 0);
  OpenSearchOptions api;
  api.url = "http://127.0.0.1:" + std::to_string(port);
  auto http = OpenSearchClient::Create(api);  // a plain HTTP client for the API (no auth)
  ASSERT_TRUE(http.ok());
  auto get = [&](const std::string& path) {
    OpenSearchRequest r;
    r.path = path.substr(0, path.find('?'));
    if (path.find('?') != std::string::npos) {
      std::stringstream query(path.substr(path.find('?') + 1));
      for (std::string pair; std::getline(query, pair, '&');) {
        r.query.emplace_back(pair.substr(0, pair.find('=')), pair.substr(pair.find('=') + 1));
      }
    }
    auto reply = (*http)->Send(r);
    return reply.ok() ? *reply : OpenSearchReply{};
  };
  for (int i = 0; i < 500 && get("/healthz").status != 200; ++i) usleep(20000);
  const OpenSearchReply text = get("/search?q=invoice&mode=text");
  ASSERT_EQ(text.status, 200) << text.body << ReadFile(base + "/serve.log");
  const json page = json::parse(text.body);
  ASSERT_EQ(page["hits"].size(), 1u);
  const int64_t id = page["hits"][0]["id"];
  const OpenSearchReply doc = get("/documents/" + std::to_string(id));
  ASSERT_EQ(doc.status, 200) << doc.body;
  EXPECT_EQ(json::parse(doc.body)["name"], "invoice-march.txt");
  const OpenSearchReply content = get("/documents/" + std::to_string(id) + "/content");
  EXPECT_EQ(content.status, 200);
  EXPECT_EQ(content.body, "invoice for March");
  // Find similar on a photo: the other three photos, never itself.
  const json photos = json::parse(get("/search?q=photo0&mode=text").body);
  ASSERT_EQ(photos["hits"].size(), 1u);
  const int64_t photo = photos["hits"][0]["id"];
  const OpenSearchReply similar = get("/search?similarTo=" + std::to_string(photo) + "&mode=vector");
  ASSERT_EQ(similar.status, 200) << similar.body;
  const json near = json::parse(similar.body);
  EXPECT_EQ(near["hits"].size(), 3u) << similar.body;
  for (const json& h : near["hits"]) EXPECT_NE(h["id"], photo);
  ::kill(server, SIGTERM);
  int status = 0;
  ::waitpid(server, &status, 0);
  std::filesystem::remove_all(base);
}

// `migrate --to opensearch`: an embedded index, vectors included, copied without re-embedding;
// a second run has nothing left to send.
TEST_F(OpenSearchTest, MigrateCopiesAnEmbeddedIndex) {
  ASSERT_EQ(Os("setup", "t-migrate", {"--engine", "lucene", "--dimension", "64"}).rc, 0);
  const std::string base = ::testing::TempDir() + "opensearch_migrate_" + std::to_string(::getpid());
  std::filesystem::remove_all(base);
  std::filesystem::create_directories(base + "/share");
  for (int i = 0; i < 5; ++i) std::ofstream(base + "/share/doc" + std::to_string(i) + ".txt") << "text " << i;
  for (int i = 0; i < 3; ++i) {
    std::ofstream(base + "/share/pic" + std::to_string(i) + ".png", std::ios::binary) << "\x89PNG\r\n\x1A\n" << i;
  }
  const std::string data = base + "/data";
  ASSERT_EQ(RunCli({"index", base + "/share", "--test-embedder", "--data-dir", data, "--no-progress"}).rc, 0);
  const std::vector<std::string> migrate = {"migrate", "--to", "opensearch", "--opensearch-url", g_url,
                                            "--opensearch-index", "t-migrate", "--data-dir", data, "--no-progress"};
  CliRun first = RunCli(migrate);
  ASSERT_EQ(first.rc, 0) << first.output;
  EXPECT_NE(first.output.find("migrated: 8 documents written"), std::string::npos) << first.output;
  HttpJson("POST", "/t-migrate/_refresh");
  EXPECT_EQ(HttpJson("GET", "/t-migrate/_count")["count"], 8);
  EXPECT_EQ(HttpJson("POST", "/t-migrate/_count", {{"query", {{"term", {{"has_image_embedding", true}}}}}})["count"], 3);
  CliRun again = RunCli(migrate);
  ASSERT_EQ(again.rc, 0) << again.output;
  EXPECT_NE(again.output.find("migrated: 0 documents written"), std::string::npos) << again.output;
  EXPECT_NE(RunCli({"migrate", "--to", "opensearch", "--data-dir", data}).rc, 0) << "no url: refused";
  std::filesystem::remove_all(base);
}

}  // namespace
}  // namespace fs

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const char* dir = std::getenv("FILESEARCH_OPENSEARCH_NODE_DIR");
  if (dir == nullptr) {
    std::cout << "SKIP: FILESEARCH_OPENSEARCH_NODE_DIR is not set (run through ctest, or tests/opensearch/node start DIR)\n";
    return 77;
  }
  const std::string unavailable = fs::ReadFile(std::string(dir) + "/unavailable");
  if (!unavailable.empty()) {
    std::cout << "SKIP: the OpenSearch test node is unavailable: " << unavailable;
    return 77;
  }
  fs::g_url = fs::ReadFile(std::string(dir) + "/url");
  while (!fs::g_url.empty() && (fs::g_url.back() == '\n' || fs::g_url.back() == ' ')) fs::g_url.pop_back();
  if (fs::g_url.empty()) {
    std::cout << "SKIP: no OpenSearch test node running in " << dir << " (tests/opensearch/node start " << dir << ")\n";
    return 77;
  }
  return RUN_ALL_TESTS();
}
