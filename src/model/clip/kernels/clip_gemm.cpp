#include "model/clip/kernels/clip_gemm.h"

#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <dnnl.hpp>
#include <map>
#include <string>
#include <tuple>

#include "core/check.h"
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
  double gflop = 0;
};

GemmContext::GemmContext(GemmPrecision precision, int threads) : impl_(std::make_unique<Impl>()) {
  impl_->precision = precision;
  impl_->threads = threads;
}
GemmContext::~GemmContext() = default;
GemmPrecision GemmContext::precision() const { return impl_->precision; }
double GemmContext::gflop() const { return impl_->gflop; }

struct Linear::Impl {
  GemmContext::Impl* ctx = nullptr;
  int k = 0, n = 0;
  GemmEpilogue epilogue = GemmEpilogue::kNone;
  bool has_bias = false;
  memory::desc wei_md;
  Buffer weight_buf;  // backs `weights`
  memory weights, bias;
  std::vector<float> weight_scales;  // int8: per output column

  // fp32/bf16: bias, activation and residual sum fused into oneDNN's kernel. int8: none; the
  // raw int32 dot products (as f32) get scales, bias, activation and the sum from our epilogue, as
  // oneDNN 2.6 falls back from its VNNI kernel to a slower one when scales change per call.
  dnnl::primitive_attr Attr(bool accumulate) const {
    dnnl::primitive_attr attr;
    if (ctx->precision == GemmPrecision::kInt8) return attr;
    dnnl::post_ops ops;
    if (accumulate) ops.append_sum(1.0f);
    if (epilogue == GemmEpilogue::kQuickGelu) ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_swish, 1.702f, 0.0f);
    if (epilogue == GemmEpilogue::kGelu) ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_gelu_erf, 0.0f, 0.0f);
    attr.set_post_ops(ops);
    return attr;
  }

  dnnl::matmul::primitive_desc Pd(int m, const memory::desc& wei, bool accumulate) const {
    const bool int8 = ctx->precision == GemmPrecision::kInt8;
    memory::desc src({m, k}, SrcType(ctx->precision), tag::ab);
    memory::desc dst({m, n}, dt::f32, tag::ab);
    memory::desc bias_md = has_bias && !int8 ? memory::desc({1, n}, dt::f32, tag::ab) : memory::desc();
    return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, wei, bias_md, dst), Attr(accumulate),
                                        ctx->engine);
  }
};

Linear::Linear() = default;
Linear::~Linear() = default;
Linear::Linear(Linear&&) noexcept = default;
Linear& Linear::operator=(Linear&&) noexcept = default;
size_t Linear::weight_bytes() const { return impl_->wei_md.get_size(); }

Result<Linear> Linear::Create(GemmContext* ctx, std::span<const float> weight,
                              std::span<const float> bias, int k, int n, GemmEpilogue epilogue) {
  FS_CHECK(weight.size() == static_cast<size_t>(k) * static_cast<size_t>(n));
  FS_CHECK(bias.empty() || bias.size() == static_cast<size_t>(n));
  Linear linear;
  linear.impl_ = std::make_unique<Impl>();
  Impl& im = *linear.impl_;
  im.ctx = ctx->impl_.get();
  im.k = k;
  im.n = n;
  im.epilogue = epilogue;
  im.has_bias = !bias.empty();
  const GemmPrecision precision = ctx->precision();
  try {
    dnnl::engine& eng = im.ctx->engine;
    dnnl::stream& stream = im.ctx->stream;
    auto pd = im.Pd(kLayoutRows, memory::desc({k, n}, SrcType(precision), tag::any), false);
    im.wei_md = pd.weights_desc();
    im.weight_buf = AllocateWeights(im.wei_md.get_size());
    im.weights = memory(im.wei_md, eng, im.weight_buf.get());
    if (precision == GemmPrecision::kInt8) {
      // Symmetric per-output-column scales: w = scale[col] * q, q in [-127, 127].
      im.weight_scales.resize(static_cast<size_t>(n));
      std::vector<int8_t> q(weight.size());
      const ClipKernels& kernels = BestClipKernels();
      for (int col = 0; col < n; ++col) {
        const float* w = weight.data() + static_cast<size_t>(col) * static_cast<size_t>(k);
        const float amax = kernels.abs_max(w, static_cast<size_t>(k));
        im.weight_scales[static_cast<size_t>(col)] = amax > 0 ? amax / 127.0f : 1.0f;
        kernels.quantize_s8(w, q.data() + static_cast<size_t>(col) * static_cast<size_t>(k),
                            static_cast<size_t>(k), 1.0f / im.weight_scales[static_cast<size_t>(col)]);
      }
      StoreWeights(q.data(), n, k, dt::s8, im.wei_md, im.weights, eng, stream);
    } else if (precision == GemmPrecision::kBf16) {
      std::vector<uint16_t> b16(weight.size());
      BestClipKernels().to_bf16(weight.data(), b16.data(), weight.size());
      StoreWeights(b16.data(), n, k, dt::bf16, im.wei_md, im.weights, eng, stream);
    } else {
      StoreWeights(weight.data(), n, k, dt::f32, im.wei_md, im.weights, eng, stream);
    }
    if (im.has_bias) {
      im.bias = memory(memory::desc({1, n}, dt::f32, tag::ab), eng);
      std::memcpy(im.bias.get_data_handle(), bias.data(), bias.size() * sizeof(float));
    }
    stream.wait();
  } catch (const dnnl::error& e) {
    return Status::Internal(std::string("oneDNN could not set up a ") + std::to_string(k) + "x" +
                            std::to_string(n) + " matmul: " + e.what());
  }
  return linear;
}

Status Linear::Prepare(int m, bool accumulate) {
  Impl& im = *impl_;
  GemmContext::Impl& ctx = *im.ctx;
  const auto key = std::make_tuple(m, im.k, im.n, static_cast<int>(im.epilogue), accumulate);
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
  const size_t need = static_cast<size_t>(m) * static_cast<size_t>(im.k) * ElemBytes(ctx.precision);
  if (ctx.precision != GemmPrecision::kFp32 && ctx.src_scratch.size() < need) ctx.src_scratch.resize(need);
  const size_t out = static_cast<size_t>(m) * static_cast<size_t>(im.n);
  if (ctx.precision == GemmPrecision::kInt8 && ctx.acc_scratch.size() < out) ctx.acc_scratch.resize(out);
  if (ctx.precision == GemmPrecision::kInt8 && ctx.row_scales.size() < static_cast<size_t>(m)) {
    ctx.row_scales.resize(static_cast<size_t>(m));
  }
  return Status::Ok();
}

void Linear::Forward(const float* x, int m, float* y, bool accumulate) {
  Impl& im = *impl_;
  GemmContext::Impl& ctx = *im.ctx;
  auto it = ctx.cache.find(std::make_tuple(m, im.k, im.n, static_cast<int>(im.epilogue), accumulate));
  FS_CHECK_MSG(it != ctx.cache.end(), "Linear::Forward before Prepare for this row count");
  auto& entry = it->second;
  const size_t count = static_cast<size_t>(m) * static_cast<size_t>(im.k);
  const ClipKernels& kernels = BestClipKernels();
  void* src = const_cast<float*>(x);
  constexpr size_t kChunk = 1 << 14;
  const auto chunks = static_cast<int64_t>((count + kChunk - 1) / kChunk);
  if (ctx.precision == GemmPrecision::kBf16) {
    auto* dst = reinterpret_cast<uint16_t*>(ctx.src_scratch.data());
#pragma omp parallel for num_threads(ctx.threads) if (chunks >= 16)
    for (int64_t c = 0; c < chunks; ++c) {
      const size_t begin = static_cast<size_t>(c) * kChunk;
      kernels.to_bf16(x + begin, dst + begin, std::min(kChunk, count - begin));
    }
    src = dst;
  } else if (ctx.precision == GemmPrecision::kInt8) {
    // Symmetric per-row scales: x[r] = row_scale[r] * q[r]. Each row's result then depends only on
    // that row (integer dot products are exact), so a text or image embeds the same whatever else
    // shares its batch, and one row of large values cannot crush the precision of the others.
    auto* dst = reinterpret_cast<int8_t*>(ctx.src_scratch.data());
    float* row_scales = ctx.row_scales.data();
    const size_t k = static_cast<size_t>(im.k);
#pragma omp parallel for num_threads(ctx.threads) if (chunks >= 16)
    for (int r = 0; r < m; ++r) {
      const float* row = x + static_cast<size_t>(r) * k;
      const float amax = kernels.abs_max(row, k);
      row_scales[r] = amax > 0 ? amax / 127.0f : 1.0f;
      kernels.quantize_s8(row, dst + static_cast<size_t>(r) * k, k, 1.0f / row_scales[r]);
    }
    src = dst;
  }
  const bool int8 = ctx.precision == GemmPrecision::kInt8;
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
  if (int8) {  // y (+)= act(acc * x_scale * w_scale[col] + bias[col])
    const int act = im.epilogue == GemmEpilogue::kQuickGelu ? kActQuickGelu
                    : im.epilogue == GemmEpilogue::kGelu    ? kActGelu
                                                            : kActNone;
    const float* bias = im.has_bias ? static_cast<const float*>(im.bias.get_data_handle()) : nullptr;
    const int rows_per_chunk = std::max(1, static_cast<int>(kChunk / static_cast<size_t>(im.n)));
    const int row_chunks = (m + rows_per_chunk - 1) / rows_per_chunk;
#pragma omp parallel for num_threads(ctx.threads) if (row_chunks >= 16)
    for (int c = 0; c < row_chunks; ++c) {
      const int first = c * rows_per_chunk, rows = std::min(rows_per_chunk, m - first);
      const size_t offset = static_cast<size_t>(first) * static_cast<size_t>(im.n);
      kernels.scale_bias_act(ctx.acc_scratch.data() + offset, ctx.row_scales.data() + first,
                             im.weight_scales.data(), bias, act, accumulate, y + offset, static_cast<size_t>(rows),
                             static_cast<size_t>(im.n));
    }
  }
  ctx.gflop += 2e-9 * m * im.k * im.n;
}

}  // namespace fs::clip
