// Internal header of model/clip. The CLIP GEMMs, behind oneDNN matmul (oneDNN never appears
// outside clip_gemm.cpp): y[m, n] (+)= act(x[m, k] . W[n, k]^T + b[n]) in fp32, bf16 or int8.
// Weights are converted once, at Create(), into the layout oneDNN's kernel prefers; a primitive is
// built once per (shape, m) and cached in the GemmContext, so a forward pass allocates nothing after
// its first run at a given batch size. Activations stay fp32 at the interface: bf16/int8 Linears
// convert x into the context's scratch (int8: one dynamic symmetric scale per row).
// Outliers: trained transformers feed some GEMMs a few input channels 15-30x larger than the rest
// (the residual stream's outliers, carried through LayerNorm), written by a few weight rows far
// larger than the rest. One int8 scale per row then leaves the other channels a few levels, and
// bf16's rounding of the large products swamps the small ones. So a bf16/int8 Linear keeps in fp32
// (mixed-precision decomposition, as LLM.int8 does, but with the channels fixed at load):
//  - input channels: a context given an fp32 twin's calibration ranges (SetInputRanges, from
//    RecordInputRanges) takes each Linear's channels whose range (largest |x| over its row's median
//    |x|) exceeds kOutlierRange and kOutlierRangeRatio x the median channel's out of the reduced
//    GEMM (the second test leaves heavy-tailed inputs such as GELU outputs, where every channel has
//    a large range, alone): zeroed in the converted input and the weights, their products added in
//    fp32 before the epilogue's activation;
//  - output rows: weight rows whose norm exceeds kOutlierRowRatio x the median row's are computed
//    whole in fp32 (found from the weights alone).
// At most max(4, k / 32) channels and max(4, n / 32) rows per Linear, the largest.
// Packed-weight file: the converted weights of every Linear a context created, in creation order,
// can be written to one file (WritePacked) and memory-mapped by a later load (OpenPacked), which
// then skips reading, converting and packing them: the weights are shared page cache, not fresh
// anonymous memory, so nothing is zeroed or copied. The file is used only when its key (the caller's
// description of the source weights and options, plus the oneDNN version and CPU ISA) matches and
// each entry's shape and oneDNN layout equal what this machine would build; else it is ignored.
// Thread-safety: a GemmContext and its Linears serve one forward at a time; each GEMM runs on the
// OpenMP threads (omp_set_num_threads / the context's thread count).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"

namespace fs::clip {

enum class GemmPrecision { kFp32, kBf16, kInt8 };
enum class GemmEpilogue { kNone, kQuickGelu, kGelu };  // applied after the bias

class GemmContext;

class Linear {
 public:
  Linear();
  ~Linear();
  Linear(Linear&&) noexcept;
  Linear& operator=(Linear&&) noexcept;

  // weight: [n, k] row-major (PyTorch nn.Linear layout); bias: [n] or empty for none.
  static Result<Linear> Create(GemmContext* ctx, std::span<const float> weight,
                               std::span<const float> bias, int k, int n, GemmEpilogue epilogue);
  // The same, but the weight is asked for only when the context's packed file cannot supply it.
  using WeightSource = std::function<Result<std::span<const float>>()>;
  static Result<Linear> Create(GemmContext* ctx, const WeightSource& weight, std::span<const float> bias,
                               int k, int n, GemmEpilogue epilogue);
  // keep_fp32: this Linear computes in fp32 whatever the context's precision (a small GEMM whose
  // errors later layers amplify, such as the image tower's patch embedding).
  static Result<Linear> Create(GemmContext* ctx, const WeightSource& weight, std::span<const float> bias,
                               int k, int n, GemmEpilogue epilogue, bool keep_fp32);
  // Builds (once) what Forward needs for `m` rows; allocates. Call before the forward pass.
  Status Prepare(int m, bool accumulate);
  // x: [m, k] fp32 rows `k` apart; y: [m, n] fp32. accumulate: y += result, else y = result.
  void Forward(const float* x, int m, float* y, bool accumulate);

  // Bytes held by the converted weights (0 for a default-constructed Linear).
  size_t weight_bytes() const;
  // Input channels computed in fp32 beside the reduced GEMM (see the file comment).
  int outlier_channels() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class GemmContext {
 public:
  GemmContext(GemmPrecision precision, int threads);
  ~GemmContext();
  GemmContext(const GemmContext&) = delete;
  GemmContext& operator=(const GemmContext&) = delete;
  GemmPrecision precision() const;
  // GFLOP done by Forward() calls so far (2*m*n*k each), for benchmarks.
  double gflop() const;

  // Calibration. While on, every Forward notes the largest |x| of each input channel, per Linear.
  void RecordInputRanges(bool on);
  // The ranges noted so far, one vector of k values per Linear in creation order (empty for a
  // Linear that never ran).
  std::vector<std::vector<float>> TakeInputRanges();
  // Before the first Linear::Create of a bf16/int8 context: an fp32 twin's ranges (same Linears,
  // same order), from which each Linear picks its outlier channels. Without it none are picked.
  void SetInputRanges(std::vector<std::vector<float>> ranges);
  // Thresholds of the outlier decomposition (see the file comment). A Gaussian channel's range over
  // a few hundred rows is about 5.
  static constexpr float kOutlierRange = 12.0f;
  static constexpr float kOutlierRangeRatio = 3.0f;
  static constexpr float kOutlierRowRatio = 4.0f;

  // Before the first Linear::Create: maps the packed file at `path` and serves Linears from it when
  // its key equals `key`. OK = usable; NotFound = no file; other errors say why it is ignored
  // (stale key, another oneDNN or CPU, damaged). Never fatal: the Linears are then packed here.
  Status OpenPacked(const std::string& path, const std::string& key);
  // Linears created so far that came from the packed file / were converted and packed here.
  int packed_hits() const;
  int packed_misses() const;
  // After the last Create, with every Linear alive: writes all their weights to `path` (a temporary
  // file beside it, fsynced, then renamed over it, so a reader never sees half a file).
  Status WritePacked(const std::string& path, const std::string& key) const;

 private:
  friend class Linear;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fs::clip
