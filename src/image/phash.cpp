// DCT perceptual hash. Pure C++ (no libvips): the reduction is an area average, so the hash depends
// only on the pixels, not on which resampler a library version uses.
#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <numbers>

#include "image/image.h"

namespace fs::image {
namespace {

constexpr int kSide = 32;  // grey image the DCT sees
constexpr int kKeep = 8;   // lowest frequencies kept per axis

// Luma (ITU-R BT.601 weights) averaged over each of kSide x kSide cells. Cells cover whole source
// pixels: [floor(i * w / kSide), floor((i + 1) * w / kSide)), at least one pixel wide.
std::array<double, kSide * kSide> ReduceToGrey(const RgbImage& image) {
  std::array<int, kSide + 1> x_edge{}, y_edge{};
  for (int i = 0; i <= kSide; ++i) {
    x_edge[static_cast<size_t>(i)] = static_cast<int>(static_cast<int64_t>(i) * image.width / kSide);
    y_edge[static_cast<size_t>(i)] = static_cast<int>(static_cast<int64_t>(i) * image.height / kSide);
  }
  std::array<double, kSide * kSide> grey{};
  for (int cy = 0; cy < kSide; ++cy) {
    const int y0 = std::min(y_edge[static_cast<size_t>(cy)], image.height - 1);
    const int y1 = std::max(y_edge[static_cast<size_t>(cy) + 1], y0 + 1);
    for (int cx = 0; cx < kSide; ++cx) {
      const int x0 = std::min(x_edge[static_cast<size_t>(cx)], image.width - 1);
      const int x1 = std::max(x_edge[static_cast<size_t>(cx) + 1], x0 + 1);
      double sum = 0.0;
      for (int y = y0; y < y1; ++y) {
        const uint8_t* p = &image.pixels[(static_cast<size_t>(y) * static_cast<size_t>(image.width) +
                                          static_cast<size_t>(x0)) * 3];
        for (int x = x0; x < x1; ++x, p += 3) sum += 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
      }
      grey[static_cast<size_t>(cy * kSide + cx)] = sum / ((y1 - y0) * (x1 - x0));
    }
  }
  return grey;
}

}  // namespace

uint64_t PerceptualHash(const RgbImage& image) {
  if (image.width <= 0 || image.height <= 0 ||
      image.pixels.size() != static_cast<size_t>(image.width) * static_cast<size_t>(image.height) * 3) {
    return 0;
  }
  const auto grey = ReduceToGrey(image);  // [kSide, kSide]
  // basis[u][x] = cos((2x + 1) u pi / (2 kSide)); normalisation does not matter for a median test.
  double basis[kKeep][kSide];
  for (int u = 0; u < kKeep; ++u) {
    for (int x = 0; x < kSide; ++x) {
      basis[u][x] = std::cos((2 * x + 1) * u * std::numbers::pi / (2 * kSide));
    }
  }
  // Separable DCT-II, rows then columns, low frequencies only.
  double rows[kSide][kKeep];  // [y, u]
  for (int y = 0; y < kSide; ++y) {
    for (int u = 0; u < kKeep; ++u) {
      double s = 0.0;
      for (int x = 0; x < kSide; ++x) s += grey[static_cast<size_t>(y * kSide + x)] * basis[u][x];
      rows[y][u] = s;
    }
  }
  std::array<double, kKeep * kKeep> coeff{};  // [v, u]
  for (int v = 0; v < kKeep; ++v) {
    for (int u = 0; u < kKeep; ++u) {
      double s = 0.0;
      for (int y = 0; y < kSide; ++y) s += rows[y][u] * basis[v][y];
      coeff[static_cast<size_t>(v * kKeep + u)] = s;
    }
  }
  auto sorted = coeff;
  std::nth_element(sorted.begin(), sorted.begin() + 32, sorted.end());
  const double upper = sorted[32];
  const double lower = *std::max_element(sorted.begin(), sorted.begin() + 32);
  const double median = 0.5 * (lower + upper);
  uint64_t hash = 0;
  for (size_t i = 0; i < coeff.size(); ++i) {
    if (coeff[i] > median) hash |= uint64_t{1} << i;
  }
  return hash;
}

int HammingDistance(uint64_t a, uint64_t b) { return std::popcount(a ^ b); }

}  // namespace fs::image
