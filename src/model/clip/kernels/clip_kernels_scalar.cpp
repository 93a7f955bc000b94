// Scalar references of the CLIP kernels: the plainest correct code, the yardstick for the SIMD ones.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "model/clip/kernels/clip_kernels.h"

namespace fs::clip {
namespace {

void LayerNormScalar(const float* x, float* y, size_t rows, size_t width, const float* gamma,
                     const float* beta, float eps) {
  for (size_t row = 0; row < rows; ++row) {
    const float* in = x + row * width;
    float* out = y + row * width;
    double sum = 0;
    for (size_t i = 0; i < width; ++i) sum += in[i];
    const double mean = sum / static_cast<double>(width);
    double var = 0;
    for (size_t i = 0; i < width; ++i) var += (in[i] - mean) * (in[i] - mean);
    const double inv = 1.0 / std::sqrt(var / static_cast<double>(width) + eps);
    for (size_t i = 0; i < width; ++i) {
      out[i] = static_cast<float>((in[i] - mean) * inv * gamma[i] + beta[i]);
    }
  }
}

void SoftmaxScalar(float* row, size_t n) {
  float max = row[0];
  for (size_t i = 1; i < n; ++i) max = std::max(max, row[i]);
  double sum = 0;
  for (size_t i = 0; i < n; ++i) {
    row[i] = std::exp(row[i] - max);
    sum += row[i];
  }
  const auto inv = static_cast<float>(1.0 / sum);
  for (size_t i = 0; i < n; ++i) row[i] *= inv;
}

void AttentionHeadScalar(const float* q, const float* k, const float* v, size_t stride,
                         size_t queries, size_t tokens, size_t head_dim, bool causal, float* out, size_t out_stride,
                         float* scratch) {
  float* scores = scratch;  // [tokens]
  for (size_t query = 0; query < queries; ++query) {
    const size_t keys = causal ? query + 1 : tokens;
    for (size_t key = 0; key < keys; ++key) {
      float dot = 0;
      for (size_t d = 0; d < head_dim; ++d) dot += q[query * stride + d] * k[key * stride + d];
      scores[key] = dot;
    }
    SoftmaxScalar(scores, keys);
    float* o = out + query * out_stride;
    std::memset(o, 0, head_dim * sizeof(float));
    for (size_t key = 0; key < keys; ++key) {
      for (size_t d = 0; d < head_dim; ++d) o[d] += scores[key] * v[key * stride + d];
    }
  }
}

void ToBf16Scalar(const float* src, uint16_t* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, &src[i], 4);
    if ((bits & 0x7FFFFFFFu) > 0x7F800000u) {
      dst[i] = static_cast<uint16_t>((bits >> 16) | 0x40u);  // quiet NaN
    } else {
      dst[i] = static_cast<uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
    }
  }
}

float AbsMaxScalar(const float* src, size_t n) {
  float m = 0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(src[i]));
  return m;
}

void QuantizeS8Scalar(const float* src, int8_t* dst, size_t n, float scale) {
  for (size_t i = 0; i < n; ++i) {
    const float r = std::nearbyint(src[i] * scale);
    dst[i] = static_cast<int8_t>(std::clamp(r, -127.0f, 127.0f));
  }
}

void ScaleBiasActScalar(const float* acc, const float* row_scale, const float* col_scale, const float* bias,
                        int act, bool accumulate, float* y, size_t rows, size_t cols) {
  for (size_t row = 0; row < rows; ++row) {
    for (size_t col = 0; col < cols; ++col) {
      const size_t i = row * cols + col;
      float v = acc[i] * (row_scale[row] * col_scale[col]) + (bias != nullptr ? bias[col] : 0.0f);
      if (act == kActQuickGelu) v = v / (1.0f + std::exp(-1.702f * v));
      if (act == kActGelu) v = 0.5f * v * (1.0f + std::erf(v * 0.70710678118654752f));
      y[i] = accumulate ? y[i] + v : v;
    }
  }
}

}  // namespace

const ClipKernels& ScalarClipKernels() {
  static const ClipKernels kernels{"scalar",     LayerNormScalar, SoftmaxScalar, AttentionHeadScalar,
                                   ToBf16Scalar, AbsMaxScalar,    QuantizeS8Scalar,
                                   ScaleBiasActScalar};
  return kernels;
}

// Defined in clip_kernels_avx512.cpp; only called once cpuid says the CPU can run it.
const ClipKernels& Avx512ClipKernelTable();

const ClipKernels* Avx512ClipKernels() {
  static const bool supported = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                                __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  return supported ? &Avx512ClipKernelTable() : nullptr;
}

const ClipKernels& BestClipKernels() {
  static const ClipKernels* best = [] {
    const char* isa = std::getenv("FILESEARCH_CLIP_ISA");
    if (isa != nullptr && std::strcmp(isa, "scalar") == 0) return &ScalarClipKernels();
    const ClipKernels* avx512 = Avx512ClipKernels();
    return avx512 != nullptr ? avx512 : &ScalarClipKernels();
  }();
  return *best;
}

}  // namespace fs::clip
