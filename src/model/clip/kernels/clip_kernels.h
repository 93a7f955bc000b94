// Internal header of model/clip. The CLIP forward pass's non-GEMM kernels: layer norm, softmax and
// one attention head. Each has a scalar reference (clip_kernels_scalar.cpp) and an AVX-512 version
// (clip_kernels_avx512.cpp, the only file built with -mavx512*); BestClipKernels() picks one from
// cpuid once, and FILESEARCH_CLIP_ISA=scalar forces the reference. All pointers are row-major fp32,
// the functions are stateless and thread-safe (callers give each thread its own scratch).
#pragma once

#include <cstddef>
#include <cstdint>

namespace fs::clip {

struct ClipKernels {
  const char* name;  // "scalar", "avx512"
  // x, y: [rows, width] (may alias). y = (x - mean) / sqrt(var + eps) * gamma + beta per row,
  // gamma, beta: [width].
  void (*layer_norm)(const float* x, float* y, size_t rows, size_t width, const float* gamma,
                     const float* beta, float eps);
  // row: [n], replaced by softmax(row). n >= 1.
  void (*softmax)(float* row, size_t n);
  // One attention head of one sequence. q: [queries, head_dim], k, v: [tokens, head_dim], rows
  // `stride` floats apart (q already multiplied by 1/sqrt(head_dim)); out: [queries, head_dim]
  // rows `out_stride` apart. Query i sees keys 0..i when causal (queries <= tokens), else all.
  // scratch: AttentionScratchFloats(tokens, head_dim) floats.
  void (*attention_head)(const float* q, const float* k, const float* v, size_t stride,
                         size_t queries, size_t tokens, size_t head_dim, bool causal, float* out,
                         size_t out_stride, float* scratch);
  // dst[i] = bf16(src[i]), rounded to nearest even (NaN stays NaN). n >= 0.
  void (*to_bf16)(const float* src, uint16_t* dst, size_t n);
  // Returns max |src[i]| (0 for n == 0).
  float (*abs_max)(const float* src, size_t n);
  // dst[i] = clamp(round_to_nearest_even(src[i] * scale), -127, 127).
  void (*quantize_s8)(const float* src, int8_t* dst, size_t n, float scale);
  // The int8 GEMM epilogue. acc: [rows, cols] raw dot products; per row r and column c:
  // v = acc * (row_scale[r] * col_scale[c]) + bias[c] (bias may be null), then act (kActNone /
  // kActQuickGelu x*sigmoid(1.702x) / kActGelu x*Phi(x)); y = v, or y += v when accumulate. acc
  // and y may alias.
  void (*scale_bias_act)(const float* acc, const float* row_scale, const float* col_scale, const float* bias,
                         int act, bool accumulate, float* y, size_t rows, size_t cols);
};

constexpr int kActNone = 0, kActQuickGelu = 1, kActGelu = 2;

inline size_t AttentionScratchFloats(size_t tokens, size_t head_dim) {
  const size_t padded = (tokens + 15) / 16 * 16;
  return head_dim * padded + padded;
}

const ClipKernels& ScalarClipKernels();
// Null when the CPU lacks AVX-512 (F, BW, VL, DQ).
const ClipKernels* Avx512ClipKernels();
// The fastest set this CPU runs, chosen once; FILESEARCH_CLIP_ISA=scalar selects the reference.
const ClipKernels& BestClipKernels();

}  // namespace fs::clip
