// EXIF metadata of photos: when it was taken, with which camera, where. Reads the APP1 segment of a
// JPEG or the first IFDs of a TIFF (through libexif; other formats give NotFound). Never trusts the
// data: out-of-range dates and coordinates are left unset rather than reported wrong.
// Pure function; thread-safe (libexif keeps no global state). The caller owns the bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace fs {

struct ExifInfo {
  // DateTimeOriginal (else DateTimeDigitized), ns since the Unix epoch. EXIF stores camera-local time:
  // it is shifted by OffsetTimeOriginal when present, otherwise read as if it were UTC.
  std::optional<int64_t> taken_ns;
  std::string make;   // "Canon", trailing spaces and NULs removed; "" if absent
  std::string model;  // "Canon EOS 350D DIGITAL"
  std::optional<double> latitude;   // degrees, north positive, in [-90, 90]
  std::optional<double> longitude;  // degrees, east positive, in [-180, 180]
  bool empty() const { return !taken_ns && make.empty() && model.empty() && !latitude && !longitude; }
};

// `bytes`: the start of a JPEG (the EXIF segment is within its first 64 KiB) or TIFF file.
// NotFound when the file has no EXIF we can read, Unsupported for other formats.
Result<ExifInfo> ReadExif(std::string_view bytes);

}  // namespace fs
