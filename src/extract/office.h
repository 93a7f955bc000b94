// Internal header of extract/: office documents, e-mail and archives to text plus their title,
// author and dates. Containers: zip (libzip) for OOXML (docx, xlsx, pptx), OpenDocument (odt, ods,
// odp), EPUB and plain zips (member names only); OLE2 compound files (libgsf) for Word 97+ (.doc),
// Excel BIFF8 (.xls), PowerPoint 97+ (.ppt), Outlook (.msg) and password-protected OOXML. XML is read
// by expat with entity declarations refused. RTF and MIME mail have small parsers of their own.
// Every reader enforces the ExtractOptions limits (decompressed bytes, ratio, member count, nesting,
// time) and reports a broken limit, encryption or corruption in Extraction::problem, never by
// throwing or hanging. Pure functions of their input; thread-safe. Inputs are borrowed.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "extract/extract.h"

namespace fs::extract_internal {

// OOXML, OpenDocument, EPUB (by `mime`) or any other zip (member names).
Extraction ZipDocumentToText(std::string_view bytes, std::string_view mime, const ExtractOptions& options);
// .doc, .xls, .ppt, .msg, decided by the streams present; an EncryptedPackage stream (a password-
// protected OOXML file) gives problem "encrypted ...".
Extraction OleDocumentToText(std::string_view bytes, const ExtractOptions& options);
Extraction RtfToText(std::string_view bytes, const ExtractOptions& options);
// RFC 5322 / MIME message: headers, text parts (plain preferred over HTML), attachments' names.
Extraction MailToText(std::string_view bytes, const ExtractOptions& options);

// ---- Shared by the readers above (office_common.cpp). ----

// Time and decompression budget of one file.
class Budget {
 public:
  explicit Budget(const ExtractOptions& options);
  const ExtractOptions& options() const { return options_; }
  // DeadlineExceeded once the time budget is spent.
  Status CheckTime() const;
  // Counts `n` more decompressed bytes; ResourceExhausted past max_unpacked_bytes.
  Status AddUnpacked(uint64_t n);

 private:
  const ExtractOptions& options_;
  std::chrono::steady_clock::time_point deadline_;
  uint64_t unpacked_ = 0;
};

// Builds the extracted text up to max_text_bytes: whitespace runs are kept as given, but no more
// than two line breaks in a row; Full() tells readers they may stop.
class TextSink {
 public:
  explicit TextSink(size_t max_bytes) : max_(max_bytes) {}
  void Append(std::string_view utf8);
  void Break();  // ends a line (paragraph, cell row), never two blank lines in a row
  bool Full() const { return text_.size() >= max_; }
  std::string Take();  // valid UTF-8, at most max_bytes

 private:
  size_t max_;
  std::string text_;
};

// `out` with the sink's text when `status` is OK, else with status's message as the problem.
Extraction FinishExtraction(Extraction out, const Status& status, TextSink* sink);

// A SAX view of an XML document by local names: <w:t> is "t", attributes are looked up by local name.
// Prefixes are dropped rather than resolved: the office vocabularies' local names do not collide
// where we look, and skipping namespace binding makes expat about 1.4x faster on large sheets.
class XmlHandler {
 public:
  virtual ~XmlHandler() = default;
  // `attrs`: expat's name/value array (names as written, "prefix:local" or "local").
  virtual void Start(std::string_view local, const char** attrs) = 0;
  virtual void End(std::string_view local) = 0;
  virtual void Text(std::string_view utf8) = 0;
  // True to stop parsing early without error (the text is full).
  virtual bool Done() const { return false; }
};

// The value of attribute `local` ("" if absent).
std::string_view XmlAttr(const char** attrs, std::string_view local);

// Incremental XML parse: Feed chunks, last=true on the final one. Refuses DOCTYPE entity
// declarations (billion laughs), external entities and nesting deeper than max_depth.
class XmlScanner {
 public:
  XmlScanner(XmlHandler* handler, uint32_t max_depth);
  ~XmlScanner();
  XmlScanner(const XmlScanner&) = delete;
  XmlScanner& operator=(const XmlScanner&) = delete;
  // OK, or why the document was refused. After the handler is Done(), further chunks are ignored.
  Status Feed(std::string_view chunk, bool last);
  bool stopped() const { return stopped_; }

  struct Impl;

 private:
  Impl* impl_;
  bool stopped_ = false;
};

// Parses a whole document held in memory.
Status ParseXml(std::string_view xml, XmlHandler* handler, uint32_t max_depth);

// "2014-08-25T13:47:00Z", "2014-08-25T13:47:00.12+02:00", "2014-08-25" -> ns since the epoch.
std::optional<int64_t> ParseIsoTime(std::string_view s);
// Windows FILETIME (100 ns ticks since 1601) -> ns since the epoch; nullopt for 0 or out of range.
std::optional<int64_t> FiletimeToNs(uint64_t filetime);
// Civil UTC time -> ns since the epoch (fields as people write them: month 1-12, day 1-31).
std::optional<int64_t> CivilToNs(int year, int month, int day, int hour, int minute, int second);
// UTF-16LE bytes (no BOM) -> UTF-8, at most max_bytes; unpaired surrogates become U+FFFD.
std::string Utf16LeToUtf8(std::string_view raw, size_t max_bytes);
// Single-byte or multi-byte text in Windows code page `codepage` (1252, 1251, 932, 65001, ...)
// -> UTF-8, at most max_bytes.
std::string CodepageToUtf8(std::string_view raw, int codepage, size_t max_bytes);

// Little-endian reads from a byte string; 0 past the end.
uint16_t Le16(std::string_view s, size_t at);
uint32_t Le32(std::string_view s, size_t at);
uint64_t Le64(std::string_view s, size_t at);

}  // namespace fs::extract_internal
