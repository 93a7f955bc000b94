// Unit tests of image/: inputs are made here with libvips' encoders (or by hand), never read from
// disk. The corpus-wide robustness run is tests/image_formats_test.cpp.
#include "image/image.h"

#include <gtest/gtest.h>
#include <vips/vips.h>

#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "core/utf8.h"

namespace fs::image {
namespace {

// Quadrants: top-left red, top-right green, bottom-left blue, bottom-right white.
size_t At(int x, int y, int width) {  // byte offset of pixel (x, y) in RGB8 rows of `width`
  return (static_cast<size_t>(y) * static_cast<size_t>(width) + static_cast<size_t>(x)) * 3;
}

enum Corner { kTopLeft, kTopRight, kBottomLeft, kBottomRight };
constexpr uint8_t kCornerColour[4][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 255}};

RgbImage Quadrants(int width, int height) {
  RgbImage img{width, height, std::vector<uint8_t>(At(0, height, width))};
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const int corner = (y < height / 2 ? 0 : 2) + (x < width / 2 ? 0 : 1);
      std::memcpy(&img.pixels[At(x, y, width)], kCornerColour[corner], 3);
    }
  }
  return img;
}

RgbImage Gradient(int width, int height) {
  RgbImage img{width, height, std::vector<uint8_t>(At(0, height, width))};
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      uint8_t* p = &img.pixels[At(x, y, width)];
      p[0] = static_cast<uint8_t>(x * 255 / std::max(width - 1, 1));
      p[1] = static_cast<uint8_t>(y * 255 / std::max(height - 1, 1));
      p[2] = static_cast<uint8_t>((x + 2 * y) % 256);
    }
  }
  return img;
}

// Encodes with libvips; `suffix` picks the saver and its options, e.g. ".jpg[Q=95]".
std::string Encode(const RgbImage& img, const char* suffix, int orientation = 1) {
  EXPECT_EQ(VIPS_INIT("image_test"), 0);
  VipsImage* in = vips_image_new_from_memory(img.pixels.data(), img.pixels.size(), img.width,
                                             img.height, 3, VIPS_FORMAT_UCHAR);
  VipsImage* copy = nullptr;
  EXPECT_EQ(vips_copy(in, &copy, nullptr), 0);
  if (orientation != 1) vips_image_set_int(copy, VIPS_META_ORIENTATION, orientation);
  void* buf = nullptr;
  size_t len = 0;
  const int rc = vips_image_write_to_buffer(copy, suffix, &buf, &len, nullptr);
  EXPECT_EQ(rc, 0) << suffix << ": " << vips_error_buffer();
  std::string bytes(static_cast<const char*>(buf), len);
  g_free(buf);
  g_object_unref(copy);
  g_object_unref(in);
  return bytes;
}

double MeanAbsDiff(const RgbImage& a, const RgbImage& b) {
  EXPECT_EQ(a.pixels.size(), b.pixels.size());
  if (a.pixels.size() != b.pixels.size() || a.pixels.empty()) return 1e9;
  double sum = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i) sum += std::abs(a.pixels[i] - b.pixels[i]);
  return sum / static_cast<double>(a.pixels.size());
}

const uint8_t* Pixel(const RgbImage& img, int x, int y) {
  return &img.pixels[At(x, y, img.width)];
}

void ExpectColour(const RgbImage& img, int x, int y, Corner corner, const std::string& what) {
  const uint8_t* p = Pixel(img, x, y);
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(p[c], kCornerColour[corner][c], 40) << what << " channel " << c;
  }
}

// Unsigned big-endian helpers and CRC-32 for hand-made PNG chunks.
void PutBe32(std::string* s, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) s->push_back(static_cast<char>((v >> shift) & 0xFF));
}
uint32_t Crc32(std::string_view data) {
  uint32_t crc = 0xFFFFFFFFu;
  for (char ch : data) {
    crc ^= static_cast<uint8_t>(ch);
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}
void PutChunk(std::string* png, std::string_view type, std::string_view data) {
  PutBe32(png, static_cast<uint32_t>(data.size()));
  std::string body(type);
  body += data;
  *png += body;
  PutBe32(png, Crc32(body));
}

// A 57-byte PNG whose valid header declares width x height RGB pixels and carries no image data.
std::string BombPng(uint32_t width, uint32_t height) {
  std::string png = "\x89PNG\r\n\x1A\n";
  std::string ihdr;
  PutBe32(&ihdr, width);
  PutBe32(&ihdr, height);
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);  // 8-bit RGB, deflate, no filter, no interlace
  PutChunk(&png, "IHDR", ihdr);
  PutChunk(&png, "IDAT", std::string("\x78\x9C\x03\x00\x00\x00\x00\x01", 8));
  PutChunk(&png, "IEND", "");
  return png;
}

TEST(ImageTest, DecodesEachFormat) {
  const RgbImage src = Gradient(64, 48);
  struct Case {
    const char* suffix;
    const char* format;
    double max_mean_diff;  // 0: lossless
  };
  for (const Case& c : {Case{".png", "png", 0}, Case{".tif", "tiff", 0}, Case{".webp[lossless]", "webp", 0},
                        Case{".jpg[Q=95]", "jpeg", 4}, Case{".webp[Q=95]", "webp", 6},
                        Case{".gif", "gif", 12}}) {
    const std::string bytes = Encode(src, c.suffix);
    auto info = Probe(bytes);
    ASSERT_TRUE(info.ok()) << c.suffix << ": " << info.status().ToString();
    EXPECT_EQ(info->format, c.format);
    EXPECT_EQ(info->width, 64);
    EXPECT_EQ(info->height, 48);
    auto img = DecodeMemory(bytes, {});
    ASSERT_TRUE(img.ok()) << c.suffix << ": " << img.status().ToString();
    EXPECT_EQ(img->width, 64);
    EXPECT_EQ(img->height, 48);
    if (c.max_mean_diff == 0) {
      EXPECT_EQ(img->pixels, src.pixels) << c.suffix;
    } else {
      EXPECT_LE(MeanAbsDiff(*img, src), c.max_mean_diff) << c.suffix;
    }
  }
}

TEST(ImageTest, AppliesExifOrientation) {
  // Which source corner each orientation puts at the output's top-left and top-right.
  const Corner top_left[9] = {kTopLeft, kTopLeft, kTopRight, kBottomRight, kBottomLeft,
                              kTopLeft, kBottomLeft, kBottomRight, kTopRight};
  const Corner top_right[9] = {kTopRight, kTopRight, kTopLeft, kBottomLeft, kBottomRight,
                               kBottomLeft, kTopLeft, kTopRight, kBottomRight};
  const RgbImage src = Quadrants(64, 32);
  for (int o = 1; o <= 8; ++o) {
    const std::string bytes = Encode(src, ".jpg[Q=95]", o);
    auto info = Probe(bytes);
    ASSERT_TRUE(info.ok());
    EXPECT_EQ(info->orientation, o);
    auto img = DecodeMemory(bytes, {});
    ASSERT_TRUE(img.ok()) << img.status().ToString();
    const bool swapped = o >= 5;
    EXPECT_EQ(img->width, swapped ? 32 : 64) << "orientation " << o;
    EXPECT_EQ(img->height, swapped ? 64 : 32) << "orientation " << o;
    EXPECT_EQ(info->width, img->width);
    ExpectColour(*img, 2, 2, top_left[o], "top-left, orientation " + std::to_string(o));
    ExpectColour(*img, img->width - 3, 2, top_right[o], "top-right, orientation " + std::to_string(o));
  }
}

// DecodeOptions::window: over max_side, the asked-for rectangle (widened to be symmetric about the
// centre) comes back at full resolution, the same pixels a full decode has there, whatever the
// EXIF orientation.
TEST(ImageTest, WindowIsCutFromTheOrientedImageAtFullResolution) {
  RgbImage src{96, 40, std::vector<uint8_t>(96 * 40 * 3)};
  for (int y = 0; y < src.height; ++y) {
    for (int x = 0; x < src.width; ++x) {
      uint8_t* p = &src.pixels[At(x, y, src.width)];
      p[0] = static_cast<uint8_t>(x * 2);
      p[1] = static_cast<uint8_t>(y * 6);
      p[2] = static_cast<uint8_t>((x * y) % 256);
    }
  }
  for (int o = 1; o <= 8; ++o) {
    const std::string bytes = Encode(src, ".jpg[Q=95]", o);
    DecodeOptions full_options;
    full_options.max_side = 0;
    auto full = DecodeMemory(bytes, full_options);
    ASSERT_TRUE(full.ok()) << full.status().ToString();
    DecodeOptions options;
    options.max_side = 50;
    int seen_w = 0, seen_h = 0;
    options.window = [&](int width, int height) {
      seen_w = width;
      seen_h = height;
      return Rect{10, 3, 20, 7};
    };
    auto img = DecodeMemory(bytes, options);
    ASSERT_TRUE(img.ok()) << img.status().ToString();
    EXPECT_EQ(seen_w, full->width) << o;
    EXPECT_EQ(seen_h, full->height) << o;
    const int left = std::min(10, full->width - 30), top = std::min(3, full->height - 10);
    EXPECT_EQ(img->x0, left) << o;
    EXPECT_EQ(img->y0, top) << o;
    EXPECT_EQ(img->full_width, full->width) << o;
    EXPECT_EQ(img->full_height, full->height) << o;
    ASSERT_EQ(img->width, full->width - 2 * left) << o;
    ASSERT_EQ(img->height, full->height - 2 * top) << o;
    for (int y = 0; y < img->height; ++y) {
      ASSERT_EQ(0, std::memcmp(&img->pixels[At(0, y, img->width)], &full->pixels[At(left, top + y, full->width)],
                               static_cast<size_t>(img->width) * 3))
          << "orientation " << o << " row " << y;
    }
  }
}

TEST(ImageTest, RefusesDecompressionBombFromHeader) {
  const std::string bomb = BombPng(50000, 50000);
  auto info = Probe(bomb);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->width, 50000);
  auto img = DecodeMemory(bomb, {});
  ASSERT_FALSE(img.ok());
  EXPECT_EQ(img.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(img.status().message().find("decompression bomb"), std::string::npos)
      << img.status().message();
}

TEST(ImageTest, EnforcesLimits) {
  const std::string png = Encode(Gradient(40, 30), ".png");
  DecodeOptions few_pixels;
  few_pixels.max_pixels = 1199;
  EXPECT_EQ(DecodeMemory(png, few_pixels).status().code(), StatusCode::kResourceExhausted);
  few_pixels.max_pixels = 1200;
  EXPECT_TRUE(DecodeMemory(png, few_pixels).ok());
  DecodeOptions few_bytes;
  few_bytes.max_file_bytes = png.size() - 1;
  EXPECT_EQ(DecodeMemory(png, few_bytes).status().code(), StatusCode::kResourceExhausted);
}

TEST(ImageTest, DecodeTimeLimitStopsBetweenStrips) {
  // A 6 MP PNG (32 strips of 64 rows) takes well over 1 ms to inflate and unfilter, so a 1 ms
  // budget is spent by one of the checks between strips.
  const std::string png = Encode(Gradient(3000, 2000), ".png");
  DecodeOptions quick;
  quick.max_side = 0;
  quick.max_decode_ms = 1;
  auto stopped = DecodeMemory(png, quick);
  ASSERT_FALSE(stopped.ok());
  EXPECT_EQ(stopped.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(stopped.status().message().find("max_decode_ms"), std::string::npos);
  quick.max_decode_ms = 0;  // no limit
  EXPECT_TRUE(DecodeMemory(png, quick).ok());
}

TEST(ImageTest, MaxSideCapsTheLongestSide) {
  const std::string png = Encode(Gradient(3000, 1000), ".png");
  auto capped = DecodeMemory(png, {});
  ASSERT_TRUE(capped.ok());
  EXPECT_EQ(capped->width, 2048);
  EXPECT_NEAR(capped->height, 683, 1);
  DecodeOptions uncapped;
  uncapped.max_side = 0;
  auto full = DecodeMemory(png, uncapped);
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->width, 3000);
  EXPECT_EQ(full->height, 1000);
}

TEST(ImageTest, JpegShrinkOnLoadKeepsWhatTheCallerNeeds) {
  const std::string jpeg = Encode(Gradient(2000, 1600), ".jpg[Q=90]");
  DecodeOptions clip;  // shortest side may drop to 448: 1600 / 2 = 800 is fine, / 4 = 400 is not
  clip.min_short_side = 448;
  auto half = DecodeMemory(jpeg, clip);
  ASSERT_TRUE(half.ok());
  EXPECT_EQ(half->width, 1000);
  EXPECT_EQ(half->height, 800);
  auto full = DecodeMemory(jpeg, {});  // no min_short_side, under max_side: full decode
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->width, 2000);
  DecodeOptions small_side;  // max_side 500: 2000 / 4 = 500 exactly, no resize after
  small_side.max_side = 500;
  auto quarter = DecodeMemory(jpeg, small_side);
  ASSERT_TRUE(quarter.ok());
  EXPECT_EQ(quarter->width, 500);
  EXPECT_EQ(quarter->height, 400);
  // The shrunk image still shows the same ramps (red along x, green along y; blue wraps, so skip).
  const RgbImage expected = Gradient(500, 400);
  double diff = 0;
  for (size_t i = 0; i < expected.pixels.size(); ++i) {
    if (i % 3 != 2) diff += std::abs(quarter->pixels[i] - expected.pixels[i]);
  }
  EXPECT_LE(diff / (500.0 * 400.0 * 2.0), 3.0);
}

TEST(ImageTest, CorruptInputGivesClearStatus) {
  const std::string jpeg = Encode(Gradient(300, 200), ".jpg[Q=90]");
  const std::string truncated = jpeg.substr(0, jpeg.size() / 2);
  auto cut = DecodeMemory(truncated, {});
  ASSERT_FALSE(cut.ok());
  EXPECT_EQ(cut.status().code(), StatusCode::kCorruption);
  EXPECT_FALSE(cut.status().message().empty());
  DecodeOptions lenient;
  lenient.allow_truncated = true;
  EXPECT_TRUE(DecodeMemory(truncated, lenient).ok());

  const std::string png = Encode(Gradient(300, 200), ".png");
  auto cut_png = DecodeMemory(png.substr(0, png.size() - 100), {});
  EXPECT_EQ(cut_png.status().code(), StatusCode::kCorruption) << cut_png.status().ToString();

  EXPECT_EQ(DecodeMemory("", {}).status().code(), StatusCode::kUnsupported);
  EXPECT_EQ(DecodeMemory("hello, world: not an image", {}).status().code(),
            StatusCode::kUnsupported);
  std::string garbage_png = png.substr(0, 8) + std::string(200, '\x5A');
  auto bad = DecodeMemory(garbage_png, {});
  EXPECT_EQ(bad.status().code(), StatusCode::kCorruption) << bad.status().ToString();
  EXPECT_FALSE(Probe("GIF89a").ok());
}

// Bytes of a damaged file that a message quotes are written as \xNN: the message goes on into
// JSON (embed replies, the failure list), which only takes UTF-8.
TEST(ImageTest, ErrorMessagesAreUtf8EvenWhenTheyQuoteTheFile) {
  const std::string png = std::string("\x89PNG\r\n\x1A\n", 8) + std::string(64, '\xFF');
  auto bad = DecodeMemory(png, {});
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(IsValidUtf8(bad.status().message())) << bad.status().ToString();
  EXPECT_NE(bad.status().message().find("png chunk '\\xFF\\xFF\\xFF\\xFF'"), std::string::npos) << bad.status().ToString();
}

TEST(ImageTest, DecodeFileReportsPath) {
  auto missing = DecodeFile("/nonexistent/dir/photo.jpg", {});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("photo.jpg"), std::string::npos);
}

TEST(ImageTest, ThumbnailIsSmallJpeg) {
  const RgbImage src = Gradient(640, 480);
  auto thumb = MakeThumbnail(src);
  ASSERT_TRUE(thumb.ok()) << thumb.status().ToString();
  ASSERT_GE(thumb->size(), 3u);
  EXPECT_EQ(thumb->substr(0, 3), std::string("\xFF\xD8\xFF"));
  auto back = DecodeMemory(*thumb, {});
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->width, 256);
  EXPECT_EQ(back->height, 192);
  auto tiny = MakeThumbnail(Gradient(100, 50));  // never enlarged
  ASSERT_TRUE(tiny.ok());
  EXPECT_EQ(Probe(*tiny)->width, 100);
  EXPECT_FALSE(MakeThumbnail(RgbImage{}).ok());
}

TEST(ImageTest, PerceptualHashSeparatesContent) {
  EXPECT_EQ(HammingDistance(0, ~uint64_t{0}), 64);
  EXPECT_EQ(HammingDistance(0b1011, 0b0001), 2);
  EXPECT_EQ(PerceptualHash(RgbImage{}), 0u);
  const RgbImage a = Gradient(320, 240);
  RgbImage b = Quadrants(320, 240);
  const uint64_t ha = PerceptualHash(a);
  EXPECT_EQ(ha, PerceptualHash(a));
  auto a_small = DecodeMemory(*MakeThumbnail(a, 100), {});  // resized + JPEG-recompressed
  ASSERT_TRUE(a_small.ok());
  EXPECT_LE(HammingDistance(ha, PerceptualHash(*a_small)), 6);
  EXPECT_GE(HammingDistance(ha, PerceptualHash(b)), 16);
}

TEST(ImageTest, ConcurrentDecodes) {
  const std::string jpeg = Encode(Gradient(200, 150), ".jpg");
  auto expected = DecodeMemory(jpeg, {});
  ASSERT_TRUE(expected.ok());
  std::vector<std::thread> threads;
  std::vector<int> same(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        auto img = DecodeMemory(jpeg, {});
        same[static_cast<size_t>(t)] += img.ok() && img->pixels == expected->pixels;
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int s : same) EXPECT_EQ(s, 20);
}

}  // namespace
}  // namespace fs::image
