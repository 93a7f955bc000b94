// OpenSearchBackend: SearchBackend over the request function; the bodies come from
// opensearch_query.h.
#include "index/opensearch_backend.h"

#include "index/opensearch_client.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>

#include <nlohmann/json.hpp>

namespace fs {
namespace {

// OpenSearch's own time for a reply: the leading "took" field (ms); 0 when absent.
int64_t TookOf(std::string_view reply) {
  const size_t at = reply.find("\"took\":");
  if (at == std::string_view::npos || at > 16) return 0;
  int64_t v = 0;
  for (size_t i = at + 7; i < reply.size() && reply[i] >= '0' && reply[i] <= '9'; ++i) v = v * 10 + (reply[i] - '0');
  return v;
}

class OpenSearchBackend final : public SearchBackend {
 public:
  explicit OpenSearchBackend(OpenSearchBackendOptions o) : o_(std::move(o)), search_path_("/" + o_.index + "/_search"),
        msearch_path_("/" + o_.index + "/_msearch") {}

  std::string_view kind() const override { return "opensearch"; }
  double took_ms() const override { return static_cast<double>(took_.load()); }
  double wait_ms() const override { return static_cast<double>(wait_us_.load()) / 1000.0; }
  Result<uint64_t> Generation() const override { return 0; }

  Result<KeywordPage> KeywordSearch(std::string_view query, const SearchFilters& filters, size_t offset, size_t limit,
                                    const std::optional<KeywordAfter>& after) const override {
    FS_ASSIGN_OR_RETURN(std::string reply,
                        Search(opensearch::KeywordQueryBody(query, filters, offset, limit, after)));
    return opensearch::ParseKeywordReply(reply);
  }

  Result<LegsReply> SearchLegs(const LegsRequest& r) const override {
    LegsReply reply;
    std::vector<float> q;
    if (!r.vector.empty()) {
      FS_ASSIGN_OR_RETURN(q, Normalised(r.vector));
    }
    if (r.text && !q.empty()) {
      // Both legs in one round trip; the page's documents follow in another (fusion picks them).
      const std::string lines = opensearch::MsearchLines(
          opensearch::KeywordQueryBody(*r.text, r.filters, r.text_after ? 0 : r.text_offset, r.text_limit, r.text_after),
          opensearch::KnnQueryBody(q, o_.model, r.k, r.filters, r.ef));
      FS_ASSIGN_OR_RETURN(std::string body, Send(msearch_path_, lines));
      FS_RETURN_IF_ERROR(opensearch::ParseMsearchReply(body, o_.space, &reply.text, &reply.vector, &reply.vector_total));
      return reply;
    }
    // One leg: its first page_docs hits bring their documents along.
    if (r.text) {
      const bool with_docs = r.page_docs > 0 && r.page_docs + 1 >= r.text_limit;
      FS_ASSIGN_OR_RETURN(std::string body, Send(search_path_, opensearch::KeywordQueryBody(
                                                     *r.text, r.filters, r.text_after ? 0 : r.text_offset,
                                                     r.text_limit, r.text_after, with_docs)));
      FS_ASSIGN_OR_RETURN(reply.text, opensearch::ParseKeywordReply(body, with_docs ? &reply.docs : nullptr));
    } else if (!q.empty()) {
      const size_t size = r.page_docs > 0 ? std::min(r.page_docs, r.k) : r.k;
      FS_ASSIGN_OR_RETURN(std::string body, Send(search_path_, opensearch::KnnQueryBody(q, o_.model, r.k, r.filters,
                                                                                         r.ef, size, r.page_docs > 0)));
      FS_ASSIGN_OR_RETURN(reply.vector, opensearch::ParseKnnReply(body, o_.space, &reply.vector_total,
                                                                  r.page_docs > 0 ? &reply.docs : nullptr));
    }
    return reply;
  }

  bool fuses_hybrid() const override { return o_.server_fusion && !o_.model.empty(); }

  Result<FusedReply> SearchFused(const FusedRequest& r) const override {
    if (!fuses_hybrid()) return SearchBackend::SearchFused(r);
    FS_ASSIGN_OR_RETURN(std::vector<float> q, Normalised(r.vector));
    opensearch::HybridQuery h;
    h.text = r.text;
    h.vector = q;
    h.model = o_.model;
    h.space = o_.space;
    h.filters = r.filters;
    h.ef = r.ef;
    h.rrf = r.rrf;
    h.rrf_k = r.rrf_k;
    h.text_weight = r.text_weight;
    h.vector_weight = r.vector_weight;
    h.from = r.from;
    h.size = r.size;
    h.depth = r.depth;
    h.min_cosine = r.min_cosine;
    FS_ASSIGN_OR_RETURN(std::string body, Search(opensearch::HybridQueryBody(h)));
    FusedReply reply;
    auto parsed = opensearch::ParseHybridReply(body, &reply.docs);
    if (!parsed.ok() && parsed.status().message().find("hybrid") != std::string::npos) {
      return Status::FailedPrecondition(parsed.status().message() +
                                        " (--opensearch-fusion opensearch needs the neural-search plugin on the "
                                        "cluster: install it, or let filesearch fuse with --opensearch-fusion filesearch)");
    }
    FS_ASSIGN_OR_RETURN(opensearch::FusedPage page, std::move(parsed));
    reply.hits = std::move(page.hits);
    reply.total = page.total;
    return reply;
  }

  bool has_vectors() const override { return !o_.model.empty(); }
  std::string vector_model() const override { return o_.model; }
  size_t vector_dim() const override { return o_.model.empty() ? 0 : o_.dimension; }

  Result<std::vector<VectorHit>> VectorSearch(std::span<const float> query, size_t k, const SearchFilters& filters,
                                              size_t ef) const override {
    FS_ASSIGN_OR_RETURN(std::vector<float> q, Normalised(query));
    FS_ASSIGN_OR_RETURN(std::string reply,
                        Search(opensearch::KnnQueryBody(q, o_.model, k, filters, ef)));
    return opensearch::ParseKnnReply(reply, o_.space);
  }

  Result<std::optional<std::vector<float>>> GetVector(int64_t id) const override {
    nlohmann::json body = {{"size", 1},
                           {"query", {{"term", {{"doc_id", id}}}}},
                           {"_source", {"image_embedding", "embedding_model"}}};
    FS_ASSIGN_OR_RETURN(std::string reply, Search(body.dump()));
    const nlohmann::json j = nlohmann::json::parse(reply, nullptr, false);
    if (!j.is_object() || !j.contains("hits") || !j["hits"].contains("hits") || !j["hits"]["hits"].is_array()) {
      return Status::IOError("OpenSearch sent a search reply without hits");
    }
    for (const auto& hit : j["hits"]["hits"]) {
      const auto& s = hit["_source"];
      if (!s.is_object() || s.value("embedding_model", std::string()) != o_.model || !s.contains("image_embedding") ||
          !s["image_embedding"].is_array()) {
        continue;
      }
      std::vector<float> v;
      for (const auto& x : s["image_embedding"]) v.push_back(x.get<float>());
      return std::optional<std::vector<float>>(std::move(v));
    }
    return std::optional<std::vector<float>>();
  }

  Result<IndexCounts> Counts() const override {
    const nlohmann::json body = {
        {"size", 0},
        {"track_total_hits", true},
        {"aggs",
         {{"vectors",
           {{"filter", {{"term", {{"has_image_embedding", true}}}}},
            {"aggs", {{"models", {{"terms", {{"field", "embedding_model"}, {"size", 100}}}}}}}}}}}};
    FS_ASSIGN_OR_RETURN(std::string reply, Search(body.dump()));
    return opensearch::ParseCountsReply(reply);
  }

  Result<std::vector<Document>> GetMany(std::span<const int64_t> ids) const override {
    // In requests of at most 1,000 ids (a search returns at most index.max_result_window hits).
    constexpr size_t kChunk = 1000;
    std::vector<Document> out;
    for (size_t at = 0; at < ids.size(); at += kChunk) {
      const auto chunk = ids.subspan(at, std::min(kChunk, ids.size() - at));
      nlohmann::json body = {{"size", chunk.size()},
                             {"query", {{"terms", {{"doc_id", std::vector<int64_t>(chunk.begin(), chunk.end())}}}}},
                             {"_source", {{"excludes", {"content", "image_embedding"}}}}};
      FS_ASSIGN_OR_RETURN(std::string reply, Search(body.dump()));
      FS_ASSIGN_OR_RETURN(std::vector<Document> docs, opensearch::ParseDocuments(reply));
      out.insert(out.end(), std::make_move_iterator(docs.begin()), std::make_move_iterator(docs.end()));
    }
    return out;
  }

 private:
  // The query vector normalised like the embedded index does: the inner product of unit vectors is
  // the cosine.
  Result<std::vector<float>> Normalised(std::span<const float> query) const {
    if (o_.model.empty()) return Status::FailedPrecondition("no vector model is configured for the OpenSearch index");
    std::vector<float> q(query.begin(), query.end());
    double norm = 0;
    for (float v : q) norm += static_cast<double>(v) * v;
    if (norm <= 0) return Status::InvalidArgument("the query vector is all zeros");
    const float inv = static_cast<float>(1.0 / std::sqrt(norm));
    for (float& v : q) v *= inv;
    return q;
  }

  Result<std::string> Search(const std::string& body) const { return Send(search_path_, body); }

  // POSTs a search (or _msearch) and adds OpenSearch's `took` and the wall time waited to this
  // object's totals.
  Result<std::string> Send(const std::string& path, const std::string& body) const {
    const auto start = std::chrono::steady_clock::now();
    auto reply = o_.request("POST", path, body);
    wait_us_ += std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start).count();
    if (reply.ok()) took_ += TookOf(*reply);
    return reply;
  }

  OpenSearchBackendOptions o_;
  std::string search_path_;
  std::string msearch_path_;
  mutable std::atomic<int64_t> took_{0};
  mutable std::atomic<int64_t> wait_us_{0};
};

}  // namespace

Result<std::unique_ptr<SearchBackend>> NewOpenSearchBackend(OpenSearchBackendOptions options) {
  if (!options.request) return Status::InvalidArgument("the OpenSearch back end needs a request function");
  if (options.index.empty()) return Status::InvalidArgument("the OpenSearch back end needs an index name");
  return std::unique_ptr<SearchBackend>(new OpenSearchBackend(std::move(options)));
}

std::function<Result<std::string>(std::string_view, std::string_view, std::string_view)> RequestsThrough(
    const OpenSearchClient* client) {
  return [client](std::string_view method, std::string_view path, std::string_view body) -> Result<std::string> {
    OpenSearchRequest r;
    r.method = std::string(method);
    r.path = std::string(path);
    r.body = std::string(body);
    r.read_only_post = true;  // searches change nothing: safe to retry
    if (r.path.ends_with("/_msearch")) r.content_type = "application/x-ndjson";
    FS_ASSIGN_OR_RETURN(OpenSearchReply reply, client->Send(r));
    if (reply.status >= 500 || reply.status == 429) return Status::Unavailable(client->DescribeError("search", reply));
    return reply.body;  // other errors carry OpenSearch's JSON `error`, which the parsers report
  };
}

}  // namespace fs
