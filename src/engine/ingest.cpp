// Engine::IngestFile: one file at a time, for queue jobs (see engine.h).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/utf8.h"
#include "engine/engine.h"
#include "engine/mime.h"

namespace fs {

Result<IngestReport> Engine::IngestFile(const std::string& uri, const std::string& display_path,
                                        const std::string& local_path, int64_t mtime_ns, bool use_cache,
                                        const CrawlOptions& crawl) {
  IngestReport out;
  // O_NONBLOCK: a FIFO put in the file's place must not hang the worker.
  const int fd = ::open(local_path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    const std::string why = "cannot open " + RepairUtf8(local_path) + ": " + std::strerror(err);
    return err == ENOENT ? Status::NotFound(why) : Status::IOError(why);
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st{};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    return Status::InvalidArgument(RepairUtf8(local_path) + " is not a regular file");
  }
  Document doc;
  doc.uri = uri;
  doc.path = RepairUtf8(display_path);
  const size_t slash = doc.path.find_last_of('/');
  doc.name = slash == std::string::npos ? doc.path : doc.path.substr(slash + 1);
  doc.ext = ExtensionOf(doc.name);
  doc.mtime_ns = mtime_ns;
  FS_RETURN_IF_ERROR(ReadFileDocument(fd, crawl, &doc, &out.problems));
  out.image = doc.mime.rfind("image/", 0) == 0;
  const bool embed = out.image && embedder_ != nullptr;

  // The same bytes already stored (a job delivered twice, an unchanged object): done.
  auto known = store_->GetByUri(uri);
  if (known.ok() && known->sha256 == doc.sha256 && known->size == doc.size) {
    bool has_vector = true;
    if (embed) {
      FS_ASSIGN_OR_RETURN(auto v, store_->GetEmbedding(known->id, embedder_->model_id()));
      has_vector = v.has_value();
    }
    if (has_vector) {
      out.id = known->id;
      out.unchanged = true;
      out.problems.clear();
      return out;
    }
  } else if (!known.ok() && known.status().code() != StatusCode::kNotFound) {
    return known.status();
  }
  FS_ASSIGN_OR_RETURN(out.id, store_->Upsert(doc));
  if (embed) {
    IndexReport report;
    FS_RETURN_IF_ERROR(EmbedImages({{out.id, local_path}}, &report, /*read_cache=*/use_cache));
    out.embedded = report.embedded > 0;
    out.from_cache = report.from_cache > 0;
    for (auto& p : report.embed_failures) out.problems.push_back({doc.path, std::move(p.reason), "embed"});
  }
  return out;
}

}  // namespace fs
