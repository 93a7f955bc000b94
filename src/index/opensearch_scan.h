// ScanIndex: every document of an OpenSearch index that a query matches, in doc_id order, a page
// at a time: search_after over a point in time (PIT), so the scan sees one consistent view while
// writers go on, and a scan killed half way costs nothing (the callers' queries shrink as they
// work: a backfill asks for images without a vector, and writes them). Where the cluster has no
// PIT API (OpenSearch before 2.4, Serverless collections), it pages with search_after on doc_id
// alone, which is still complete for documents that exist throughout the scan.
//
// The hits come typed (ScanHit): JSON stays inside the .cpp.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "index/opensearch_client.h"

namespace fs {

struct ScanHit {
  int64_t doc_id = 0;
  std::string uri;
  std::string path;
  std::string mime;
  std::string sha256;
  uint64_t size = 0;
  std::optional<uint64_t> phash;
  std::string embedding_model;
  std::vector<float> vector;  // image_embedding, when asked for (ScanOptions::vectors) and present
};

struct ScanOptions {
  std::string index = "cis-files";
  // A bool query's filter clauses (JSON array text), "" = every document. Built by the callers'
  // helpers below, which keep the JSON inside the .cpp.
  std::string filter;
  bool vectors = false;      // read image_embedding too (a 512-d vector is ~6 KB of JSON)
  size_t page = 500;         // hits per request
  std::string keep_alive = "5m";
};

// The filter of image documents without a vector of `model` (backfill over the whole index).
std::string ImagesWithoutVectorFilter(const std::string& model);
// Non-empty documents (exact duplicates).
std::string NonEmptyFilter();
// Documents with a vector of `model`.
std::string VectorsOfModelFilter(const std::string& model);

// Calls `page` with each page of hits (at most options.page) until the query is exhausted or
// `page` fails (its status is returned). Closes the PIT it opened, also on failure.
Status ScanIndex(const OpenSearchClient& client, const ScanOptions& options,
                 const std::function<Status(std::vector<ScanHit>& hits)>& page);

}  // namespace fs
