// Extract: turns a file's bytes into searchable text. Plain text in any common encoding (UTF-8/16,
// Shift_JIS, EUC-JP, CP1252) becomes UTF-8; HTML and Markdown lose their markup; PDFs give their
// page text (poppler); JPEG/TIFF give EXIF metadata (exif.h). Also settles a file's MIME type from
// its content (libmagic) where the magic-number/extension guess is unsure.
// All functions are thread-safe; PDF parsing is serialised internally. Inputs are borrowed.
// A failure never throws: it is a reason string in Extraction::problem, and the text is then empty.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "extract/exif.h"

namespace fs {

struct ExtractOptions {
  uint64_t max_text_bytes = 1 << 20;     // the extracted text is cut to this many UTF-8 bytes
  uint64_t max_pdf_bytes = 64ull << 20;  // larger PDFs are not parsed (problem: "PDF larger than ...")
  uint64_t max_html_bytes = 8ull << 20;  // HTML source read: tags make text much smaller than its bytes
  bool exif = true;                      // read EXIF from JPEG and TIFF images
};

struct Extraction {
  std::string text;      // valid UTF-8, at most max_text_bytes; "" for types without text
  std::string title;     // HTML <title>, "" otherwise
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

}  // namespace fs
