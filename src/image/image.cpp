// Decoding through libvips. libvips types stay inside this file (STYLE: third-party types never in
// our headers). Why each choice:
// - We pick the loader ourselves from the magic bytes and call it by name, and every other libvips
//   loader is blocked, so a file can never reach PDF/SVG/ImageMagick/etc. by accident. ImageMagick
//   is reachable only for bytes that start with "BM" (libvips 8.14 has no BMP loader of its own).
// - Dimensions are checked on the header before any pixel is decoded (decompression bombs).
// - Colour conversion is done here in C++ to match Pillow's convert('RGB'), not libvips' colour
//   management (which would apply ICC profiles Pillow ignores).
#include "image/image.h"

#include <vips/vips.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <optional>
#include <cstring>
#include <memory>
#include <mutex>

#include "core/check.h"
#include "core/env.h"
#include "core/utf8.h"

namespace fs::image {
namespace {

// ---------------------------------------------------------------------------------------------
// libvips set-up and ownership.

void DropLog(const gchar*, GLogLevelFlags, const gchar*, gpointer) {}

Status InitVips() {
  static std::once_flag once;
  static Status status;
  std::call_once(once, [] {
    if (VIPS_INIT("filesearch") != 0) {
      status = Status::Internal("libvips failed to start: " + std::string(vips_error_buffer()));
      vips_error_clear();
      return;
    }
    // We decode one image per worker thread; libvips' own worker threads would compete with ours.
    vips_concurrency_set(1);
    // Every input is new: caching operations only holds memory and file handles.
    vips_cache_set_max(0);
    vips_cache_set_max_mem(0);
    vips_cache_set_max_files(0);
    vips_leak_set(FALSE);
    // Loader allow-list: block every loader, then re-enable the ones Load() below calls by name.
    vips_operation_block_set("VipsForeignLoad", TRUE);
    for (const char* allowed : {"VipsForeignLoadJpeg", "VipsForeignLoadPng", "VipsForeignLoadNsgif",
                                "VipsForeignLoadWebp", "VipsForeignLoadTiff", "VipsForeignLoadHeif",
                                "VipsForeignLoadMagickBuffer"}) {
      vips_operation_block_set(allowed, FALSE);
    }
    // libvips reports recoverable trouble in damaged files as GLib warnings on stderr; a crawler
    // sees thousands of those. Errors still come back through vips_error_buffer().
    g_log_set_handler("VIPS",
                      static_cast<GLogLevelFlags>(G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE |
                                                  G_LOG_LEVEL_INFO | G_LOG_LEVEL_DEBUG),
                      DropLog, nullptr);
  });
  return status;
}

struct VipsUnref {
  void operator()(VipsImage* image) const { g_object_unref(image); }
};
using VipsImagePtr = std::unique_ptr<VipsImage, VipsUnref>;

struct GFree {
  void operator()(void* p) const { g_free(p); }
};

// The libvips error text for a failed call, cleared for the next one, on one line, as UTF-8:
// decoders may echo bytes of the file (a tag, a chunk name) that are not text, and the message
// goes on into JSON replies and the failure list.
std::string TakeVipsError() {
  char* raw = vips_error_buffer_copy();
  std::string text = RepairUtf8(raw != nullptr ? raw : "");
  g_free(raw);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  std::replace(text.begin(), text.end(), '\n', ';');
  if (text.empty()) text = "the decoder rejected the data without giving a reason";
  return text;
}

// A decoder failure as a Status: kUnsupported where the decoder says it does not handle a feature
// of a valid file (tiled planar TIFF, 12-bit JPEG, ...), kCorruption otherwise.
Status DecodeError(const std::string& what) {
  std::string text = TakeVipsError();
  const bool unsupported = text.find("not supported") != std::string::npos ||
                           text.find("Unsupported") != std::string::npos ||
                           text.find("unsupported") != std::string::npos;
  std::string message = what + ": " + std::move(text);
  return unsupported ? Status::Unsupported(std::move(message)) : Status::Corruption(std::move(message));
}

// ---------------------------------------------------------------------------------------------
// Format detection.

enum class Format { kJpeg, kPng, kGif, kWebp, kTiff, kBmp, kHeif, kAvif };

const char* FormatName(Format f) {
  switch (f) {
    case Format::kJpeg: return "jpeg";
    case Format::kPng: return "png";
    case Format::kGif: return "gif";
    case Format::kWebp: return "webp";
    case Format::kTiff: return "tiff";
    case Format::kBmp: return "bmp";
    case Format::kHeif: return "heif";
    case Format::kAvif: return "avif";
  }
  return "unknown";
}

bool StartsWith(std::string_view bytes, std::string_view magic, size_t at = 0) {
  return bytes.size() >= at + magic.size() && bytes.substr(at, magic.size()) == magic;
}

Result<Format> Sniff(std::string_view b) {
  using namespace std::string_view_literals;
  if (StartsWith(b, "\xFF\xD8\xFF"sv)) return Format::kJpeg;
  if (StartsWith(b, "\x89PNG\r\n\x1A\n"sv)) return Format::kPng;
  if (StartsWith(b, "GIF87a"sv) || StartsWith(b, "GIF89a"sv)) return Format::kGif;
  if (StartsWith(b, "RIFF"sv) && StartsWith(b, "WEBP"sv, 8)) return Format::kWebp;
  if (StartsWith(b, "II*\0"sv) || StartsWith(b, "MM\0*"sv) || StartsWith(b, "II+\0"sv) ||
      StartsWith(b, "MM\0+"sv)) {
    return Format::kTiff;
  }
  if (StartsWith(b, "BM"sv) && b.size() >= 26) return Format::kBmp;
  if (StartsWith(b, "ftyp"sv, 4) && b.size() >= 12) {
    const std::string_view brand = b.substr(8, 4);
    if (brand == "avif" || brand == "avis") return Format::kAvif;
    for (std::string_view heif : {"heic", "heix", "hevc", "hevx", "heim", "heis", "hevm", "hevs",
                                  "mif1", "msf1"}) {
      if (brand == heif) return Format::kHeif;
    }
  }
  return Status::Unsupported(
      "not an image format we read (JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC/AVIF)");
}

uint32_t ReadBigEndian32(std::string_view b, size_t at) {
  return (static_cast<uint32_t>(static_cast<uint8_t>(b[at])) << 24) |
         (static_cast<uint32_t>(static_cast<uint8_t>(b[at + 1])) << 16) |
         (static_cast<uint32_t>(static_cast<uint8_t>(b[at + 2])) << 8) |
         static_cast<uint32_t>(static_cast<uint8_t>(b[at + 3]));
}

// A four-byte chunk type as text for a message: letters as they are, any other byte as \xNN, so
// a damaged file's bytes never reach a message (and from there JSON) raw.
std::string PrintableTag(std::string_view tag) {
  std::string out;
  for (char c : tag) {
    if (std::isalnum(static_cast<unsigned char>(c))) {
      out += c;
    } else {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02X", static_cast<unsigned>(static_cast<unsigned char>(c)));
      out += hex;
    }
  }
  return out;
}

// Every PNG chunk must fit inside the file. libpng allocates a chunk's declared length (up to
// 2 GiB) before it notices that the file is 57 bytes long: seconds of page faults per file.
// A cut-off IDAT is let through when truncated files are accepted.
Status CheckPngChunks(std::string_view b, bool allow_truncated) {
  size_t pos = 8;
  while (pos + 8 <= b.size()) {
    const uint64_t length = ReadBigEndian32(b, pos);
    const std::string_view type = b.substr(pos + 4, 4);
    if (length > 0x7FFFFFFFu || pos + 12 + length > b.size()) {
      if (allow_truncated && type == "IDAT") return Status::Ok();
      return Status::Corruption("png chunk '" + PrintableTag(type) + "' declares " +
                                std::to_string(length) + " bytes, past the end of the " +
                                std::to_string(b.size()) + "-byte file (truncated or damaged)");
    }
    if (type == "IEND") return Status::Ok();
    pos += 12 + length;
  }
  return Status::Ok();  // a missing IEND is libpng's to judge
}

// The colour of the first frame's transparent palette index, if it has one. libvips' GIF decoder
// hands back transparent pixels as (0, 0, 0, 0); Pillow's convert('RGB') shows this colour there,
// so we put it back. Walks the blocks up to the first image descriptor; nullopt on anything odd.
std::optional<std::array<uint8_t, 3>> GifTransparentColour(std::string_view b) {
  if (b.size() < 13) return std::nullopt;
  auto byte = [&](size_t at) { return static_cast<uint8_t>(b[at]); };
  auto table_bytes = [](uint8_t packed) { return size_t{3} << ((packed & 7) + 1); };
  size_t pos = 13;
  std::string_view global;
  if (byte(10) & 0x80) {
    const size_t n = table_bytes(byte(10));
    if (pos + n > b.size()) return std::nullopt;
    global = b.substr(pos, n);
    pos += n;
  }
  int transparent = -1;
  while (pos < b.size()) {
    const uint8_t tag = byte(pos);
    if (tag == 0x21) {  // extension: label, then sub-blocks
      if (pos + 2 > b.size()) return std::nullopt;
      const uint8_t label = byte(pos + 1);
      pos += 2;
      if (label == 0xF9 && pos + 5 <= b.size() && byte(pos) == 4) {  // graphic control
        transparent = (byte(pos + 1) & 1) ? byte(pos + 4) : -1;
      }
      while (pos < b.size()) {
        const uint8_t len = byte(pos);
        pos += 1 + static_cast<size_t>(len);
        if (len == 0) break;
      }
    } else if (tag == 0x2C) {  // image descriptor of the first frame
      if (pos + 10 > b.size() || transparent < 0) return std::nullopt;
      std::string_view table = global;
      if (byte(pos + 9) & 0x80) {
        const size_t n = table_bytes(byte(pos + 9));
        if (pos + 10 + n > b.size()) return std::nullopt;
        table = b.substr(pos + 10, n);
      }
      const size_t at = static_cast<size_t>(transparent) * 3;
      if (at + 3 > table.size()) return std::nullopt;
      return std::array<uint8_t, 3>{static_cast<uint8_t>(table[at]), static_cast<uint8_t>(table[at + 1]),
                                    static_cast<uint8_t>(table[at + 2])};
    } else {
      return std::nullopt;
    }
  }
  return std::nullopt;
}

// Opens `bytes` lazily with the loader for `format`: only the header is read until pixels are
// asked for. `bytes` must outlive the image. `shrink` is a JPEG DCT scale denominator (1, 2, 4, 8);
// `webp_scale` (0 < scale <= 1) has libwebp decode straight to a smaller size.
Result<VipsImagePtr> Open(std::string_view bytes, Format format, int shrink, bool allow_truncated,
                          double webp_scale = 1.0) {
  if (format == Format::kPng) FS_RETURN_IF_ERROR(CheckPngChunks(bytes, allow_truncated));
  void* buf = const_cast<char*>(bytes.data());  // libvips' signature; it does not write
  const size_t len = bytes.size();
  const VipsFailOn fail_on = allow_truncated ? VIPS_FAIL_ON_NONE : VIPS_FAIL_ON_TRUNCATED;
  const VipsAccess access = VIPS_ACCESS_SEQUENTIAL;
  VipsImage* out = nullptr;
  int rc = -1;
  switch (format) {
    case Format::kJpeg:
      rc = vips_jpegload_buffer(buf, len, &out, "shrink", shrink, "fail_on", fail_on, "access",
                                access, nullptr);
      break;
    case Format::kPng:
      rc = vips_pngload_buffer(buf, len, &out, "fail_on", fail_on, "access", access, nullptr);
      break;
    case Format::kGif:
      rc = vips_gifload_buffer(buf, len, &out, "n", 1, "page", 0, "fail_on", fail_on, "access",
                               access, nullptr);
      break;
    case Format::kWebp:
      rc = vips_webpload_buffer(buf, len, &out, "n", 1, "page", 0, "scale", webp_scale, "fail_on",
                                fail_on, "access", access, nullptr);
      break;
    case Format::kTiff:
      rc = vips_tiffload_buffer(buf, len, &out, "n", 1, "page", 0, "fail_on", fail_on, "access",
                                access, nullptr);
      break;
    case Format::kBmp:
      rc = vips_magickload_buffer(buf, len, &out, "n", 1, "page", 0, "fail_on", fail_on, "access",
                                  access, nullptr);
      break;
    case Format::kHeif:
    case Format::kAvif:
      rc = vips_heifload_buffer(buf, len, &out, "n", 1, "page", 0, "fail_on", fail_on, "access",
                                access, nullptr);
      break;
  }
  if (rc != 0 || out == nullptr) {
    if (out != nullptr) g_object_unref(out);
    return DecodeError(std::string("cannot read ") + FormatName(format) + " header");
  }
  return VipsImagePtr(out);
}

// EXIF orientation as Pillow's exif_transpose reads it: 2..8 transform, anything else is 1.
int Orientation(VipsImage* image) {
  int value = 1;
  if (vips_image_get_typeof(image, VIPS_META_ORIENTATION) != 0 &&
      vips_image_get_int(image, VIPS_META_ORIENTATION, &value) == 0 && value >= 2 && value <= 8) {
    return value;
  }
  return 1;
}

// Largest JPEG DCT shrink (1, 2, 4, 8) that still leaves what the caller needs: the longest side
// not below the max_side we would reduce to anyway, or the shortest side not below min_short_side.
int ChooseShrink(int width, int height, const DecodeOptions& options) {
  const int long_side = std::max(width, height);
  const int short_side = std::min(width, height);
  const int target_long = options.max_side > 0 ? std::min(long_side, options.max_side) : long_side;
  int shrink = 1;
  for (int candidate : {2, 4, 8}) {
    // With a window, max_side no longer reduces the image, so it chooses no shrink either.
    const bool keeps_max_side = !options.window && long_side / candidate >= target_long;
    const bool keeps_short_side =
        options.min_short_side > 0 && short_side / candidate >= options.min_short_side;
    if (keeps_max_side || keeps_short_side) shrink = candidate;
  }
  return shrink;
}

// `r` clamped to a width x height image and widened to be symmetric about its centre (never empty).
Rect SymmetricWindow(Rect r, int width, int height) {
  const int left = std::clamp(std::min(r.x, width - (r.x + r.width)), 0, (width - 1) / 2);
  const int top = std::clamp(std::min(r.y, height - (r.y + r.height)), 0, (height - 1) / 2);
  return Rect{left, top, width - 2 * left, height - 2 * top};
}

// Pillow's cmyk2rgb: each channel (255 - C) * (255 - K) / 255 with its rounding.
inline uint8_t CmykChannel(int ink, int black) {
  const int nk = 255 - black;
  const int t = ink * nk + 128;
  return static_cast<uint8_t>(std::clamp(nk - (((t >> 8) + t) >> 8), 0, 255));
}

// Copies `src` (width x height, `bands` bytes a pixel) to RGB8 with Pillow's convert('RGB') rules,
// then applies the EXIF orientation, into `out`. `transparent`, if set, is the colour shown where
// a 4-band image has alpha 0 (GIF, see GifTransparentColour).
void ToRgbOriented(const uint8_t* src, int width, int height, int bands, bool cmyk,
                   const std::optional<std::array<uint8_t, 3>>& transparent, int orientation,
                   RgbImage* out) {
  const bool swap = orientation >= 5;
  out->width = swap ? height : width;
  out->height = swap ? width : height;
  out->pixels.resize(static_cast<size_t>(width) * static_cast<size_t>(height) * 3);
  const int w = width, h = height;
  uint8_t* dst = out->pixels.data();
  for (int y = 0; y < out->height; ++y) {
    for (int x = 0; x < out->width; ++x) {
      int sx = x, sy = y;
      switch (orientation) {
        case 2: sx = w - 1 - x; break;                       // mirror
        case 3: sx = w - 1 - x; sy = h - 1 - y; break;       // rotate 180
        case 4: sy = h - 1 - y; break;                       // flip
        case 5: sx = y; sy = x; break;                       // transpose
        case 6: sx = y; sy = h - 1 - x; break;               // rotate 90 clockwise
        case 7: sx = w - 1 - y; sy = h - 1 - x; break;       // transverse
        case 8: sx = w - 1 - y; sy = x; break;               // rotate 90 anticlockwise
        default: break;
      }
      const uint8_t* p = src + (static_cast<size_t>(sy) * static_cast<size_t>(w) +
                                static_cast<size_t>(sx)) * static_cast<size_t>(bands);
      if (cmyk) {
        dst[0] = CmykChannel(p[0], p[3]);
        dst[1] = CmykChannel(p[1], p[3]);
        dst[2] = CmykChannel(p[2], p[3]);
      } else if (bands < 3) {  // grey, grey + alpha: replicate, drop alpha
        dst[0] = dst[1] = dst[2] = p[0];
      } else if (bands == 4 && transparent.has_value() && p[3] == 0) {
        dst[0] = (*transparent)[0];
        dst[1] = (*transparent)[1];
        dst[2] = (*transparent)[2];
      } else {  // RGB, RGBA (alpha dropped, not composited, as Pillow does)
        dst[0] = p[0];
        dst[1] = p[1];
        dst[2] = p[2];
      }
      dst += 3;
    }
  }
}

// Runs a libvips operation that yields a new image, replacing `image` with it.
template <typename Op>
Status Step(VipsImagePtr* image, const char* what, Op op) {
  VipsImage* out = nullptr;
  if (op(image->get(), &out) != 0 || out == nullptr) {
    if (out != nullptr) g_object_unref(out);
    return DecodeError(what);
  }
  image->reset(out);
  return Status::Ok();
}

bool IsCmyk(VipsImage* image) {
  return vips_image_get_interpretation(image) == VIPS_INTERPRETATION_CMYK &&
         vips_image_get_bands(image) >= 4;
}

Status CheckPixels(int width, int height, const DecodeOptions& options, const char* format) {
  if (width <= 0 || height <= 0) {
    return Status::Corruption(std::string(format) + " header declares an empty image");
  }
  const uint64_t pixels = static_cast<uint64_t>(width) * static_cast<uint64_t>(height);
  if (pixels > options.max_pixels) {
    return Status::ResourceExhausted(
        std::string(format) + " image declares " + std::to_string(width) + "x" +
        std::to_string(height) + " = " + std::to_string(pixels) + " pixels, over the limit of " +
        std::to_string(options.max_pixels) +
        " (max_pixels); refused before decoding (possible decompression bomb)");
  }
  return Status::Ok();
}

struct RegionUnref {
  void operator()(VipsRegion* region) const { g_object_unref(region); }
};

// Pulls `image` (8-bit unsigned, any band count) through in strips of rows, top to bottom as a sequential
// loader wants, into `out`, and gives up between strips once max_decode_ms have passed since
// `start`. (vips_image_write_to_memory would do the same in one call, with no way to stop it.)
Status ReadPixels(VipsImage* image, std::chrono::steady_clock::time_point start, int max_decode_ms,
                  const char* name, std::vector<uint8_t>* out) {
  const int width = vips_image_get_width(image);
  const int height = vips_image_get_height(image);
  const size_t row_bytes = static_cast<size_t>(width) * static_cast<size_t>(vips_image_get_bands(image));
  out->resize(row_bytes * static_cast<size_t>(height));
  std::unique_ptr<VipsRegion, RegionUnref> region(vips_region_new(image));
  if (region == nullptr) return DecodeError(std::string("cannot decode ") + name);
  constexpr int kStripRows = 64;
  for (int top = 0; top < height; top += kStripRows) {
    VipsRect rect{0, top, width, std::min(kStripRows, height - top)};
    if (vips_region_prepare(region.get(), &rect) != 0) {
      return DecodeError(std::string("cannot decode ") + name);
    }
    // The region now holds (at least) rows [top, top + rect.height) at full width, so its valid
    // area starts at column 0; rows are `bpl` bytes apart. This is VIPS_REGION_ADDR written out
    // without its sign-converting arithmetic.
    const VipsRegion* r = region.get();
    FS_CHECK(r->valid.left == 0 && r->valid.top <= top);
    const size_t line_skip = static_cast<size_t>(r->bpl);
    const VipsPel* first = r->data + static_cast<size_t>(top - r->valid.top) * line_skip;
    for (int row = 0; row < rect.height; ++row) {
      std::memcpy(out->data() + static_cast<size_t>(top + row) * row_bytes,
                  first + static_cast<size_t>(row) * line_skip, row_bytes);
    }
    if (max_decode_ms > 0 && std::chrono::steady_clock::now() - start >
                                 std::chrono::milliseconds(max_decode_ms)) {
      return Status::ResourceExhausted(std::string(name) + " decode stopped after " +
                                       std::to_string(max_decode_ms) + " ms (max_decode_ms), at row " +
                                       std::to_string(top + rect.height) + " of " +
                                       std::to_string(height));
    }
  }
  return Status::Ok();
}

}  // namespace

Result<ImageInfo> Probe(std::string_view bytes) {
  FS_RETURN_IF_ERROR(InitVips());
  FS_ASSIGN_OR_RETURN(Format format, Sniff(bytes));
  FS_ASSIGN_OR_RETURN(VipsImagePtr image, Open(bytes, format, 1, true));
  ImageInfo info;
  info.format = FormatName(format);
  info.orientation = Orientation(image.get());
  const bool swap = info.orientation >= 5;
  info.width = swap ? vips_image_get_height(image.get()) : vips_image_get_width(image.get());
  info.height = swap ? vips_image_get_width(image.get()) : vips_image_get_height(image.get());
  info.bands = vips_image_get_bands(image.get());
  return info;
}

Result<RgbImage> DecodeMemory(std::string_view bytes, const DecodeOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  FS_RETURN_IF_ERROR(InitVips());
  if (bytes.size() > options.max_file_bytes) {
    return Status::ResourceExhausted("image is " + std::to_string(bytes.size()) +
                                     " bytes, over the limit of " +
                                     std::to_string(options.max_file_bytes) + " (max_file_bytes)");
  }
  FS_ASSIGN_OR_RETURN(Format format, Sniff(bytes));
  const char* name = FormatName(format);

  // Header only: dimensions and orientation, nothing decoded yet.
  FS_ASSIGN_OR_RETURN(VipsImagePtr image, Open(bytes, format, 1, options.allow_truncated));
  const int header_width = vips_image_get_width(image.get());
  const int header_height = vips_image_get_height(image.get());
  FS_RETURN_IF_ERROR(CheckPixels(header_width, header_height, options, name));
  const int orientation = Orientation(image.get());

  if (format == Format::kJpeg) {
    const int shrink = ChooseShrink(header_width, header_height, options);
    if (shrink > 1) {
      FS_ASSIGN_OR_RETURN(image, Open(bytes, format, shrink, options.allow_truncated));
    }
  }
  // WebP: libwebp can decode straight to max_side (its own scaler). Only for the max_side cap: the
  // CLIP path (min_short_side) keeps full WebP decodes, whose pixels match Pillow's.
  const int header_long = std::max(header_width, header_height);
  if (format == Format::kWebp && options.max_side > 0 && header_long > options.max_side && !options.window) {
    const double scale = static_cast<double>(options.max_side) / header_long;
    FS_ASSIGN_OR_RETURN(image, Open(bytes, format, 1, options.allow_truncated, scale));
  }

  // Colour spaces other than grey/RGB/CMYK (Lab TIFFs and the like) go to 8-bit sRGB through
  // libvips, before any cast (a cast would clip Lab values).
  const VipsInterpretation interpretation = vips_image_get_interpretation(image.get());
  switch (interpretation) {
    case VIPS_INTERPRETATION_LAB:
    case VIPS_INTERPRETATION_LABQ:
    case VIPS_INTERPRETATION_LABS:
    case VIPS_INTERPRETATION_LCH:
    case VIPS_INTERPRETATION_CMC:
    case VIPS_INTERPRETATION_XYZ:
    case VIPS_INTERPRETATION_YXY:
    case VIPS_INTERPRETATION_scRGB:
    case VIPS_INTERPRETATION_HSV:
      FS_RETURN_IF_ERROR(Step(&image, "colour conversion", [](VipsImage* in, VipsImage** out) {
        return vips_colourspace(in, out, VIPS_INTERPRETATION_sRGB, nullptr);
      }));
      break;
    default:
      break;
  }
  // To 8 bits a channel. 16-bit data keeps its high byte, as Pillow does for 16-bit RGB(A);
  // anything else (float, 32-bit) is clipped to 0..255, as Pillow's "I" and "F" modes are.
  const VipsBandFormat band_format = vips_image_get_format(image.get());
  if (band_format == VIPS_FORMAT_USHORT || band_format == VIPS_FORMAT_SHORT) {
    FS_RETURN_IF_ERROR(Step(&image, "16-bit to 8-bit", [](VipsImage* in, VipsImage** out) {
      return vips_rshift_const1(in, out, 8, nullptr);
    }));
  }
  if (vips_image_get_format(image.get()) != VIPS_FORMAT_UCHAR) {
    FS_RETURN_IF_ERROR(Step(&image, "cast to 8-bit", [](VipsImage* in, VipsImage** out) {
      return vips_cast_uchar(in, out, nullptr);
    }));
  }
  int bands = vips_image_get_bands(image.get());
  if (bands > 5 || (bands == 5 && !IsCmyk(image.get()))) {
    return Status::Unsupported(std::string(name) + " image has " + std::to_string(bands) +
                               " channels; only grey, RGB and CMYK (with alpha) are read");
  }
  const bool cmyk = IsCmyk(image.get());

  // MAX_IMAGE_SIZE: reduce what is left after shrink-on-load so the longest side is max_side; or,
  // for a caller that reads only a window, cut that out at full resolution.
  const int long_side = std::max(vips_image_get_width(image.get()), vips_image_get_height(image.get()));
  Rect window;  // as displayed; width 0: the whole image
  int full_width = 0, full_height = 0;
  if (options.max_side > 0 && long_side > options.max_side && options.window) {
    const bool swap = orientation >= 5;  // orientations 5..8 transpose
    const int stored_w = vips_image_get_width(image.get()), stored_h = vips_image_get_height(image.get());
    full_width = swap ? stored_h : stored_w;
    full_height = swap ? stored_w : stored_h;
    window = SymmetricWindow(options.window(full_width, full_height), full_width, full_height);
    // Symmetric about the centre, the window is its own image under every flip and rotation: only
    // a transpose swaps its axes.
    const Rect stored = swap ? Rect{window.y, window.x, window.height, window.width} : window;
    FS_RETURN_IF_ERROR(Step(&image, "window", [stored](VipsImage* in, VipsImage** out) {
      return vips_extract_area(in, out, stored.x, stored.y, stored.width, stored.height, nullptr);
    }));
  } else if (options.max_side > 0 && long_side > options.max_side) {
    const double scale = static_cast<double>(options.max_side) / long_side;
    FS_RETURN_IF_ERROR(Step(&image, "resize", [scale](VipsImage* in, VipsImage** out) {
      return vips_resize(in, out, scale, nullptr);
    }));
  }

  // Decode: the pipeline runs here, once, top to bottom.
  const int width = vips_image_get_width(image.get());
  const int height = vips_image_get_height(image.get());
  bands = vips_image_get_bands(image.get());
  std::vector<uint8_t> pixels;
  FS_RETURN_IF_ERROR(ReadPixels(image.get(), start, options.max_decode_ms, name, &pixels));
  RgbImage rgb;
  std::optional<std::array<uint8_t, 3>> transparent;
  if (format == Format::kGif) transparent = GifTransparentColour(bytes);
  ToRgbOriented(pixels.data(), width, height, bands, cmyk, transparent, orientation, &rgb);
  if (window.width > 0) {
    rgb.x0 = window.x;
    rgb.y0 = window.y;
    rgb.full_width = full_width;
    rgb.full_height = full_height;
  }
  return rgb;
}

Result<RgbImage> DecodeFile(const std::string& path, const DecodeOptions& options) {
  auto bytes = Env::Default()->ReadFile(path, options.max_file_bytes);
  if (!bytes.ok()) return bytes.status().WithContext(path);
  auto image = DecodeMemory(*bytes, options);
  if (!image.ok()) return image.status().WithContext(path);
  return image;
}

Result<std::string> MakeThumbnail(const RgbImage& image, int max_side) {
  FS_RETURN_IF_ERROR(InitVips());
  if (image.width <= 0 || image.height <= 0 ||
      image.pixels.size() != static_cast<size_t>(image.width) * static_cast<size_t>(image.height) * 3) {
    return Status::InvalidArgument("thumbnail: image is empty or its pixel buffer has the wrong size");
  }
  if (max_side <= 0) return Status::InvalidArgument("thumbnail: max_side must be positive");
  VipsImagePtr in(vips_image_new_from_memory(image.pixels.data(), image.pixels.size(), image.width,
                                             image.height, 3, VIPS_FORMAT_UCHAR));
  if (in == nullptr) return Status::Internal("thumbnail: " + TakeVipsError());
  VipsImage* small = nullptr;
  if (vips_thumbnail_image(in.get(), &small, max_side, "height", max_side, "size", VIPS_SIZE_DOWN,
                           nullptr) != 0) {
    return Status::Internal("thumbnail: " + TakeVipsError());
  }
  VipsImagePtr small_ptr(small);
  void* buf = nullptr;
  size_t len = 0;
  if (vips_jpegsave_buffer(small, &buf, &len, "Q", 80, "strip", TRUE, nullptr) != 0) {
    return Status::Internal("thumbnail: JPEG encode: " + TakeVipsError());
  }
  std::unique_ptr<void, GFree> owned(buf);
  return std::string(static_cast<const char*>(buf), len);
}

}  // namespace fs::image
