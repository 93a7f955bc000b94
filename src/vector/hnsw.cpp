// HNSW (Malkov & Yashunin, "Efficient and robust approximate nearest neighbor search using
// Hierarchical Navigable Small World graphs", 2016/2018): insertion (algorithm 1), best-first layer
// search (algorithm 2) and the neighbour-selection heuristic (algorithm 4), over inner product.
//
// Layout choices (why): level-0 links and the vector of a node share one 64-byte aligned block,
// allocated in fixed chunks, so growing never copies and memory stays ~1.1x the raw vectors.
// Deletes leave a walkable tombstone (the graph stays connected); Add reuses tombstoned slots.
#include "vector/hnsw.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <thread>
#include <unordered_set>

#include "core/check.h"
#include "kernels/distance.h"

namespace fs::vec {

namespace {

bool ByScoreLess(const auto& a, const auto& b) {
  return a.score < b.score;
}
bool ByScoreGreater(const auto& a, const auto& b) {
  return a.score > b.score;
}

size_t RoundUp(size_t n, size_t to) {
  return (n + to - 1) / to * to;
}

// splitmix64: a tiny, well-mixed generator for the level draw.
uint64_t NextRandom(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

inline void PrefetchVector(const void* p, size_t bytes) {
  const char* c = static_cast<const char*>(p);
  // The first lines are the ones the kernel needs first; the hardware prefetcher follows on.
  for (size_t off = 0; off < bytes && off < 512; off += 64) __builtin_prefetch(c + off, 0, 3);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// LabelFilter

LabelFilter::LabelFilter(uint64_t max_label_exclusive)
    : max_label_(max_label_exclusive), words_((max_label_exclusive + 63) / 64, 0) {}

void LabelFilter::Set(uint64_t label) {
  FS_CHECK_MSG(label < max_label_, "LabelFilter::Set: label outside the filter's range");
  uint64_t& word = words_[label >> 6];
  const uint64_t bit = uint64_t{1} << (label & 63);
  count_ += (word & bit) == 0 ? 1 : 0;
  word |= bit;
}

// ---------------------------------------------------------------------------------------------
// Per-search scratch, pooled so that searches allocate nothing once warm.

struct HnswIndex::Scratch {
  std::vector<uint16_t> visited;  // visited[id] == epoch: seen in this search
  uint16_t epoch = 0;
  std::vector<Candidate> candidates;  // max-heap by score: next node to expand
  std::vector<Candidate> results;     // min-heap by score: best accepted nodes so far
  std::vector<uint32_t> batch;        // unvisited neighbours of the node being expanded
  std::vector<float> query;           // normalised query

  void NewEpoch(size_t node_count) {
    if (visited.size() < node_count) visited.resize(node_count + node_count / 4 + 64, 0);
    if (++epoch == 0) {
      std::fill(visited.begin(), visited.end(), 0);
      epoch = 1;
    }
  }
};

std::unique_ptr<HnswIndex::Scratch> HnswIndex::AcquireScratch() const {
  {
    std::lock_guard lock(scratch_mu_);
    if (!scratch_pool_.empty()) {
      std::unique_ptr<Scratch> s = std::move(scratch_pool_.back());
      scratch_pool_.pop_back();
      return s;
    }
  }
  auto s = std::make_unique<Scratch>();
  s->batch.resize(2 * options_.m + 1);
  s->query.resize(vector_floats_, 0.0f);
  return s;
}

void HnswIndex::ReleaseScratch(std::unique_ptr<Scratch> scratch) const {
  std::lock_guard lock(scratch_mu_);
  scratch_pool_.push_back(std::move(scratch));
}

// AddBatch's locks. A node's link lists are read and written under its stripe; no thread ever
// holds two stripes, so there is no lock order to get wrong. `global` guards entry_/max_level_
// and is held for a whole insertion that raises the top level (as in the paper's reference code).
struct HnswIndex::BuildLocks {
  static constexpr size_t kStripes = 4096;
  std::mutex global;
  std::array<std::mutex, kStripes> stripes;
  std::mutex& For(uint32_t id) { return stripes[id % kStripes]; }
};

namespace {
std::unique_lock<std::mutex> LockNode(auto* locks, uint32_t id) {
  return locks ? std::unique_lock<std::mutex>(locks->For(id)) : std::unique_lock<std::mutex>();
}
}  // namespace

void HnswIndex::FreeChunk::operator()(char* p) const {
  std::free(p);
}

// ---------------------------------------------------------------------------------------------
// Construction

HnswIndex::HnswIndex(HnswOptions options)
    : options_(std::move(options)), ip_(kernels::ActiveKernels().inner_product_f32) {
  FS_CHECK_MSG(options_.dim > 0, "HnswOptions::dim must be positive");
  FS_CHECK_MSG(options_.m >= 2 && options_.m <= 1024, "HnswOptions::m must be in [2, 1024]");
  links0_bytes_ = RoundUp((1 + 2 * size_t{options_.m}) * sizeof(uint32_t), 64);
  vector_floats_ = RoundUp(options_.dim, 16);
  node_bytes_ = links0_bytes_ + vector_floats_ * sizeof(float);
  level_mult_ = 1.0 / std::log(static_cast<double>(options_.m));
  rng_state_ = options_.seed;
}

HnswIndex::~HnswIndex() = default;

const uint32_t* HnswIndex::LinksAt(uint32_t id, int level) const {
  if (level == 0) return Links0(id);
  return upper_[id].data() + static_cast<size_t>(level - 1) * (1 + options_.m);
}

uint32_t* HnswIndex::MutableLinksAt(uint32_t id, int level) {
  if (level == 0) return Links0(id);
  return upper_[id].data() + static_cast<size_t>(level - 1) * (1 + options_.m);
}

int HnswIndex::RandomLevel() {
  // Uniform in (0, 1]; level = floor(-ln(u) * mL), capped.
  const double u = (static_cast<double>(NextRandom(rng_state_) >> 11) + 1.0) * 0x1.0p-53;
  const double level = -std::log(u) * level_mult_;
  return static_cast<int>(std::min<double>(level, kMaxLevel));
}

Status HnswIndex::CheckVector(std::span<const float> v, const char* what) const {
  if (v.size() != options_.dim) {
    return Status::InvalidArgument(std::string(what) + " has " + std::to_string(v.size()) +
                                   " dimensions but the vector index for model '" + options_.model_id +
                                   "' expects " + std::to_string(options_.dim) +
                                   "; embed it with that model or use the index of its model");
  }
  const float norm2 = kernels::SquaredNorm(v.data(), v.size());
  if (!std::isfinite(norm2) || norm2 <= 0.0f) {
    return Status::InvalidArgument(std::string(what) +
                                   " is zero or contains NaN/infinity; it cannot be normalised");
  }
  return Status::Ok();
}

uint32_t HnswIndex::NewNode(int level) {
  FS_CHECK_MSG(node_count_ < kNoNode, "HNSW index is full (2^32 - 1 nodes)");
  const uint32_t id = node_count_++;
  if (id / kNodesPerChunk >= chunks_.size()) {
    const size_t bytes = node_bytes_ * kNodesPerChunk;
    char* chunk = static_cast<char*>(std::aligned_alloc(64, bytes));
    FS_CHECK_MSG(chunk != nullptr, "out of memory allocating HNSW nodes");
    std::memset(chunk, 0, bytes);
    chunks_.emplace_back(chunk);
  }
  labels_.push_back(0);
  levels_.push_back(static_cast<uint8_t>(level));
  deleted_.push_back(0);
  upper_.emplace_back(static_cast<size_t>(level) * (1 + options_.m), 0u);
  return id;
}

Status HnswIndex::CheckEntry(uint64_t label, std::span<const float> vector) const {
  FS_RETURN_IF_ERROR(CheckVector(vector, "vector"));
  if (label >= kMaxLabel) {
    return Status::InvalidArgument("label " + std::to_string(label) + " is not below 2^40");
  }
  return Status::Ok();
}

uint32_t HnswIndex::PlaceVector(uint64_t label, std::span<const float> vector) {
  if (label_to_id_.count(label) != 0) {
    FS_CHECK(Remove(label).ok());  // upsert: the old slot becomes a reusable tombstone
  }
  // Reuse a tombstone unless it is the entry point (clearing its links would strand the walk).
  uint32_t id = kNoNode;
  for (size_t i = free_ids_.size(); i-- > 0;) {
    if (free_ids_[i] != entry_) {
      id = free_ids_[i];
      free_ids_[i] = free_ids_.back();
      free_ids_.pop_back();
      break;
    }
  }
  if (id == kNoNode) id = NewNode(RandomLevel());

  float* dst = MutableVectorOf(id);
  const float inv_norm = 1.0f / std::sqrt(kernels::SquaredNorm(vector.data(), vector.size()));
  for (size_t i = 0; i < options_.dim; ++i) dst[i] = vector[i] * inv_norm;
  for (int level = 0; level <= levels_[id]; ++level) MutableLinksAt(id, level)[0] = 0;
  labels_[id] = label;
  deleted_[id] = 0;
  label_to_id_[label] = id;
  ++live_count_;
  return id;
}

Status HnswIndex::Add(uint64_t label, std::span<const float> vector) {
  FS_RETURN_IF_ERROR(CheckEntry(label, vector));
  const uint32_t id = PlaceVector(label, vector);
  Insert(id, levels_[id], nullptr);
  return Status::Ok();
}

Status HnswIndex::AddBatch(std::span<const uint64_t> labels, std::span<const float> vectors, int threads) {
  const size_t dim = options_.dim;
  if (vectors.size() != labels.size() * dim) {
    return Status::InvalidArgument("AddBatch: " + std::to_string(vectors.size()) + " floats for " +
                                   std::to_string(labels.size()) + " labels of dimension " +
                                   std::to_string(dim));
  }
  std::unordered_set<uint64_t> seen;
  for (size_t row = 0; row < labels.size(); ++row) {
    FS_RETURN_IF_ERROR(CheckEntry(labels[row], vectors.subspan(row * dim, dim))
                           .WithContext("batch row " + std::to_string(row)));
    if (!seen.insert(labels[row]).second) {
      return Status::InvalidArgument("AddBatch: label " + std::to_string(labels[row]) +
                                     " appears twice in the batch");
    }
  }
  // Upserted labels become tombstones first, but their slots are not reused within this batch:
  // reusing a slot clears its links, and clearing thousands of live-graph nodes at once (before
  // any is re-inserted) left the walk dead ends (recall@10 fell from 0.98 to 0.94 after
  // re-adding half of a 6,000-vector index). Tombstones stay walkable, so the graph keeps its
  // connectivity; later inserts reuse these slots one at a time.
  std::vector<uint32_t> reusable;
  reusable.swap(free_ids_);
  for (uint64_t label : labels) {
    if (label_to_id_.count(label) != 0) FS_CHECK(Remove(label).ok());
  }
  std::vector<uint32_t> freed_now;
  freed_now.swap(free_ids_);
  free_ids_ = std::move(reusable);
  std::vector<uint32_t> ids(labels.size());
  for (size_t row = 0; row < labels.size(); ++row) {
    ids[row] = PlaceVector(labels[row], vectors.subspan(row * dim, dim));
  }
  free_ids_.insert(free_ids_.end(), freed_now.begin(), freed_now.end());
  if (threads <= 1) {
    for (uint32_t id : ids) Insert(id, levels_[id], nullptr);
    return Status::Ok();
  }
  auto locks = std::make_unique<BuildLocks>();
  std::atomic<size_t> next{0};
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(threads));
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (size_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < ids.size();) {
        Insert(ids[i], levels_[ids[i]], locks.get());
      }
    });
  }
  for (std::thread& t : pool) t.join();
  return Status::Ok();
}

Status HnswIndex::Remove(uint64_t label) {
  auto it = label_to_id_.find(label);
  if (it == label_to_id_.end()) {
    return Status::NotFound("label " + std::to_string(label) + " is not in the vector index");
  }
  const uint32_t id = it->second;
  label_to_id_.erase(it);
  deleted_[id] = 1;
  free_ids_.push_back(id);
  --live_count_;
  return Status::Ok();
}

bool HnswIndex::Contains(uint64_t label) const {
  return label_to_id_.count(label) != 0;
}

void HnswIndex::Insert(uint32_t id, int level, BuildLocks* locks) {
  std::unique_lock<std::mutex> top;
  if (locks != nullptr) top = std::unique_lock<std::mutex>(locks->global);
  const uint32_t entry = entry_;
  const int max_level = max_level_;
  if (entry == kNoNode) {
    entry_ = id;
    max_level_ = level;
    return;
  }
  if (top.owns_lock() && level <= max_level) top.unlock();

  const float* q = VectorOf(id);
  uint32_t cur = entry;
  for (int l = max_level; l > level; --l) cur = GreedyClosest(q, cur, l, id, locks);

  std::unique_ptr<Scratch> scratch = AcquireScratch();
  std::vector<Candidate> chosen;
  for (int l = std::min(level, max_level); l >= 0; --l) {
    SearchLevel(q, cur, options_.ef_construction, l, /*for_build=*/true, nullptr, id, locks, *scratch);
    chosen.assign(scratch->results.begin(), scratch->results.end());
    std::sort(chosen.begin(), chosen.end(), ByScoreGreater<Candidate, Candidate>);
    if (chosen.empty()) continue;
    cur = chosen.front().id;
    SelectNeighbors(chosen, options_.m);
    {
      std::unique_lock<std::mutex> own = LockNode(locks, id);
      uint32_t* links = MutableLinksAt(id, l);
      links[0] = static_cast<uint32_t>(chosen.size());
      for (size_t i = 0; i < chosen.size(); ++i) links[1 + i] = chosen[i].id;
    }
    for (const Candidate& c : chosen) Connect(c.id, id, l, locks);
  }
  ReleaseScratch(std::move(scratch));
  if (level > max_level) {  // still under `top` when AddBatch runs threads
    entry_ = id;
    max_level_ = level;
  }
}

void HnswIndex::SelectNeighbors(std::vector<Candidate>& candidates, size_t max_count) const {
  if (candidates.size() <= max_count) return;
  size_t kept = 0;
  for (size_t i = 0; i < candidates.size() && kept < max_count; ++i) {
    const Candidate c = candidates[i];
    const float* cv = VectorOf(c.id);
    bool keep = true;
    for (size_t j = 0; j < kept; ++j) {
      // c is closer to an already-kept neighbour than to the base: that neighbour covers it.
      if (Score(cv, candidates[j].id) > c.score) {
        keep = false;
        break;
      }
    }
    if (keep) candidates[kept++] = c;
  }
  candidates.resize(kept);
}

void HnswIndex::Connect(uint32_t from, uint32_t to, int level, BuildLocks* locks) {
  std::unique_lock<std::mutex> lock = LockNode(locks, from);
  uint32_t* links = MutableLinksAt(from, level);
  const uint32_t count = links[0];
  for (uint32_t i = 0; i < count; ++i) {
    if (links[1 + i] == to) return;  // a reused slot may still be linked from before
  }
  const uint32_t max_links = MaxLinks(level);
  if (count < max_links) {
    links[1 + count] = to;
    links[0] = count + 1;
    return;
  }
  const float* base = VectorOf(from);
  std::vector<Candidate> candidates;
  candidates.reserve(count + 1);
  for (uint32_t i = 0; i < count; ++i) candidates.push_back({Score(base, links[1 + i]), links[1 + i]});
  candidates.push_back({Score(base, to), to});
  std::sort(candidates.begin(), candidates.end(), ByScoreGreater<Candidate, Candidate>);
  SelectNeighbors(candidates, max_links);
  links[0] = static_cast<uint32_t>(candidates.size());
  for (size_t i = 0; i < candidates.size(); ++i) links[1 + i] = candidates[i].id;
}

// ---------------------------------------------------------------------------------------------
// Search

uint32_t HnswIndex::GreedyClosest(const float* q, uint32_t entry, int level, uint32_t skip,
                                  BuildLocks* locks) const {
  uint32_t cur = entry;
  float best = Score(q, cur);
  for (bool changed = true; changed;) {
    changed = false;
    std::unique_lock<std::mutex> lock = LockNode(locks, cur);
    const uint32_t* links = LinksAt(cur, level);
    const uint32_t count = links[0];
    for (uint32_t i = 0; i < count; ++i) {
      const uint32_t nb = links[1 + i];
      if (nb == skip) continue;
      const float s = Score(q, nb);
      if (s > best) {
        best = s;
        cur = nb;
        changed = true;
      }
    }
  }
  return cur;
}

void HnswIndex::SearchLevel(const float* q, uint32_t entry, size_t ef, int level, bool for_build,
                            const LabelFilter* filter, uint32_t skip, BuildLocks* locks,
                            Scratch& scratch) const {
  auto accept = [&](uint32_t id) {
    return for_build || (deleted_[id] == 0 && (filter == nullptr || filter->Test(labels_[id])));
  };
  std::vector<Candidate>& candidates = scratch.candidates;
  std::vector<Candidate>& results = scratch.results;
  candidates.clear();
  results.clear();
  scratch.NewEpoch(node_count_);
  uint16_t* visited = scratch.visited.data();
  const uint16_t epoch = scratch.epoch;
  if (skip != kNoNode) visited[skip] = epoch;
  visited[entry] = epoch;

  const float entry_score = Score(q, entry);
  candidates.push_back({entry_score, entry});
  if (accept(entry)) results.push_back({entry_score, entry});
  const size_t vector_bytes = options_.dim * sizeof(float);
  uint32_t* batch = scratch.batch.data();

  while (!candidates.empty()) {
    std::pop_heap(candidates.begin(), candidates.end(), ByScoreLess<Candidate, Candidate>);
    const Candidate current = candidates.back();
    candidates.pop_back();
    if (results.size() >= ef && current.score < results.front().score) break;

    // Gather the unvisited neighbours first and prefetch their vectors, then score them.
    uint32_t n_batch = 0;
    {
      std::unique_lock<std::mutex> lock = LockNode(locks, current.id);
      const uint32_t* links = LinksAt(current.id, level);
      const uint32_t count = links[0];
      for (uint32_t i = 0; i < count; ++i) {
        const uint32_t nb = links[1 + i];
        if (visited[nb] == epoch) continue;
        visited[nb] = epoch;
        batch[n_batch++] = nb;
        __builtin_prefetch(VectorOf(nb), 0, 3);
      }
    }
    for (uint32_t i = 0; i < n_batch; ++i) {
      const uint32_t nb = batch[i];
      if (i + 1 < n_batch) PrefetchVector(VectorOf(batch[i + 1]), vector_bytes);
      const float s = Score(q, nb);
      if (results.size() < ef || s > results.front().score) {
        candidates.push_back({s, nb});
        std::push_heap(candidates.begin(), candidates.end(), ByScoreLess<Candidate, Candidate>);
        if (accept(nb)) {
          results.push_back({s, nb});
          std::push_heap(results.begin(), results.end(), ByScoreGreater<Candidate, Candidate>);
          if (results.size() > ef) {
            std::pop_heap(results.begin(), results.end(), ByScoreGreater<Candidate, Candidate>);
            results.pop_back();
          }
        }
      }
    }
  }
}

std::vector<Neighbor> HnswIndex::ExactSearch(const float* q, size_t k, const LabelFilter& filter) const {
  std::vector<Neighbor> top;  // min-heap by score
  top.reserve(k + 1);
  filter.ForEach([&](uint64_t label) {
    auto it = label_to_id_.find(label);
    if (it == label_to_id_.end()) return;
    const float s = Score(q, it->second);
    if (top.size() < k) {
      top.push_back({label, s});
      std::push_heap(top.begin(), top.end(), ByScoreGreater<Neighbor, Neighbor>);
    } else if (s > top.front().score) {
      std::pop_heap(top.begin(), top.end(), ByScoreGreater<Neighbor, Neighbor>);
      top.back() = {label, s};
      std::push_heap(top.begin(), top.end(), ByScoreGreater<Neighbor, Neighbor>);
    }
  });
  std::sort(top.begin(), top.end(), ByScoreGreater<Neighbor, Neighbor>);
  return top;
}

Result<std::vector<float>> HnswIndex::SampleScores(std::span<const float> query, size_t n) const {
  FS_RETURN_IF_ERROR(CheckVector(query, "query"));
  std::vector<float> out;
  if (n == 0 || live_count_ == 0) return out;
  std::vector<float> q(vector_floats_, 0.0f);
  const float inv_norm = 1.0f / std::sqrt(kernels::SquaredNorm(query.data(), query.size()));
  for (size_t i = 0; i < options_.dim; ++i) q[i] = query[i] * inv_norm;
  // Every stride-th node; tombstones are skipped, so a little more than n/stride is walked.
  const size_t stride = std::max<size_t>(1, live_count_ / n);
  out.reserve(std::min(n, live_count_));
  for (uint32_t id = 0; id < node_count_ && out.size() < n; id += static_cast<uint32_t>(stride)) {
    uint32_t live = id;
    while (live < node_count_ && deleted_[live] != 0) ++live;
    if (live == node_count_) break;
    out.push_back(Score(q.data(), live));
  }
  return out;
}

Result<std::vector<Neighbor>> HnswIndex::Search(std::span<const float> query, size_t k, size_t ef,
                                                const LabelFilter* filter) const {
  FS_RETURN_IF_ERROR(CheckVector(query, "query"));
  if (k == 0 || live_count_ == 0) return std::vector<Neighbor>{};
  if (filter != nullptr && filter->count() == 0) return std::vector<Neighbor>{};

  std::unique_ptr<Scratch> scratch = AcquireScratch();
  float* q = scratch->query.data();
  const float inv_norm = 1.0f / std::sqrt(kernels::SquaredNorm(query.data(), query.size()));
  for (size_t i = 0; i < options_.dim; ++i) q[i] = query[i] * inv_norm;

  std::vector<Neighbor> out;
  const double exact_limit = std::max(static_cast<double>(options_.exact_search_below),
                                      options_.exact_search_fraction * static_cast<double>(live_count_));
  if (filter != nullptr && static_cast<double>(filter->count()) <= exact_limit) {
    out = ExactSearch(q, k, *filter);
  } else {
    ef = std::max(ef == 0 ? size_t{options_.ef_search} : ef, k);
    uint32_t cur = entry_;
    for (int l = max_level_; l > 0; --l) cur = GreedyClosest(q, cur, l, kNoNode, nullptr);
    SearchLevel(q, cur, ef, 0, /*for_build=*/false, filter, kNoNode, nullptr, *scratch);
    std::vector<Candidate>& results = scratch->results;
    std::sort(results.begin(), results.end(), ByScoreGreater<Candidate, Candidate>);
    const size_t n = std::min(k, results.size());
    out.reserve(n);
    for (size_t i = 0; i < n; ++i) out.push_back({labels_[results[i].id], results[i].score});
  }
  ReleaseScratch(std::move(scratch));
  return out;
}

size_t HnswIndex::memory_bytes() const {
  size_t bytes = chunks_.size() * node_bytes_ * kNodesPerChunk;
  bytes += labels_.capacity() * sizeof(uint64_t) + levels_.capacity() + deleted_.capacity();
  bytes += upper_.capacity() * sizeof(std::vector<uint32_t>);
  for (const auto& links : upper_) bytes += links.capacity() * sizeof(uint32_t);
  // unordered_map: one bucket pointer per bucket, one heap node (next, key, value, hash) each.
  bytes += label_to_id_.bucket_count() * sizeof(void*) + label_to_id_.size() * 32;
  bytes += free_ids_.capacity() * sizeof(uint32_t);
  return bytes;
}

}  // namespace fs::vec
