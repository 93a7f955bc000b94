// ImageEmbedder: turns image files into vectors of one model. The CLIP engine implements it;
// HashEmbedder is a deterministic stand-in (vectors derived from the content hash) used by tests
// that need many embeddings fast, e.g. crash-safety tests of the vector index.
// Implementations state their own thread-safety; the engine calls one at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace fs {

class ImageEmbedder {
 public:
  virtual ~ImageEmbedder() = default;
  virtual const std::string& model_id() const = 0;
  virtual size_t dim() const = 0;
  // out: paths.size() x dim(). per_file[i] says whether file i was embedded; a failed file's
  // row is left zero. The returned Status is non-OK only when the whole batch failed.
  // phash (may be null): paths.size() 64-bit perceptual hashes (image/PerceptualHash) of the
  // pictures, from the same decode; 0 where the embedder does not decode or the file failed.
  virtual Status EmbedFiles(std::span<const std::string> paths, std::span<float> out,
                            std::vector<Status>* per_file, std::vector<uint64_t>* phash) = 0;
  // Another instance of the same model that computes the same vectors, independent of this one
  // (its own buffers and lock), using at most `threads` threads: backfill gives one to each of its
  // workers. kUnsupported where the embedder cannot be copied (backfill then runs one worker).
  virtual Result<std::unique_ptr<ImageEmbedder>> Clone(int threads) const {
    (void)threads;
    return Status::Unsupported("this embedder cannot run several workers");
  }
};

// QueryEmbedder: turns a search query (text, or an uploaded image's bytes) into a vector of the
// same model as the indexed images. CLIP implements it; the hash embedder implements it for tests
// (identical image bytes give the identical vector, so "search by this image" finds its file).
// Implementations must be thread-safe: the server calls them from every request thread at once.
struct QueryEmbedderStats {
  uint64_t text_queries = 0;         // EmbedText calls
  uint64_t text_cache_hits = 0;      // answered from the recent-query cache
  uint64_t text_forward_passes = 0;  // text-tower runs (several queries may share one)
  uint64_t text_batched = 0;         // queries computed in those runs
  uint64_t text_waiting = 0;         // queries queued for the next run, now
};

class QueryEmbedder {
 public:
  virtual ~QueryEmbedder() = default;
  virtual const std::string& model_id() const = 0;
  virtual size_t dim() const = 0;
  virtual Result<std::vector<float>> EmbedText(std::string_view text) = 0;
  virtual Result<std::vector<float>> EmbedImageBytes(std::string_view bytes) = 0;
  virtual QueryEmbedderStats stats() const { return {}; }
};

// Model id "test/hash-<dim>". Unit-norm vectors seeded by SHA-256 of the file's bytes, so equal
// content gives equal vectors. Not a semantic model: for tests only.
// Fault injection: a file with kTestEmbedFaultMarker in its first 4 KiB fails to embed, as a
// corrupt image would with the real model (e.g. a PNG signature followed by the marker: indexed as
// an image, refused by the embedder), so tests make embedding errors without a model.
inline constexpr std::string_view kTestEmbedFaultMarker = "FILESEARCH-TEST-EMBED-FAULT";
std::unique_ptr<ImageEmbedder> NewHashEmbedder(size_t dim);
std::unique_ptr<QueryEmbedder> NewHashQueryEmbedder(size_t dim);

}  // namespace fs
