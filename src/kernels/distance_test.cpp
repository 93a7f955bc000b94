#include "kernels/distance.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace fs::kernels {
namespace {

std::vector<float> RandomVector(size_t n, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Tolerance scaled by sum |a_i b_i|: summation order differs between kernels.
double Tolerance(const std::vector<float>& a, const std::vector<float>& b) {
  double mag = 0;
  for (size_t i = 0; i < a.size(); ++i) mag += std::fabs(static_cast<double>(a[i]) * b[i]);
  return 1e-5 * mag + 1e-6;
}

class SimdKernelTest : public ::testing::TestWithParam<SimdLevel> {
 protected:
  void SetUp() override {
    if (!CpuSupports(GetParam())) GTEST_SKIP() << "CPU lacks " << SimdLevelName(GetParam());
  }
};

TEST_P(SimdKernelTest, InnerProductMatchesScalarOverOddSizes) {
  const DistanceKernels& simd = KernelsFor(GetParam());
  const DistanceKernels& ref = KernelsFor(SimdLevel::kScalar);
  std::mt19937 rng(7);
  for (size_t n : {0u,  1u,  2u,  3u,   7u,   15u,  16u,  17u,  31u,  33u,
                   63u, 64u, 65u, 100u, 127u, 511u, 512u, 513u, 768u, 1001u}) {
    std::vector<float> a = RandomVector(n, rng);
    std::vector<float> b = RandomVector(n, rng);
    EXPECT_NEAR(simd.inner_product_f32(a.data(), b.data(), n), ref.inner_product_f32(a.data(), b.data(), n),
                Tolerance(a, b))
        << "n=" << n;
    EXPECT_NEAR(simd.squared_norm_f32(a.data(), n), ref.squared_norm_f32(a.data(), n), Tolerance(a, a))
        << "n=" << n;
  }
}

TEST_P(SimdKernelTest, UnalignedInputsAndNoOverread) {
  const DistanceKernels& simd = KernelsFor(GetParam());
  const DistanceKernels& ref = KernelsFor(SimdLevel::kScalar);
  std::mt19937 rng(11);
  std::vector<float> a = RandomVector(300, rng);
  std::vector<float> b = RandomVector(300, rng);
  for (size_t offset = 1; offset < 5; ++offset) {
    // The tail of each range is followed by NaNs: reading past `n` would poison the result.
    std::vector<float> pa(a.begin() + static_cast<long>(offset), a.end());
    std::vector<float> pb(b.begin() + static_cast<long>(offset), b.end());
    size_t n = pa.size() - 3;
    pa[n] = pb[n] = std::nanf("");
    float got = simd.inner_product_f32(pa.data(), pb.data(), n);
    EXPECT_FALSE(std::isnan(got));
    EXPECT_NEAR(got, ref.inner_product_f32(pa.data(), pb.data(), n), 1e-3);
  }
}

TEST_P(SimdKernelTest, KnownValues) {
  const DistanceKernels& simd = KernelsFor(GetParam());
  std::vector<float> a(37, 1.0f), b(37, 2.0f);
  EXPECT_FLOAT_EQ(simd.inner_product_f32(a.data(), b.data(), a.size()), 74.0f);
  EXPECT_FLOAT_EQ(simd.squared_norm_f32(b.data(), b.size()), 148.0f);
}

INSTANTIATE_TEST_SUITE_P(AllLevels, SimdKernelTest, ::testing::Values(SimdLevel::kScalar, SimdLevel::kAvx512),
                         [](const auto& param_info) { return std::string(SimdLevelName(param_info.param)); });

TEST(DispatchTest, ActiveLevelIsSupportedAndHonoursOverride) {
  const DistanceKernels& active = ActiveKernels();
  EXPECT_TRUE(CpuSupports(active.level));
  const char* want = std::getenv("FILESEARCH_SIMD");
  if (want != nullptr && std::string(want) == "scalar") {
    EXPECT_EQ(active.level, SimdLevel::kScalar);
  }
  if (want == nullptr && CpuSupports(SimdLevel::kAvx512)) {
    EXPECT_EQ(active.level, SimdLevel::kAvx512);
  }
}

}  // namespace
}  // namespace fs::kernels
