// Micro benchmarks of src/kernels, one per kernel and SIMD level, at embedding sizes.
//   build/fs_kernels_bench --benchmark_filter=InnerProduct
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "kernels/distance.h"

namespace fs::kernels {
namespace {

void BM_InnerProduct(benchmark::State& state, SimdLevel level) {
  if (!CpuSupports(level)) {
    state.SkipWithError("CPU lacks this SIMD level");
    return;
  }
  const size_t n = static_cast<size_t>(state.range(0));
  std::mt19937 rng(1);
  std::normal_distribution<float> gauss;
  std::vector<float> a(n), b(n);
  for (size_t i = 0; i < n; ++i) {
    a[i] = gauss(rng);
    b[i] = gauss(rng);
  }
  const DistanceKernels& kernels = KernelsFor(level);
  for (auto _ : state) {
    benchmark::DoNotOptimize(kernels.inner_product_f32(a.data(), b.data(), n));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(2 * n * sizeof(float)));
}

BENCHMARK_CAPTURE(BM_InnerProduct, scalar, SimdLevel::kScalar)->Arg(128)->Arg(512)->Arg(768);
BENCHMARK_CAPTURE(BM_InnerProduct, avx512, SimdLevel::kAvx512)->Arg(128)->Arg(512)->Arg(768);

}  // namespace
}  // namespace fs::kernels
