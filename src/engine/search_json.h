// JSON rendering of search results, shared by the CLI (--json) and the HTTP API so both speak
// the same shape. Returns strings: no JSON library type crosses this header. Thread-safe.
#pragma once

#include <string>

#include "engine/search.h"

namespace fs {

struct JsonRenderOptions {
  std::string thumbnail_base;  // e.g. "/documents/" -> "thumbnailUrl": "/documents/42/thumbnail"; "" = omit
  bool pretty = false;
};

// {"mode","total","totalExact","nextCursor","tookMs","hits":[{"id","uri","path","name","extension","type",
//   "size","modified","sha256","score","textScore","textRank","vectorScore","vectorRank",...}]}
std::string SearchResultToJson(const SearchResult& result, const JsonRenderOptions& options = {});
std::string DocumentToJson(const Document& doc, bool with_content);
// ISO 8601 UTC with milliseconds: "2024-05-01T12:00:00.000Z".
std::string FormatTimeNs(int64_t ns);
// The same to the second: "2024-05-01T12:00:00Z".
std::string FormatTimeSecondsNs(int64_t ns);

}  // namespace fs
