#include "kernels/distance.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/check.h"
#include "kernels/distance_internal.h"

namespace fs::kernels {

std::string_view SimdLevelName(SimdLevel level) {
  switch (level) {
    case SimdLevel::kScalar:
      return "scalar";
    case SimdLevel::kAvx512:
      return "avx512";
  }
  return "unknown";
}

bool CpuSupports(SimdLevel level) {
  switch (level) {
    case SimdLevel::kScalar:
      return true;
    case SimdLevel::kAvx512:
      // GCC's and Clang's cpu model also checks that the OS saves the ZMM state (XGETBV).
      __builtin_cpu_init();
      return __builtin_cpu_supports("avx512f") != 0;
  }
  return false;
}

const DistanceKernels& KernelsFor(SimdLevel level) {
  FS_CHECK_MSG(CpuSupports(level), "requested SIMD level is not supported by this CPU");
  return level == SimdLevel::kAvx512 ? internal::kAvx512Kernels : internal::kScalarKernels;
}

namespace {

SimdLevel ChooseLevel() {
  SimdLevel best = CpuSupports(SimdLevel::kAvx512) ? SimdLevel::kAvx512 : SimdLevel::kScalar;
  const char* want = std::getenv("FILESEARCH_SIMD");
  if (want == nullptr || *want == '\0') return best;
  for (SimdLevel level : {SimdLevel::kScalar, SimdLevel::kAvx512}) {
    if (SimdLevelName(level) != want) continue;
    if (CpuSupports(level)) return level;
    std::fprintf(stderr, "filesearch: FILESEARCH_SIMD=%s is not supported by this CPU; using %s\n", want,
                 SimdLevelName(best).data());
    return best;
  }
  std::fprintf(stderr, "filesearch: unknown FILESEARCH_SIMD=%s (expected scalar or avx512); using %s\n", want,
               SimdLevelName(best).data());
  return best;
}

}  // namespace

const DistanceKernels& ActiveKernels() {
  static const DistanceKernels& kActive = KernelsFor(ChooseLevel());
  return kActive;
}

}  // namespace fs::kernels
