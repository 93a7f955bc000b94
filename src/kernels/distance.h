// Distance kernels: inner products and norms over float vectors, the inner loop of vector search.
// Each kernel has a scalar reference (distance_scalar.cpp) and an AVX-512 version in its own
// translation unit (distance_avx512.cpp, compiled with its own flags). The level is chosen once,
// at first use, from cpuid; FILESEARCH_SIMD=scalar|avx512 overrides it (tests, debugging).
// Thread-safe: all functions are pure; the dispatch table is immutable after first use.
// Shapes: `a` and `b` point to `n` floats each; no alignment is required; n may be any size.
#pragma once

#include <cstddef>
#include <string_view>

namespace fs::kernels {

enum class SimdLevel { kScalar = 0, kAvx512 = 1 };

// One implementation of every kernel, for one instruction set.
struct DistanceKernels {
  SimdLevel level;
  // sum_i a[i] * b[i]
  float (*inner_product_f32)(const float* a, const float* b, size_t n);
  // sum_i a[i] * a[i]
  float (*squared_norm_f32)(const float* a, size_t n);
};

// "scalar" or "avx512".
std::string_view SimdLevelName(SimdLevel level);

// Whether this CPU (and OS) can run `level`.
bool CpuSupports(SimdLevel level);

// The kernels for `level`. FS_CHECK-fails if the CPU cannot run it (ask CpuSupports first).
const DistanceKernels& KernelsFor(SimdLevel level);

// The kernels chosen for this process: the best level the CPU supports, unless FILESEARCH_SIMD
// names a lower one (an unknown or unsupported value is ignored with a warning on stderr).
// Decided once, on the first call.
const DistanceKernels& ActiveKernels();

// Convenience wrappers over ActiveKernels().
inline float InnerProduct(const float* a, const float* b, size_t n) {
  return ActiveKernels().inner_product_f32(a, b, n);
}
inline float SquaredNorm(const float* a, size_t n) {
  return ActiveKernels().squared_norm_f32(a, n);
}

}  // namespace fs::kernels
