// AVX-512F kernels. This translation unit alone is compiled with -mavx512f -mfma (see
// CMakeLists.txt); it includes nothing but intrinsics and the kernel table so that no inline
// function compiled here can be picked by the linker for code that runs on older CPUs.
// GCC 12's own AVX-512 headers initialise "undefined" vectors from themselves, which
// -Wuninitialized reports at every use; the warning is about the header, not this file.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include "kernels/distance_internal.h"

namespace fs::kernels::internal {
namespace {

// Four independent accumulators hide the FMA latency; the tail uses a masked load, so any `n`
// works without reading past the end.
float InnerProductAvx512(const float* a, const float* b, size_t n) {
  __m512 acc0 = _mm512_setzero_ps();
  __m512 acc1 = _mm512_setzero_ps();
  __m512 acc2 = _mm512_setzero_ps();
  __m512 acc3 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), acc1);
    acc2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), acc2);
    acc3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), acc3);
  }
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
  }
  if (i < n) {
    const __mmask16 mask = static_cast<__mmask16>((1u << (n - i)) - 1u);
    acc1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, a + i), _mm512_maskz_loadu_ps(mask, b + i), acc1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc0, acc1), _mm512_add_ps(acc2, acc3)));
}

float SquaredNormAvx512(const float* a, size_t n) {
  __m512 acc0 = _mm512_setzero_ps();
  __m512 acc1 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512 x0 = _mm512_loadu_ps(a + i);
    const __m512 x1 = _mm512_loadu_ps(a + i + 16);
    acc0 = _mm512_fmadd_ps(x0, x0, acc0);
    acc1 = _mm512_fmadd_ps(x1, x1, acc1);
  }
  for (; i + 16 <= n; i += 16) {
    const __m512 x = _mm512_loadu_ps(a + i);
    acc0 = _mm512_fmadd_ps(x, x, acc0);
  }
  if (i < n) {
    const __mmask16 mask = static_cast<__mmask16>((1u << (n - i)) - 1u);
    const __m512 x = _mm512_maskz_loadu_ps(mask, a + i);
    acc1 = _mm512_fmadd_ps(x, x, acc1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

}  // namespace

const DistanceKernels kAvx512Kernels = {SimdLevel::kAvx512, &InnerProductAvx512, &SquaredNormAvx512};

}  // namespace fs::kernels::internal
