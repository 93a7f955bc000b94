// Crawl: walks a folder and brings the Store in line with it. Recursive, incremental (a file whose
// size and mtime are unchanged is skipped; a changed one is re-read; a vanished one is removed).
// Never follows symbolic links (so it cannot leave the root or loop), skips FIFOs, sockets and
// devices, and reports unreadable or vanishing files instead of failing. Documents are committed
// in batches; a crash loses at most the uncommitted batch, which the next run picks up.
// Not thread-safe: one crawl per Store at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "extract/ocr.h"
#include "index/store.h"

namespace fs {

struct CrawlOptions {
  uint64_t max_text_bytes = 1 << 20;  // index at most this many bytes of extracted text per file
  size_t batch_size = 256;            // documents per transaction
  bool progress = true;               // progress bar / lines on stderr
  // Set: the text in images (Tesseract) becomes their content, so keyword search finds them by
  // it. Off by default: hundreds of ms per image (docs/benchmarks.md, "OCR"). A failure is a
  // problem ("OCR: ...") and the image is still indexed.
  std::optional<OcrOptions> ocr;
  // Called after each committed batch with the uris it held (tests use it to know what is durable).
  std::function<void(const std::vector<std::string>& committed_uris)> on_commit;
  // Called for each committed document that is an image (for embedding); may be empty.
  std::function<void(int64_t id, const Document& doc)> on_image;
  // The clock for read-failure backoff (ns since the epoch); 0 = now. Tests set it.
  int64_t now_ns = 0;
};

struct CrawlProblem {
  std::string path;
  std::string reason;
  // Which step failed, as the failure list names it: "read" (cannot open, list, stat or read:
  // often transient), "extract" (read, but its text could not be extracted: permanent until the
  // file changes), "embed" (the model could not embed it; IndexReport/BackfillReport failures), or
  // "" (nothing to retry: the file vanished during the crawl).
  std::string stage;
};

struct CrawlReport {
  uint64_t files_seen = 0;
  uint64_t added = 0;
  uint64_t updated = 0;
  uint64_t unchanged = 0;
  uint64_t removed = 0;
  uint64_t skipped = 0;   // symlinks, FIFOs, devices, sockets
  uint64_t held = 0;      // unreadable before, not due for a retry, unchanged since: not opened
  std::vector<CrawlProblem> problems;  // unreadable, vanished, ...
};

// `root` must be a directory. Its real path (symlinks resolved once, at the top) is what uris name.
Result<CrawlReport> CrawlDirectory(Store* store, const std::string& root, const CrawlOptions& options);

// Reads one open regular file into *doc, whose uri, path, name, ext and mtime_ns the caller set:
// type, SHA-256, size, extracted text and metadata, as the crawl stores them. A file whose text
// cannot be extracted (or OCRed) is still a document: the reason goes to *problems (stage
// "extract") and *extract_failed (optional) is set. A read error is the Status (IOError).
Status ReadFileDocument(int fd, const CrawlOptions& options, Document* doc, std::vector<CrawlProblem>* problems,
                        bool* extract_failed = nullptr);

// "file://" + the absolute path, with '%', control bytes and bytes that are not valid UTF-8
// percent-encoded, so every byte string maps to a distinct, printable uri.
std::string FileUri(std::string_view abs_path);
// The inverse of FileUri; InvalidArgument for other schemes or bad escapes.
Result<std::string> PathFromFileUri(std::string_view uri);

}  // namespace fs
