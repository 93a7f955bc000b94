#include "engine/crawl.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "core/env.h"
#include "core/hash.h"
#include "core/json_dump.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/utf8.h"
#include "engine/image_text.h"
#include "engine/mime.h"
#include "extract/extract.h"

namespace fs {
namespace {

struct Entry {
  std::string path;  // absolute, raw bytes
  uint64_t size;
  int64_t mtime_ns;
  int64_t ctime_ns;  // changes with chmod/chown too: a permissions fix shows here, not in mtime
};

constexpr const char* kOcrRootsKey = "ocr_roots";

struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

// Reads the whole file through `fd`: SHA-256 of all bytes; of the bytes, keeps as many as
// `keep_for(first chunk)` asks for (asked once, after the first read, so the type can decide).
template <typename KeepFor>
Status ReadAndHash(int fd, KeepFor keep_for, std::string* sha_hex, std::string* head, uint64_t* bytes) {
  Sha256Stream sha;
  std::string buf(1 << 20, '\0');
  *bytes = 0;
  bool first = true;
  uint64_t keep = 0;
  while (true) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::IOError(std::strerror(errno));
    }
    std::string_view chunk(buf.data(), static_cast<size_t>(n));
    if (first) {
      first = false;
      keep = std::max<uint64_t>(chunk.size(), keep_for(chunk));
    }
    if (n == 0) break;
    sha.Update(chunk);
    if (head->size() < keep) head->append(chunk.substr(0, keep - head->size()));
    *bytes += static_cast<uint64_t>(n);
  }
  *sha_hex = sha.FinishHex();
  return Status::Ok();
}

std::string BaseName(const std::string& path) {
  auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Fills `doc`'s text and metadata from its first bytes (`head`, of `bytes` in all; doc->mime set).
// A failed extraction or OCR is a problem of stage "extract" and the document is still stored, by
// name and path. Returns whether its text was extracted.
bool ExtractInto(std::string_view head, uint64_t bytes, const CrawlOptions& options, const ExtractOptions& extract_options,
                 Document* doc, CrawlReport* report) {
  Extraction extracted = Extract(head, bytes, doc->mime, extract_options);
  bool extract_failed = !extracted.problem.empty();
  if (extract_failed) report->problems.push_back({doc->path, extracted.problem, "extract"});
  doc->content = std::move(extracted.text);
  doc->title = std::move(extracted.title);
  doc->author = std::move(extracted.author);
  doc->created_ns = extracted.created_ns;
  doc->saved_ns = extracted.saved_ns;
  if (options.ocr && IsOcrImage(doc->mime)) {
    auto text = OcrImageFile(head, *options.ocr);
    if (text.ok()) {
      doc->content = std::move(*text);
    } else {
      extract_failed = true;
      report->problems.push_back({doc->path, text.status().message(), "extract"});
    }
  }
  if (extracted.exif) {
    doc->taken_ns = extracted.exif->taken_ns;
    doc->camera = extracted.exif->make;
    // Models usually repeat the make ("Canon" + "Canon EOS 350D"): keep it once.
    if (!extracted.exif->model.empty()) {
      if (extracted.exif->model.rfind(doc->camera, 0) == 0) doc->camera.clear();
      doc->camera += (doc->camera.empty() ? "" : " ") + extracted.exif->model;
    }
    doc->gps_lat = extracted.exif->latitude;
    doc->gps_lon = extracted.exif->longitude;
  }
  return !extract_failed;
}

// Documents on their way into the store, committed `batch_size` at a time; the callbacks of
// CrawlOptions run after each commit.
class BatchWriter {
 public:
  BatchWriter(Store* store, const CrawlOptions& options) : store_(store), options_(options) {}
  Status Add(Document doc) {
    uris_.push_back(doc.uri);
    batch_.push_back(std::move(doc));
    return batch_.size() >= options_.batch_size ? Flush() : Status::Ok();
  }
  Status Flush() {
    if (batch_.empty()) return Status::Ok();
    FS_ASSIGN_OR_RETURN(std::vector<int64_t> ids, store_->UpsertBatch(batch_));
    if (options_.on_image) {
      for (size_t i = 0; i < batch_.size(); ++i) {
        if (batch_[i].mime.rfind("image/", 0) == 0) options_.on_image(ids[i], batch_[i]);
      }
    }
    if (options_.on_commit) options_.on_commit(uris_);
    batch_.clear();
    uris_.clear();
    return Status::Ok();
  }

 private:
  Store* store_;
  const CrawlOptions& options_;
  std::vector<Document> batch_;
  std::vector<std::string> uris_;
};

// The failure list's say in a crawl: files that could not be read and are not due for a retry
// (with the time of their last attempt), and files whose text could not be extracted and whose
// retry is due (read again although unchanged, taken off the list if they pass).
struct RetryState {
  std::unordered_map<std::string, int64_t> held;
  std::unordered_set<std::string> extract_due;
  std::vector<std::string> extract_passed;

  Status Load(const Store& store, int64_t now_ns) {
    const int64_t now = now_ns > 0 ? now_ns : WallClockNs();
    FS_ASSIGN_OR_RETURN(auto backing_off, store.FailuresBackingOff("read", now));
    held.insert(backing_off.begin(), backing_off.end());
    FS_ASSIGN_OR_RETURN(auto due, store.FailuresDue("extract", now));
    extract_due.insert(due.begin(), due.end());
    return Status::Ok();
  }
};

class Walker {
 public:
  Walker(CrawlReport* report, Progress* progress) : report_(report), progress_(progress) {}

  void Walk(const std::string& root) {
    std::vector<std::string> stack{root};
    while (!stack.empty()) {
      std::string dir = std::move(stack.back());
      stack.pop_back();
      WalkOne(dir, &stack);
    }
  }

  std::vector<Entry> files;
  std::vector<std::string> failed_dirs;  // documents under these are not removed

 private:
  void Problem(const std::string& path, const std::string& reason, const char* stage = "read") {
    report_->problems.push_back({RepairUtf8(path), reason, stage});
  }

  void WalkOne(const std::string& dir, std::vector<std::string>* stack) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      Problem(dir, std::string("cannot open directory: ") + std::strerror(errno));
      failed_dirs.push_back(dir + "/");
      return;
    }
    struct stat dst{};
    if (::fstat(fd, &dst) == 0 && !visited_.insert({dst.st_dev, dst.st_ino}).second) {
      ::close(fd);  // a bind mount or similar brought us here twice
      return;
    }
    DIR* d = ::fdopendir(fd);
    if (!d) {
      ::close(fd);
      Problem(dir, std::string("cannot list directory: ") + std::strerror(errno));
      failed_dirs.push_back(dir + "/");
      return;
    }
    std::unique_ptr<DIR, int (*)(DIR*)> guard(d, ::closedir);
    while (true) {
      errno = 0;
      dirent* e = ::readdir(d);
      if (!e) {
        if (errno != 0) {
          Problem(dir, std::string("error while listing: ") + std::strerror(errno));
          failed_dirs.push_back(dir + "/");
        }
        break;
      }
      const char* name = e->d_name;
      if (std::strcmp(name, ".") == 0 || std::strcmp(name, "..") == 0) continue;
      std::string child = dir == "/" ? "/" + std::string(name) : dir + "/" + name;
      struct stat st{};
      if (::fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) Problem(child, "vanished during the crawl", "");
        else Problem(child, std::string("cannot stat: ") + std::strerror(errno));
        continue;
      }
      if (S_ISLNK(st.st_mode)) {
        ++report_->skipped;  // never followed: cannot escape the root or loop
      } else if (S_ISDIR(st.st_mode)) {
        stack->push_back(std::move(child));
      } else if (S_ISREG(st.st_mode)) {
        files.push_back({std::move(child), static_cast<uint64_t>(st.st_size),
                         static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
                         static_cast<int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec});
        if (progress_) progress_->Add();
      } else {
        ++report_->skipped;  // FIFO, socket, device
      }
    }
  }

  CrawlReport* report_;
  Progress* progress_;
  std::set<std::pair<dev_t, ino_t>> visited_;
};

}  // namespace

Status ReadFileDocument(int fd, const CrawlOptions& options, Document* doc, std::vector<CrawlProblem>* problems,
                        bool* extracted) {
  ExtractOptions extract_options;
  extract_options.max_text_bytes = options.max_text_bytes;
  extract_options.exif = true;  // date taken, camera and GPS become filterable document fields
  std::string head;
  uint64_t bytes = 0;
  // The type comes from the first chunk (magic numbers, extension, libmagic where unsure); it
  // decides how much of the file the extractor needs kept in memory (a PDF: all of it).
  auto keep_for = [&](std::string_view first) {
    doc->mime = ResolveMime(first.substr(0, 64 * 1024), DetectMime(first.substr(0, 4096), doc->ext));
    if (options.ocr && IsOcrImage(doc->mime)) return OcrMaxFileBytes() + 1;  // OCR decodes all of it
    return BytesWanted(doc->mime, extract_options);
  };
  FS_RETURN_IF_ERROR(ReadAndHash(fd, keep_for, &doc->sha256, &head, &bytes));
  doc->size = bytes;
  // A file that fails to extract is still indexed, by name and path; the reason is reported.
  CrawlReport report;
  const bool ok = ExtractInto(head, bytes, options, extract_options, doc, &report);
  problems->insert(problems->end(), report.problems.begin(), report.problems.end());
  if (extracted) *extracted = ok;
  return Status::Ok();
}

Result<CrawlReport> CrawlDirectory(Store* store, const std::string& root_arg, const CrawlOptions& options) {
  char resolved[PATH_MAX];
  if (!::realpath(root_arg.c_str(), resolved)) {
    return Status::NotFound("cannot index '" + root_arg + "': " + std::strerror(errno));
  }
  std::string root = resolved;
  struct stat rst{};
  if (::stat(root.c_str(), &rst) != 0 || !S_ISDIR(rst.st_mode)) {
    return Status::InvalidArgument("'" + root_arg + "' is not a directory: give the folder to index");
  }
  CrawlReport report;
  Walker walker(&report, nullptr);
  {
    Progress scan("scanning " + RepairUtf8(root), 0, options.progress);
    Walker w(&report, &scan);
    w.Walk(root);
    walker.files = std::move(w.files);
    walker.failed_dirs = std::move(w.failed_dirs);
  }
  report.files_seen = walker.files.size();

  // What the store already has under this root.
  std::string prefix = FileUri(root == "/" ? root : root + "/");
  std::unordered_map<std::string, FileState> known;
  FS_RETURN_IF_ERROR(store->ForEachUnder(prefix, [&](const std::string& uri, const FileState& st) { known.emplace(uri, st); }));
  // Files that could not be read, whose retry is not due yet (backing off, or given up on), are
  // left alone unless they changed since (ctime: written, renamed, or given new permissions), so an
  // unreadable file costs one open per backoff step, not per pass.
  RetryState retry;
  FS_RETURN_IF_ERROR(retry.Load(*store, options.now_ns));
  auto& held = retry.held;
  auto& extract_due = retry.extract_due;
  auto& extract_passed = retry.extract_passed;

  // OCR coverage: the meta key "ocr_roots" maps each root last crawled in full with OCR to its
  // languages. An OCR crawl of a root not in it (indexed without OCR before, or with other
  // languages) reads its unchanged images again so their text is found too; a crawl without OCR
  // drops the entries of this root and of the roots above and below it, whose new images it
  // stores without their text.
  nlohmann::json ocr_roots = nlohmann::json::object();
  {
    FS_ASSIGN_OR_RETURN(auto saved, store->GetMeta(kOcrRootsKey));
    if (saved) {
      auto parsed = nlohmann::json::parse(*saved, nullptr, /*allow_exceptions=*/false);
      if (parsed.is_object()) ocr_roots = std::move(parsed);
    }
  }
  std::string ocr_languages;
  if (options.ocr) {
    auto setup = ResolveOcr(*options.ocr);
    ocr_languages = setup.ok() ? setup->languages : options.ocr->languages;
  }
  const bool ocr_unchanged_images =
      options.ocr && !(ocr_roots.contains(prefix) && ocr_roots[prefix].is_string() &&
                       ocr_roots[prefix].get<std::string>() == ocr_languages);
  if (!options.ocr) {
    bool changed = false;
    for (auto it = ocr_roots.begin(); it != ocr_roots.end();) {
      const std::string& root_uri = it.key();
      if (root_uri.rfind(prefix, 0) == 0 || prefix.rfind(root_uri, 0) == 0) {
        it = ocr_roots.erase(it);
        changed = true;
      } else {
        ++it;
      }
    }
    if (changed) FS_RETURN_IF_ERROR(store->SetMeta(kOcrRootsKey, DumpJson(ocr_roots)));
  }

  Progress bar("indexing", walker.files.size(), options.progress);
  BatchWriter writer(store, options);

  for (const Entry& f : walker.files) {
    bar.Add();
    std::string uri = FileUri(f.path);
    auto it = known.find(uri);
    const bool is_new = it == known.end();
    if (!is_new) {
      bool unchanged = it->second.size == f.size && it->second.mtime_ns == f.mtime_ns &&
                       !(ocr_unchanged_images && IsOcrImage(it->second.mime));
      known.erase(it);
      if (unchanged && !extract_due.count(uri)) {
        ++report.unchanged;
        continue;
      }
    }
    if (auto h = held.find(uri); h != held.end() && f.ctime_ns <= h->second) {
      ++report.held;  // an indexed copy, if any, stays as it was
      continue;
    }
    // O_NONBLOCK: a file swapped for a FIFO between stat and open must not hang us.
    int fd = ::open(f.path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      if (err == ENOENT) {
        report.problems.push_back({RepairUtf8(f.path), "vanished during the crawl", ""});
      } else {
        report.problems.push_back({RepairUtf8(f.path), std::string("cannot open: ") + std::strerror(err), "read"});
      }
      continue;
    }
    FdCloser closer{fd};
    struct stat st{};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      report.problems.push_back({RepairUtf8(f.path), "no longer a regular file", "read"});
      continue;
    }
    Document doc;
    doc.uri = uri;
    doc.path = RepairUtf8(f.path);
    doc.name = BaseName(doc.path);
    doc.ext = ExtensionOf(doc.name);
    doc.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    bool extracted = false;
    Status rs = ReadFileDocument(fd, options, &doc, &report.problems, &extracted);
    if (!rs.ok()) {
      report.problems.push_back({doc.path, "cannot read: " + rs.message(), "read"});
      continue;
    }
    if (extracted && extract_due.count(uri)) extract_passed.push_back(uri);
    FS_RETURN_IF_ERROR(writer.Add(std::move(doc)));
    ++(is_new ? report.added : report.updated);
  }
  FS_RETURN_IF_ERROR(writer.Flush());
  FS_RETURN_IF_ERROR(store->ResolveFailures(extract_passed, "extract"));
  bar.Finish();

  // Whatever is left in `known` is gone from disk, unless it sat under a folder we could not read.
  std::vector<int64_t> gone;
  for (const auto& [uri, st] : known) {
    bool under_failed = false;
    for (const auto& dir : walker.failed_dirs) {
      if (uri.rfind(FileUri(dir), 0) == 0) { under_failed = true; break; }
    }
    if (!under_failed) gone.push_back(st.id);
  }
  if (!gone.empty()) FS_RETURN_IF_ERROR(store->DeleteIds(gone));
  report.removed = gone.size();
  if (options.ocr) {  // every image under the root has now been read with these languages
    ocr_roots[prefix] = ocr_languages;
    FS_RETURN_IF_ERROR(store->SetMeta(kOcrRootsKey, DumpJson(ocr_roots)));
  }
  return report;
}

Result<CrawlReport> CrawlSource(Store* store, const Source& source, const CrawlOptions& options) {
  CrawlReport report;
  const std::string& root = source.root_uri();
  std::vector<SourceEntry> entries;
  std::vector<SourceProblem> list_problems;
  {
    Progress scan("listing " + RepairUtf8(root), 0, options.progress);
    FS_RETURN_IF_ERROR(source.List(
        "",
        [&](const SourceEntry& e) {
          entries.push_back(e);
          scan.Add();
          return Status::Ok();
        },
        &list_problems, &report.skipped));
  }
  for (const SourceProblem& p : list_problems) report.problems.push_back({RepairUtf8(p.uri), p.reason, "read"});
  report.files_seen = entries.size();

  std::unordered_map<std::string, FileState> known;
  FS_RETURN_IF_ERROR(store->ForEachUnder(root, [&](const std::string& uri, const FileState& st) { known.emplace(uri, st); }));
  // An object that could not be read and is not due for a retry is left alone unless it changed
  // since its last attempt (LastModified after it).
  RetryState retry;
  FS_RETURN_IF_ERROR(retry.Load(*store, options.now_ns));

  ExtractOptions extract_options;
  extract_options.max_text_bytes = options.max_text_bytes;
  extract_options.exif = true;
  // Images are written to the spool as they are read; the commit hands their files on.
  std::unordered_map<std::string, std::string> spooled;  // uri -> spool file
  uint64_t spool_seq = 0;
  CrawlOptions commit_options = options;
  if (options.on_image_file) {
    commit_options.on_image = [&](int64_t id, const Document& doc) {
      if (options.on_image) options.on_image(id, doc);
      auto it = spooled.find(doc.uri);
      if (it == spooled.end()) return;
      options.on_image_file(id, doc, it->second);
      spooled.erase(it);
    };
  }
  BatchWriter writer(store, commit_options);
  Progress bar("indexing", entries.size(), options.progress);
  for (const SourceEntry& e : entries) {
    bar.Add();
    auto it = known.find(e.uri);
    const bool is_new = it == known.end();
    if (!is_new) {
      const SourceEntry was{e.uri, e.key, it->second.size, it->second.mtime_ns, it->second.etag, 0};
      known.erase(it);
      if (!SourceChanged(was, e) && !retry.extract_due.count(e.uri)) {
        ++report.unchanged;
        continue;
      }
    }
    if (auto h = retry.held.find(e.uri); h != retry.held.end() && e.mtime_ns <= h->second) {
      ++report.held;
      continue;
    }
    Document doc;
    doc.uri = e.uri;
    doc.path = RepairUtf8(e.uri);
    doc.name = RepairUtf8(BaseName(e.key.empty() ? e.uri : e.key));
    doc.ext = ExtensionOf(doc.name);
    doc.mtime_ns = e.mtime_ns;
    doc.etag = e.etag;
    doc.size = e.size;
    auto too_large = [&](const std::string& why) {
      // Stored by name, path, size and date: findable, and listed as over the limit.
      doc.mime = DetectMime("", doc.ext);
      report.problems.push_back({doc.path, why + " (--max-object-bytes): indexed by name only", "extract"});
    };
    Result<std::string> bytes = Status::ResourceExhausted("");
    if (e.size > options.max_object_bytes) {
      too_large("the object is " + std::to_string(e.size) + " bytes, over the limit of " +
                std::to_string(options.max_object_bytes));
    } else {
      bytes = source.Read(e.uri, options.max_object_bytes);
      if (!bytes.ok()) {
        const Status& st = bytes.status();
        if (st.code() == StatusCode::kResourceExhausted) {
          too_large(st.message());
        } else if (st.code() == StatusCode::kNotFound) {
          report.problems.push_back({doc.path, "vanished during the crawl", ""});
          continue;
        } else {
          report.problems.push_back({doc.path, "cannot read: " + st.message(), "read"});
          continue;
        }
      }
    }
    if (bytes.ok()) {
      const std::string& data = *bytes;
      doc.size = data.size();
      doc.sha256 = Sha256Hex(data);
      const std::string_view view(data);
      doc.mime = ResolveMime(view.substr(0, 64 * 1024), DetectMime(view.substr(0, 4096), doc.ext));
      const bool extracted = ExtractInto(data, data.size(), options, extract_options, &doc, &report);
      if (extracted && retry.extract_due.count(e.uri)) retry.extract_passed.push_back(e.uri);
      if (!options.spool_dir.empty() && options.on_image_file && doc.mime.rfind("image/", 0) == 0) {
        const std::string file = options.spool_dir + "/" + std::to_string(++spool_seq) + (doc.ext.empty() ? "" : "." + doc.ext);
        std::ofstream out(file, std::ios::binary | std::ios::trunc);
        out.write(data.data(), static_cast<std::streamsize>(data.size()));
        out.close();
        if (out) spooled[e.uri] = file;
        else report.problems.push_back({doc.path, "cannot write its bytes to " + file + " for the embedder", "embed"});
      }
    }
    FS_RETURN_IF_ERROR(writer.Add(std::move(doc)));
    ++(is_new ? report.added : report.updated);
  }
  FS_RETURN_IF_ERROR(writer.Flush());
  FS_RETURN_IF_ERROR(store->ResolveFailures(retry.extract_passed, "extract"));
  bar.Finish();

  // Whatever is left in `known` was not listed: deleted from the source (unless a part of the
  // listing failed and it sits under that part).
  std::vector<int64_t> gone;
  for (const auto& [uri, st] : known) {
    bool under_failed = false;
    for (const SourceProblem& p : list_problems) {
      if (uri.rfind(p.uri, 0) == 0) { under_failed = true; break; }
    }
    if (!under_failed) gone.push_back(st.id);
  }
  if (!gone.empty()) FS_RETURN_IF_ERROR(store->DeleteIds(gone));
  report.removed = gone.size();
  return report;
}

}  // namespace fs
