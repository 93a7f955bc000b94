// Scalar reference kernels: plain loops in source order, the oracle every SIMD kernel is tested
// against. Built without extra ISA flags, so they run on any x86-64.
#include "kernels/distance_internal.h"

namespace fs::kernels::internal {
namespace {

float InnerProductScalar(const float* a, const float* b, size_t n) {
  float sum = 0.0f;
  for (size_t i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

float SquaredNormScalar(const float* a, size_t n) {
  float sum = 0.0f;
  for (size_t i = 0; i < n; ++i) sum += a[i] * a[i];
  return sum;
}

}  // namespace

const DistanceKernels kScalarKernels = {SimdLevel::kScalar, &InnerProductScalar, &SquaredNormScalar};

}  // namespace fs::kernels::internal
