// SearchBackend: what the search planner (engine/search.h) asks of an index, whichever holds it:
// a page of keyword hits (BM25 over name, path and content, filters inside), the k nearest vectors
// of one model (filters inside the k-NN walk, not after it), documents by id, and a generation
// that changes with every write (cursor stability). Paging, fusion and scores stay in the planner,
// so every back end fuses identically.
//
// Implementations: `embedded` (SQLite + FTS5 + the keyword accelerator + HNSW: NewEmbeddedBackend
// below) and `opensearch` (docs/opensearch.md). Thread-safety: every method is const and may run
// concurrently; the objects a back end borrows must outlive it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "index/store.h"
#include "index/vector_index.h"

namespace fs {

// One search's legs, asked together so that a remote back end can answer them in one round trip.
struct LegsRequest {
  // Keyword leg (when `text` is set): a page at `text_offset` or after `text_after`, `text_limit` hits.
  std::optional<std::string_view> text;
  size_t text_offset = 0;
  size_t text_limit = 0;
  std::optional<KeywordAfter> text_after;
  // Vector leg (when `vector` is non-empty): the `k` nearest, search breadth `ef` (0: default).
  std::span<const float> vector;
  size_t k = 0;
  size_t ef = 0;
  SearchFilters filters;  // inside both legs
  // When only one leg runs, the planner will show the documents of its first `page_docs` hits: a
  // back end that can send them with the leg at no extra round trip does (LegsReply::docs).
  size_t page_docs = 0;
};

struct LegsReply {
  KeywordPage text;
  std::vector<VectorHit> vector;  // may be cut to page_docs hits when docs came with them
  uint64_t vector_total = 0;      // hits the vector leg found (<= k), before any cut
  std::vector<Document> docs;     // documents sent with the leg (content empty); may be empty
};

// A hybrid search fused by the back end itself (OpenSearch's `hybrid` query with a search
// pipeline), asked for one page: each leg contributes its best `depth` hits (>= from + size), the
// vector leg only hits with cosine >= `min_cosine` when set (the picture floor, as a radial search).
struct FusedRequest {
  std::string_view text;
  std::span<const float> vector;
  size_t ef = 0;
  SearchFilters filters;
  bool rrf = true;  // else min-max linear
  double rrf_k = 60;
  double text_weight = 1, vector_weight = 1;
  size_t from = 0, size = 0, depth = 0;
  std::optional<double> min_cosine;
};

struct FusedReply {
  std::vector<KeywordHit> hits;  // id and the back end's fused score, best first
  uint64_t total = 0;            // documents either leg matched
  std::vector<Document> docs;    // the hits' documents (content empty)
};

// A sample of one query's cosines with an index's vectors, and the number of vectors sampled from.
struct VectorSample {
  std::vector<float> scores;
  uint64_t population = 0;
};

// What an index holds, whichever holds it (stats, /metrics).
struct IndexCounts {
  uint64_t documents = 0;
  std::vector<std::pair<std::string, uint64_t>> vectors_by_model;  // documents with a vector, per model
};

class SearchBackend {
 public:
  virtual ~SearchBackend() = default;
  // "embedded" or "opensearch": for messages and metrics.
  virtual std::string_view kind() const = 0;
  // Changes whenever any write commits; cursors carry it.
  virtual Result<uint64_t> Generation() const = 0;
  // Keyword leg: hits best first (score desc, id asc), `offset` or keyset `after`, at most `limit`.
  virtual Result<KeywordPage> KeywordSearch(std::string_view query, const SearchFilters& filters, size_t offset,
                                            size_t limit, const std::optional<KeywordAfter>& after = {}) const = 0;
  // Vector leg. has_vectors() false: no vector index (vector and hybrid searches fail clearly).
  virtual bool has_vectors() const = 0;
  virtual std::string vector_model() const = 0;  // the model whose vectors it holds
  virtual size_t vector_dim() const = 0;         // 0 while it holds none
  // k nearest documents passing `filters`, best first; score = cosine similarity. `ef` = search
  // breadth (0: the index's default).
  virtual Result<std::vector<VectorHit>> VectorSearch(std::span<const float> query, size_t k,
                                                      const SearchFilters& filters, size_t ef) const = 0;
  // Both legs of one search. The default asks KeywordSearch and then VectorSearch; the opensearch
  // back end sends them as one _msearch, or one leg with its page's documents.
  virtual Result<LegsReply> SearchLegs(const LegsRequest& request) const;
  // Whether SearchFused works: the back end fuses hybrid searches itself (the opensearch back end
  // with server-side fusion on, on a cluster with the neural-search plugin). Off everywhere else;
  // the planner then fuses, identically for every back end.
  virtual bool fuses_hybrid() const { return false; }
  virtual Result<FusedReply> SearchFused(const FusedRequest& /*request*/) const {
    return Status::Unsupported(std::string(kind()) + " back end does not fuse hybrid searches itself");
  }
  // Documents by id (content left empty), in no particular order; missing ids are skipped.
  virtual Result<std::vector<Document>> GetMany(std::span<const int64_t> ids) const = 0;
  // Milliseconds the back end's own engine reported for the calls made on this object so far
  // (OpenSearch's `took`); 0 for the embedded back end, whose time is all filesearch's.
  virtual double took_ms() const { return 0; }
  // Wall-clock milliseconds spent waiting for the back end's replies (round trips, its REST layer
  // and its `took`); 0 for the embedded back end.
  virtual double wait_ms() const { return 0; }
  // Documents and vectors per model in the whole index (for the opensearch back end: every
  // machine's writes, not only this one's).
  virtual Result<IndexCounts> Counts() const = 0;
  // Cosine similarities of `query` with up to `n` vectors spread over the whole index (filters do
  // not apply), and how many vectors the index holds: the distribution the planner judges whether
  // a hit stands out against. Empty when the back end cannot sample (the planner then uses the
  // vector leg's own hits).
  virtual Result<VectorSample> SampleVectorScores(std::span<const float> /*query*/, size_t /*n*/) const {
    return VectorSample{};
  }
  // A document's own vector of vector_model() (find-similar); nullopt when it has none.
  virtual Result<std::optional<std::vector<float>>> GetVector(int64_t id) const = 0;
};

// The embedded back end over a Store and (optionally, may be null) the VectorIndex of one model;
// both borrowed.
std::unique_ptr<SearchBackend> NewEmbeddedBackend(const Store* store, const VectorIndex* vectors);

}  // namespace fs
