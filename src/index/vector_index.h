// VectorIndex: the HNSW index of one embedding model, derived from the Store. It is persisted as
// a snapshot that records the last change-log sequence it holds; at open it loads the snapshot
// (or rebuilds from the Store if the snapshot is missing, truncated, corrupt or of another model)
// and replays the change log from there, so it always agrees with the source of truth.
//
// Thread-safety: Search may run concurrently from many threads; Refresh and SaveSnapshot take an
// exclusive lock for the short time they modify the graph.
#pragma once

#include <memory>
#include <shared_mutex>
#include <span>
#include <string>
#include <vector>

#include "core/env.h"
#include "core/status.h"
#include "index/store.h"
#include "vector/hnsw.h"

namespace fs {

struct VectorHit {
  int64_t id;
  float score;  // cosine similarity (inner product of normalised vectors)
};

struct VectorIndexOptions {
  uint32_t m = 16;
  uint32_t ef_construction = 200;
  uint32_t ef_search = 128;   // default search breadth; raised to k when k is larger
  bool progress = true;       // progress bar when rebuilding
};

class VectorIndex {
 public:
  // `store` and `env` are borrowed and must outlive the index.
  static Result<std::unique_ptr<VectorIndex>> Open(Store* store, Env* env, const std::string& snapshot_path,
                                                   const std::string& model, const VectorIndexOptions& options);

  // Applies the store's changes committed since the last refresh. Cheap when there are none.
  // When another process trimmed the log past this index, reloads the snapshot it wrote (or
  // rebuilds) first.
  Status Refresh();
  // k nearest documents passing `filters`, best first (ties by id). The query must have this
  // index's dimension; it is normalised here.
  Result<std::vector<VectorHit>> Search(std::span<const float> query, size_t k, const SearchFilters& filters,
                                        size_t ef = 0) const;
  // Cosine similarities of `query` with at most `n` of the index's vectors spread over the whole
  // collection (filters do not apply): the distribution a hit is judged against (engine/search.h).
  Result<std::vector<float>> SampleScores(std::span<const float> query, size_t n) const;
  // Writes the snapshot atomically and trims the change log up to what it holds.
  Status SaveSnapshot();

  bool Contains(int64_t id) const;
  const std::string& model() const { return model_; }
  size_t dim() const;   // 0 while the index holds no vector yet
  size_t size() const;
  size_t memory_bytes() const;
  uint64_t applied_seq() const;
  // How the index came up at Open: "snapshot", "rebuilt: <why>", or "empty".
  const std::string& open_note() const { return open_note_; }

 private:
  Status Reload(uint64_t trimmed);
  VectorIndex(Store* store, Env* env, std::string path, std::string model, VectorIndexOptions options)
      : store_(store), env_(env), path_(std::move(path)), model_(std::move(model)), options_(options) {}
  Status Rebuild();
  Status ApplyLocked(int64_t doc_id, bool upsert);
  Status EnsureIndexLocked(size_t dim);

  Store* store_;
  Env* env_;
  std::string path_;
  std::string model_;
  VectorIndexOptions options_;
  std::string open_note_;
  mutable std::shared_mutex mu_;
  std::unique_ptr<vec::HnswIndex> hnsw_;  // null until the first vector arrives
  uint64_t applied_seq_ = 0;
};

}  // namespace fs
