// filesearch's documents and queries in OpenSearch's language (used by the OpenSearch back end and
// engine/mirror), as pure functions (no network), so the translation is unit-tested and the same
// text is sent to the node and printed by --dry-run. JSON stays inside the .cpp: bodies in and out are
// strings. Thread-safe (no state).
//
// Document fields (docs/opensearch.md, "The mapping"; index/opensearch_setup.cpp creates them):
// doc_id (long, the stable id below), uri, path (keyword for prefix filters + path.text), name,
// content (text, Latin folding + CJK bigrams),
// extension, mime (keyword), mime_family ("image"), size (long), mtime_ns / taken_ns (long),
// sha256, camera (keyword), gps (geo_point), image_embedding (knn_vector), has_image_embedding
// (boolean), embedding_model (keyword).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "index/store.h"
#include "index/search_backend.h"
#include "index/vector_index.h"

namespace fs::opensearch {

// The id of a document in OpenSearch: the first 63 bits of SHA-256(uri), positive. The same file
// gets the same id on every machine and in every run, so writes are idempotent (a replayed or
// duplicated write overwrites, never duplicates) without any coordination between workers.
int64_t StableDocId(std::string_view uri);

// The k-NN space a vector field was created with, and how its `_score` maps back to a cosine.
enum class Space { kInnerProduct, kCosine };
// innerproduct (faiss, nmslib and lucene alike): score = 1 + cos for cos > 0, 1 / (1 - cos)
// otherwise; cosinesimil: score = (1 + cos) / 2. Inverse of those, for normalised vectors.
double CosineFromScore(double score, Space space);

// The filter clauses of `filters` as a JSON array (for a bool filter and a knn filter alike).
std::string FilterClauses(const SearchFilters& filters);

// _search body of the keyword leg: every word a phrase over name^10, path.text^4 and content (as the
// embedded BM25 weighs them), filters in the bool filter, sorted by score then doc_id; `after`
// pages by search_after on those two. Hits carry their doc_id, or with `with_docs` every field but
// the text and the vector (a page's documents without another round trip).
std::string KeywordQueryBody(std::string_view query, const SearchFilters& filters, size_t offset, size_t limit,
                             const std::optional<KeywordAfter>& after, bool with_docs = false);
// _search body of the vector leg: knn on image_embedding with k, the filters and the model inside
// the k-NN search (efficient filtering), `ef` as method_parameters.ef_search when non-zero. `size`
// (0: k) sends only the first hits of the k, with the count of all; `with_docs` as above.
std::string KnnQueryBody(std::span<const float> vector, const std::string& model, size_t k,
                         const SearchFilters& filters, size_t ef, size_t size = 0, bool with_docs = false);
// The inverse of CosineFromScore: the `_score` a k-NN hit of that cosine gets (radial min_score).
double ScoreFromCosine(double cosine, Space space);

// Both legs fused by OpenSearch (the neural-search plugin): a `hybrid` query of the keyword leg's
// query and the vector leg's knn, with a temporary search pipeline in the body, so the fusion's
// parameters travel with each search and nothing has to be set up. RRF: score-ranker-processor
// (OpenSearch 2.19+; no weights there); linear: normalization-processor, min_max, arithmetic_mean
// with [text_weight, vector_weight] scaled to sum to 1. Each leg contributes its best `depth` hits (pagination_depth,
// also the knn's k); `min_cosine` makes the knn a radial search (min_score) instead. The page's
// hits carry their documents.
struct HybridQuery {
  std::string_view text;
  std::span<const float> vector;  // normalised
  std::string model;
  Space space = Space::kInnerProduct;
  SearchFilters filters;
  size_t ef = 0;
  bool rrf = true;
  double rrf_k = 60;
  double text_weight = 1, vector_weight = 1;
  size_t from = 0, size = 10, depth = 100;
  std::optional<double> min_cosine;
};
std::string HybridQueryBody(const HybridQuery& query);

// A page of fused hits: doc_id and OpenSearch's fused score, best first; total = documents either
// leg matched.
struct FusedPage {
  std::vector<KeywordHit> hits;
  uint64_t total = 0;
};
Result<FusedPage> ParseHybridReply(std::string_view body, std::vector<Document>* docs);

// The NDJSON body of an _msearch that runs both legs in one request (keyword first).
std::string MsearchLines(const std::string& keyword_body, const std::string& knn_body);

// Parses a _search reply of the keyword leg (hits with doc_id and _score; total); with `docs`, the
// documents its hits carried (KeywordQueryBody with_docs).
Result<KeywordPage> ParseKeywordReply(std::string_view body, std::vector<Document>* docs = nullptr);
// Parses a _search reply of the vector leg; scores become cosines. `total`: hits found (<= k).
Result<std::vector<VectorHit>> ParseKnnReply(std::string_view body, Space space, uint64_t* total = nullptr,
                                             std::vector<Document>* docs = nullptr);
// Parses the reply of MsearchLines: either leg's error fails the whole search.
Status ParseMsearchReply(std::string_view body, Space space, KeywordPage* text, std::vector<VectorHit>* vector,
                         uint64_t* vector_total);
// Parses the reply of the back end's count search (total hits; a `vectors` filter aggregation
// with a `models` terms aggregation inside).
Result<IndexCounts> ParseCountsReply(std::string_view body);
// Parses documents from the _source of a _search or _mget reply.
Result<std::vector<Document>> ParseDocuments(std::string_view body);

// One document as the _source OpenSearch stores: the metadata, its text, and its embedding when it
// has one (`vector` non-empty, of `model`); has_image_embedding says which.
// `phash`: the image's perceptual hash, when it has one.
std::string DocumentSource(const Document& doc, std::span<const float> vector = {}, const std::string& model = "",
                           std::optional<uint64_t> phash = std::nullopt);
// NDJSON lines of a _bulk request that writes the whole document under its stable id, with
// external_gte versioning by `version` (the file's mtime): an older write never replaces a newer
// one, and replaying the same write is accepted (idempotent).
std::string BulkIndexLines(const std::string& index, const Document& doc, int64_t version,
                           std::span<const float> vector = {}, const std::string& model = "",
                           std::optional<uint64_t> phash = std::nullopt);
// NDJSON lines of a _bulk partial update that gives a document its embedding (the original
// design's {"doc": {"image_embedding": [...], "has_image_embedding": true}}), for documents this
// machine did not crawl (a backfill over the whole index).
std::string BulkEmbeddingUpdateLines(const std::string& index, int64_t doc_id, std::span<const float> vector,
                                     const std::string& model);
std::string BulkDeleteLines(const std::string& index, int64_t doc_id);

}  // namespace fs::opensearch
