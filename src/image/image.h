// image/: what does this file look like, safely?
// Decodes untrusted image bytes (JPEG, PNG, WebP, GIF first frame, BMP, TIFF first page, HEIC/AVIF
// where the installed libvips allows) into RGB8 pixels with EXIF orientation applied, refusing hostile
// input (oversized files, decompression bombs, corrupt data) with a Status before it costs much.
// Colour conversion follows Pillow's convert('RGB') (alpha dropped, CMYK by Pillow's formula, no ICC);
// deliberate differences are listed in docs/architecture.md. Also: thumbnails and a perceptual hash.
// All functions are thread-safe; libvips is initialised once on first use and stays quiet (its
// warnings are dropped; its errors come back as Status). Returned buffers are owned by the caller.
// libvips settings are process-wide: its cache is off, its threads are 1, and every loader other
// than the ones listed above is blocked, for any other user of libvips in the process too.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace fs::image {

// A rectangle of an image as displayed (after EXIF orientation), in pixels.
struct Rect {
  int x = 0, y = 0, width = 0, height = 0;
};

struct DecodeOptions {
  // Longest side (pixels) of the image we hand back (MAX_IMAGE_SIZE). Larger images are reduced to
  // it (JPEG: partly by DCT shrink-on-load, then a Lanczos resize). <= 0: no cap.
  int max_side = 2048;
  // Refuse images whose header declares more pixels (width x height of the first frame) than this,
  // before decoding anything: the decompression-bomb guard.
  uint64_t max_pixels = 100'000'000;
  // Refuse inputs larger than this many bytes without reading them.
  uint64_t max_file_bytes = 256ull << 20;
  // If > 0, JPEG shrink-on-load (1/2, 1/4, 1/8 DCT scaling) may reduce the shortest side down to,
  // but not below, this many pixels. For CLIP use 448 (2 x 224): the bicubic downscale then
  // dominates, and results stay within a few 8-bit levels of a full decode (docs/params.md).
  // 0: never shrink for the caller's sake (only for max_side).
  int min_short_side = 0;
  // Accept truncated files (missing rows come back grey) instead of failing with kCorruption.
  bool allow_truncated = false;
  // Give up with kResourceExhausted once decoding has taken this long (checked between strips of
  // 64 rows, so a decoder stuck inside one strip, or a slow header parse, is not interrupted).
  // <= 0: no limit.
  int max_decode_ms = 20000;
  // For callers that read only part of an image (CLIP's resize and centre crop): given the size of
  // the image as it would be handed back without max_side, the rectangle they read. When set, an
  // image over max_side is not reduced as a whole (which would move that part): the rectangle,
  // widened to be symmetric about the centre, is handed back at full resolution instead, and
  // RgbImage's window fields say where it lies. Memory is then that of the rectangle (for CLIP,
  // about the shortest side squared), bounded by max_pixels; JPEG shrink-on-load is then chosen by
  // min_short_side alone (0: a full decode). Empty: max_side applies as above.
  std::function<Rect(int width, int height)> window;
};

struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;  // RGB8, row-major, no padding: height * width * 3 bytes
  // Where the pixels lie in the decoded image when DecodeOptions::window cut them out of it:
  // columns [x0, x0 + width), rows [y0, y0 + height) of a full_width x full_height image.
  // full_width == 0: the pixels are the whole image.
  int x0 = 0, y0 = 0, full_width = 0, full_height = 0;
};

struct ImageInfo {
  int width = 0;         // as displayed, i.e. after EXIF orientation
  int height = 0;
  std::string format;    // "jpeg", "png", "webp", "gif", "bmp", "tiff", "heif", "avif"
  int orientation = 1;   // EXIF orientation 1..8 (anything else reads as 1)
  int bands = 0;         // channels as stored: 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA or CMYK, ...
};

// Reads `path` (refusing files over options.max_file_bytes) and decodes it.
Result<RgbImage> DecodeFile(const std::string& path, const DecodeOptions& options);
// Decodes `bytes` (borrowed for the duration of the call). Errors: kUnsupported (not a format we
// read, or a feature of it the decoder lacks, e.g. 12-bit JPEG), kResourceExhausted (a limit
// above), kCorruption (damaged or truncated data).
Result<RgbImage> DecodeMemory(std::string_view bytes, const DecodeOptions& options);
// Format and dimensions from the header only; decodes no pixels.
Result<ImageInfo> Probe(std::string_view bytes);

// A thumbnail of at most max_side x max_side pixels (aspect kept, never enlarged), as JPEG bytes
// (quality 80, no metadata), for the UI.
Result<std::string> MakeThumbnail(const RgbImage& image, int max_side = 256);

// 64-bit DCT perceptual hash (pHash): luma, area-averaged to 32 x 32, 2-D DCT-II, the 8 x 8
// lowest frequencies compared with their median (bit 8*v+u set where coefficient (u, v) is above
// it). Resized or recompressed copies differ in a few bits; unrelated photos in about half of 64.
// An empty image hashes to 0.
uint64_t PerceptualHash(const RgbImage& image);
// Number of differing bits, 0..64.
int HammingDistance(uint64_t a, uint64_t b);

}  // namespace fs::image
