// Peak arithmetic throughput of this machine's cores, for the CLIP roofline (docs/benchmarks.md):
// 12 independent chains of one AVX-512 instruction on zmm registers, no memory traffic, first on
// one thread, then on every core at once (one thread pinned to each). Prints GFLOP/s (GOP/s for
// int8) per thread and in total.
//   bench/clip/peak.sh
#include <immintrin.h>
#include <pthread.h>
#include <sched.h>

#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

namespace {

constexpr int kChains = 12;
constexpr long kIters = 50'000'000;

// Each returns the operations it did per second, in G.
double Fp32Fma() {
  __m512 a[kChains];
  for (int i = 0; i < kChains; ++i) a[i] = _mm512_set1_ps(1.0f + static_cast<float>(i) * 1e-7f);
  const __m512 b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
  const auto t0 = std::chrono::steady_clock::now();
  for (long k = 0; k < kIters; ++k) {
    for (int i = 0; i < kChains; ++i) a[i] = _mm512_fmadd_ps(a[i], b, c);
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  float sink = 0;
  for (int i = 0; i < kChains; ++i) sink += _mm512_reduce_add_ps(a[i]);
  if (sink == 42.0f) std::printf(" ");
  return kIters * kChains * 16.0 * 2 / s / 1e9;  // 16 lanes, multiply + add
}

__attribute__((target("avx512bf16"))) double Bf16Dot() {
  __m512 a[kChains];
  for (int i = 0; i < kChains; ++i) a[i] = _mm512_setzero_ps();
  const __m512bh b = (__m512bh)_mm512_set1_epi16(0x3f80), c = (__m512bh)_mm512_set1_epi16(0x3380);
  const auto t0 = std::chrono::steady_clock::now();
  for (long k = 0; k < kIters; ++k) {
    for (int i = 0; i < kChains; ++i) a[i] = _mm512_dpbf16_ps(a[i], b, c);
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  float sink = 0;
  for (int i = 0; i < kChains; ++i) sink += _mm512_reduce_add_ps(a[i]);
  if (sink == 42.0f) std::printf(" ");
  return kIters * kChains * 32.0 * 2 / s / 1e9;  // 32 bf16 pairs, multiply + add
}

__attribute__((target("avx512vnni"))) double Int8Dot() {
  __m512i a[kChains];
  for (int i = 0; i < kChains; ++i) a[i] = _mm512_setzero_si512();
  const __m512i b = _mm512_set1_epi8(1), c = _mm512_set1_epi8(-1);
  const auto t0 = std::chrono::steady_clock::now();
  for (long k = 0; k < kIters; ++k) {
    for (int i = 0; i < kChains; ++i) a[i] = _mm512_dpbusd_epi32(a[i], b, c);
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  long long sink = 0;
  for (int i = 0; i < kChains; ++i) sink += _mm512_reduce_add_epi32(a[i]);
  if (sink == 42) std::printf(" ");
  return kIters * kChains * 64.0 * 2 / s / 1e9;  // 64 u8 x s8 products, multiply + add
}

void Report(const char* name, double (*fn)()) {
  const double one = fn();
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  std::vector<double> each(cores);
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < cores; ++t) {
    threads.emplace_back([&, t] {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(t, &set);
      pthread_setaffinity_np(pthread_self(), sizeof set, &set);
      each[t] = fn();
    });
  }
  for (auto& t : threads) t.join();
  double total = 0;
  std::printf("%-26s 1 thread %6.0f | %u threads:", name, one, cores);
  for (double e : each) {
    std::printf(" %6.0f", e);
    total += e;
  }
  std::printf("  total %6.0f\n", total);
}

}  // namespace

int main() {
  std::printf("peak G(FL)OP/s, 12 independent zmm chains\n");
  Report("fp32 vfmadd", Fp32Fma);
  if (__builtin_cpu_supports("avx512bf16")) Report("bf16 vdpbf16ps", Bf16Dot);
  if (__builtin_cpu_supports("avx512vnni")) Report("int8 vpdpbusd (GOP/s)", Int8Dot);
}
