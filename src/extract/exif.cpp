#include "extract/exif.h"

#include <libexif/exif-data.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>

namespace fs {
namespace {

struct ExifDataUnref {
  void operator()(ExifData* d) const { exif_data_unref(d); }
};

std::string Ascii(ExifData* data, ExifIfd ifd, int tag) {
  ExifEntry* e = exif_content_get_entry(data->ifd[ifd], static_cast<ExifTag>(tag));
  if (!e || e->format != EXIF_FORMAT_ASCII || !e->data) return "";
  std::string s(reinterpret_cast<const char*>(e->data), e->size);
  s = s.substr(0, s.find('\0'));
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.pop_back();
  for (auto& c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7F) c = '?';
  }
  return s;
}

// "YYYY:MM:DD HH:MM:SS" (camera-local) -> seconds since the epoch as if UTC. Impossible dates
// (month 13, February 30, the "0000:00:00 00:00:00" some cameras write) give nullopt.
std::optional<int64_t> ParseExifDate(const std::string& s) {
  namespace chr = std::chrono;
  int y = 0;
  unsigned mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  if (std::sscanf(s.c_str(), "%4d:%2u:%2u %2u:%2u:%2u", &y, &mo, &d, &h, &mi, &sec) != 6) return std::nullopt;
  const chr::year_month_day date{chr::year{y}, chr::month{mo}, chr::day{d}};
  if (!date.ok() || y < 1800 || y > 2200 || h > 23 || mi > 59 || sec > 60) return std::nullopt;
  const chr::seconds since_epoch =
      chr::sys_days{date}.time_since_epoch() + chr::hours{h} + chr::minutes{mi} + chr::seconds{sec};
  return static_cast<int64_t>(since_epoch.count());
}

// "+09:00" -> +32400 seconds; nullopt if malformed.
std::optional<int64_t> ParseOffset(const std::string& s) {
  int h = 0, m = 0;
  char sign = 0;
  if (std::sscanf(s.c_str(), "%c%2d:%2d", &sign, &h, &m) != 3 || (sign != '+' && sign != '-') || h > 14 || m > 59) {
    return std::nullopt;
  }
  int64_t off = h * 3600 + m * 60;
  return sign == '-' ? -off : off;
}

std::optional<int64_t> TakenNs(ExifData* data) {
  constexpr int kOffsetTimeOriginal = 0x9011, kOffsetTimeDigitized = 0x9012;
  constexpr int kSubSecOriginal = 0x9291, kSubSecDigitized = 0x9292;
  struct Source {
    int date, subsec, offset;
  };
  constexpr Source kSources[] = {{EXIF_TAG_DATE_TIME_ORIGINAL, kSubSecOriginal, kOffsetTimeOriginal},
                                 {EXIF_TAG_DATE_TIME_DIGITIZED, kSubSecDigitized, kOffsetTimeDigitized}};
  for (const auto& src : kSources) {
    auto secs = ParseExifDate(Ascii(data, EXIF_IFD_EXIF, src.date));
    if (!secs) continue;
    if (auto off = ParseOffset(Ascii(data, EXIF_IFD_EXIF, src.offset))) *secs -= *off;
    int64_t ns = *secs * 1000000000;
    std::string sub = Ascii(data, EXIF_IFD_EXIF, src.subsec);
    int64_t scale = 100000000;
    for (char c : sub) {
      if (c < '0' || c > '9' || scale == 0) break;
      ns += (c - '0') * scale;
      scale /= 10;
    }
    return ns;
  }
  return std::nullopt;
}

// GPS degrees/minutes/seconds rationals plus an "N"/"S" ("E"/"W") reference.
std::optional<double> Coordinate(ExifData* data, int ref_tag, int value_tag, char negative, double limit) {
  ExifEntry* e = exif_content_get_entry(data->ifd[EXIF_IFD_GPS], static_cast<ExifTag>(value_tag));
  if (!e || e->format != EXIF_FORMAT_RATIONAL || e->components != 3 || !e->data || e->size < 24) {
    return std::nullopt;
  }
  ExifByteOrder order = exif_data_get_byte_order(data);
  double parts[3];
  for (int k = 0; k < 3; ++k) {
    ExifRational r = exif_get_rational(e->data + 8 * k, order);
    if (r.denominator == 0) return std::nullopt;
    parts[k] = static_cast<double>(r.numerator) / r.denominator;
  }
  double deg = parts[0] + parts[1] / 60.0 + parts[2] / 3600.0;
  if (!std::isfinite(deg) || deg > limit || parts[1] >= 60 || parts[2] >= 60) return std::nullopt;
  std::string ref = Ascii(data, EXIF_IFD_GPS, ref_tag);
  return !ref.empty() && ref[0] == negative ? -deg : deg;
}

// The payload of the first APP1 segment that starts with "Exif\0\0" (libexif's own marker scan
// stops at COM and other segments it does not expect). Empty if the headers end first.
std::string_view JpegExifSegment(std::string_view jpeg) {
  size_t pos = 2;  // after SOI
  while (pos + 4 <= jpeg.size()) {
    if (static_cast<unsigned char>(jpeg[pos]) != 0xFF) return {};
    auto marker = static_cast<unsigned char>(jpeg[pos + 1]);
    if (marker == 0xFF) {  // fill byte
      ++pos;
      continue;
    }
    if (marker == 0xDA || marker == 0xD9) return {};  // start of scan / end of image: no EXIF
    size_t len = static_cast<size_t>(static_cast<unsigned char>(jpeg[pos + 2])) << 8 |
                 static_cast<unsigned char>(jpeg[pos + 3]);
    if (len < 2) return {};
    std::string_view payload = jpeg.substr(pos + 4, std::min(len - 2, jpeg.size() - (pos + 4)));
    if (marker == 0xE1 && payload.size() >= 6 && payload.substr(0, 6) == std::string_view("Exif\0\0", 6)) {
      return payload;
    }
    pos += 2 + len;
  }
  return {};
}

}  // namespace

Result<ExifInfo> ReadExif(std::string_view bytes) {
  std::string tiff_buf;
  bool jpeg = bytes.size() >= 3 && bytes.substr(0, 3) == "\xFF\xD8\xFF";
  bool tiff = bytes.size() >= 8 && (bytes.substr(0, 4) == std::string_view("II*\0", 4) ||
                                    bytes.substr(0, 4) == std::string_view("MM\0*", 4));
  if (!jpeg && !tiff) return Status::Unsupported("EXIF is read from JPEG and TIFF files only");
  std::string_view segment;
  if (jpeg) {
    segment = JpegExifSegment(bytes);
    if (segment.empty()) return Status::NotFound("no EXIF segment");
  } else {
    // libexif parses a TIFF structure behind an "Exif\0\0" header; offsets past 64 KiB are out of reach.
    tiff_buf.assign("Exif\0\0", 6);
    tiff_buf.append(bytes.substr(0, 0xFFF0));
    segment = tiff_buf;
  }
  const auto* ptr = reinterpret_cast<const unsigned char*>(segment.data());
  size_t size = segment.size();
  std::unique_ptr<ExifData, ExifDataUnref> data(exif_data_new());
  if (!data) return Status::Internal("libexif: out of memory");
  // The spec-following option "fixes" missing mandatory tags, e.g. by inventing a DateTime of now.
  exif_data_unset_option(data.get(), EXIF_DATA_OPTION_FOLLOW_SPECIFICATION);
  exif_data_load_data(data.get(), ptr, static_cast<unsigned int>(std::min<size_t>(size, 1u << 30)));
  ExifInfo info;
  info.make = Ascii(data.get(), EXIF_IFD_0, EXIF_TAG_MAKE);
  info.model = Ascii(data.get(), EXIF_IFD_0, EXIF_TAG_MODEL);
  info.taken_ns = TakenNs(data.get());
  auto lat = Coordinate(data.get(), EXIF_TAG_GPS_LATITUDE_REF, EXIF_TAG_GPS_LATITUDE, 'S', 90.0);
  auto lon = Coordinate(data.get(), EXIF_TAG_GPS_LONGITUDE_REF, EXIF_TAG_GPS_LONGITUDE, 'W', 180.0);
  if (lat && lon) {  // one without the other is no position
    info.latitude = lat;
    info.longitude = lon;
  }
  bool any_entry = false;
  for (int ifd = 0; ifd < EXIF_IFD_COUNT; ++ifd) any_entry |= data->ifd[ifd] && data->ifd[ifd]->count > 0;
  if (!any_entry) return Status::NotFound("no EXIF data");
  return info;
}

}  // namespace fs
