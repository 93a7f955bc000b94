// Unit tests of the CLIP preprocessing arithmetic. Agreement with Pillow itself on real photos is
// checked in tests/clip_pillow_test.cpp.
#include "model/clip/preprocess.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace fs::clip {
namespace {

std::vector<uint8_t> Pattern(int width, int height, size_t stride) {
  std::vector<uint8_t> pixels(stride * static_cast<size_t>(height), 0xEE);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      uint8_t* px = &pixels[static_cast<size_t>(y) * stride + static_cast<size_t>(x) * 3];
      px[0] = static_cast<uint8_t>((x * 7 + y * 3) & 0xFF);
      px[1] = static_cast<uint8_t>((x * x + y) & 0xFF);
      px[2] = static_cast<uint8_t>((y * 11) & 0xFF);
    }
  }
  return pixels;
}

TEST(ClipPreprocessTest, ResizedSizeFollowsTorchvision) {
  auto a = ComputeResizedSize(1000, 500, 224);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->width, 448);
  EXPECT_EQ(a->height, 224);
  auto b = ComputeResizedSize(500, 1001, 224);  // int(224 * 1001 / 500) = int(448.448)
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->width, 224);
  EXPECT_EQ(b->height, 448);
  auto c = ComputeResizedSize(1, 4000, 224);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->height, 896000);
  auto square = ComputeResizedSize(50, 50, 224);
  ASSERT_TRUE(square.ok());
  EXPECT_EQ(square->width, 224);
  EXPECT_EQ(square->height, 224);
  EXPECT_FALSE(ComputeResizedSize(1, 1 << 30, 224).ok());
}

TEST(ClipPreprocessTest, ConstantImageGivesNormalisedConstant) {
  for (int v : {0, 1, 128, 254, 255}) {
    for (auto [w, h] : {std::pair{1, 1}, std::pair{7, 3000}, std::pair{640, 480}}) {
      std::vector<uint8_t> pixels(static_cast<size_t>(w) * static_cast<size_t>(h) * 3,
                                  static_cast<uint8_t>(v));
      PreprocessOptions options;
      std::vector<float> out(3 * 224 * 224);
      ASSERT_TRUE(Preprocess(pixels.data(), w, h, static_cast<size_t>(w) * 3, options, out).ok());
      for (int c = 0; c < 3; ++c) {
        const float expected = (static_cast<float>(v) / 255.0f - options.mean[c]) / options.std[c];
        EXPECT_FLOAT_EQ(out[static_cast<size_t>(c) * 224 * 224], expected);
        EXPECT_FLOAT_EQ(out[static_cast<size_t>(c) * 224 * 224 + 224 * 224 - 1], expected);
      }
    }
  }
}

TEST(ClipPreprocessTest, NoResizeMeansExactCentreCrop) {
  // 224 x 300: the shortest side is already 224, so the only step is the crop, 38 rows down.
  const int w = 224, h = 300;
  auto pixels = Pattern(w, h, w * 3);
  std::vector<uint8_t> out(224 * 224 * 3);
  ASSERT_TRUE(ResizeCropRgb8(pixels.data(), w, h, w * 3, 224, out).ok());
  for (int y = 0; y < 224; y += 37) {
    for (int x = 0; x < 224; x += 13) {
      for (int c = 0; c < 3; ++c) {
        EXPECT_EQ(out[static_cast<size_t>((y * 224 + x) * 3 + c)],
                  pixels[static_cast<size_t>(((y + 38) * w + x) * 3 + c)]);
      }
    }
  }
}

TEST(ClipPreprocessTest, CropOffsetRoundsHalfToEven) {
  // (225 - 224) / 2 = 0.5 rounds to 0; (227 - 224) / 2 = 1.5 rounds to 2, as Python's round().
  for (auto [h, top] : {std::pair{225, 0}, std::pair{227, 2}, std::pair{229, 2}, std::pair{231, 4}}) {
    auto pixels = Pattern(224, h, 224 * 3);
    std::vector<uint8_t> out(224 * 224 * 3);
    ASSERT_TRUE(ResizeCropRgb8(pixels.data(), 224, h, 224 * 3, 224, out).ok());
    EXPECT_EQ(0, std::memcmp(out.data(), &pixels[static_cast<size_t>(top) * 224 * 3], out.size()))
        << "height " << h;
  }
}

TEST(ClipPreprocessTest, TransformersCropOffsetRoundsDown) {
  // CLIPImageProcessor: (h - 224) // 2, so 0, 1, 2, 3 where torchvision takes 0, 2, 2, 4.
  for (auto [h, top] : {std::pair{225, 0}, std::pair{227, 1}, std::pair{229, 2}, std::pair{231, 3}}) {
    auto pixels = Pattern(224, h, 224 * 3);
    std::vector<uint8_t> out(224 * 224 * 3);
    ASSERT_TRUE(ResizeCropRgb8(pixels.data(), 224, h, 224 * 3, 224, out, CropRounding::kFloor).ok());
    EXPECT_EQ(0, std::memcmp(out.data(), &pixels[static_cast<size_t>(top) * 224 * 3], out.size()))
        << "height " << h;
  }
}

// A buffer holding only CropSourceWindow of an image gives exactly what the whole image gives;
// a window that misses part of it is refused.
TEST(ClipPreprocessTest, SourceWindowGivesTheWholeImagesResult) {
  for (auto [w, h] : {std::pair{2572, 1740}, std::pair{1, 4000}, std::pair{700, 3}, std::pair{224, 231}}) {
    for (CropRounding crop : {CropRounding::kHalfToEven, CropRounding::kFloor}) {
      auto pixels = Pattern(w, h, w * 3);
      PreprocessOptions options;
      options.crop = crop;
      std::vector<float> whole(3 * 224 * 224), part(3 * 224 * 224);
      ASSERT_TRUE(Preprocess(pixels.data(), w, h, static_cast<size_t>(w) * 3, options, whole).ok());
      auto r = CropSourceWindow(w, h, 224, crop);
      ASSERT_TRUE(r.ok());
      ASSERT_TRUE(r->x >= 0 && r->y >= 0 && r->x + r->width <= w && r->y + r->height <= h) << w << "x" << h;
      const uint8_t* first = &pixels[(static_cast<size_t>(r->y) * static_cast<size_t>(w) + static_cast<size_t>(r->x)) * 3];
      const PixelWindow window{r->x, r->y, w, h};
      ASSERT_TRUE(Preprocess(first, r->width, r->height, static_cast<size_t>(w) * 3, options, part, window).ok());
      EXPECT_EQ(whole, part) << w << "x" << h;
      if (r->height > 1) {
        EXPECT_FALSE(Preprocess(first, r->width, r->height - 1, static_cast<size_t>(w) * 3, options, part, window).ok());
      }
    }
  }
}

TEST(ClipPreprocessTest, StrideIsHonoured) {
  const int w = 500, h = 333;
  auto tight = Pattern(w, h, w * 3);
  auto padded = Pattern(w, h, w * 3 + 17);
  std::vector<float> a(3 * 224 * 224), b(3 * 224 * 224);
  ASSERT_TRUE(Preprocess(tight.data(), w, h, w * 3, {}, a).ok());
  ASSERT_TRUE(Preprocess(padded.data(), w, h, w * 3 + 17, {}, b).ok());
  EXPECT_EQ(a, b);
}

TEST(ClipPreprocessTest, ExtremeAspectRatioComputesOnlyTheCrop) {
  // 1 x 4000 resizes (conceptually) to 224 x 896000; only 224 x 224 of it is computed.
  auto pixels = Pattern(1, 4000, 3);
  std::vector<float> out(3 * 224 * 224);
  ASSERT_TRUE(Preprocess(pixels.data(), 1, 4000, 3, {}, out).ok());
  // Every row of the crop comes from a single source column: all columns of a row are equal.
  for (int y = 0; y < 224; y += 31) {
    EXPECT_EQ(out[static_cast<size_t>(y) * 224], out[static_cast<size_t>(y) * 224 + 223]);
  }
}

TEST(ClipPreprocessTest, OtherSizes) {
  auto pixels = Pattern(100, 80, 300);
  PreprocessOptions options;
  options.size = 32;
  std::vector<float> out(3 * 32 * 32);
  EXPECT_TRUE(Preprocess(pixels.data(), 100, 80, 300, options, out).ok());
}

TEST(ClipPreprocessTest, RejectsBadArguments) {
  std::vector<uint8_t> pixels(30 * 30 * 3);
  std::vector<float> out(3 * 224 * 224);
  std::vector<float> short_out(10);
  EXPECT_EQ(Preprocess(nullptr, 30, 30, 90, {}, out).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Preprocess(pixels.data(), 0, 30, 90, {}, out).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Preprocess(pixels.data(), 30, 30, 89, {}, out).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Preprocess(pixels.data(), 30, 30, 90, {}, short_out).code(),
            StatusCode::kInvalidArgument);
  PreprocessOptions zero_std;
  zero_std.std[1] = 0.0f;
  EXPECT_EQ(Preprocess(pixels.data(), 30, 30, 90, zero_std, out).code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fs::clip
