// HnswIndex: approximate k-nearest-neighbour search over L2-normalised float vectors of one
// embedding model (inner product = cosine similarity), with deletes, upserts, filtered search and
// a checksummed snapshot file. It is derived data: SQLite holds the vectors; the index records the
// last change it contains (`last_change_seq`) so the owner can replay what came after.
// Thread-safety: const methods (Search, Contains, size, Save, ...) may run concurrently with each
// other; Add, AddBatch and Remove need exclusive access (the owner guards the index with a
// shared_mutex); AddBatch runs its own worker threads internally.
// Shapes: every vector is `options().dim` floats; labels are caller ids (SQLite rowids) < 2^40.
// Memory: fp32 vectors plus a compact graph, about 1.14x the raw fp32 size at dim 512, m 16.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/env.h"
#include "core/status.h"

namespace fs::vec {

// Tuning knobs (see docs/params.md, "Vector index", for the trade-offs).
struct HnswOptions {
  // Vector dimension; every Add and Search must use exactly this many floats.
  uint32_t dim = 512;
  // Links per node on the upper layers; layer 0 keeps 2*m. More: better recall, more memory,
  // slower build. 12-48 is the useful range.
  uint32_t m = 16;
  // Candidate list size while inserting. More: better graph (recall), slower build.
  uint32_t ef_construction = 200;
  // Default candidate list size for Search when the caller passes ef = 0.
  uint32_t ef_search = 64;
  // Seed of the level generator; the same inserts in the same order give the same graph.
  uint64_t seed = 42;
  // Model that produced the vectors (e.g. "clip-vit-b32"); stored in the snapshot header.
  std::string model_id;
  // Filtered searches whose filter admits at most max(exact_search_below,
  // exact_search_fraction * size()) labels scan the admitted vectors exactly instead of walking
  // the graph: exact, and cheaper than a graph walk that must skip most nodes.
  uint64_t exact_search_below = 2048;
  double exact_search_fraction = 0.02;
};

struct Neighbor {
  uint64_t label;
  float score;  // inner product of the normalised vectors; higher is closer, 1 = same direction
};

// A set of labels, as a bitset over [0, max_label_exclusive). Not thread-safe to modify; safe to
// share read-only between concurrent searches. Memory: max_label_exclusive / 8 bytes.
class LabelFilter {
 public:
  explicit LabelFilter(uint64_t max_label_exclusive);
  // FS_CHECK-fails if label >= max_label_exclusive.
  void Set(uint64_t label);
  // False for labels outside the range.
  bool Test(uint64_t label) const {
    return label < max_label_ && ((words_[label >> 6] >> (label & 63)) & 1u) != 0;
  }
  // Number of labels set.
  size_t count() const { return count_; }
  uint64_t max_label_exclusive() const { return max_label_; }
  // Calls fn(label) for every label set, in increasing order.
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    for (size_t w = 0; w < words_.size(); ++w) {
      for (uint64_t bits = words_[w]; bits != 0; bits &= bits - 1) {
        fn(static_cast<uint64_t>(w) * 64 + static_cast<uint64_t>(__builtin_ctzll(bits)));
      }
    }
  }

 private:
  uint64_t max_label_;
  size_t count_ = 0;
  std::vector<uint64_t> words_;
};

class HnswIndex {
 public:
  // FS_CHECK-fails on dim == 0 or m < 2 (programmer errors).
  explicit HnswIndex(HnswOptions options);
  ~HnswIndex();
  HnswIndex(const HnswIndex&) = delete;
  HnswIndex& operator=(const HnswIndex&) = delete;

  // Inserts `vector` under `label`, or replaces the vector already stored under it (upsert).
  // The index stores a normalised copy. InvalidArgument: wrong dimension, a zero or non-finite
  // vector, label >= 2^40.
  Status Add(uint64_t label, std::span<const float> vector);
  // Add for many vectors (row i of `vectors`, dim floats each, goes under labels[i]), inserted
  // by `threads` threads. All rows are checked first: on InvalidArgument (a bad row, a label
  // given twice) nothing is added. With threads > 1 the graph depends on scheduling.
  Status AddBatch(std::span<const uint64_t> labels, std::span<const float> vectors, int threads);
  // NotFound if the label is absent. The slot is reused by a later Add.
  Status Remove(uint64_t label);
  bool Contains(uint64_t label) const;

  // The k nearest live vectors to `query` (normalised by the index), best first; fewer when the
  // index (or the filter) holds fewer. ef: candidate list size, 0 means options().ef_search;
  // raised to k. filter (may be null): only labels it contains are returned; it is applied
  // during the graph walk, or the admitted set is scanned exactly when it is small (see options).
  // InvalidArgument: wrong dimension, zero or non-finite query.
  Result<std::vector<Neighbor>> Search(std::span<const float> query, size_t k, size_t ef,
                                       const LabelFilter* filter) const;

  // Scores against `query` (normalised here) of at most `n` live vectors spread evenly over the
  // index, in node order: a sample of the query's score distribution over the whole collection.
  // InvalidArgument as Search.
  Result<std::vector<float>> SampleScores(std::span<const float> query, size_t n) const;

  // Live vectors (added and not removed).
  size_t size() const { return live_count_; }
  // Bytes held by the index (vectors, graph, label map), excluding per-search scratch.
  size_t memory_bytes() const;
  const HnswOptions& options() const { return options_; }
  // Changes the exact-scan thresholds of filtered search (see HnswOptions). Not concurrent
  // with Search.
  void set_exact_search(uint64_t below, double fraction) {
    options_.exact_search_below = below;
    options_.exact_search_fraction = fraction;
  }

  // Snapshot (docs/formats/hnsw-snapshot.md): magic, format version, options, model id,
  // last_change_seq, nodes, checksum; written atomically through `env`.
  Status Save(Env* env, const std::string& path, uint64_t last_change_seq) const;
  // Corruption: truncated, damaged or not a snapshot. Unsupported: written by a newer version.
  static Result<std::unique_ptr<HnswIndex>> Load(Env* env, const std::string& path,
                                                 uint64_t* last_change_seq);

 private:
  struct Scratch;
  struct BuildLocks;  // per-node (striped) link locks + entry-point lock for AddBatch
  struct Candidate {
    float score;
    uint32_t id;
  };
  static constexpr uint32_t kNoNode = UINT32_MAX;
  static constexpr uint32_t kNodesPerChunk = 1024;  // 2.2 MiB at dim 512
  static constexpr uint64_t kMaxLabel = uint64_t{1} << 40;
  static constexpr int kMaxLevel = 31;

  // Node storage: fixed-size blocks [links0: count + 2m ids, padded to 64 bytes][vector, padded].
  uint32_t* Links0(uint32_t id) const {
    return reinterpret_cast<uint32_t*>(chunks_[id / kNodesPerChunk].get() +
                                       static_cast<size_t>(id % kNodesPerChunk) * node_bytes_);
  }
  const float* VectorOf(uint32_t id) const {
    return reinterpret_cast<const float*>(reinterpret_cast<const char*>(Links0(id)) + links0_bytes_);
  }
  float* MutableVectorOf(uint32_t id) { return const_cast<float*>(VectorOf(id)); }
  // Links of `id` on `level` (>= 0): [count, ids...].
  const uint32_t* LinksAt(uint32_t id, int level) const;
  uint32_t* MutableLinksAt(uint32_t id, int level);
  uint32_t MaxLinks(int level) const { return level == 0 ? 2 * options_.m : options_.m; }

  Status CheckVector(std::span<const float> v, const char* what) const;
  Status CheckEntry(uint64_t label, std::span<const float> v) const;
  // Upsert bookkeeping without linking: takes a slot (a reusable tombstone or a new node),
  // stores the normalised vector, clears its links, maps the label. Returns the node id.
  uint32_t PlaceVector(uint64_t label, std::span<const float> vector);
  // Appends a node with `level` (zeroed links); returns its id.
  uint32_t NewNode(int level);
  int RandomLevel();
  // Links node `id` into the graph. `locks`: null when the caller is the only writer.
  void Insert(uint32_t id, int level, BuildLocks* locks);
  float Score(const float* q, uint32_t id) const { return ip_(q, VectorOf(id), options_.dim); }
  // Greedy walk on one upper level; returns the best node found from `entry`, never `skip`.
  uint32_t GreedyClosest(const float* q, uint32_t entry, int level, uint32_t skip, BuildLocks* locks) const;
  // Best-first search on `level`; leaves up to `ef` results in scratch.results (a min-heap by
  // score). Accepted results: every node if `for_build`, else live nodes that pass `filter`.
  // `skip` (the node being inserted, or kNoNode) is never visited.
  void SearchLevel(const float* q, uint32_t entry, size_t ef, int level, bool for_build,
                   const LabelFilter* filter, uint32_t skip, BuildLocks* locks, Scratch& scratch) const;
  // Heuristic neighbour selection (HNSW paper, algorithm 4): keeps candidates closer to the
  // base than to any neighbour already kept. `candidates` is sorted best first; trimmed in place.
  void SelectNeighbors(std::vector<Candidate>& candidates, size_t max_count) const;
  void Connect(uint32_t from, uint32_t to, int level, BuildLocks* locks);
  std::vector<Neighbor> ExactSearch(const float* q, size_t k, const LabelFilter& filter) const;
  std::unique_ptr<Scratch> AcquireScratch() const;
  void ReleaseScratch(std::unique_ptr<Scratch> scratch) const;

  HnswOptions options_;
  float (*ip_)(const float*, const float*, size_t);
  size_t links0_bytes_;   // (1 + 2m) * 4, rounded up to 64
  size_t vector_floats_;  // dim rounded up to 16
  size_t node_bytes_;
  double level_mult_;
  uint64_t rng_state_;

  struct FreeChunk {
    void operator()(char* p) const;
  };
  std::vector<std::unique_ptr<char, FreeChunk>> chunks_;
  std::vector<uint64_t> labels_;              // per node
  std::vector<uint8_t> levels_;               // per node
  std::vector<uint8_t> deleted_;              // per node: 1 = tombstone (still walkable)
  std::vector<std::vector<uint32_t>> upper_;  // per node: levels 1..L, (1 + m) ids each
  std::unordered_map<uint64_t, uint32_t> label_to_id_;
  std::vector<uint32_t> free_ids_;  // tombstones that Add may reuse
  uint32_t node_count_ = 0;
  uint32_t entry_ = kNoNode;
  int max_level_ = -1;
  size_t live_count_ = 0;

  mutable std::mutex scratch_mu_;
  mutable std::vector<std::unique_ptr<Scratch>> scratch_pool_ FS_GUARDED_BY(scratch_mu_);
};

}  // namespace fs::vec
