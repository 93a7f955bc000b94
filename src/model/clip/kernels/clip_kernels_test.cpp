// Every AVX-512 CLIP kernel against its scalar reference, over odd sizes.
#include "model/clip/kernels/clip_kernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace fs::clip {
namespace {

std::vector<float> Random(size_t n, uint32_t seed, float scale = 1.0f, float mean = 0.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(mean, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

class ClipKernelsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    simd_ = Avx512ClipKernels();
    if (simd_ == nullptr) GTEST_SKIP() << "CPU lacks AVX-512";
  }
  const ClipKernels& ref_ = ScalarClipKernels();
  const ClipKernels* simd_ = nullptr;
};

TEST_F(ClipKernelsTest, LayerNorm) {
  for (size_t width : {1u, 7u, 15u, 16u, 17u, 33u, 64u, 100u, 768u}) {
    const size_t rows = 3;
    auto x = Random(rows * width, 1, 2.0f, 0.5f);
    auto gamma = Random(width, 2, 0.1f, 1.0f), beta = Random(width, 3, 0.1f);
    std::vector<float> want(x.size()), got(x.size());
    ref_.layer_norm(x.data(), want.data(), rows, width, gamma.data(), beta.data(), 1e-5f);
    simd_->layer_norm(x.data(), got.data(), rows, width, gamma.data(), beta.data(), 1e-5f);
    for (size_t i = 0; i < x.size(); ++i) ASSERT_NEAR(got[i], want[i], 2e-5f) << width << " " << i;
    simd_->layer_norm(x.data(), x.data(), rows, width, gamma.data(), beta.data(), 1e-5f);  // in place
    for (size_t i = 0; i < x.size(); ++i) ASSERT_NEAR(x[i], want[i], 2e-5f);
  }
}

TEST_F(ClipKernelsTest, Softmax) {
  for (size_t n : {1u, 2u, 15u, 16u, 17u, 50u, 77u, 200u}) {
    auto want = Random(n, 4, 5.0f);
    auto got = want;
    ref_.softmax(want.data(), n);
    simd_->softmax(got.data(), n);
    for (size_t i = 0; i < n; ++i) ASSERT_NEAR(got[i], want[i], 1e-6f + 1e-5f * want[i]) << n;
  }
}

TEST_F(ClipKernelsTest, AttentionHead) {
  for (size_t tokens : {1u, 5u, 17u, 50u, 77u, 130u}) {
    for (size_t head_dim : {16u, 32u, 40u, 64u, 80u}) {
      for (bool causal : {false, true}) {
        const size_t stride = 3 * head_dim + 5;
        auto qkv = Random(tokens * stride, 5, 1.0f);
        std::vector<float> want(tokens * head_dim), got(tokens * head_dim);
        std::vector<float> scratch(AttentionScratchFloats(tokens, head_dim));
        ref_.attention_head(qkv.data(), qkv.data() + head_dim, qkv.data() + 2 * head_dim, stride, tokens,
                            tokens, head_dim, causal, want.data(), head_dim, scratch.data());
        simd_->attention_head(qkv.data(), qkv.data() + head_dim, qkv.data() + 2 * head_dim, stride, tokens,
                              tokens, head_dim, causal, got.data(), head_dim, scratch.data());
        for (size_t i = 0; i < want.size(); ++i) {
          ASSERT_NEAR(got[i], want[i], 2e-5f) << tokens << " " << head_dim << " " << causal;
        }
      }
    }
  }
}

// One query (the class token, or a text's end-of-text token) equals that row of the full result.
TEST_F(ClipKernelsTest, AttentionSingleQueryMatchesFullRow) {
  const size_t tokens = 23, head_dim = 48, stride = 3 * head_dim;
  auto qkv = Random(tokens * stride, 7, 1.0f);
  std::vector<float> full(tokens * head_dim), one(head_dim);
  std::vector<float> scratch(AttentionScratchFloats(tokens, head_dim));
  const float* q = qkv.data();
  const float* k = q + head_dim;
  const float* v = q + 2 * head_dim;
  for (const ClipKernels* kernels : {&ref_, simd_}) {
    kernels->attention_head(q, k, v, stride, tokens, tokens, head_dim, true, full.data(), head_dim, scratch.data());
    for (size_t row : {size_t{0}, size_t{9}, tokens - 1}) {
      kernels->attention_head(q + row * stride, k, v, stride, 1, row + 1, head_dim, false, one.data(), head_dim,
                              scratch.data());
      for (size_t d = 0; d < head_dim; ++d) ASSERT_NEAR(one[d], full[row * head_dim + d], 1e-6f) << kernels->name;
    }
  }
}

TEST_F(ClipKernelsTest, ConversionsMatchBitForBit) {
  for (size_t n : {0u, 1u, 15u, 16u, 17u, 1000u}) {
    auto x = Random(n, 6, 3.0f);
    if (n > 3) {
      x[1] = std::nanf("");
      x[2] = INFINITY;
      x[3] = 1.00390625f;  // exactly half-way between two bf16 values: rounds to even
    }
    std::vector<uint16_t> want(n), got(n);
    ref_.to_bf16(x.data(), want.data(), n);
    simd_->to_bf16(x.data(), got.data(), n);
    EXPECT_EQ(got, want) << n;
    if (n > 3) {
      EXPECT_EQ(want[3], 0x3F80);
      EXPECT_EQ(want[2], 0x7F80);
    }
    if (n > 3) x[1] = x[2] = 0;
    EXPECT_EQ(simd_->abs_max(x.data(), n), ref_.abs_max(x.data(), n)) << n;
    std::vector<int8_t> qwant(n), qgot(n);
    ref_.quantize_s8(x.data(), qwant.data(), n, 40.0f);
    simd_->quantize_s8(x.data(), qgot.data(), n, 40.0f);
    EXPECT_EQ(qgot, qwant) << n;
  }
}

TEST_F(ClipKernelsTest, ScaleBiasAct) {
  for (size_t cols : {1u, 15u, 16u, 17u, 100u, 768u}) {
    for (int act : {kActNone, kActQuickGelu, kActGelu}) {
      for (bool accumulate : {false, true}) {
        const size_t rows = 3;
        auto acc = Random(rows * cols, 8, 300.0f);
        auto scale = Random(cols, 9, 0.002f, 0.01f), bias = Random(cols, 10, 0.5f);
        auto row_scale = Random(rows, 12, 0.5f, 2.0f);
        auto want = Random(rows * cols, 11), got = want;
        ref_.scale_bias_act(acc.data(), row_scale.data(), scale.data(), bias.data(), act, accumulate, want.data(),
                            rows, cols);
        simd_->scale_bias_act(acc.data(), row_scale.data(), scale.data(), bias.data(), act, accumulate,
                              got.data(), rows, cols);
        for (size_t i = 0; i < want.size(); ++i) {
          ASSERT_NEAR(got[i], want[i], 1e-5f + 1e-5f * std::fabs(want[i])) << cols << " act " << act;
        }
      }
    }
  }
  std::vector<float> acc = {1.0f, 1.0f}, row_scale = {1.0f, 3.0f}, scale = {2.0f}, y = {0.0f, 0.0f};  // no bias
  simd_->scale_bias_act(acc.data(), row_scale.data(), scale.data(), nullptr, kActNone, false, y.data(), 2, 1);
  EXPECT_EQ(y[0], 2.0f);
  EXPECT_EQ(y[1], 6.0f);
}

TEST(ClipKernelsDispatch, BestIsAvailable) {
  const ClipKernels& best = BestClipKernels();
  EXPECT_NE(best.layer_norm, nullptr);
  if (Avx512ClipKernels() != nullptr) {
    EXPECT_STREQ(best.name, "avx512");
  }
}

}  // namespace
}  // namespace fs::clip
