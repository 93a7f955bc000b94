// Internal header of kernels/: the per-ISA kernel tables, defined one per translation unit.
// Not for use outside src/kernels.
#pragma once

#include "kernels/distance.h"

namespace fs::kernels::internal {

extern const DistanceKernels kScalarKernels;  // distance_scalar.cpp
extern const DistanceKernels kAvx512Kernels;  // distance_avx512.cpp (built with -mavx512f)

}  // namespace fs::kernels::internal
