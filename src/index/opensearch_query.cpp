// Translation between filesearch's documents and queries and OpenSearch's JSON. See the header
// for the document fields; docs/opensearch.md for the mapping that holds them.
#include "index/opensearch_query.h"

#include <cmath>
#include <cstring>
#include <functional>

#include <nlohmann/json.hpp>

#include "core/hash.h"

namespace fs::opensearch {
namespace {

using Json = nlohmann::json;

std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

// The words of a keyword query, split on whitespace (the embedded store ANDs them the same way).
std::vector<std::string> Words(std::string_view query) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < query.size()) {
    while (i < query.size() && std::strchr(" \t\r\n", query[i])) ++i;
    size_t start = i;
    while (i < query.size() && !std::strchr(" \t\r\n", query[i])) ++i;
    if (i > start) out.emplace_back(query.substr(start, i - start));
  }
  return out;
}

Json Filters(const SearchFilters& f) {
  Json clauses = Json::array();
  if (!f.types.empty()) {
    Json any = Json::array();
    for (const auto& t : f.types) {
      if (t.find('/') == std::string::npos) any.push_back({{"term", {{"mime_family", t}}}});
      else any.push_back({{"term", {{"mime", t}}}});
    }
    clauses.push_back({{"bool", {{"should", any}, {"minimum_should_match", 1}}}});
  }
  if (!f.extensions.empty()) clauses.push_back({{"terms", {{"extension", f.extensions}}}});
  if (!f.path_prefix.empty()) clauses.push_back({{"prefix", {{"path", f.path_prefix}}}});
  auto range = [&clauses](const char* field, auto lo, auto hi) {
    if (!lo && !hi) return;
    Json r = Json::object();
    if (lo) r["gte"] = *lo;
    if (hi) r["lte"] = *hi;
    clauses.push_back({{"range", {{field, r}}}});
  };
  range("size", f.min_size, f.max_size);
  range("mtime_ns", f.min_mtime_ns, f.max_mtime_ns);
  range("taken_ns", f.min_taken_ns, f.max_taken_ns);
  return clauses;
}

// A parsed search reply (or one response of an _msearch): OpenSearch's error, or hits.
Result<Json> CheckedReply(Json j) {
  if (!j.is_object()) return Status::IOError("OpenSearch sent a reply that is not a JSON object");
  if (j.contains("error")) {
    const Json& e = j["error"];
    std::string reason = e.is_object() ? e.value("reason", e.value("type", Dump(e))) : Dump(e);
    return Status::IOError("OpenSearch refused the search: " + reason);
  }
  if (!j.contains("hits") || !j["hits"].is_object() || !j["hits"].contains("hits") || !j["hits"]["hits"].is_array()) {
    return Status::IOError("OpenSearch sent a search reply without hits");
  }
  return j;
}

Result<Json> ParseBody(std::string_view body) {
  Json j = Json::parse(body, nullptr, false);
  if (j.is_discarded()) return Status::IOError("OpenSearch sent a reply that is not a JSON object");
  return CheckedReply(std::move(j));
}

std::optional<int64_t> DocIdOf(const Json& hit) {
  if (hit.contains("_source") && hit["_source"].is_object() && hit["_source"].contains("doc_id") &&
      hit["_source"]["doc_id"].is_number_integer()) {
    return hit["_source"]["doc_id"].get<int64_t>();
  }
  return std::nullopt;
}

}  // namespace

int64_t StableDocId(std::string_view uri) {
  const std::string hex = Sha256Hex(uri);  // the first 16 hex digits are the first 64 bits
  uint64_t v = std::stoull(hex.substr(0, 16), nullptr, 16);
  v &= 0x7fffffffffffffffull;
  return v == 0 ? 1 : static_cast<int64_t>(v);
}

double CosineFromScore(double score, Space space) {
  if (space == Space::kCosine) return 2.0 * score - 1.0;
  if (score > 1.0) return score - 1.0;
  return score > 0 ? 1.0 - 1.0 / score : -1.0;
}

std::string FilterClauses(const SearchFilters& filters) { return Dump(Filters(filters)); }

// What a leg's hits carry: their doc_id, or every field a result page shows (all but the text and
// the vector).
Json SourceFilter(bool with_docs) {
  if (with_docs) return {{"excludes", {"content", "image_embedding"}}};
  return Json::array({"doc_id"});
}

namespace {

// The keyword leg's query: each word whole (and its English forms) in name, path and content, or
// as parts of words in name and path (name.parts, path.parts: opensearch_setup.cpp) at half the
// weight, so that a part-only match ranks below a whole-word one, which matches both.
Json KeywordQuery(std::string_view query, const SearchFilters& filters) {
  Json must = Json::array();
  for (const auto& w : Words(query)) {
    Json words = {{"multi_match", {{"query", w}, {"type", "phrase"}, {"fields", {"name^10", "path.text^4", "content"}}}}};
    Json parts = {{"multi_match", {{"query", w}, {"type", "phrase"}, {"fields", {"name.parts^5", "path.parts^2"}}}}};
    must.push_back({{"bool", {{"should", Json::array({words, parts})}, {"minimum_should_match", 1}}}});
  }
  return {{"bool", {{"must", must}, {"filter", Filters(filters)}}}};
}

// The vector leg's query: knn on image_embedding with the filters and the model inside the k-NN
// search; `min_score` (a radial search) instead of k when set.
Json KnnQuery(std::span<const float> vector, const std::string& model, size_t k, const SearchFilters& filters,
              size_t ef, std::optional<double> min_score = std::nullopt) {
  Json clauses = Filters(filters);
  clauses.push_back({{"term", {{"embedding_model", model}}}});
  Json knn = {{"vector", std::vector<float>(vector.begin(), vector.end())},
              {"filter", {{"bool", {{"filter", clauses}}}}}};
  if (min_score) knn["min_score"] = *min_score;
  else knn["k"] = k;
  if (ef > 0) knn["method_parameters"] = {{"ef_search", ef}};
  return {{"knn", {{"image_embedding", knn}}}};
}

}  // namespace

std::string KeywordQueryBody(std::string_view query, const SearchFilters& filters, size_t offset, size_t limit,
                             const std::optional<KeywordAfter>& after, bool with_docs) {
  Json body = {{"size", limit},
               {"track_total_hits", true},
               {"_source", SourceFilter(with_docs)},
               {"query", KeywordQuery(query, filters)},
               {"sort", Json::array({{{"_score", "desc"}}, {{"doc_id", "asc"}}})}};
  if (after) body["search_after"] = Json::array({after->score, after->id});
  else if (offset > 0) body["from"] = offset;
  return Dump(body);
}

std::string KnnQueryBody(std::span<const float> vector, const std::string& model, size_t k,
                         const SearchFilters& filters, size_t ef, size_t size, bool with_docs) {
  Json body = {{"size", size == 0 || size > k ? k : size},
               {"_source", SourceFilter(with_docs)},
               {"query", KnnQuery(vector, model, k, filters, ef)}};
  // The count of hits the k-NN search found (at most k), also when fewer are sent.
  if (size != 0 && size < k) body["track_total_hits"] = true;
  return Dump(body);
}

double ScoreFromCosine(double cosine, Space space) {
  if (space == Space::kCosine) return (1.0 + cosine) / 2.0;
  return cosine > 0 ? 1.0 + cosine : 1.0 / (1.0 - cosine);
}

std::string HybridQueryBody(const HybridQuery& h) {
  Json processor;
  if (h.rrf) {
    processor = {{"score-ranker-processor", {{"combination", {{"technique", "rrf"}, {"rank_constant", h.rrf_k}}}}}};
  } else {
    // OpenSearch wants weights that sum to 1; the order is the same for any scale.
    const double sum = h.text_weight + h.vector_weight;
    Json combination = {{"technique", "arithmetic_mean"},
                        {"parameters", {{"weights", Json::array({h.text_weight / sum, h.vector_weight / sum})}}}};
    Json normalization = {{"technique", "min_max"}};
    processor = {{"normalization-processor", {{"normalization", normalization}, {"combination", combination}}}};
  }
  std::optional<double> min_score;
  if (h.min_cosine) min_score = ScoreFromCosine(*h.min_cosine, h.space);
  Json body = {{"from", h.from},
               {"size", h.size},
               {"track_total_hits", true},
               {"_source", SourceFilter(true)},
               {"search_pipeline", {{"phase_results_processors", Json::array({processor})}}},
               {"query",
                {{"hybrid",
                  {{"pagination_depth", h.depth},
                   {"queries", Json::array({KeywordQuery(h.text, h.filters),
                                            KnnQuery(h.vector, h.model, h.depth, h.filters, h.ef, min_score)})}}}}}};
  return Dump(body);
}

namespace {

uint64_t TotalOf(const Json& j) {
  // const Json: operator[] of a missing key is undefined, so every level is looked up.
  const auto hits = j.find("hits");
  if (hits == j.end() || !hits->is_object()) return 0;
  const auto total = hits->find("total");
  if (total == hits->end() || !total->is_object()) return 0;
  const auto value = total->find("value");
  return value != total->end() && value->is_number_unsigned() ? value->get<uint64_t>() : 0;
}

Document DocumentOf(const Json& s) {
  Document d;
  d.id = s.value("doc_id", int64_t{0});
  d.uri = s.value("uri", "");
  d.path = s.value("path", "");
  d.name = s.value("name", "");
  d.ext = s.value("extension", "");
  d.mime = s.value("mime", "");
  d.size = s.value("size", uint64_t{0});
  d.mtime_ns = s.value("mtime_ns", int64_t{0});
  d.sha256 = s.value("sha256", "");
  if (s.contains("taken_ns") && s["taken_ns"].is_number_integer()) d.taken_ns = s["taken_ns"].get<int64_t>();
  d.camera = s.value("camera", "");
  d.title = s.value("title", "");
  d.author = s.value("author", "");
  if (s.contains("created_ns") && s["created_ns"].is_number_integer()) d.created_ns = s["created_ns"].get<int64_t>();
  if (s.contains("saved_ns") && s["saved_ns"].is_number_integer()) d.saved_ns = s["saved_ns"].get<int64_t>();
  if (s.contains("gps") && s["gps"].is_object() && s["gps"].contains("lat") && s["gps"].contains("lon")) {
    d.gps_lat = s["gps"]["lat"].get<double>();
    d.gps_lon = s["gps"]["lon"].get<double>();
  }
  return d;
}

// The hits of a parsed search reply as (doc_id, _score); with `docs`, also the documents of hits
// whose _source holds more than the id.
Status HitsOf(const Json& j, const std::function<void(int64_t, double)>& hit, std::vector<Document>* docs) {
  for (const Json& h : j["hits"]["hits"]) {
    auto id = DocIdOf(h);
    if (!id) return Status::IOError("OpenSearch returned a hit without doc_id: was the index written by filesearch?");
    hit(*id, h.contains("_score") && h["_score"].is_number() ? h["_score"].get<double>() : 0.0);
    if (docs && h["_source"].contains("uri")) docs->push_back(DocumentOf(h["_source"]));
  }
  return Status::Ok();
}

Result<KeywordPage> KeywordPageOf(const Json& j, std::vector<Document>* docs) {
  KeywordPage page;
  page.total = TotalOf(j);
  FS_RETURN_IF_ERROR(HitsOf(j, [&page](int64_t id, double score) { page.hits.push_back({id, score}); }, docs));
  return page;
}

Result<std::vector<VectorHit>> VectorHitsOf(const Json& j, Space space, uint64_t* total, std::vector<Document>* docs) {
  std::vector<VectorHit> out;
  FS_RETURN_IF_ERROR(HitsOf(j, [&out, space](int64_t id, double score) {
    out.push_back({id, static_cast<float>(CosineFromScore(score, space))});
  }, docs));
  if (total) *total = std::max<uint64_t>(TotalOf(j), out.size());
  return out;
}

}  // namespace

Result<KeywordPage> ParseKeywordReply(std::string_view body, std::vector<Document>* docs) {
  FS_ASSIGN_OR_RETURN(Json j, ParseBody(body));
  return KeywordPageOf(j, docs);
}

Result<std::vector<VectorHit>> ParseKnnReply(std::string_view body, Space space, uint64_t* total,
                                             std::vector<Document>* docs) {
  FS_ASSIGN_OR_RETURN(Json j, ParseBody(body));
  return VectorHitsOf(j, space, total, docs);
}

Result<FusedPage> ParseHybridReply(std::string_view body, std::vector<Document>* docs) {
  FS_ASSIGN_OR_RETURN(Json j, ParseBody(body));
  FusedPage page;
  page.total = TotalOf(j);
  FS_RETURN_IF_ERROR(HitsOf(j, [&page](int64_t id, double score) { page.hits.push_back({id, score}); }, docs));
  return page;
}

std::string MsearchLines(const std::string& keyword_body, const std::string& knn_body) {
  return "{}\n" + keyword_body + "\n{}\n" + knn_body + "\n";
}

Status ParseMsearchReply(std::string_view body, Space space, KeywordPage* text, std::vector<VectorHit>* vector,
                         uint64_t* vector_total) {
  Json j = Json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::IOError("OpenSearch sent a reply that is not a JSON object");
  if (j.contains("error")) return CheckedReply(std::move(j)).status();
  if (!j.contains("responses") || !j["responses"].is_array() || j["responses"].size() != 2) {
    return Status::IOError("OpenSearch sent an _msearch reply without two responses");
  }
  FS_ASSIGN_OR_RETURN(Json keyword, CheckedReply(std::move(j["responses"][0])));
  FS_ASSIGN_OR_RETURN(Json knn, CheckedReply(std::move(j["responses"][1])));
  FS_ASSIGN_OR_RETURN(*text, KeywordPageOf(keyword, nullptr));
  FS_ASSIGN_OR_RETURN(*vector, VectorHitsOf(knn, space, vector_total, nullptr));
  return Status::Ok();
}

Result<IndexCounts> ParseCountsReply(std::string_view body) {
  FS_ASSIGN_OR_RETURN(Json j, ParseBody(body));
  IndexCounts c;
  c.documents = TotalOf(j);
  if (j.contains("aggregations") && j["aggregations"].contains("vectors")) {
    const Json& models = j["aggregations"]["vectors"]["models"];
    if (models.is_object() && models.contains("buckets") && models["buckets"].is_array()) {
      for (const Json& b : models["buckets"]) {
        if (b.contains("key") && b["key"].is_string() && b.contains("doc_count") && b["doc_count"].is_number_unsigned()) {
          c.vectors_by_model.emplace_back(b["key"].get<std::string>(), b["doc_count"].get<uint64_t>());
        }
      }
    }
  }
  return c;
}

Result<std::vector<Document>> ParseDocuments(std::string_view body) {
  Json j = Json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::IOError("OpenSearch sent a reply that is not a JSON object");
  const Json* hits = nullptr;
  if (j.contains("docs") && j["docs"].is_array()) hits = &j["docs"];  // _mget
  else if (j.contains("hits") && j["hits"].is_object() && j["hits"].contains("hits")) hits = &j["hits"]["hits"];
  if (!hits || !hits->is_array()) return Status::IOError("OpenSearch sent a reply without documents");
  std::vector<Document> out;
  for (const Json& h : *hits) {
    if (!h.contains("_source") || !h["_source"].is_object()) continue;  // _mget: not found
    out.push_back(DocumentOf(h["_source"]));
  }
  return out;
}

std::string DocumentSource(const Document& doc, std::span<const float> vector, const std::string& model,
                           std::optional<uint64_t> phash) {
  const size_t slash = doc.mime.find('/');
  Json s = {{"doc_id", StableDocId(doc.uri)},
            {"uri", doc.uri},
            {"path", doc.path},
            {"name", doc.name},
            {"extension", doc.ext},
            {"mime", doc.mime},
            {"mime_family", slash == std::string::npos ? doc.mime : doc.mime.substr(0, slash)},
            {"size", doc.size},
            {"mtime_ns", doc.mtime_ns},
            {"sha256", doc.sha256},
            {"content", doc.content},
            {"has_image_embedding", !vector.empty()}};
  if (doc.taken_ns) s["taken_ns"] = *doc.taken_ns;
  if (!doc.camera.empty()) s["camera"] = doc.camera;
  if (phash) s["phash"] = static_cast<int64_t>(*phash);  // a long holds the 64 bits (two's complement)
  if (!doc.title.empty()) s["title"] = doc.title;
  if (!doc.author.empty()) s["author"] = doc.author;
  if (doc.created_ns) s["created_ns"] = *doc.created_ns;
  if (doc.saved_ns) s["saved_ns"] = *doc.saved_ns;
  if (doc.gps_lat && doc.gps_lon) s["gps"] = {{"lat", *doc.gps_lat}, {"lon", *doc.gps_lon}};
  if (!vector.empty()) {
    s["image_embedding"] = std::vector<float>(vector.begin(), vector.end());
    s["embedding_model"] = model;
  }
  return Dump(s);
}

std::string BulkIndexLines(const std::string& index, const Document& doc, int64_t version, std::span<const float> vector,
                           const std::string& model, std::optional<uint64_t> phash) {
  Json action = {{"index",
                  {{"_index", index}, {"_id", std::to_string(StableDocId(doc.uri))}, {"version", version},
                   {"version_type", "external_gte"}}}};
  return Dump(action) + "\n" + DocumentSource(doc, vector, model, phash) + "\n";
}

std::string BulkEmbeddingUpdateLines(const std::string& index, int64_t doc_id, std::span<const float> vector,
                                     const std::string& model) {
  Json action = {{"update", {{"_index", index}, {"_id", std::to_string(doc_id)}}}};
  Json doc = {{"doc",
               {{"image_embedding", std::vector<float>(vector.begin(), vector.end())},
                {"has_image_embedding", true},
                {"embedding_model", model}}}};
  return Dump(action) + "\n" + Dump(doc) + "\n";
}

std::string BulkDeleteLines(const std::string& index, int64_t doc_id) {
  Json action = {{"delete", {{"_index", index}, {"_id", std::to_string(doc_id)}}}};
  return Dump(action) + "\n";
}

}  // namespace fs::opensearch
