// HnswIndex::Save / Load: the snapshot file (docs/formats/hnsw-snapshot.md). Little-endian,
// fixed-width fields, a 64-bit checksum over everything before it. Load verifies the checksum
// before trusting a single field, then validates every count and id, so a damaged file yields
// kCorruption, never a crash or an index that walks out of bounds.
#include <bit>
#include <cmath>
#include <cstring>

#include "vector/hnsw.h"
#include "vector/hnsw_snapshot_internal.h"

namespace fs::vec {

static_assert(std::endian::native == std::endian::little, "snapshot I/O assumes little-endian");

namespace {

constexpr char kMagic[8] = {'F', 'S', 'H', 'N', 'S', 'W', 'I', 'X'};
constexpr uint32_t kFormatVersion = 1;

uint64_t Load64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

uint64_t Mix64(uint64_t h) {  // MurmurHash3's fmix64 finaliser
  h ^= h >> 33;
  h *= 0xFF51AFD7ED558CCDull;
  h ^= h >> 33;
  h *= 0xC4CEB9FE1A85EC53ull;
  h ^= h >> 33;
  return h;
}

class Writer {
 public:
  explicit Writer(size_t reserve) { out_.reserve(reserve); }
  template <typename T>
  void Put(T v) {
    out_.append(reinterpret_cast<const char*>(&v), sizeof(T));
  }
  void Bytes(const void* p, size_t n) { out_.append(static_cast<const char*>(p), n); }
  std::string& out() { return out_; }

 private:
  std::string out_;
};

class Reader {
 public:
  Reader(const char* p, size_t n) : p_(p), end_(p + n) {}
  template <typename T>
  bool Get(T* v) {
    return Bytes(v, sizeof(T));
  }
  bool Bytes(void* dst, size_t n) {
    if (static_cast<size_t>(end_ - p_) < n) return false;
    std::memcpy(dst, p_, n);
    p_ += n;
    return true;
  }
  bool AtEnd() const { return p_ == end_; }

 private:
  const char* p_;
  const char* end_;
};

}  // namespace

namespace internal {

// Four independent multiply-rotate lanes over 8-byte words: several GB/s, so checking a
// 2 GB snapshot costs well under a second; any truncation or flipped bit changes it.
uint64_t SnapshotChecksum(const char* data, size_t n) {
  constexpr uint64_t kP1 = 0x9E3779B185EBCA87ull;
  constexpr uint64_t kP2 = 0xC2B2AE3D27D4EB4Full;
  uint64_t lane[4] = {kP1, kP2, kP1 ^ kP2, ~kP1};
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (size_t l = 0; l < 4; ++l) {
      lane[l] = std::rotl(lane[l] + Load64(data + i + 8 * l) * kP2, 31) * kP1;
    }
  }
  uint64_t tail = 0;
  for (size_t shift = 0; i < n; ++i, shift += 8) {
    tail ^= static_cast<uint64_t>(static_cast<unsigned char>(data[i])) << (shift % 64);
    if (shift % 64 == 56) tail = Mix64(tail);
  }
  uint64_t h = static_cast<uint64_t>(n) * kP1;
  for (uint64_t v : lane) h = Mix64(h ^ v) * kP2;
  return Mix64(h ^ Mix64(tail));
}

}  // namespace internal

Status HnswIndex::Save(Env* env, const std::string& path, uint64_t last_change_seq) const {
  Writer w(static_cast<size_t>(node_count_) * (node_bytes_ + 16) + 256);
  w.Bytes(kMagic, sizeof(kMagic));
  w.Put<uint32_t>(kFormatVersion);
  w.Put<uint32_t>(0);  // flags, reserved
  w.Put<uint32_t>(options_.dim);
  w.Put<uint32_t>(options_.m);
  w.Put<uint32_t>(options_.ef_construction);
  w.Put<uint32_t>(options_.ef_search);
  w.Put<uint64_t>(options_.seed);
  w.Put<uint64_t>(options_.exact_search_below);
  w.Put<double>(options_.exact_search_fraction);
  w.Put<uint32_t>(static_cast<uint32_t>(options_.model_id.size()));
  w.Bytes(options_.model_id.data(), options_.model_id.size());
  w.Put<uint64_t>(last_change_seq);
  w.Put<uint64_t>(rng_state_);
  w.Put<uint32_t>(node_count_);
  w.Put<uint32_t>(entry_);
  w.Put<int32_t>(max_level_);
  w.Put<uint64_t>(live_count_);
  for (uint32_t id = 0; id < node_count_; ++id) {
    w.Put<uint64_t>(labels_[id]);
    w.Put<uint8_t>(levels_[id]);
    w.Put<uint8_t>(deleted_[id]);
    w.Bytes(VectorOf(id), options_.dim * sizeof(float));
    for (int level = 0; level <= levels_[id]; ++level) {
      const uint32_t* links = LinksAt(id, level);
      w.Bytes(links, (1 + size_t{links[0]}) * sizeof(uint32_t));
    }
  }
  const uint64_t checksum = internal::SnapshotChecksum(w.out().data(), w.out().size());
  w.Put<uint64_t>(checksum);
  return env->WriteFileAtomic(path, w.out()).WithContext("saving vector index snapshot");
}

Result<std::unique_ptr<HnswIndex>> HnswIndex::Load(Env* env, const std::string& path,
                                                   uint64_t* last_change_seq) {
  FS_ASSIGN_OR_RETURN(std::string data, env->ReadFile(path));
  auto corrupt = [&](const std::string& what) {
    return Status::Corruption("vector index snapshot '" + path + "' " + what +
                              "; rebuild it from the database");
  };
  if (data.size() < sizeof(kMagic) + 8 || std::memcmp(data.data(), kMagic, sizeof(kMagic)) != 0) {
    return corrupt("is not an HNSW snapshot (bad magic or too short)");
  }
  const size_t body = data.size() - 8;
  if (internal::SnapshotChecksum(data.data(), body) != Load64(data.data() + body)) {
    return corrupt("is truncated or damaged (checksum mismatch)");
  }

  Reader r(data.data() + sizeof(kMagic), body - sizeof(kMagic));
  uint32_t version = 0, flags = 0;
  if (!r.Get(&version) || !r.Get(&flags)) return corrupt("has a short header");
  if (version > kFormatVersion) {
    return Status::Unsupported("vector index snapshot '" + path + "' has format version " +
                               std::to_string(version) + ", newer than this build reads (" +
                               std::to_string(kFormatVersion) + "); upgrade filesearch or rebuild");
  }
  HnswOptions options;
  uint32_t model_len = 0;
  if (!r.Get(&options.dim) || !r.Get(&options.m) || !r.Get(&options.ef_construction) ||
      !r.Get(&options.ef_search) || !r.Get(&options.seed) || !r.Get(&options.exact_search_below) ||
      !r.Get(&options.exact_search_fraction) || !r.Get(&model_len) || model_len > 4096) {
    return corrupt("has a damaged options header");
  }
  options.model_id.resize(model_len);
  if (!r.Bytes(options.model_id.data(), model_len)) return corrupt("has a damaged model id");
  if (options.dim == 0 || options.dim > 65536 || options.m < 2 || options.m > 1024 ||
      !std::isfinite(options.exact_search_fraction)) {
    return corrupt("has impossible options (dim " + std::to_string(options.dim) + ", m " +
                   std::to_string(options.m) + ")");
  }
  uint64_t seq = 0, rng_state = 0, live_count = 0;
  uint32_t node_count = 0, entry = 0;
  int32_t max_level = 0;
  if (!r.Get(&seq) || !r.Get(&rng_state) || !r.Get(&node_count) || !r.Get(&entry) || !r.Get(&max_level) ||
      !r.Get(&live_count)) {
    return corrupt("has a damaged graph header");
  }
  if (node_count == kNoNode || max_level > kMaxLevel || max_level < -1 ||
      (node_count == 0) != (entry == kNoNode) || (node_count > 0 && entry >= node_count)) {
    return corrupt("has an impossible graph header");
  }

  auto index = std::make_unique<HnswIndex>(std::move(options));
  HnswIndex& x = *index;
  x.rng_state_ = rng_state;
  x.label_to_id_.reserve(live_count);
  for (uint32_t id = 0; id < node_count; ++id) {
    uint64_t label = 0;
    uint8_t level = 0, deleted = 0;
    if (!r.Get(&label) || !r.Get(&level) || !r.Get(&deleted)) return corrupt("has a short node");
    if (label >= kMaxLabel || level > max_level || deleted > 1) {
      return corrupt("has an impossible node " + std::to_string(id));
    }
    const uint32_t new_id = x.NewNode(level);
    x.labels_[new_id] = label;
    x.deleted_[new_id] = deleted;
    if (!r.Bytes(x.MutableVectorOf(new_id), x.options_.dim * sizeof(float))) {
      return corrupt("has a short vector");
    }
    for (int l = 0; l <= level; ++l) {
      uint32_t* links = x.MutableLinksAt(new_id, l);
      if (!r.Get(&links[0]) || links[0] > x.MaxLinks(l) || !r.Bytes(links + 1, links[0] * sizeof(uint32_t))) {
        return corrupt("has damaged links at node " + std::to_string(id));
      }
    }
    if (deleted != 0) {
      x.free_ids_.push_back(new_id);
    } else if (!x.label_to_id_.emplace(label, new_id).second) {
      return corrupt("holds label " + std::to_string(label) + " twice");
    }
  }
  if (!r.AtEnd()) return corrupt("has trailing bytes");
  if (x.label_to_id_.size() != live_count) return corrupt("has an inconsistent live count");
  // Every link must point at a node, on a level that node has.
  for (uint32_t id = 0; id < node_count; ++id) {
    for (int l = 0; l <= x.levels_[id]; ++l) {
      const uint32_t* links = x.LinksAt(id, l);
      for (uint32_t i = 0; i < links[0]; ++i) {
        if (links[1 + i] >= node_count || x.levels_[links[1 + i]] < l) {
          return corrupt("has a link out of range at node " + std::to_string(id));
        }
      }
    }
  }
  if (node_count > 0 && x.levels_[entry] != max_level) return corrupt("has a bad entry point");
  x.entry_ = node_count > 0 ? entry : kNoNode;
  x.max_level_ = max_level;
  x.live_count_ = live_count;
  if (last_change_seq != nullptr) *last_change_seq = seq;
  return index;
}

}  // namespace fs::vec
