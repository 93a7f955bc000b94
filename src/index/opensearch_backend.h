// The OpenSearch SearchBackend: the keyword leg as a bool query of phrase matches over name^10,
// path.text^4 and content, the vector leg as a `knn` query on `image_embedding` with the filters (and
// the model) inside the k-NN search, documents by `doc_id` — all through one request function, so
// the transport (URL, SigV4 or basic auth, TLS, retries) stays in the OpenSearch client. Scores of
// the vector leg are converted back to cosines (opensearch_query.h), so fusion in engine/search
// treats both back ends alike.
//
// Thread-safety: const methods, safe to call concurrently if the request function is.
// Generation(): OpenSearch has no commit counter cheap enough to read per search, so it is 0 and
// cursors are not invalidated by writes (pages may shift while the index changes).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "index/opensearch_query.h"
#include "index/search_backend.h"

namespace fs {

struct OpenSearchBackendOptions {
  std::string index = "cis-files";
  std::string model;        // the model whose vectors `image_embedding` holds ("" = no vector leg)
  size_t dimension = 512;   // of image_embedding
  opensearch::Space space = opensearch::Space::kInnerProduct;
  // Hybrid searches fused by OpenSearch (a `hybrid` query with a search pipeline; needs the
  // neural-search plugin) instead of by filesearch's planner: SearchBackend::fuses_hybrid().
  bool server_fusion = false;
  // Sends one request (method, path under the cluster URL such as "/cis-files/_search", JSON
  // body) and returns the reply body; an HTTP error that carries a JSON body is returned as the
  // body (the parsers read OpenSearch's `error`), a transport failure as a non-OK status.
  std::function<Result<std::string>(std::string_view method, std::string_view path, std::string_view body)> request;
};

Result<std::unique_ptr<SearchBackend>> NewOpenSearchBackend(OpenSearchBackendOptions options);

class OpenSearchClient;
// The request function over a client (borrowed; must outlive it): POSTs are marked read-only (the
// back end only searches), so the client retries them; 429 and 5xx after retries become
// Unavailable, other replies are returned with their body.
std::function<Result<std::string>(std::string_view, std::string_view, std::string_view)> RequestsThrough(
    const OpenSearchClient* client);

}  // namespace fs
