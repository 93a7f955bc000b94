#include "engine/mime.h"

#include <cstring>

#include "core/utf8.h"

namespace fs {
namespace {

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}

struct ExtMime {
  const char* ext;
  const char* mime;
};

// Text-like and container formats that magic bytes do not settle.
constexpr ExtMime kByExtension[] = {
    {"txt", "text/plain"}, {"md", "text/markdown"}, {"markdown", "text/markdown"}, {"csv", "text/csv"},
    {"tsv", "text/tab-separated-values"}, {"html", "text/html"}, {"htm", "text/html"},
    {"xml", "application/xml"}, {"json", "application/json"}, {"yaml", "application/yaml"},
    {"yml", "application/yaml"}, {"log", "text/plain"}, {"ini", "text/plain"}, {"cfg", "text/plain"},
    {"c", "text/x-c"}, {"h", "text/x-c"}, {"cpp", "text/x-c++"}, {"hpp", "text/x-c++"}, {"py", "text/x-python"},
    {"js", "text/javascript"}, {"ts", "text/plain"}, {"java", "text/x-java"}, {"go", "text/x-go"},
    {"rs", "text/x-rust"}, {"sh", "text/x-shellscript"}, {"sql", "application/sql"}, {"rtf", "application/rtf"},
    {"eml", "message/rfc822"}, {"svg", "image/svg+xml"},
    {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
    {"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
    {"pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
    {"odt", "application/vnd.oasis.opendocument.text"}, {"epub", "application/epub+zip"},
    {"ods", "application/vnd.oasis.opendocument.spreadsheet"},
    {"odp", "application/vnd.oasis.opendocument.presentation"},
    {"doc", "application/msword"}, {"xls", "application/vnd.ms-excel"}, {"ppt", "application/vnd.ms-powerpoint"},
    {"msg", "application/vnd.ms-outlook"},
};

const char* MimeForExtension(std::string_view ext) {
  for (const auto& e : kByExtension) {
    if (ext == e.ext) return e.mime;
  }
  return nullptr;
}

bool LooksLikeText(std::string_view head) {
  if (head.empty()) return false;
  if (StartsWith(head, "\xEF\xBB\xBF") || StartsWith(head, "\xFF\xFE") || StartsWith(head, "\xFE\xFF")) return true;
  size_t control = 0;
  for (unsigned char c : head) {
    if (c == 0) return false;
    if (c < 0x09 || (c > 0x0D && c < 0x20 && c != 0x1B)) ++control;
  }
  if (control * 20 > head.size()) return false;
  // A UTF-8 sequence cut at the end of `head` is fine: check all but the last 3 bytes strictly.
  std::string_view body = head.size() > 3 ? head.substr(0, head.size() - 3) : head;
  return IsValidUtf8(body) || control == 0;
}

}  // namespace

std::string ExtensionOf(std::string_view name) {
  auto dot = name.find_last_of('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == name.size()) return "";
  std::string ext(name.substr(dot + 1));
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

std::string DetectMime(std::string_view head, std::string_view ext) {
  if (head.empty()) return "application/x-empty";
  if (StartsWith(head, "\xFF\xD8\xFF")) return "image/jpeg";
  if (StartsWith(head, "\x89PNG\r\n\x1A\n")) return "image/png";
  if (StartsWith(head, "GIF87a") || StartsWith(head, "GIF89a")) return "image/gif";
  if (StartsWith(head, "BM") && head.size() > 14) return "image/bmp";
  if (head.size() >= 12 && StartsWith(head, "RIFF") && head.substr(8, 4) == "WEBP") return "image/webp";
  if (StartsWith(head, std::string_view("II*\0", 4)) || StartsWith(head, std::string_view("MM\0*", 4))) {
    return "image/tiff";
  }
  if (head.size() >= 12 && head.substr(4, 4) == "ftyp") {
    std::string_view brand = head.substr(8, 4);
    if (brand == "avif" || brand == "avis") return "image/avif";
    if (brand == "heic" || brand == "heix" || brand == "mif1" || brand == "msf1" || brand == "hevc") return "image/heic";
    return "video/mp4";
  }
  if (StartsWith(head, "%PDF-")) return "application/pdf";
  if (StartsWith(head, "%!PS")) return "application/postscript";
  if (StartsWith(head, "{\\rtf")) return "application/rtf";
  if (StartsWith(head, "PK\x03\x04")) {
    const char* m = MimeForExtension(ext);
    if (m && (StartsWith(m, "application/vnd.") || StartsWith(m, "application/epub"))) return m;
    return "application/zip";
  }
  if (StartsWith(head, "\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1")) {  // OLE2: legacy Office
    const char* m = MimeForExtension(ext);
    return m ? m : "application/x-ole-storage";
  }
  if (StartsWith(head, "\x1F\x8B")) return "application/gzip";
  if (StartsWith(head, "7z\xBC\xAF\x27\x1C")) return "application/x-7z-compressed";
  if (StartsWith(head, "\x7F" "ELF")) return "application/x-executable";
  if (LooksLikeText(head)) {
    const char* m = MimeForExtension(ext);
    if (m && (StartsWith(m, "text/") || StartsWith(m, "application/json") || StartsWith(m, "application/xml") ||
              StartsWith(m, "application/yaml") || StartsWith(m, "application/sql") || StartsWith(m, "message/") ||
              StartsWith(m, "image/svg"))) {
      return m;
    }
    std::string_view trimmed = head.substr(0, 256);
    if (trimmed.find("<html") != std::string_view::npos || trimmed.find("<!DOCTYPE html") != std::string_view::npos) {
      return "text/html";
    }
    return "text/plain";
  }
  return "application/octet-stream";
}

bool IsTextMime(std::string_view mime) {
  return StartsWith(mime, "text/") || mime == "application/json" || mime == "application/xml" ||
         mime == "application/yaml" || mime == "application/sql" || mime == "message/rfc822";
}

}  // namespace fs
