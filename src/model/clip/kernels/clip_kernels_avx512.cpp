// AVX-512 versions of the CLIP kernels. This is the only translation unit built with -mavx512*;
// nothing here runs unless Avx512ClipKernels() found the instructions with cpuid.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "model/clip/kernels/clip_kernels.h"

namespace fs::clip {
namespace {

inline __mmask16 TailMask(size_t n) { return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1); }

// exp(x) for fp32 lanes: 2^n * p(r), x = n ln2 + r, |r| <= ln2/2, degree-6 polynomial (< 2 ulp).
inline __m512 Exp(__m512 x) {
  x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.7f)), _mm512_set1_ps(-87.3f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504089f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187e-06f), r);
  __m512 p = _mm512_set1_ps(1.0f / 720);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

void LayerNormAvx512(const float* x, float* y, size_t rows, size_t width, const float* gamma,
                     const float* beta, float eps) {
  for (size_t row = 0; row < rows; ++row) {
    const float* in = x + row * width;
    float* out = y + row * width;
    __m512 acc = _mm512_setzero_ps();
    for (size_t i = 0; i < width; i += 16) {
      acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(TailMask(width - i), in + i));
    }
    const __m512 mean = _mm512_set1_ps(_mm512_reduce_add_ps(acc) / static_cast<float>(width));
    __m512 var = _mm512_setzero_ps();
    for (size_t i = 0; i < width; i += 16) {
      const __mmask16 m = TailMask(width - i);
      const __m512 d = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, in + i), mean);
      var = _mm512_fmadd_ps(d, d, var);
    }
    const float inv = 1.0f / std::sqrt(_mm512_reduce_add_ps(var) / static_cast<float>(width) + eps);
    const __m512 scale = _mm512_set1_ps(inv);
    for (size_t i = 0; i < width; i += 16) {
      const __mmask16 m = TailMask(width - i);
      const __m512 d = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, in + i), mean), scale);
      const __m512 r = _mm512_fmadd_ps(d, _mm512_maskz_loadu_ps(m, gamma + i),
                                       _mm512_maskz_loadu_ps(m, beta + i));
      _mm512_mask_storeu_ps(out + i, m, r);
    }
  }
}

void SoftmaxAvx512(float* row, size_t n) {
  __m512 max = _mm512_set1_ps(-3.0e38f);
  for (size_t i = 0; i < n; i += 16) {
    max = _mm512_max_ps(max, _mm512_mask_loadu_ps(max, TailMask(n - i), row + i));
  }
  const __m512 vmax = _mm512_set1_ps(_mm512_reduce_max_ps(max));
  __m512 sum = _mm512_setzero_ps();
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 m = TailMask(n - i);
    const __m512 e = Exp(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, row + i), vmax));
    sum = _mm512_mask_add_ps(sum, m, sum, e);
    _mm512_mask_storeu_ps(row + i, m, e);
  }
  const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 m = TailMask(n - i);
    _mm512_mask_storeu_ps(row + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, row + i), inv));
  }
}

void AttentionHeadAvx512(const float* q, const float* k, const float* v, size_t stride,
                         size_t queries, size_t tokens, size_t head_dim, bool causal, float* out, size_t out_stride,
                         float* scratch) {
  const size_t padded = (tokens + 15) / 16 * 16;
  float* kt = scratch;                          // [head_dim, padded]: K transposed
  float* scores = scratch + head_dim * padded;  // [padded]
  for (size_t key = 0; key < tokens; ++key) {
    for (size_t d = 0; d < head_dim; ++d) kt[d * padded + key] = k[key * stride + d];
  }
  for (size_t query = 0; query < queries; ++query) {
    const size_t keys = causal ? query + 1 : tokens;
    const float* qrow = q + query * stride;
    // scores[key] = q . k[key], 64 keys (four registers) at a time.
    for (size_t k0 = 0; k0 < keys; k0 += 64) {
      __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                       _mm512_setzero_ps()};
      const size_t blocks = std::min<size_t>(4, (keys - k0 + 15) / 16);
      for (size_t d = 0; d < head_dim; ++d) {
        const __m512 qd = _mm512_set1_ps(qrow[d]);
        const float* krow = kt + d * padded + k0;
        for (size_t b = 0; b < blocks; ++b) {
          acc[b] = _mm512_fmadd_ps(qd, _mm512_loadu_ps(krow + 16 * b), acc[b]);
        }
      }
      for (size_t b = 0; b < blocks; ++b) _mm512_storeu_ps(scores + k0 + 16 * b, acc[b]);
    }
    SoftmaxAvx512(scores, keys);
    // out[query] = sum_key p[key] * v[key], 64 columns (four registers) at a time.
    float* orow = out + query * out_stride;
    for (size_t d0 = 0; d0 < head_dim; d0 += 64) {
      __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                       _mm512_setzero_ps()};
      __mmask16 masks[4];
      for (size_t b = 0; b < 4; ++b) {
        masks[b] = d0 + 16 * b < head_dim ? TailMask(head_dim - d0 - 16 * b) : __mmask16(0);
      }
      for (size_t key = 0; key < keys; ++key) {
        const __m512 p = _mm512_set1_ps(scores[key]);
        const float* vrow = v + key * stride + d0;
        for (size_t b = 0; b < 4; ++b) {
          acc[b] = _mm512_fmadd_ps(p, _mm512_maskz_loadu_ps(masks[b], vrow + 16 * b), acc[b]);
        }
      }
      for (size_t b = 0; b < 4; ++b) _mm512_mask_storeu_ps(orow + d0 + 16 * b, masks[b], acc[b]);
    }
  }
}

// Round-to-nearest-even with integer arithmetic (AVX512F only, so no AVX512-BF16 is required).
void ToBf16Avx512(const float* src, uint16_t* dst, size_t n) {
  const __m512i bias = _mm512_set1_epi32(0x7FFF);
  const __m512i one = _mm512_set1_epi32(1);
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 m = TailMask(n - i);
    const __m512 x = _mm512_maskz_loadu_ps(m, src + i);
    const __m512i bits = _mm512_castps_si512(x);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), one);
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(bits, _mm512_add_epi32(bias, lsb)), 16);
    const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    r = _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(bits, 16), _mm512_set1_epi32(0x40));
    _mm256_mask_storeu_epi16(dst + i, m, _mm512_cvtepi32_epi16(r));
  }
}

float AbsMaxAvx512(const float* src, size_t n) {
  __m512 m = _mm512_setzero_ps();
  for (size_t i = 0; i < n; i += 16) {
    m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_maskz_loadu_ps(TailMask(n - i), src + i)));
  }
  return _mm512_reduce_max_ps(m);
}

void QuantizeS8Avx512(const float* src, int8_t* dst, size_t n, float scale) {
  const __m512 s = _mm512_set1_ps(scale);
  const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 m = TailMask(n - i);
    __m512 x = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, src + i), s);
    x = _mm512_min_ps(_mm512_max_ps(x, lo), hi);
    const __m512i q = _mm512_cvt_roundps_epi32(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_mask_storeu_epi8(dst + i, m, _mm512_cvtepi32_epi8(q));
  }
}

// erf(x) by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): 1 - poly(t) exp(-x^2), t = 1/(1+p|x|).
inline __m512 Erf(__m512 x) {
  const __m512 ax = _mm512_abs_ps(x);
  const __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_fmadd_ps(ax, _mm512_set1_ps(0.3275911f), _mm512_set1_ps(1.0f)));
  __m512 p = _mm512_set1_ps(1.061405429f);
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.453152027f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.421413741f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.284496736f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.254829592f));
  p = _mm512_mul_ps(p, t);
  const __m512 e = Exp(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(ax, ax)));
  const __m512 r = _mm512_fnmadd_ps(p, e, _mm512_set1_ps(1.0f));
  // Copy x's sign onto r.
  const __m512i sign = _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(static_cast<int>(0x80000000u)));
  return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(r), sign));
}

void ScaleBiasActAvx512(const float* acc, const float* row_scale, const float* col_scale, const float* bias,
                        int act, bool accumulate, float* y, size_t rows, size_t cols) {
  for (size_t row = 0; row < rows; ++row) {
    const float* a = acc + row * cols;
    float* out = y + row * cols;
    const __m512 rs = _mm512_set1_ps(row_scale[row]);
    for (size_t col = 0; col < cols; col += 16) {
      const __mmask16 m = TailMask(cols - col);
      const __m512 scale = _mm512_mul_ps(rs, _mm512_maskz_loadu_ps(m, col_scale + col));
      __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, a + col), scale);
      if (bias != nullptr) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, bias + col));
      if (act == kActQuickGelu) {
        const __m512 e = Exp(_mm512_mul_ps(v, _mm512_set1_ps(-1.702f)));
        v = _mm512_div_ps(v, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
      } else if (act == kActGelu) {
        const __m512 half = _mm512_mul_ps(v, _mm512_set1_ps(0.5f));
        v = _mm512_fmadd_ps(half, Erf(_mm512_mul_ps(v, _mm512_set1_ps(0.70710678118654752f))), half);
      }
      if (accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, out + col));
      _mm512_mask_storeu_ps(out + col, m, v);
    }
  }
}

}  // namespace

const ClipKernels& Avx512ClipKernelTable() {
  static const ClipKernels kernels{"avx512",     LayerNormAvx512, SoftmaxAvx512, AttentionHeadAvx512,
                                   ToBf16Avx512, AbsMaxAvx512,    QuantizeS8Avx512,
                                   ScaleBiasActAvx512};
  return kernels;
}

}  // namespace fs::clip
