#include "model/clip/kernels/clip_gemm.h"

#include <fcntl.h>
#include <omp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <dnnl.hpp>
#include <map>
#include <string>
#include <tuple>

#include "core/check.h"
#include "core/hash.h"
#include "model/clip/kernels/clip_kernels.h"

namespace fs::clip {
namespace {

using dnnl::memory;
using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

// Weight layouts are chosen by oneDNN for this many rows; other row counts reuse that layout.
constexpr int kLayoutRows = 64;

dt SrcType(GemmPrecision p) {
  switch (p) {
    case GemmPrecision::kBf16: return dt::bf16;
    case GemmPrecision::kInt8: return dt::s8;
    default: return dt::f32;
  }
}

// Weight packing. `w` is PyTorch's [n, k] row-major weight, i.e. the [k, n] GEMM operand stored
// transposed. We write it straight into the layout oneDNN asked for when that is one we know
// (plain "ab", or BA16a64b with 1, 2 or 4 consecutive k values interleaved for fp32, bf16 and int8):
// oneDNN's generic reorder does the same transposition several times slower, and load time is
// cold-start time.

// out [k, n] row-major; tiled so both sides stay in cache.
template <typename T>
void TransposeInto(const T* w, int n, int k, T* out) {
  constexpr int kTile = 32;
#pragma omp parallel for schedule(static)
  for (int c0 = 0; c0 < n; c0 += kTile) {
    for (int r0 = 0; r0 < k; r0 += kTile) {
      const int c1 = std::min(n, c0 + kTile), r1 = std::min(k, r0 + kTile);
      for (int r = r0; r < r1; ++r) {
        for (int c = c0; c < c1; ++c) out[static_cast<int64_t>(r) * n + c] = w[static_cast<int64_t>(c) * k + r];
      }
    }
  }
}

// BA16a64b{v}a: 64-column blocks outermost, then 16-row blocks; inside, (row / v, column, row % v).
// Padding rows/columns are zero.
template <int V, typename T>
void PackBlocked(const T* w, int n, int k, T* out) {
  const int k_blocks = (k + 15) / 16, n_blocks = (n + 63) / 64;
#pragma omp parallel for schedule(static)
  for (int nb = 0; nb < n_blocks; ++nb) {
    for (int kb = 0; kb < k_blocks; ++kb) {
      T* block = out + (static_cast<int64_t>(nb) * k_blocks + kb) * 16 * 64;
      for (int ni = 0; ni < 64; ++ni) {
        const int col = nb * 64 + ni;
        for (int ki = 0; ki < 16; ++ki) {
          const int row = kb * 16 + ki;
          block[((ki / V) * 64 + ni) * V + ki % V] =
              col < n && row < k ? w[static_cast<int64_t>(col) * k + row] : T{0};
        }
      }
    }
  }
}

// Stores w ([n, k], element type T = the weights' data type) into `dst` (layout `md`).
template <typename T>
void StoreWeights(const T* w, int n, int k, dt type, const memory::desc& md, memory& dst,
                  dnnl::engine& eng, dnnl::stream& stream) {
  auto* out = static_cast<T*>(dst.get_data_handle());
  if (md == memory::desc({k, n}, type, tag::ab)) {
    TransposeInto(w, n, k, out);
    return;
  }
  if (md == memory::desc({k, n}, type, tag::BA16a64b)) return PackBlocked<1>(w, n, k, out);
  if (md == memory::desc({k, n}, type, tag::BA16a64b2a)) return PackBlocked<2>(w, n, k, out);
  if (md == memory::desc({k, n}, type, tag::BA16a64b4a)) return PackBlocked<4>(w, n, k, out);
  std::vector<T> t(static_cast<size_t>(n) * static_cast<size_t>(k));  // any other layout: oneDNN
  TransposeInto(w, n, k, t.data());
  memory plain(memory::desc({k, n}, type, tag::ab), eng, t.data());
  dnnl::reorder(plain, dst).execute(stream, plain, dst);
  stream.wait();
}

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<void, FreeDeleter>;

// Weight storage: 2 MB-aligned and marked for transparent huge pages when large, so packing
// ~0.5 GB at load takes a few hundred page faults instead of ~130,000 (faults are dear in a VM).
Buffer AllocateWeights(size_t bytes) {
  constexpr size_t kHuge = size_t{2} << 20;
  const size_t align = bytes >= kHuge ? kHuge : 64;
  void* p = std::aligned_alloc(align, (bytes + align - 1) / align * align);
  FS_CHECK_MSG(p != nullptr, "out of memory for CLIP weights");
  if (align == kHuge) ::madvise(p, (bytes + align - 1) / align * align, MADV_HUGEPAGE);
  return Buffer(p);
}

size_t ElemBytes(GemmPrecision p) { return p == GemmPrecision::kFp32 ? 4 : p == GemmPrecision::kBf16 ? 2 : 1; }

// Packed-weight file, native byte order (the key pins the machine's oneDNN and ISA, so it is never
// read elsewhere):
//   PackedHeader | key bytes | PackedEntry[count] | blocks, each 4096-aligned: an entry's weights in
//   its oneDNN layout, then (int8) its n per-column scales, then (when it has outlier channels) their
//   c indices (int32) followed by their fp32 weights [c, n], then (when it has outlier rows) their r
//   indices (int32) followed by their fp32 weights, transposed [k, r].
constexpr char kPackedMagic[8] = {'F', 'S', 'P', 'A', 'C', 'K', 'W', '1'};
constexpr uint32_t kPackedVersion = 3;
constexpr uint64_t kPackedAlign = 4096;

struct PackedHeader {
  char magic[8];
  uint32_t version;
  uint32_t count;       // entries
  uint64_t key_bytes;
  uint64_t file_bytes;  // the whole file: a truncated one is refused before anything is mapped in
  char table_sha256[64];  // hex, of the key bytes followed by the entry table
};

struct PackedEntry {
  int32_t k, n, precision, epilogue;
  uint64_t weights_offset, weights_bytes;
  uint64_t scales_offset, scales_count;
  uint64_t outliers_offset, outliers_count;
  uint64_t rows_offset, rows_count;
  dnnl_memory_desc_t md;
};

uint64_t AlignUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

// The caller's key plus what decides the layout oneDNN picks on this machine.
std::string FullPackedKey(const std::string& key, GemmPrecision precision) {
  const dnnl_version_t* v = dnnl_version();
  return key + ";precision=" + std::to_string(static_cast<int>(precision)) + ";onednn=" +
         std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch) + "-" +
         v->hash + ";isa=" + std::to_string(static_cast<int>(dnnl_get_effective_cpu_isa())) +
         ";layout_rows=" + std::to_string(kLayoutRows) + ";entry=" + std::to_string(sizeof(PackedEntry));
}

std::string PackedTableSha(std::string_view key, const PackedEntry* entries, size_t count) {
  Sha256Stream sha;
  sha.Update(key);
  sha.Update(std::string_view(reinterpret_cast<const char*>(entries), count * sizeof(PackedEntry)));
  return sha.FinishHex();
}

struct PackedMap {
  void* base = nullptr;
  size_t size = 0;
  std::vector<PackedEntry> entries;
  ~PackedMap() {
    if (base != nullptr) ::munmap(base, size);
  }
  const std::byte* at(uint64_t offset) const { return static_cast<const std::byte*>(base) + offset; }
};

Status WriteAll(int fd, const void* data, size_t bytes, const std::string& path) {
  const auto* p = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t n = ::write(fd, p, std::min<size_t>(bytes, size_t{1} << 30));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::IOError("cannot write '" + path + "': " + std::strerror(errno));
    p += n;
    bytes -= static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status WriteZeros(int fd, size_t bytes, const std::string& path) {
  static const char kZeros[kPackedAlign] = {};
  while (bytes > 0) {
    const size_t n = std::min<size_t>(bytes, sizeof(kZeros));
    FS_RETURN_IF_ERROR(WriteAll(fd, kZeros, n, path));
    bytes -= n;
  }
  return Status::Ok();
}

}  // namespace

struct GemmContext::Impl {
  GemmPrecision precision;
  int threads;
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  struct Entry {
    dnnl::matmul prim;
    memory src, dst;
  };
  // (m, k, n, epilogue, accumulate) -> primitive with its src/dst memory objects.
  std::map<std::tuple<int, int, int, int, bool>, Entry> cache;
  std::vector<std::byte> src_scratch;  // x converted to bf16 / s8
  std::vector<float> acc_scratch;      // int8: raw dot products [m, n]
  std::vector<float> row_scales;       // int8: per-row activation scales [m]
  std::vector<float> ones;             // 1.0f, for applying an activation after an outlier correction
  std::vector<float> row_scratch;      // int8 with outliers: [threads, k], a row with them zeroed
  double gflop = 0;

  // Calibration (RecordInputRanges / SetInputRanges): per Linear, per input channel, max |x|.
  bool recording = false;
  std::vector<std::vector<float>> recorded;
  std::vector<std::vector<float>> ranges;

  // Packed-weight file (see the header): the mapping Linears may point into, and one record per
  // Linear created, in order, for WritePacked (the pointers are into heap-stable Linear::Impls).
  std::unique_ptr<PackedMap> packed;
  struct Record {
    int k, n, epilogue, precision;
    const memory::desc* md;
    const memory* weights;
    const std::vector<float>* scales;
    const std::vector<int32_t>* outliers;
    const std::vector<float>* outlier_weights;
    const std::vector<int32_t>* rows;
    const std::vector<float>* row_weights;
  };
  std::vector<Record> records;
  int hits = 0, misses = 0;

  // The packed file's entry for the index-th Linear, if it holds exactly what this machine would
  // build for it (shape, precision, epilogue, oneDNN layout, scales).
  const PackedEntry* FindPacked(size_t index, int k, int n, GemmEpilogue epilogue, const memory::desc& md,
                                GemmPrecision linear_precision) const {
    if (packed == nullptr || index >= packed->entries.size()) return nullptr;
    const PackedEntry& e = packed->entries[index];
    const size_t scales = linear_precision == GemmPrecision::kInt8 ? static_cast<size_t>(n) : 0;
    const bool same = e.k == k && e.n == n && e.precision == static_cast<int32_t>(linear_precision) &&
                      e.epilogue == static_cast<int32_t>(epilogue) && memory::desc(e.md) == md &&
                      e.weights_bytes == md.get_size() && e.scales_count == scales &&
                      e.outliers_count <= static_cast<uint64_t>(k) && e.rows_count <= static_cast<uint64_t>(n);
    return same ? &e : nullptr;
  }
};

GemmContext::GemmContext(GemmPrecision precision, int threads) : impl_(std::make_unique<Impl>()) {
  impl_->precision = precision;
  impl_->threads = threads;
}
GemmContext::~GemmContext() = default;
GemmPrecision GemmContext::precision() const { return impl_->precision; }
double GemmContext::gflop() const { return impl_->gflop; }
int GemmContext::packed_hits() const { return impl_->hits; }
int GemmContext::packed_misses() const { return impl_->misses; }

void GemmContext::RecordInputRanges(bool on) { impl_->recording = on; }
std::vector<std::vector<float>> GemmContext::TakeInputRanges() {
  std::vector<std::vector<float>> out = std::move(impl_->recorded);
  out.resize(impl_->records.size());
  impl_->recorded.clear();
  return out;
}
void GemmContext::SetInputRanges(std::vector<std::vector<float>> ranges) { impl_->ranges = std::move(ranges); }

Status GemmContext::OpenPacked(const std::string& path, const std::string& key) {
  impl_->packed.reset();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    std::string m = "cannot open '" + path + "': " + std::strerror(err);
    return err == ENOENT ? Status::NotFound(m) : Status::IOError(m);
  }
  struct stat st{};
  const bool stat_ok = ::fstat(fd, &st) == 0;
  const auto size = stat_ok ? static_cast<uint64_t>(st.st_size) : 0;
  void* base = size >= sizeof(PackedHeader) ? ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
  ::close(fd);
  auto bad = [&](const std::string& why) { return Status::Corruption("packed weights '" + path + "': " + why); };
  if (base == MAP_FAILED) return bad("too short or cannot be mapped");
  auto map = std::make_unique<PackedMap>();
  map->base = base;
  map->size = size;
  PackedHeader h;
  std::memcpy(&h, base, sizeof(h));
  if (std::memcmp(h.magic, kPackedMagic, sizeof(kPackedMagic)) != 0) return bad("not a packed-weight file");
  if (h.version != kPackedVersion) return bad("format version " + std::to_string(h.version));
  if (h.file_bytes != size) return bad("truncated (" + std::to_string(size) + " of " + std::to_string(h.file_bytes) + " bytes)");
  const std::string full_key = FullPackedKey(key, impl_->precision);
  const uint64_t table_offset = sizeof(PackedHeader) + h.key_bytes;
  if (h.key_bytes == full_key.size() && table_offset > size) return bad("truncated key");
  if (h.key_bytes != full_key.size() || h.count > (size - std::min(size, table_offset)) / sizeof(PackedEntry) ||
      std::memcmp(map->at(sizeof(PackedHeader)), full_key.data(), full_key.size()) != 0) {
    return Status::FailedPrecondition("packed weights '" + path + "' were made from other weights, options, "
                                      "oneDNN or CPU; packing again");
  }
  map->entries.resize(h.count);
  std::memcpy(map->entries.data(), map->at(table_offset), h.count * sizeof(PackedEntry));
  if (PackedTableSha(full_key, map->entries.data(), h.count) != std::string_view(h.table_sha256, 64)) {
    return bad("entry table checksum mismatch");
  }
  for (const PackedEntry& e : map->entries) {
    const bool in_bounds = e.weights_offset % kPackedAlign == 0 && e.weights_offset <= size &&
                           e.weights_bytes <= size - e.weights_offset && e.scales_offset <= size &&
                           e.scales_offset % alignof(float) == 0 &&
                           e.scales_count <= (size - e.scales_offset) / sizeof(float) &&
                           e.outliers_offset <= size && e.outliers_offset % alignof(float) == 0 &&
                           e.outliers_count <= (size - e.outliers_offset) / sizeof(float) /
                                                   (1 + static_cast<uint64_t>(std::max(e.n, 0))) &&
                           e.rows_offset <= size && e.rows_offset % alignof(float) == 0 &&
                           e.rows_count <= (size - e.rows_offset) / sizeof(float) /
                                               (1 + static_cast<uint64_t>(std::max(e.k, 0))) &&
                           e.md.ndims == 2;  // checked before oneDNN compares it with anything
    if (!in_bounds) return bad("an entry points outside the file");
  }
  impl_->packed = std::move(map);
  return Status::Ok();
}

Status GemmContext::WritePacked(const std::string& path, const std::string& key) const {
  const std::string full_key = FullPackedKey(key, impl_->precision);
  std::vector<PackedEntry> entries(impl_->records.size());
  uint64_t offset = AlignUp(sizeof(PackedHeader) + full_key.size() + entries.size() * sizeof(PackedEntry), kPackedAlign);
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto& r = impl_->records[i];
    PackedEntry& e = entries[i];
    std::memset(&e, 0, sizeof(e));
    e.k = r.k;
    e.n = r.n;
    e.precision = r.precision;
    e.epilogue = r.epilogue;
    e.md = r.md->data;
    e.weights_offset = offset;
    e.weights_bytes = r.md->get_size();
    offset = AlignUp(offset + e.weights_bytes, kPackedAlign);
    e.scales_count = r.scales->size();
    e.scales_offset = e.scales_count > 0 ? offset : 0;
    if (e.scales_count > 0) offset = AlignUp(offset + e.scales_count * sizeof(float), kPackedAlign);
    e.outliers_count = r.outliers->size();
    e.outliers_offset = e.outliers_count > 0 ? offset : 0;
    if (e.outliers_count > 0) {
      offset = AlignUp(offset + e.outliers_count * sizeof(int32_t) + r.outlier_weights->size() * sizeof(float),
                       kPackedAlign);
    }
    e.rows_count = r.rows->size();
    e.rows_offset = e.rows_count > 0 ? offset : 0;
    if (e.rows_count > 0) {
      offset = AlignUp(offset + e.rows_count * sizeof(int32_t) + r.row_weights->size() * sizeof(float), kPackedAlign);
    }
  }
  PackedHeader h;
  std::memset(&h, 0, sizeof(h));
  std::memcpy(h.magic, kPackedMagic, sizeof(kPackedMagic));
  h.version = kPackedVersion;
  h.count = static_cast<uint32_t>(entries.size());
  h.key_bytes = full_key.size();
  h.file_bytes = offset;
  const std::string sha = PackedTableSha(full_key, entries.data(), entries.size());
  std::memcpy(h.table_sha256, sha.data(), 64);

  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IOError("cannot create '" + tmp + "': " + std::strerror(errno));
  auto write_all = [&]() -> Status {
    FS_RETURN_IF_ERROR(WriteAll(fd, &h, sizeof(h), tmp));
    FS_RETURN_IF_ERROR(WriteAll(fd, full_key.data(), full_key.size(), tmp));
    FS_RETURN_IF_ERROR(WriteAll(fd, entries.data(), entries.size() * sizeof(PackedEntry), tmp));
    uint64_t at = sizeof(h) + full_key.size() + entries.size() * sizeof(PackedEntry);
    for (size_t i = 0; i < entries.size(); ++i) {
      const PackedEntry& e = entries[i];
      FS_RETURN_IF_ERROR(WriteZeros(fd, e.weights_offset - at, tmp));
      FS_RETURN_IF_ERROR(WriteAll(fd, impl_->records[i].weights->get_data_handle(), e.weights_bytes, tmp));
      at = e.weights_offset + e.weights_bytes;
      if (e.scales_count > 0) {
        FS_RETURN_IF_ERROR(WriteZeros(fd, e.scales_offset - at, tmp));
        FS_RETURN_IF_ERROR(WriteAll(fd, impl_->records[i].scales->data(), e.scales_count * sizeof(float), tmp));
        at = e.scales_offset + e.scales_count * sizeof(float);
      }
      // Indices, then their fp32 weights, at `offset` (nothing when there are none).
      auto write_indexed = [&](uint64_t where, const std::vector<int32_t>& indices,
                               const std::vector<float>& weights) -> Status {
        if (indices.empty()) return Status::Ok();
        FS_RETURN_IF_ERROR(WriteZeros(fd, where - at, tmp));
        FS_RETURN_IF_ERROR(WriteAll(fd, indices.data(), indices.size() * sizeof(int32_t), tmp));
        FS_RETURN_IF_ERROR(WriteAll(fd, weights.data(), weights.size() * sizeof(float), tmp));
        at = where + indices.size() * sizeof(int32_t) + weights.size() * sizeof(float);
        return Status::Ok();
      };
      const auto& r = impl_->records[i];
      FS_RETURN_IF_ERROR(write_indexed(e.outliers_offset, *r.outliers, *r.outlier_weights));
      FS_RETURN_IF_ERROR(write_indexed(e.rows_offset, *r.rows, *r.row_weights));
    }
    FS_RETURN_IF_ERROR(WriteZeros(fd, h.file_bytes - at, tmp));
    if (::fsync(fd) != 0) return Status::IOError("cannot fsync '" + tmp + "': " + std::strerror(errno));
    return Status::Ok();
  };
  Status s = write_all();
  ::close(fd);
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    s = Status::IOError("cannot rename '" + tmp + "' over '" + path + "': " + std::strerror(errno));
  }
  if (!s.ok()) ::unlink(tmp.c_str());
  return s;
}

// The entries of `range` above both `threshold` and `ratio` x their median, at most max(4, size / 32),
// the largest; ascending.
std::vector<int32_t> PickOutliers(const std::vector<float>& range, float threshold, float ratio) {
  if (range.empty()) return {};
  std::vector<float> sorted = range;
  const auto middle = sorted.begin() + static_cast<std::ptrdiff_t>(sorted.size() / 2);
  std::nth_element(sorted.begin(), middle, sorted.end());
  threshold = std::max(threshold, ratio * *middle);
  std::vector<int32_t> picked;
  for (size_t j = 0; j < range.size(); ++j) {
    if (range[j] > threshold) picked.push_back(static_cast<int32_t>(j));
  }
  const size_t cap = std::max<size_t>(4, range.size() / 32);
  if (picked.size() > cap) {
    std::partial_sort(picked.begin(), picked.begin() + static_cast<std::ptrdiff_t>(cap), picked.end(),
                      [&](int32_t a, int32_t b) { return range[static_cast<size_t>(a)] > range[static_cast<size_t>(b)]; });
    picked.resize(cap);
    std::sort(picked.begin(), picked.end());
  }
  return picked;
}

struct Linear::Impl {
  GemmContext::Impl* ctx = nullptr;
  size_t index = 0;  // creation order in the context
  int k = 0, n = 0;
  GemmPrecision precision = GemmPrecision::kFp32;  // the context's, or fp32 for a keep_fp32 Linear
  GemmEpilogue epilogue = GemmEpilogue::kNone;
  bool has_bias = false;
  memory::desc wei_md;
  Buffer weight_buf;  // backs `weights`
  memory weights, bias;
  std::vector<float> weight_scales;  // int8: per output column
  std::vector<int32_t> outliers;     // input channels computed in fp32 beside the reduced GEMM
  std::vector<float> outlier_weights;  // their weights, [outliers, n]
  std::vector<int32_t> rows;           // output channels (weight rows far larger than the rest) in fp32
  std::vector<float> row_weights;      // their weights, transposed: [k, rows]
  std::vector<float> row_bias;         // their biases [rows] (zero in the reduced GEMM's bias)
  std::vector<float> row_out;          // [m, rows] scratch

  // The epilogue fused into the GEMM: none when an outlier correction must come before the
  // activation (it is then applied after the correction).
  GemmEpilogue fused_epilogue() const {
    return outliers.empty() && rows.empty() ? epilogue : GemmEpilogue::kNone;
  }

  // Picks the output rows to keep in fp32: weight rows whose norm is far above the median row's.
  // Trained towers write their residual outlier channels through such rows; with one scale per
  // input row, their large outputs carry errors large enough to swamp the small channels downstream.
  void PickRows(std::span<const float> weight) {
    std::vector<float> norms(static_cast<size_t>(n));
    for (size_t r = 0; r < norms.size(); ++r) {
      double sum = 0;
      for (size_t j = 0; j < static_cast<size_t>(k); ++j) {
        const double v = weight[r * static_cast<size_t>(k) + j];
        sum += v * v;
      }
      norms[r] = static_cast<float>(std::sqrt(sum));
    }
    rows = PickOutliers(norms, 0.0f, GemmContext::kOutlierRowRatio);
    row_weights.resize(static_cast<size_t>(k) * rows.size());  // [k, rows]: the products vectorise
    for (size_t j = 0; j < static_cast<size_t>(k); ++j) {
      for (size_t o = 0; o < rows.size(); ++o) {
        row_weights[j * rows.size() + o] = weight[static_cast<size_t>(rows[o]) * static_cast<size_t>(k) + j];
      }
    }
  }

  // fp32/bf16: bias, activation and residual sum fused into oneDNN's kernel. int8: none; the
  // raw int32 dot products (as f32) get scales, bias, activation and the sum from our epilogue, as
  // oneDNN 2.6 falls back from its VNNI kernel to a slower one when scales change per call.
  dnnl::primitive_attr Attr(bool accumulate) const {
    dnnl::primitive_attr attr;
    if (precision == GemmPrecision::kInt8) return attr;
    dnnl::post_ops ops;
    if (accumulate) ops.append_sum(1.0f);
    const GemmEpilogue fused = fused_epilogue();
    if (fused == GemmEpilogue::kQuickGelu) ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_swish, 1.702f, 0.0f);
    if (fused == GemmEpilogue::kGelu) ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_gelu_erf, 0.0f, 0.0f);
    attr.set_post_ops(ops);
    return attr;
  }

  dnnl::matmul::primitive_desc Pd(int m, const memory::desc& wei, bool accumulate) const {
    const bool int8 = precision == GemmPrecision::kInt8;
    memory::desc src({m, k}, SrcType(precision), tag::ab);
    memory::desc dst({m, n}, dt::f32, tag::ab);
    memory::desc bias_md = has_bias && !int8 ? memory::desc({1, n}, dt::f32, tag::ab) : memory::desc();
    return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, wei, bias_md, dst), Attr(accumulate),
                                        ctx->engine);
  }

  // Converts `weight` ([n, k] fp32) to the context's precision into `weights` (allocated, layout
  // wei_md); int8 also sets the per-column scales.
  void Pack(std::span<const float> weight, dnnl::engine& eng, dnnl::stream& stream) {
    std::vector<float> kept;  // with outliers: the weight without their columns, which go to fp32
    if (precision != GemmPrecision::kFp32) PickRows(weight);
    if (!outliers.empty() || !rows.empty()) {
      kept.assign(weight.begin(), weight.end());
      for (int32_t r : rows) {  // computed whole in fp32
        std::fill_n(kept.begin() + static_cast<std::ptrdiff_t>(r) * k, k, 0.0f);
      }
      const size_t c = outliers.size();
      outlier_weights.assign(c * static_cast<size_t>(n), 0.0f);
      for (size_t col = 0; col < static_cast<size_t>(n); ++col) {
        for (size_t o = 0; o < c; ++o) {
          float& w = kept[col * static_cast<size_t>(k) + static_cast<size_t>(outliers[o])];
          outlier_weights[o * static_cast<size_t>(n) + col] = w;  // 0 in fp32 rows (kept[] is 0 there)
          w = 0.0f;
        }
      }
      weight = kept;
    }
    if (precision == GemmPrecision::kInt8) {
      // Symmetric per-output-column scales: w = scale[col] * q, q in [-127, 127].
      weight_scales.resize(static_cast<size_t>(n));
      std::vector<int8_t> q(weight.size());
      const ClipKernels& kernels = BestClipKernels();
      for (int col = 0; col < n; ++col) {
        const float* w = weight.data() + static_cast<size_t>(col) * static_cast<size_t>(k);
        const float amax = kernels.abs_max(w, static_cast<size_t>(k));
        weight_scales[static_cast<size_t>(col)] = amax > 0 ? amax / 127.0f : 1.0f;
        kernels.quantize_s8(w, q.data() + static_cast<size_t>(col) * static_cast<size_t>(k),
                            static_cast<size_t>(k), 1.0f / weight_scales[static_cast<size_t>(col)]);
      }
      StoreWeights(q.data(), n, k, dt::s8, wei_md, weights, eng, stream);
    } else if (precision == GemmPrecision::kBf16) {
      std::vector<uint16_t> b16(weight.size());
      BestClipKernels().to_bf16(weight.data(), b16.data(), weight.size());
      StoreWeights(b16.data(), n, k, dt::bf16, wei_md, weights, eng, stream);
    } else {
      StoreWeights(weight.data(), n, k, dt::f32, wei_md, weights, eng, stream);
    }
  }
};

Linear::Linear() = default;
Linear::~Linear() = default;
Linear::Linear(Linear&&) noexcept = default;
Linear& Linear::operator=(Linear&&) noexcept = default;
size_t Linear::weight_bytes() const {
  return impl_ ? impl_->wei_md.get_size() + (impl_->outlier_weights.size() + impl_->row_weights.size()) * sizeof(float)
               : 0;
}
int Linear::outlier_channels() const {
  return impl_ ? static_cast<int>(impl_->outliers.size() + impl_->rows.size()) : 0;
}

Result<Linear> Linear::Create(GemmContext* ctx, std::span<const float> weight,
                              std::span<const float> bias, int k, int n, GemmEpilogue epilogue) {
  return Create(ctx, [weight]() -> Result<std::span<const float>> { return weight; }, bias, k, n, epilogue);
}

Result<Linear> Linear::Create(GemmContext* ctx, const WeightSource& weight_source, std::span<const float> bias,
                              int k, int n, GemmEpilogue epilogue) {
  return Create(ctx, weight_source, bias, k, n, epilogue, false);
}

Result<Linear> Linear::Create(GemmContext* ctx, const WeightSource& weight_source, std::span<const float> bias,
                              int k, int n, GemmEpilogue epilogue, bool keep_fp32) {
  FS_CHECK(bias.empty() || bias.size() == static_cast<size_t>(n));
  Linear linear;
  linear.impl_ = std::make_unique<Impl>();
  Impl& im = *linear.impl_;
  im.ctx = ctx->impl_.get();
  im.k = k;
  im.n = n;
  im.epilogue = epilogue;
  im.has_bias = !bias.empty();
  const GemmPrecision precision = keep_fp32 ? GemmPrecision::kFp32 : ctx->precision();
  im.precision = precision;
  im.index = im.ctx->records.size();
  if (precision != GemmPrecision::kFp32 && im.index < im.ctx->ranges.size() &&
      im.ctx->ranges[im.index].size() == static_cast<size_t>(k)) {
    im.outliers = PickOutliers(im.ctx->ranges[im.index], GemmContext::kOutlierRange, GemmContext::kOutlierRangeRatio);
  }
  try {
    dnnl::engine& eng = im.ctx->engine;
    dnnl::stream& stream = im.ctx->stream;
    auto pd = im.Pd(kLayoutRows, memory::desc({k, n}, SrcType(precision), tag::any), false);
    im.wei_md = pd.weights_desc();
    GemmContext::Impl& cx = *im.ctx;
    const PackedEntry* hit = cx.FindPacked(cx.records.size(), k, n, epilogue, im.wei_md, precision);
    if (hit != nullptr) {  // the mapped bytes are the weights: no read, no conversion, no copy
      im.weights = memory(im.wei_md, eng, const_cast<std::byte*>(cx.packed->at(hit->weights_offset)));
      const auto* scales = reinterpret_cast<const float*>(cx.packed->at(hit->scales_offset));
      im.weight_scales.assign(scales, scales + hit->scales_count);
      const auto* outliers = reinterpret_cast<const int32_t*>(cx.packed->at(hit->outliers_offset));
      im.outliers.assign(outliers, outliers + hit->outliers_count);
      const auto* outlier_weights = reinterpret_cast<const float*>(outliers + hit->outliers_count);
      im.outlier_weights.assign(outlier_weights, outlier_weights + hit->outliers_count * static_cast<size_t>(n));
      const auto* rows = reinterpret_cast<const int32_t*>(cx.packed->at(hit->rows_offset));
      im.rows.assign(rows, rows + hit->rows_count);
      const auto* row_weights = reinterpret_cast<const float*>(rows + hit->rows_count);
      im.row_weights.assign(row_weights, row_weights + hit->rows_count * static_cast<size_t>(k));
      for (int32_t j : im.outliers) {
        if (j < 0 || j >= k) return Status::Corruption("packed weights: an outlier channel outside the matrix");
      }
      for (int32_t r : im.rows) {
        if (r < 0 || r >= n) return Status::Corruption("packed weights: an outlier row outside the matrix");
      }
    } else {
      FS_ASSIGN_OR_RETURN(std::span<const float> weight, weight_source());
      FS_CHECK(weight.size() == static_cast<size_t>(k) * static_cast<size_t>(n));
      im.weight_buf = AllocateWeights(im.wei_md.get_size());
      im.weights = memory(im.wei_md, eng, im.weight_buf.get());
      im.Pack(weight, eng, stream);
    }
    if (im.has_bias) {
      im.bias = memory(memory::desc({1, n}, dt::f32, tag::ab), eng);
      auto* b = static_cast<float*>(im.bias.get_data_handle());
      std::memcpy(b, bias.data(), bias.size() * sizeof(float));
      for (int32_t r : im.rows) {  // added with the row's fp32 result instead
        im.row_bias.push_back(b[r]);
        b[r] = 0.0f;
      }
    }
    im.row_bias.resize(im.rows.size(), 0.0f);
    stream.wait();
    ++(hit != nullptr ? cx.hits : cx.misses);
    cx.records.push_back({k, n, static_cast<int>(epilogue), static_cast<int>(precision), &im.wei_md, &im.weights, &im.weight_scales,
                          &im.outliers, &im.outlier_weights, &im.rows, &im.row_weights});
  } catch (const dnnl::error& e) {
    return Status::Internal(std::string("oneDNN could not set up a ") + std::to_string(k) + "x" +
                            std::to_string(n) + " matmul: " + e.what());
  }
  return linear;
}

Status Linear::Prepare(int m, bool accumulate) {
  Impl& im = *impl_;
  GemmContext::Impl& ctx = *im.ctx;
  const auto key = std::make_tuple(m, im.k, im.n, static_cast<int>(im.fused_epilogue()), accumulate);
  if (ctx.cache.count(key) == 0) {
    try {
      auto pd = im.Pd(m, im.wei_md, accumulate);
      GemmContext::Impl::Entry entry{dnnl::matmul(pd), memory(pd.src_desc(), ctx.engine, nullptr),
                                     memory(pd.dst_desc(), ctx.engine, nullptr)};
      ctx.cache.emplace(key, std::move(entry));
    } catch (const dnnl::error& e) {
      return Status::Internal("oneDNN could not create a " + std::to_string(m) + "x" +
                              std::to_string(im.k) + "x" + std::to_string(im.n) +
                              " matmul: " + e.what());
    }
  }
  const size_t need = static_cast<size_t>(m) * static_cast<size_t>(im.k) * ElemBytes(im.precision);
  if (im.precision != GemmPrecision::kFp32 && ctx.src_scratch.size() < need) ctx.src_scratch.resize(need);
  const size_t out = static_cast<size_t>(m) * static_cast<size_t>(im.n);
  if (im.precision == GemmPrecision::kInt8 && ctx.acc_scratch.size() < out) ctx.acc_scratch.resize(out);
  if (im.precision == GemmPrecision::kInt8 && ctx.row_scales.size() < static_cast<size_t>(m)) {
    ctx.row_scales.resize(static_cast<size_t>(m));
  }
  if (!im.rows.empty()) im.row_out.resize(std::max(im.row_out.size(), static_cast<size_t>(m) * im.rows.size()));
  if (!im.outliers.empty() || !im.rows.empty()) {
    if (accumulate && im.epilogue != GemmEpilogue::kNone) {
      return Status::Internal("an accumulating Linear with an activation cannot keep outliers in fp32");
    }
    const size_t ones = std::max({static_cast<size_t>(m), static_cast<size_t>(im.n), im.rows.size()});
    if (ctx.ones.size() < ones) ctx.ones.resize(ones, 1.0f);
    const size_t row = static_cast<size_t>(ctx.threads) * static_cast<size_t>(im.k);
    if (im.precision == GemmPrecision::kInt8 && ctx.row_scratch.size() < row) ctx.row_scratch.resize(row);
  }
  return Status::Ok();
}

void Linear::Forward(const float* x, int m, float* y, bool accumulate) {
  Impl& im = *impl_;
  GemmContext::Impl& ctx = *im.ctx;
  const GemmEpilogue fused = im.fused_epilogue();
  auto it = ctx.cache.find(std::make_tuple(m, im.k, im.n, static_cast<int>(fused), accumulate));
  FS_CHECK_MSG(it != ctx.cache.end(), "Linear::Forward before Prepare for this row count");
  auto& entry = it->second;
  const size_t k = static_cast<size_t>(im.k), n = static_cast<size_t>(im.n);
  const size_t count = static_cast<size_t>(m) * k;
  const ClipKernels& kernels = BestClipKernels();
  if (ctx.recording) {  // calibration: each input channel's largest |x| over its row's median |x|
    if (ctx.recorded.size() <= im.index) ctx.recorded.resize(im.index + 1);
    std::vector<float>& range = ctx.recorded[im.index];
    range.resize(k, 0.0f);
    std::vector<float> magnitudes(k);
    for (size_t r = 0; r < static_cast<size_t>(m); ++r) {
      for (size_t j = 0; j < k; ++j) magnitudes[j] = std::fabs(x[r * k + j]);
      const auto middle = magnitudes.begin() + static_cast<std::ptrdiff_t>(k / 2);
      std::nth_element(magnitudes.begin(), middle, magnitudes.end());
      if (*middle <= 0) continue;
      const float inv = 1.0f / *middle;
      for (size_t j = 0; j < k; ++j) range[j] = std::max(range[j], std::fabs(x[r * k + j]) * inv);
    }
  }
  void* src = const_cast<float*>(x);
  constexpr size_t kChunk = 1 << 14;
  const auto chunks = static_cast<int64_t>((count + kChunk - 1) / kChunk);
  if (im.precision == GemmPrecision::kBf16) {
    auto* dst = reinterpret_cast<uint16_t*>(ctx.src_scratch.data());
#pragma omp parallel for num_threads(ctx.threads) if (chunks >= 16)
    for (int64_t c = 0; c < chunks; ++c) {
      const size_t begin = static_cast<size_t>(c) * kChunk;
      kernels.to_bf16(x + begin, dst + begin, std::min(kChunk, count - begin));
    }
    for (size_t r = 0; r < static_cast<size_t>(m) && !im.outliers.empty(); ++r) {
      for (int32_t j : im.outliers) dst[r * k + static_cast<size_t>(j)] = 0;  // computed in fp32 below
    }
    src = dst;
  } else if (im.precision == GemmPrecision::kInt8) {
    // Symmetric per-row scales: x[r] = row_scale[r] * q[r]. Each row's result then depends only on
    // that row (integer dot products are exact), so a text or image embeds the same whatever else
    // shares its batch, and one row of large values cannot crush the precision of the others.
    // Outlier channels are zeroed first: they are computed in fp32 below, and the scale is the
    // other channels'.
    auto* dst = reinterpret_cast<int8_t*>(ctx.src_scratch.data());
    float* row_scales = ctx.row_scales.data();
    const bool split = !im.outliers.empty();
#pragma omp parallel for num_threads(ctx.threads) if (chunks >= 16)
    for (int r = 0; r < m; ++r) {
      const float* row = x + static_cast<size_t>(r) * k;
      if (split) {
        float* kept = ctx.row_scratch.data() + static_cast<size_t>(omp_get_thread_num()) * k;
        std::memcpy(kept, row, k * sizeof(float));
        for (int32_t j : im.outliers) kept[j] = 0.0f;
        row = kept;
      }
      const float amax = kernels.abs_max(row, k);
      row_scales[r] = amax > 0 ? amax / 127.0f : 1.0f;
      kernels.quantize_s8(row, dst + static_cast<size_t>(r) * k, k, 1.0f / row_scales[r]);
    }
    src = dst;
  }
  const bool int8 = im.precision == GemmPrecision::kInt8;
  entry.src.set_data_handle(src);
  entry.dst.set_data_handle(int8 ? ctx.acc_scratch.data() : y);
  dnnl_exec_arg_t args[4];
  int nargs = 0;
  args[nargs++] = {DNNL_ARG_SRC, entry.src.get()};
  args[nargs++] = {DNNL_ARG_WEIGHTS, im.weights.get()};
  args[nargs++] = {DNNL_ARG_DST, entry.dst.get()};
  if (!int8 && im.has_bias) args[nargs++] = {DNNL_ARG_BIAS, im.bias.get()};
  const dnnl_status_t status = dnnl_primitive_execute(entry.prim.get(), ctx.stream.get(), nargs, args);
  FS_CHECK_MSG(status == dnnl_success, "oneDNN matmul failed");
  auto act_of = [](GemmEpilogue e) {
    return e == GemmEpilogue::kQuickGelu ? kActQuickGelu : e == GemmEpilogue::kGelu ? kActGelu : kActNone;
  };
  const int rows_per_chunk = std::max(1, static_cast<int>(kChunk / n));
  const int row_chunks = (m + rows_per_chunk - 1) / rows_per_chunk;
  if (int8) {  // y (+)= act(acc * x_scale * w_scale[col] + bias[col])
    const int act = act_of(fused);
    const float* bias = im.has_bias ? static_cast<const float*>(im.bias.get_data_handle()) : nullptr;
#pragma omp parallel for num_threads(ctx.threads) if (row_chunks >= 16)
    for (int c = 0; c < row_chunks; ++c) {
      const int first = c * rows_per_chunk, rows = std::min(rows_per_chunk, m - first);
      const size_t offset = static_cast<size_t>(first) * n;
      kernels.scale_bias_act(ctx.acc_scratch.data() + offset, ctx.row_scales.data() + first,
                             im.weight_scales.data(), bias, act, accumulate, y + offset, static_cast<size_t>(rows), n);
    }
  }
  if (!im.outliers.empty() || !im.rows.empty()) {
    // y += x[:, outliers] . W[:, outliers]^T in fp32, then the activation; the fp32 rows' outputs.
    const int act = act_of(im.epilogue);
    const size_t r_count = im.rows.size();
    const size_t c_count = im.outliers.size();
#pragma omp parallel for num_threads(ctx.threads) if (row_chunks >= 16)
    for (int c = 0; c < row_chunks; ++c) {
      const int first = c * rows_per_chunk, rows = std::min(rows_per_chunk, m - first);
      for (int r = first; r < first + rows; ++r) {
        float* out = y + static_cast<size_t>(r) * n;
        for (size_t o = 0; o < c_count; ++o) {
          const float v = x[static_cast<size_t>(r) * k + static_cast<size_t>(im.outliers[o])];
          const float* w = im.outlier_weights.data() + o * n;
          for (size_t col = 0; col < n; ++col) out[col] += v * w[col];
        }
      }
      if (act != kActNone) {
        float* out = y + static_cast<size_t>(first) * n;
        kernels.scale_bias_act(out, ctx.ones.data(), ctx.ones.data(), nullptr, act, false, out,
                               static_cast<size_t>(rows), n);
      }
      if (r_count == 0) continue;
      float* t = im.row_out.data() + static_cast<size_t>(first) * r_count;  // [rows, r_count]
      for (int r = first; r < first + rows; ++r) {
        const float* in = x + static_cast<size_t>(r) * k;
        float* sums = t + static_cast<size_t>(r - first) * r_count;
        std::fill(sums, sums + r_count, 0.0f);
        for (size_t j = 0; j < k; ++j) {
          const float v = in[j];
          const float* w = im.row_weights.data() + j * r_count;
          for (size_t o = 0; o < r_count; ++o) sums[o] += v * w[o];
        }
      }
      kernels.scale_bias_act(t, ctx.ones.data(), ctx.ones.data(), im.row_bias.data(), act, false, t,
                             static_cast<size_t>(rows), r_count);
      for (int r = first; r < first + rows; ++r) {  // the reduced GEMM left act(0) = 0 (+ y) there
        float* out = y + static_cast<size_t>(r) * n;
        for (size_t o = 0; o < r_count; ++o) out[im.rows[o]] += t[static_cast<size_t>(r - first) * r_count + o];
      }
    }
  }
  ctx.gflop += 2e-9 * m * im.k * im.n;
}

}  // namespace fs::clip
