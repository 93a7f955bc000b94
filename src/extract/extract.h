// Extract: turns a file's bytes into searchable text. Plain text in any common encoding (UTF-8/16,
// Shift_JIS, EUC-JP, CP1252) becomes UTF-8; HTML and Markdown lose their markup; PDFs give their
// page text (poppler); JPEG/TIFF give EXIF metadata (exif.h). Also settles a file's MIME type from
// its content (libmagic) where the magic-number/extension guess is unsure. Office and mail formats
// (office.h): Word, Excel, PowerPoint (OOXML and the legacy binary ones), OpenDocument, RTF, EPUB,
// e-mail (eml, msg) and the member names of zip archives, with their title, author and dates.
// All functions are thread-safe; PDF parsing is serialised internally. Inputs are borrowed.
// A failure never throws: it is a reason string in Extraction::problem, and the text is then empty.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "extract/exif.h"

namespace fs {

struct ExtractOptions {
  uint64_t max_text_bytes = 1 << 20;     // the extracted text is cut to this many UTF-8 bytes
  uint64_t max_pdf_bytes = 64ull << 20;  // larger PDFs are not parsed (problem: "PDF larger than ...")
  uint64_t max_html_bytes = 8ull << 20;  // HTML source read: tags make text much smaller than its bytes
  bool exif = true;                      // read EXIF from JPEG and TIFF images
  // Office, e-mail and archive files (limits against hostile files; see docs/params.md).
  uint64_t max_office_bytes = 64ull << 20;     // larger files are not parsed (zip directories are at the end)
  uint64_t max_unpacked_bytes = 256ull << 20;  // total bytes decompressed from one zip / OLE2 file
  uint64_t max_member_bytes = 64ull << 20;     // bytes decompressed from one zip member or OLE2 stream
  uint32_t max_zip_ratio = 200;                // unpacked/packed above this (members over 1 MiB): a zip bomb
  uint32_t max_members = 10000;                // zip members / OLE2 streams looked at
  uint32_t max_depth = 256;                    // XML element, RTF group and MIME part nesting
  uint32_t office_time_ms = 10000;             // time budget for one office file, checked as it goes
};

struct Extraction {
  std::string text;      // valid UTF-8, at most max_text_bytes; "" for types without text
  std::string title;     // HTML <title>, a document's title property, an e-mail's Subject; "" if none
  std::string author;    // document author / e-mail sender ("" if none)
  std::optional<int64_t> created_ns;  // creation (e-mail: Date) per the document's metadata, ns since epoch
  std::optional<int64_t> saved_ns;    // last saved per the document's metadata, ns since the epoch
  std::string encoding;  // source encoding of text formats ("utf-8", "cp932", "euc-jp", ...), "" otherwise
  std::optional<ExifInfo> exif;  // set for images with readable EXIF when options.exif
  std::string problem;   // why extraction failed ("encrypted PDF: ..."); "" when all went well
};

// The MIME type to record. `guess` is the fast magic-number + extension answer (engine's
// DetectMime); it stands unless it is unsure (application/octet-stream, a bare zip or OLE
// container), in which case BOM-less UTF-16 text is recognised and libmagic is asked.
// `head`: the first bytes of the file (4 KiB or more recommended).
std::string ResolveMime(std::string_view head, std::string_view guess);

// How many leading bytes of a file of type `mime` Extract wants (the rest need not be read).
uint64_t BytesWanted(std::string_view mime, const ExtractOptions& options);

// `bytes`: the first BytesWanted(mime) bytes of the file (or all of it); `file_size`: its full
// size. Types without an extractor give an empty Extraction.
Extraction Extract(std::string_view bytes, uint64_t file_size, std::string_view mime, const ExtractOptions& options);

// A PDF page as pixels, for previews: RGB8, row-major, width * height * 3 bytes.
struct RenderedPage {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgb;
};

// The first page of the PDF `bytes` rendered on white (poppler, anti-aliased) so that its longer
// side is `max_side` pixels. Corruption for damaged files, PermissionDenied for encrypted ones,
// ResourceExhausted when the page would exceed `max_pixels`. Serialised with the PDF text
// extraction (poppler's globals).
Result<RenderedPage> RenderPdfFirstPage(std::string_view bytes, int max_side, uint64_t max_pixels);

}  // namespace fs
