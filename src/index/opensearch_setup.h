// The OpenSearch index filesearch searches ("cis-files" by default): its k-NN mapping and analyzers,
// and the operator's commands on it: setup (five checked steps, idempotent), status, ef_search.
// Functions run requests through an OpenSearchClient (which may be in dry-run mode: then every
// request is shown, none sent, and setup assumes a cluster without the index). Progress lines go to
// `out`. Thread-compatible: one call per client at a time is what the CLI does; nothing is shared.
#pragma once

#include <ostream>
#include <string>

#include "core/status.h"
#include "index/opensearch_client.h"

namespace fs {

struct OpenSearchIndexSpec {
  std::string index = "cis-files";
  int dimension = 512;              // CLIP ViT-B/32 image and text embeddings
  std::string engine = "faiss";     // faiss | lucene (nmslib is deprecated upstream)
  std::string space = "innerproduct";  // CLIP vectors are L2-normalised: inner product = cosine
  int m = 16;                       // HNSW links per node (the plugin's default)
  int ef_construction = 128;        // HNSW build beam (the plugin's default)
  int ef_search = 512;              // index.knn.algo_param.ef_search (faiss and nmslib; lucene uses k)
};

// Checks the spec's values (dimension 1..16000, engine, space, m, ef_*); InvalidArgument otherwise.
Status ValidateIndexSpec(const OpenSearchIndexSpec& spec);

// The create-index body: settings (k-NN on, ef_search, analyzers) and the mapping: image_embedding
// (knn_vector, hnsw with the spec's space, engine, m and ef_construction), has_image_embedding,
// embedding_model, doc_id, uri, name / path / content (text with Latin folding and CJK bigrams,
// keyword subfields), extension, mime, mime_family, size, mtime_ns, taken_ns, sha256, camera, gps.
// Pretty-printed JSON.
std::string IndexCreateBody(const OpenSearchIndexSpec& spec);

// [1/5] k-NN plugin installed, [2/5] index exists?, [3/5] create it, [4/5] settings (knn, ef_search),
// [5/5] mapping (image_embedding with the spec's dimension, space and engine; the document fields).
// Idempotent: on a matching index it changes nothing and says so. An index whose k-NN field differs
// (dimension, space, engine, missing) is refused (FailedPrecondition) naming each difference and what
// to do. A different ef_search is set to the spec's value (a dynamic setting).
Status SetupOpenSearchIndex(const OpenSearchClient& client, const OpenSearchIndexSpec& spec, std::ostream& out);

// Cluster name and health, the index's health, document count, how many have an image embedding,
// and its ef_search. NotFound when the index does not exist (run setup).
Status PrintOpenSearchStatus(const OpenSearchClient& client, const std::string& index, std::ostream& out);

// Sets index.knn.algo_param.ef_search (1..10000) on an existing index and reads it back.
Status SetOpenSearchEfSearch(const OpenSearchClient& client, const std::string& index, int ef_search,
                             std::ostream& out);

}  // namespace fs
