#include "extract/extract.h"

#include <algorithm>

#include "extract/encoding.h"
#include "extract/magic.h"
#include "extract/markup.h"
#include "extract/office.h"
#include "extract/pdf.h"

namespace fs {
namespace {

using namespace extract_internal;

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}

enum class Kind { kNone, kText, kMarkdown, kHtml, kPdf, kExifImage, kZip, kOle, kRtf, kMail };

Kind KindOf(std::string_view mime) {
  if (mime == "text/html" || mime == "application/xhtml+xml") return Kind::kHtml;
  if (mime == "text/markdown" || mime == "text/x-markdown") return Kind::kMarkdown;
  if (mime == "application/pdf") return Kind::kPdf;
  if (mime == "image/jpeg" || mime == "image/tiff") return Kind::kExifImage;
  if (StartsWith(mime, "application/vnd.openxmlformats-officedocument.") ||
      StartsWith(mime, "application/vnd.oasis.opendocument.") || mime == "application/epub+zip" ||
      mime == "application/zip" || StartsWith(mime, "application/vnd.ms-word.") ||
      StartsWith(mime, "application/vnd.ms-excel.") || StartsWith(mime, "application/vnd.ms-powerpoint.")) {
    return Kind::kZip;
  }
  if (mime == "application/msword" || mime == "application/vnd.ms-excel" ||
      mime == "application/vnd.ms-powerpoint" || mime == "application/vnd.ms-outlook" ||
      mime == "application/x-ole-storage" || mime == "application/CDFV2") {
    return Kind::kOle;
  }
  if (mime == "application/rtf" || mime == "text/rtf") return Kind::kRtf;
  if (mime == "message/rfc822") return Kind::kMail;
  if (StartsWith(mime, "text/") || mime == "application/json" || mime == "application/xml" ||
      mime == "application/yaml" || mime == "application/sql") {
    return Kind::kText;
  }
  return Kind::kNone;
}

// BOM-less UTF-16 looks like binary to a byte sniffer: NULs on one parity only, text once decoded.
bool IsUtf16Text(std::string_view head) {
  if (head.size() < 16) return false;
  DecodedText d = DecodeToUtf8(head, "", head.size() * 2);
  return d.encoding == "utf-16le" || d.encoding == "utf-16be";
}

std::string MiB(uint64_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

constexpr std::string_view kZipMagic = "PK\x03\x04";
constexpr std::string_view kOleMagic = "\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1";

// Office, mail and archive files: the container decides the reader (a password-protected .docx is
// an OLE2 file), the MIME type the format inside a zip. Title and author are made searchable by
// leading the text unless the text already holds them.
Extraction OfficeExtract(std::string_view bytes, uint64_t file_size, std::string_view mime, Kind kind,
                         const ExtractOptions& options) {
  Extraction out;
  if (file_size > options.max_office_bytes || bytes.size() > options.max_office_bytes) {
    // A big archive (a backup, a dataset) is not a failure: its member names are a bonus.
    if (kind != Kind::kZip || mime != "application/zip") {
      out.problem = "larger than " + MiB(options.max_office_bytes) + ": text not extracted";
    }
    return out;
  }
  if (bytes.size() < file_size) {
    out.problem = "only partly read: text not extracted";
    return out;
  }
  if (kind == Kind::kRtf) {
    out = RtfToText(bytes, options);
  } else if (kind == Kind::kMail) {
    out = MailToText(bytes, options);
  } else if (StartsWith(bytes, kOleMagic)) {
    out = OleDocumentToText(bytes, options);
  } else if (StartsWith(bytes, kZipMagic) || StartsWith(bytes, "PK\x05\x06")) {
    out = ZipDocumentToText(bytes, mime, options);
  } else {
    out.problem =
        "not a " + std::string(kind == Kind::kZip ? "zip" : "OLE2") + " container: damaged or mislabelled";
    return out;
  }
  if (!out.problem.empty()) {
    out.text.clear();
    return out;
  }
  std::string lead;
  for (const std::string* field : {&out.title, &out.author}) {
    if (!field->empty() && out.text.find(*field) == std::string::npos) lead += *field + "\n";
  }
  if (!lead.empty()) {
    out.text = lead + "\n" + out.text;
    TruncateUtf8(&out.text, static_cast<size_t>(options.max_text_bytes));
  }
  return out;
}

}  // namespace

std::string ResolveMime(std::string_view head, std::string_view guess) {
  const bool unsure = guess == "application/octet-stream" || guess == "application/zip" ||
                      guess == "application/x-ole-storage";
  if (!unsure) return std::string(guess);  // the fast path: magic numbers or clean text decided
  if (guess == "application/octet-stream" && IsUtf16Text(head)) return "text/plain";
  std::string magic = MagicMime(head.substr(0, 64 * 1024));
  if (magic.empty() || magic == "application/octet-stream" || magic == guess) return std::string(guess);
  return magic;
}

uint64_t BytesWanted(std::string_view mime, const ExtractOptions& options) {
  switch (KindOf(mime)) {
    case Kind::kPdf: return options.max_pdf_bytes + 1;  // one more: to know it was too large
    case Kind::kHtml: return std::max(options.max_html_bytes, options.max_text_bytes);
    case Kind::kExifImage: return 64 * 1024;  // a JPEG's APP1 segment is at most 64 KiB
    case Kind::kZip:
    case Kind::kOle:
    case Kind::kRtf:
    case Kind::kMail: return options.max_office_bytes + 1;  // all of it: one more to know it was too large
    case Kind::kText:
    case Kind::kMarkdown:
      // The text is cut after decoding; UTF-16 needs up to two bytes per byte of UTF-8 output.
      return 2 * options.max_text_bytes + 4;
    case Kind::kNone: break;
  }
  return 0;
}

Extraction Extract(std::string_view bytes, uint64_t file_size, std::string_view mime, const ExtractOptions& options) {
  Extraction out;
  const auto max_text = static_cast<size_t>(options.max_text_bytes);
  const bool truncated = bytes.size() < file_size;
  switch (KindOf(mime)) {
    case Kind::kText: {
      DecodedText d = DecodeToUtf8(bytes, "", max_text, truncated);
      out.text = std::move(d.text);
      out.encoding = std::move(d.encoding);
      break;
    }
    case Kind::kMarkdown: {
      DecodedText d = DecodeToUtf8(bytes, "", max_text, truncated);
      out.text = MarkdownToText(d.text);
      out.encoding = std::move(d.encoding);
      break;
    }
    case Kind::kHtml: {
      HtmlText h = HtmlToText(bytes, max_text, truncated);
      out.text = std::move(h.text);
      out.title = std::move(h.title);
      out.encoding = std::move(h.encoding);
      break;
    }
    case Kind::kPdf: {
      if (file_size > options.max_pdf_bytes || bytes.size() > options.max_pdf_bytes) {
        out.problem = "PDF larger than " + MiB(options.max_pdf_bytes) + ": text not extracted";
        break;
      }
      if (bytes.size() < file_size) {
        out.problem = "PDF only partly read: text not extracted";
        break;
      }
      Result<std::string> text = PdfToText(bytes, max_text);
      if (text.ok()) {
        out.text = std::move(text).value();
      } else {
        out.problem = text.status().message();
      }
      break;
    }
    case Kind::kExifImage: {
      if (!options.exif) break;
      Result<ExifInfo> exif = ReadExif(bytes);
      if (exif.ok()) out.exif = std::move(exif).value();  // no EXIF is normal, not a problem
      break;
    }
    case Kind::kZip:
    case Kind::kOle:
    case Kind::kRtf:
    case Kind::kMail: {
      Extraction office = OfficeExtract(bytes, file_size, mime, KindOf(mime), options);
      office.exif = std::move(out.exif);
      out = std::move(office);
      break;
    }
    case Kind::kNone: break;
  }
  return out;
}

}  // namespace fs
