#include "model/clip/preprocess.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace fs::clip {
namespace {

// Pillow keeps resampling weights as fixed-point integers with this many fractional bits for 8-bit
// images (32 bits - 8 bits of pixel - 2 bits of headroom for negative lobes and rounding).
constexpr int kPrecisionBits = 32 - 8 - 2;
constexpr double kBicubicSupport = 2.0;

// Keys' cubic convolution kernel with a = -0.5, the one Pillow calls BICUBIC.
double Bicubic(double x) {
  constexpr double a = -0.5;
  x = std::fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}

// Fixed-point taps of a 1-D resize from in_size to out_size, for output positions
// [out_begin, out_begin + out_count) only. Tap i of output j reads input first[j] + i.
struct Taps {
  int ksize = 0;
  std::vector<int> first;       // [out_count]
  std::vector<int> count;       // [out_count]
  std::vector<int32_t> weight;  // [out_count * ksize]
};

// The arithmetic follows Pillow's: the same double expressions in the same order, so that the
// rounded integer weights, and hence every output byte, come out identical.
Taps ComputeTaps(int in_size, int out_size, int out_begin, int out_count) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double filter_scale = std::max(scale, 1.0);
  const double support = kBicubicSupport * filter_scale;
  Taps taps;
  taps.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  taps.first.resize(static_cast<size_t>(out_count));
  taps.count.resize(static_cast<size_t>(out_count));
  taps.weight.assign(static_cast<size_t>(out_count) * static_cast<size_t>(taps.ksize), 0);
  std::vector<double> w(static_cast<size_t>(taps.ksize));
  const double inv_scale = 1.0 / filter_scale;
  for (int j = 0; j < out_count; ++j) {
    const int out_pos = out_begin + j;
    const double center = (out_pos + 0.5) * scale;
    // Truncation toward zero, then clamping, as Pillow does (the clamp hides the negative case).
    int lo = static_cast<int>(center - support + 0.5);
    lo = std::max(lo, 0);
    int hi = static_cast<int>(center + support + 0.5);
    hi = std::min(hi, in_size);
    const int n = hi - lo;
    double total = 0.0;
    for (int i = 0; i < n; ++i) {
      w[static_cast<size_t>(i)] = Bicubic((i + lo - center + 0.5) * inv_scale);
      total += w[static_cast<size_t>(i)];
    }
    int32_t* dst = &taps.weight[static_cast<size_t>(j) * static_cast<size_t>(taps.ksize)];
    for (int i = 0; i < n; ++i) {
      double v = w[static_cast<size_t>(i)];
      if (total != 0.0) v /= total;
      // Round half away from zero into fixed point.
      dst[i] = v < 0 ? static_cast<int32_t>(-0.5 + v * (1 << kPrecisionBits))
                     : static_cast<int32_t>(0.5 + v * (1 << kPrecisionBits));
    }
    taps.first[static_cast<size_t>(j)] = lo;
    taps.count[static_cast<size_t>(j)] = n;
  }
  return taps;
}

// Accumulator (biased by one half for rounding) back to a byte: arithmetic shift, then clamp.
inline uint8_t Clip8(int32_t acc) {
  return static_cast<uint8_t>(std::clamp(acc >> kPrecisionBits, 0, 255));
}

// The crop offset for an excess of diff >= 0 pixels: Python's round(diff / 2.0) (halves go to the
// even neighbour) for torchvision, diff // 2 for transformers.
int CropOffset(int diff, CropRounding crop) {
  const int half = diff / 2;
  if (diff % 2 == 0 || crop == CropRounding::kFloor) return half;
  return (half % 2 == 0) ? half : half + 1;
}

Status Validate(const uint8_t* rgb, int width, int height, size_t stride, int size) {
  if (rgb == nullptr) return Status::InvalidArgument("preprocess: null pixel buffer");
  if (width <= 0 || height <= 0) {
    return Status::InvalidArgument("preprocess: empty image (" + std::to_string(width) + "x" +
                                   std::to_string(height) + ")");
  }
  if (size <= 0) return Status::InvalidArgument("preprocess: size must be positive");
  if (stride < static_cast<size_t>(width) * 3) {
    return Status::InvalidArgument("preprocess: stride " + std::to_string(stride) +
                                   " is shorter than a row of " + std::to_string(width) +
                                   " RGB pixels");
  }
  return Status::Ok();
}

}  // namespace

Result<ResizedSize> ComputeResizedSize(int width, int height, int size) {
  if (width <= 0 || height <= 0 || size <= 0) {
    return Status::InvalidArgument("resize: sizes must be positive");
  }
  const int short_side = std::min(width, height);
  const int long_side = std::max(width, height);
  // torchvision: int(size * long / short), a true division then truncation.
  const double resized_long = std::floor(static_cast<double>(size) * long_side / short_side);
  if (resized_long > static_cast<double>(1 << 30)) {
    return Status::InvalidArgument("resize: aspect ratio " + std::to_string(width) + "x" +
                                   std::to_string(height) + " is too extreme");
  }
  const int new_long = static_cast<int>(resized_long);
  if (width <= height) return ResizedSize{size, new_long};
  return ResizedSize{new_long, size};
}

namespace {

// What resize + centre crop of a width x height image to `size` reads and how.
struct CropPlan {
  int left = 0, top = 0;           // the crop's offset in the resized image
  bool horizontal = false;         // a pass whose size does not change is skipped, as Pillow skips
  bool vertical = false;           // it (it would be the identity)
  Taps htaps, vtaps;               // for the crop's columns / rows only
  int col_begin = 0, col_end = 0;  // source columns read: [col_begin, col_end)
  int row_begin = 0, row_end = 0;  // source rows read
};

// [begin, end) of the source positions `taps` read.
std::pair<int, int> TapRange(const Taps& taps) {
  int begin = taps.first.front(), end = 0;
  for (size_t j = 0; j < taps.first.size(); ++j) {
    begin = std::min(begin, taps.first[j]);
    end = std::max(end, taps.first[j] + taps.count[j]);
  }
  return {begin, end};
}

Result<CropPlan> PlanCrop(int width, int height, int size, CropRounding crop) {
  FS_ASSIGN_OR_RETURN(ResizedSize resized, ComputeResizedSize(width, height, size));
  CropPlan plan;
  plan.left = CropOffset(resized.width - size, crop);
  plan.top = CropOffset(resized.height - size, crop);
  plan.horizontal = resized.width != width;
  plan.vertical = resized.height != height;
  plan.col_begin = plan.left;
  plan.col_end = plan.left + size;
  plan.row_begin = plan.top;
  plan.row_end = plan.top + size;
  if (plan.horizontal) {
    plan.htaps = ComputeTaps(width, resized.width, plan.left, size);
    std::tie(plan.col_begin, plan.col_end) = TapRange(plan.htaps);
  }
  if (plan.vertical) {
    plan.vtaps = ComputeTaps(height, resized.height, plan.top, size);
    std::tie(plan.row_begin, plan.row_end) = TapRange(plan.vtaps);
  }
  return plan;
}

}  // namespace

Result<SourceRect> CropSourceWindow(int full_width, int full_height, int size, CropRounding crop) {
  if (size <= 0) return Status::InvalidArgument("preprocess: size must be positive");
  FS_ASSIGN_OR_RETURN(CropPlan plan, PlanCrop(full_width, full_height, size, crop));
  return SourceRect{plan.col_begin, plan.row_begin, plan.col_end - plan.col_begin, plan.row_end - plan.row_begin};
}

Status ResizeCropRgb8(const uint8_t* rgb, int width, int height, size_t stride, int size,
                      std::span<uint8_t> out, CropRounding crop, const PixelWindow& window) {
  FS_RETURN_IF_ERROR(Validate(rgb, width, height, stride, size));
  const size_t out_row = static_cast<size_t>(size) * 3;
  if (out.size() != out_row * static_cast<size_t>(size)) {
    return Status::InvalidArgument("preprocess: output holds " + std::to_string(out.size()) +
                                   " bytes, expected " + std::to_string(out_row * static_cast<size_t>(size)));
  }
  // The geometry is the full image's; the buffer may hold only the part of it that is read.
  const bool whole = window.full_width == 0;
  const int full_width = whole ? width : window.full_width;
  const int full_height = whole ? height : window.full_height;
  const int x0 = whole ? 0 : window.x, y0 = whole ? 0 : window.y;
  FS_ASSIGN_OR_RETURN(CropPlan plan, PlanCrop(full_width, full_height, size, crop));
  if (plan.col_begin < x0 || plan.col_end > x0 + width || plan.row_begin < y0 || plan.row_end > y0 + height) {
    return Status::InvalidArgument("preprocess: the pixel window does not cover the crop's source pixels");
  }
  const int rows = plan.row_end - plan.row_begin;
  // Row `row` of the full image in the buffer (its first byte is column x0's).
  auto source_row = [&](int row) { return rgb + static_cast<size_t>(row - y0) * stride; };

  // Horizontal pass into an 8-bit intermediate of `rows` x `size` pixels, rounded and clipped as
  // Pillow's is (it does not keep more precision between the passes).
  std::vector<uint8_t> mid(static_cast<size_t>(rows) * out_row);
  if (plan.horizontal) {
    const Taps& htaps = plan.htaps;
    for (int row = 0; row < rows; ++row) {
      const uint8_t* src = source_row(plan.row_begin + row);
      uint8_t* dst = &mid[static_cast<size_t>(row) * out_row];
      for (int col = 0; col < size; ++col) {
        const int32_t* k = &htaps.weight[static_cast<size_t>(col) * static_cast<size_t>(htaps.ksize)];
        const uint8_t* px = src + static_cast<size_t>(htaps.first[static_cast<size_t>(col)] - x0) * 3;
        int32_t r = 1 << (kPrecisionBits - 1), g = r, b = r;
        for (int i = 0; i < htaps.count[static_cast<size_t>(col)]; ++i) {
          r += px[3 * i + 0] * k[i];
          g += px[3 * i + 1] * k[i];
          b += px[3 * i + 2] * k[i];
        }
        dst[3 * col + 0] = Clip8(r);
        dst[3 * col + 1] = Clip8(g);
        dst[3 * col + 2] = Clip8(b);
      }
    }
  } else {
    for (int row = 0; row < rows; ++row) {
      const uint8_t* src = source_row(plan.row_begin + row) + static_cast<size_t>(plan.left - x0) * 3;
      std::copy(src, src + out_row, &mid[static_cast<size_t>(row) * out_row]);
    }
  }

  if (!plan.vertical) {
    std::copy(mid.begin(), mid.end(), out.begin());
    return Status::Ok();
  }
  const Taps& vtaps = plan.vtaps;
  for (int row = 0; row < size; ++row) {
    const int32_t* k = &vtaps.weight[static_cast<size_t>(row) * static_cast<size_t>(vtaps.ksize)];
    const int first = vtaps.first[static_cast<size_t>(row)] - plan.row_begin;
    const int n = vtaps.count[static_cast<size_t>(row)];
    uint8_t* dst = &out[static_cast<size_t>(row) * out_row];
    for (size_t x = 0; x < out_row; ++x) {
      int32_t acc = 1 << (kPrecisionBits - 1);
      for (int i = 0; i < n; ++i) {
        acc += mid[static_cast<size_t>(first + i) * out_row + x] * k[i];
      }
      dst[x] = Clip8(acc);
    }
  }
  return Status::Ok();
}

Status Preprocess(const uint8_t* rgb, int width, int height, size_t stride,
                  const PreprocessOptions& options, std::span<float> out, const PixelWindow& window) {
  const int size = options.size;
  FS_RETURN_IF_ERROR(Validate(rgb, width, height, stride, size));
  const size_t plane = static_cast<size_t>(size) * static_cast<size_t>(size);
  if (out.size() != 3 * plane) {
    return Status::InvalidArgument("preprocess: output holds " + std::to_string(out.size()) +
                                   " floats, expected 3 x " + std::to_string(size) + " x " +
                                   std::to_string(size));
  }
  for (int c = 0; c < 3; ++c) {
    if (!(options.std[c] > 0.0f)) return Status::InvalidArgument("preprocess: std must be > 0");
  }
  std::vector<uint8_t> cropped(plane * 3);  // [size, size, 3]
  FS_RETURN_IF_ERROR(ResizeCropRgb8(rgb, width, height, stride, size, cropped, options.crop, window));
  // ToTensor then Normalize, in float32 as torch computes them: (v / 255 - mean) / std.
  for (int c = 0; c < 3; ++c) {
    float table[256];
    for (int v = 0; v < 256; ++v) {
      table[v] = (static_cast<float>(v) / 255.0f - options.mean[c]) / options.std[c];
    }
    float* dst = out.data() + static_cast<size_t>(c) * plane;  // [size, size]
    for (size_t i = 0; i < plane; ++i) dst[i] = table[cropped[3 * i + static_cast<size_t>(c)]];
  }
  return Status::Ok();
}

}  // namespace fs::clip
