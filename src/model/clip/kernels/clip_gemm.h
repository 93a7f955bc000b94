// Internal header of model/clip. The CLIP GEMMs, behind oneDNN matmul (oneDNN never appears
// outside clip_gemm.cpp): y[m, n] (+)= act(x[m, k] . W[n, k]^T + b[n]) in fp32, bf16 or int8.
// Weights are converted once, at Create(), into the layout oneDNN's kernel prefers; a primitive is
// built once per (shape, m) and cached in the GemmContext, so a forward pass allocates nothing after
// its first run at a given batch size. Activations stay fp32 at the interface: bf16/int8 Linears
// convert x into the context's scratch (int8: one dynamic symmetric scale per call).
// Thread-safety: a GemmContext and its Linears serve one forward at a time; each GEMM runs on the
// OpenMP threads (omp_set_num_threads / the context's thread count).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
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
  // Builds (once) what Forward needs for `m` rows; allocates. Call before the forward pass.
  Status Prepare(int m, bool accumulate);
  // x: [m, k] fp32 rows `k` apart; y: [m, n] fp32. accumulate: y += result, else y = result.
  void Forward(const float* x, int m, float* y, bool accumulate);

  // Bytes held by the converted weights.
  size_t weight_bytes() const;

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

 private:
  friend class Linear;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fs::clip
