// Search planner: turns one request into keyword and/or vector searches, fuses them, and pages
// the result. Modes: text (BM25), vector (k-NN on a given vector), hybrid (both, fused by
// reciprocal rank fusion or min-max normalised linear combination). Every hit reports the fused
// score and each leg's raw score and rank. Pure logic over a SearchBackend (index/search_backend.h); the caller
// turns text or images into vectors before calling. Thread-safe if its inputs are.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "index/search_backend.h"
#include "index/store.h"
#include "index/vector_index.h"

namespace fs {

enum class SearchMode { kText, kVector, kHybrid };
enum class FusionMethod { kRrf, kLinear };

std::string_view SearchModeName(SearchMode m);
Result<SearchMode> ParseSearchMode(std::string_view s);
Result<FusionMethod> ParseFusionMethod(std::string_view s);

struct SearchRequest {
  std::string query;                 // keywords (text leg)
  std::vector<float> vector;         // query vector (vector leg); empty = none
  std::string vector_model;          // model id the vector belongs to (required with `vector`)
  std::optional<SearchMode> mode;    // default: hybrid when both legs are possible, else the one that is
  SearchFilters filters;
  size_t from = 0;                   // offset, from + size <= max_depth
  size_t size = 10;
  std::string search_after;          // opaque cursor from a previous reply (replaces `from`)
  FusionMethod fusion = FusionMethod::kRrf;
  double rrf_k = 60.0;               // RRF constant: score = sum w / (k + rank)
  double text_weight = 1.0;          // per-leg weights (both fusion methods)
  double vector_weight = 1.0;
  size_t ef = 0;                     // HNSW search breadth; 0 = index default
  std::optional<int64_t> exclude_id; // drop this document (find-similar excludes itself)
  // The vector is `query` through the CLIP text tower. In hybrid mode the vector leg then keeps
  // only the images that stand out for this query (the "picture floor"): cosine >= median +
  // floor_sd * robust SD (1.4826 * MAD) of the query's cosines with a sample of the collection
  // (SearchBackend::SampleVectorScores, else the leg's own hits), raised for large collections to
  // where chance alone would put the best of them (ChanceMaximumSd), and >= floor_min_score. Vectors
  // given, uploaded images and similarTo are never floored.
  bool vector_from_text = false;
  double floor_sd = 4.0;             // robust standard deviations above the median
  double floor_min_score = 0.0;      // absolute cosine floor, calibrated per model; 0 = none
};

// The picture floor of `scores` (a sample of one query's cosines with a collection of `population`
// vectors): median + s * 1.4826 * MAD, at least `min_score`, where s = max(sd,
// ChanceMaximumSd(population)). +infinity below 8 scores: too few to tell what stands out.
double PictureFloor(std::vector<float> scores, double sd, double min_score, uint64_t population);
// How many standard deviations above the centre the largest of `population` normal scores is
// expected to reach by chance: z with population * P(Z > z) = 1/2 (3.3 at 10^3, 3.9 at 10^4,
// 4.4 at 10^5, 4.9 at 10^6); 0 below 2.
double ChanceMaximumSd(uint64_t population);

// Why a hit matched: `text.present` = its words ("words"), `vector.present` = its picture
// ("picture"); both can hold.
struct LegScore {
  bool present = false;
  double score = 0;  // raw: BM25 (text) or cosine similarity (vector)
  size_t rank = 0;   // 1-based rank within the leg
};

struct SearchHit {
  Document doc;  // metadata; content left empty
  double score = 0;
  LegScore text;
  LegScore vector;
};

struct SearchResult {
  SearchMode mode = SearchMode::kText;
  std::vector<SearchHit> hits;
  uint64_t total = 0;
  bool total_exact = true;
  std::string next_cursor;  // empty when there is nothing more
  double took_ms = 0;
  double backend_took_ms = -1;  // opensearch back end: the node's own `took`, summed; -1 embedded
  double backend_wait_ms = -1;  // opensearch back end: wall time waiting on its replies; -1 embedded
  // Who fused a hybrid search: "filesearch" (the planner, any back end) or "opensearch" (its
  // `hybrid` query; SearchBackend::fuses_hybrid). Hits fused by OpenSearch carry the fused score
  // only: it does not say which leg found them, nor their scores there.
  std::string fused_by = "filesearch";
};

struct SearchLimits {
  size_t max_depth = 10000;      // from + size beyond this needs search_after
  size_t max_size = 100;         // largest page
  size_t max_cursor_depth = 100000;  // vector/hybrid cursors recompute a window this deep at most
  size_t min_fusion_window = 100;    // each leg contributes at least this many candidates
};

// Plans and runs `request` on `backend`: the legs it needs, fusion, paging, cursors.
Result<SearchResult> RunSearch(const SearchBackend& backend, const SearchRequest& request, const SearchLimits& limits = {});
// The same on the embedded back end. `vectors` may be null (no vector index): vector and hybrid
// modes then fail with a clear error.
Result<SearchResult> RunSearch(const Store& store, const VectorIndex* vectors, const SearchRequest& request,
                               const SearchLimits& limits = {});

}  // namespace fs
