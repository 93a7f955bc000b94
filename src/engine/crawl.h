// Crawl: walks a folder (CrawlDirectory) or lists a Source such as an S3 bucket (CrawlSource) and
// brings the Store in line with it. Recursive, incremental (a file whose
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
#include "storage/source.h"  // FileUri, PathFromFileUri

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
  // CrawlSource: objects larger than this are not read (refused from their listed size, or from
  // their Content-Length should they have grown since): they are stored by name, path, size and
  // date, without text or hash, and reported (stage "extract", permanent until the object changes).
  uint64_t max_object_bytes = 256ull << 20;
  // CrawlSource: a folder (that exists) where the bytes of each committed image are written for
  // on_image_file; "" = none are written.
  std::string spool_dir;
  // CrawlSource: called after each commit for each image, with a file in spool_dir holding its
  // bytes (the callee deletes it when done). Lets the embedder, which reads files, embed objects.
  std::function<void(int64_t id, const Document& doc, const std::string& local_file)> on_image_file;
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

// Reads one open regular file into *doc, whose uri, path, name, ext and mtime_ns the caller set:
// type, SHA-256, size, extracted text and metadata, as the crawl stores them. A file whose text
// cannot be extracted (or OCRed) is still a document: the reason goes to *problems (stage
// "extract") and *extracted (optional) is false. A read error is the Status (IOError).
Status ReadFileDocument(int fd, const CrawlOptions& options, Document* doc, std::vector<CrawlProblem>* problems,
                        bool* extracted = nullptr);

// `root` must be a directory. Its real path (symlinks resolved once, at the top) is what uris name.
Result<CrawlReport> CrawlDirectory(Store* store, const std::string& root, const CrawlOptions& options);

// Brings the store in line with every entry `source` lists (an S3 bucket or prefix; a folder works
// too, but CrawlDirectory streams large files and uses ctime, so folders go there): an entry whose
// size, modification time and ETag are unchanged is skipped, a changed one is read again (whole, up
// to max_object_bytes), one no longer listed is removed. Documents keep the source's uri as uri and
// path ("s3://bucket/key"). A listing that fails part-way fails the crawl before anything is
// removed. OCR (options.ocr) applies to new and changed images only.
Result<CrawlReport> CrawlSource(Store* store, const Source& source, const CrawlOptions& options);

}  // namespace fs
