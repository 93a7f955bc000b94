// The OpenSearch translation, without a node: stable ids, score-to-cosine against the formulas of
// OpenSearch's k-NN spaces, filter clauses, query bodies, reply parsing and _bulk lines. The same
// functions run against a real node in the OpenSearch back end's tests.
#include "index/opensearch_query.h"

#include <cmath>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace fs::opensearch {
namespace {

using Json = nlohmann::json;

TEST(OpenSearchQueryTest, StableIdsArePositiveAndDependOnTheUriOnly) {
  const int64_t a = StableDocId("file:///srv/share/a.png");
  EXPECT_GT(a, 0);
  EXPECT_EQ(a, StableDocId("file:///srv/share/a.png"));
  EXPECT_NE(a, StableDocId("file:///srv/share/b.png"));
  // SHA-256("") starts e3b0c44298fc1c14: its first 63 bits.
  EXPECT_EQ(StableDocId(""), static_cast<int64_t>(0xe3b0c44298fc1c14ull & 0x7fffffffffffffffull));
}

TEST(OpenSearchQueryTest, ScoresMapBackToCosines) {
  // The forward formulas of docs.opensearch.org "Spaces": innerproduct score = 1 + cos (cos > 0),
  // 1 / (1 - cos) otherwise; cosinesimil score = (2 - (1 - cos)) / 2.
  for (double cos : {-0.9, -0.5, -0.01, 0.0, 0.01, 0.3, 0.8, 1.0}) {
    const double ip = cos > 0 ? 1 + cos : 1 / (1 - cos);
    EXPECT_NEAR(CosineFromScore(ip, Space::kInnerProduct), cos, 1e-12) << cos;
    const double cs = (2 - (1 - cos)) / 2;
    EXPECT_NEAR(CosineFromScore(cs, Space::kCosine), cos, 1e-12) << cos;
  }
}

TEST(OpenSearchQueryTest, FiltersBecomeClauses) {
  SearchFilters f;
  f.types = {"image", "text/plain"};
  f.extensions = {"jpg", "png"};
  f.path_prefix = "/srv/share/finance/";
  f.min_size = 10;
  f.max_mtime_ns = 5;
  f.min_taken_ns = 7;
  Json c = Json::parse(FilterClauses(f));
  ASSERT_EQ(c.size(), 6u);
  EXPECT_EQ(c[0]["bool"]["should"][0]["term"]["mime_family"], "image");
  EXPECT_EQ(c[0]["bool"]["should"][1]["term"]["mime"], "text/plain");
  EXPECT_EQ(c[1]["terms"]["extension"], Json({"jpg", "png"}));
  EXPECT_EQ(c[2]["prefix"]["path"], "/srv/share/finance/");
  EXPECT_EQ(c[3]["range"]["size"]["gte"], 10);
  EXPECT_FALSE(c[3]["range"]["size"].contains("lte"));
  EXPECT_EQ(c[4]["range"]["mtime_ns"]["lte"], 5);
  EXPECT_EQ(c[5]["range"]["taken_ns"]["gte"], 7);
  EXPECT_EQ(Json::parse(FilterClauses({})), Json::array());
}

TEST(OpenSearchQueryTest, KeywordAndKnnBodies) {
  SearchFilters f;
  f.extensions = {"pdf"};
  Json k = Json::parse(KeywordQueryBody("quarterly  report", f, 20, 11, std::nullopt));
  ASSERT_EQ(k["query"]["bool"]["must"].size(), 2u);
  const Json& second = k["query"]["bool"]["must"][1]["bool"];
  EXPECT_EQ(second["should"][0]["multi_match"]["query"], "report");
  EXPECT_EQ(second["minimum_should_match"], 1);
  const Json& words = k["query"]["bool"]["must"][0]["bool"]["should"][0]["multi_match"];
  EXPECT_EQ(words["type"], "phrase");
  EXPECT_EQ(words["fields"], Json({"name^10", "path.text^4", "content"}));
  const Json& parts = k["query"]["bool"]["must"][0]["bool"]["should"][1]["multi_match"];
  EXPECT_EQ(parts["query"], "quarterly");
  EXPECT_EQ(parts["fields"], Json({"name.parts^5", "path.parts^2"}));
  EXPECT_EQ(k["query"]["bool"]["filter"][0]["terms"]["extension"], Json({"pdf"}));
  EXPECT_EQ(k["from"], 20);
  EXPECT_EQ(k["size"], 11);
  EXPECT_EQ(k["track_total_hits"], true);
  Json after = Json::parse(KeywordQueryBody("x", {}, 20, 5, KeywordAfter{3.5, 42}));
  EXPECT_FALSE(after.contains("from")) << "keyset paging replaces the offset";
  EXPECT_EQ(after["search_after"], Json({3.5, 42}));

  const std::vector<float> v = {0.5f, -0.25f};
  Json n = Json::parse(KnnQueryBody(v, "openai/clip-vit-base-patch32", 30, f, 512));
  const Json& knn = n["query"]["knn"]["image_embedding"];
  EXPECT_EQ(knn["k"], 30);
  EXPECT_EQ(n["size"], 30);
  EXPECT_EQ(knn["vector"], Json({0.5, -0.25}));
  EXPECT_EQ(knn["method_parameters"]["ef_search"], 512);
  const Json& clauses = knn["filter"]["bool"]["filter"];
  EXPECT_EQ(clauses[0]["terms"]["extension"], Json({"pdf"})) << "filters inside the k-NN search";
  EXPECT_EQ(clauses[1]["term"]["embedding_model"], "openai/clip-vit-base-patch32") << "never mix models";
  EXPECT_FALSE(Json::parse(KnnQueryBody(v, "m", 3, {}, 0))["query"]["knn"]["image_embedding"].contains("method_parameters"));
}

TEST(OpenSearchQueryTest, RepliesParse) {
  const std::string reply =
      R"({"took":3,"hits":{"total":{"value":7,"relation":"eq"},"hits":[)"
      R"({"_id":"11","_score":1.8,"_source":{"doc_id":11}},{"_id":"12","_score":0.8,"_source":{"doc_id":12}}]}})";
  auto page = ParseKeywordReply(reply);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_EQ(page->total, 7u);
  ASSERT_EQ(page->hits.size(), 2u);
  EXPECT_EQ(page->hits[1].id, 12);
  auto knn = ParseKnnReply(reply, Space::kInnerProduct);
  ASSERT_TRUE(knn.ok());
  EXPECT_NEAR((*knn)[0].score, 0.8, 1e-6);    // 1 + cos = 1.8
  EXPECT_NEAR((*knn)[1].score, -0.25, 1e-6);  // 1 / (1 - cos) = 0.8
  EXPECT_FALSE(ParseKeywordReply("not json").ok());
  auto refused = ParseKeywordReply(R"({"error":{"type":"x","reason":"no such index [cis-files]"},"status":404})");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("no such index"), std::string::npos);
  EXPECT_FALSE(ParseKeywordReply(R"({"hits":{"hits":[{"_score":1}]}})").ok()) << "a hit without doc_id";
}

TEST(OpenSearchQueryTest, DocumentsRoundTripThroughTheirSource) {
  Document d;
  d.uri = "file:///srv/share/2024%E5%B9%B4.pdf";
  d.path = "/srv/share/2024年請求書.pdf";
  d.name = "2024年請求書.pdf";
  d.ext = "pdf";
  d.mime = "application/pdf";
  d.size = 1234;
  d.mtime_ns = 1700000000123456789;
  d.sha256 = std::string(64, 'a');
  d.content = "請求書 invoice";
  d.taken_ns = 1600000000000000000;
  d.camera = "Canon";
  d.gps_lat = 35.5;
  d.gps_lon = 139.25;
  d.title = "請求書 2024";
  d.author = "経理部";
  d.created_ns = 1500000000000000000;
  d.saved_ns = 1500000600000000000;
  const std::vector<float> v = {0.6f, 0.8f};
  const std::string lines = BulkIndexLines("cis-files", d, d.mtime_ns, v, "m");
  const size_t nl = lines.find('\n');
  Json action = Json::parse(lines.substr(0, nl));
  EXPECT_EQ(action["index"]["_id"], std::to_string(StableDocId(d.uri)));
  EXPECT_EQ(action["index"]["version"], d.mtime_ns);
  EXPECT_EQ(action["index"]["version_type"], "external_gte");
  Json source = Json::parse(lines.substr(nl + 1));
  EXPECT_EQ(source["has_image_embedding"], true);
  EXPECT_EQ(source["embedding_model"], "m");
  EXPECT_EQ(source["mime_family"], "application");
  EXPECT_EQ(source["content"], d.content);
  const std::string reply = R"({"hits":{"hits":[{"_source":)" + source.dump() + "}]}}";
  auto docs = ParseDocuments(reply);
  ASSERT_TRUE(docs.ok()) << docs.status().ToString();
  ASSERT_EQ(docs->size(), 1u);
  const Document& back = (*docs)[0];
  EXPECT_EQ(back.id, StableDocId(d.uri));
  EXPECT_EQ(back.path, d.path);
  EXPECT_EQ(back.mtime_ns, d.mtime_ns);
  EXPECT_EQ(back.taken_ns, d.taken_ns);
  EXPECT_EQ(back.gps_lon, d.gps_lon);
  EXPECT_EQ(back.title, d.title);
  EXPECT_EQ(back.author, d.author);
  EXPECT_EQ(back.created_ns, d.created_ns);
  EXPECT_EQ(back.saved_ns, d.saved_ns);
  EXPECT_TRUE(back.content.empty()) << "search hits carry metadata, not the text";
  EXPECT_EQ(Json::parse(DocumentSource(d))["has_image_embedding"], false);
  EXPECT_EQ(Json::parse(BulkDeleteLines("cis-files", 5))["delete"]["_id"], "5");
}

}  // namespace
}  // namespace fs::opensearch
