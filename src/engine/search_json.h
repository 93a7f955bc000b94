// JSON rendering of search results, shared by the CLI (--json) and the HTTP API so both speak
// the same shape. Returns strings: no JSON library type crosses this header. Thread-safe.
#pragma once

#include <span>
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
// float32 values as a JSON array, each in the shortest decimal form that reads back as the same
// float (at most 9 significant digits: "[0.044194173,-1.5e-05]"); a non-finite value is null.
// A CLIP-B/32 vector (512 values) comes to about 6.5 KB, so it fits in a GET query string.
std::string FloatsToJson(std::span<const float> values);

// What an embedding run produced: the reply of POST /embed and of `filesearch embed --json`.
struct EmbeddingReply {
  std::span<const float> embedding;
  std::string model;
  double inference_seconds = 0;  // wall time of the request, model and cache lookup included
  bool cached = false;           // the embedding cache answered
  std::string image_hash;        // SHA-256 of the image bytes; "" for text (then omitted)
};
// {"success":true,"data":{"embedding":[...],"dimension","model","inferenceTime","cached","imageHash"?}}
std::string EmbeddingReplyToJson(const EmbeddingReply& reply);

// ISO 8601 UTC with milliseconds: "2024-05-01T12:00:00.000Z".
std::string FormatTimeNs(int64_t ns);
// The same to the second: "2024-05-01T12:00:00Z".
std::string FormatTimeSecondsNs(int64_t ns);

}  // namespace fs
