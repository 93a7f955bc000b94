// CLIP image preprocessing: decoded RGB8 pixels -> the normalised 3 x size x size float tensor the
// vision tower eats. Reproduces what CLIP's torchvision transforms do on a PIL RGB image:
// Resize(size, BICUBIC) (Pillow's separable bicubic, a = -0.5, support scaled by the downscale factor,
// 22-bit fixed-point coefficients, 8-bit rounded and clipped intermediate, horizontal pass first),
// CenterCrop(size) (offsets rounded half-to-even, as Python's round), ToTensor (/255), Normalize.
// Results equal Pillow's bit for bit on the 8-bit level (see tests/clip_pillow_test.cpp).
// Only the cropped window is ever computed, so an extreme aspect ratio costs no more than a square.
// Stateless and thread-safe; no dependency on image/ (takes a plain pixel buffer).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "core/status.h"

namespace fs::clip {

struct PreprocessOptions {
  // Output side in pixels (square). CLIP ViT-B/32: 224.
  int size = 224;
  // Per-channel (R, G, B) mean and standard deviation, applied to values scaled to [0, 1].
  float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
  float std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
};

// Size torchvision's Resize(size) gives an image of width x height: the shortest side becomes `size`,
// the other int(size * long / short). Fails if that would exceed 2^30 pixels on a side.
struct ResizedSize {
  int width = 0;
  int height = 0;
};
Result<ResizedSize> ComputeResizedSize(int width, int height, int size);

// rgb: `height` rows of `width` * 3 bytes (R, G, B interleaved), each row `stride` bytes after the
// previous (stride >= width * 3). out: exactly 3 * size * size floats, written channel-major (CHW):
// out[c * size * size + y * size + x]. Values are (v / 255 - mean[c]) / std[c].
// Fails with kInvalidArgument on an empty or inconsistent buffer or a wrong `out` size.
[[nodiscard]] Status Preprocess(const uint8_t* rgb, int width, int height, size_t stride,
                                const PreprocessOptions& options, std::span<float> out);

// The same resize and centre crop, stopping before normalisation. out: exactly size * size * 3
// bytes, RGB8 interleaved (HWC). For tests, thumbnails of what the model sees, and debugging.
[[nodiscard]] Status ResizeCropRgb8(const uint8_t* rgb, int width, int height, size_t stride,
                                    int size, std::span<uint8_t> out);

}  // namespace fs::clip
