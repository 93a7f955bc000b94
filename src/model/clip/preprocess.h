// CLIP image preprocessing: decoded RGB8 pixels -> the normalised 3 x size x size float tensor the
// vision tower eats. Reproduces what CLIP's torchvision transforms do on a PIL RGB image:
// Resize(size, BICUBIC) (Pillow's separable bicubic, a = -0.5, support scaled by the downscale factor,
// 22-bit fixed-point coefficients, 8-bit rounded and clipped intermediate, horizontal pass first),
// CenterCrop(size) (offsets rounded half-to-even, as Python's round), ToTensor (/255), Normalize.
// Hugging Face's CLIPImageProcessor does the same resize but rounds the crop offsets down
// ((excess) // 2): the two differ by one pixel when the excess is odd (CropRounding below).
// Results equal Pillow's bit for bit on the 8-bit level (see tests/clip_pillow_test.cpp).
// Only the cropped window is ever computed, so an extreme aspect ratio costs no more than a square.
// Stateless and thread-safe; no dependency on image/ (takes a plain pixel buffer).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "core/status.h"

namespace fs::clip {

// How the centre crop's offset (resized side - size) / 2 is rounded when the excess is odd.
enum class CropRounding {
  kHalfToEven,  // torchvision's CenterCrop: int(round(excess / 2.0)) (OpenAI's and OpenCLIP's preprocess)
  kFloor,       // transformers' center_crop: excess // 2 (CLIPImageProcessor, the HF layout's reference)
};

struct PreprocessOptions {
  // Output side in pixels (square). CLIP ViT-B/32: 224.
  int size = 224;
  // Per-channel (R, G, B) mean and standard deviation, applied to values scaled to [0, 1].
  float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
  float std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
  // Whose centre crop to reproduce (the model's reference: ClipModel::image_reference()).
  CropRounding crop = CropRounding::kHalfToEven;
};

// Size torchvision's Resize(size) gives an image of width x height: the shortest side becomes `size`,
// the other int(size * long / short). Fails if that would exceed 2^30 pixels on a side.
struct ResizedSize {
  int width = 0;
  int height = 0;
};
Result<ResizedSize> ComputeResizedSize(int width, int height, int size);

// Where a pixel buffer lies in its image: the buffer holds columns [x, x + width) and rows
// [y, y + height) of an image of full_width x full_height. full_width == 0: the buffer is the whole
// image. Resize and crop are computed on the full image's geometry, so a window that covers
// CropSourceWindow gives exactly what the whole image would.
struct PixelWindow {
  int x = 0;
  int y = 0;
  int full_width = 0;
  int full_height = 0;
};

// The part of a full_width x full_height image that resize + centre crop to `size` reads (the
// crop's source pixels plus the bicubic filter's support): decode only this, and nothing changes.
struct SourceRect {
  int x = 0, y = 0, width = 0, height = 0;
};
Result<SourceRect> CropSourceWindow(int full_width, int full_height, int size, CropRounding crop);

// rgb: `height` rows of `width` * 3 bytes (R, G, B interleaved), each row `stride` bytes after the
// previous (stride >= width * 3). out: exactly 3 * size * size floats, written channel-major (CHW):
// out[c * size * size + y * size + x]. Values are (v / 255 - mean[c]) / std[c].
// Fails with kInvalidArgument on an empty or inconsistent buffer or a wrong `out` size.
// window: where the buffer lies in its image (default: it is the whole image); a window that does
// not cover CropSourceWindow fails with kInvalidArgument.
[[nodiscard]] Status Preprocess(const uint8_t* rgb, int width, int height, size_t stride,
                                const PreprocessOptions& options, std::span<float> out,
                                const PixelWindow& window = {});

// The same resize and centre crop, stopping before normalisation. out: exactly size * size * 3
// bytes, RGB8 interleaved (HWC). For tests, thumbnails of what the model sees, and debugging.
[[nodiscard]] Status ResizeCropRgb8(const uint8_t* rgb, int width, int height, size_t stride,
                                    int size, std::span<uint8_t> out,
                                    CropRounding crop = CropRounding::kHalfToEven,
                                    const PixelWindow& window = {});

}  // namespace fs::clip
