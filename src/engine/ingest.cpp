// Engine::IngestFiles: the files of queue jobs, read one by one, embedded as one batch (see engine.h).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>

#include "core/utf8.h"
#include "engine/engine.h"
#include "engine/mime.h"

namespace fs {
namespace {

// Reads one file into the store. *embed: an image the model should embed now.
Result<IngestReport> ReadOne(Store* store, const IngestInput& in, const CrawlOptions& crawl,
                             const ImageEmbedder* embedder, bool* embed) {
  *embed = false;
  IngestReport out;
  // O_NONBLOCK: a FIFO put in the file's place must not hang the worker.
  const int fd = ::open(in.local_path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    const std::string why = "cannot open " + RepairUtf8(in.local_path) + ": " + std::strerror(err);
    return err == ENOENT ? Status::NotFound(why) : Status::IOError(why);
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st{};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    return Status::InvalidArgument(RepairUtf8(in.local_path) + " is not a regular file");
  }
  Document doc;
  doc.uri = in.uri;
  doc.path = RepairUtf8(in.display_path);
  const size_t slash = doc.path.find_last_of('/');
  doc.name = slash == std::string::npos ? doc.path : doc.path.substr(slash + 1);
  doc.ext = ExtensionOf(doc.name);
  doc.mtime_ns = in.mtime_ns;
  FS_RETURN_IF_ERROR(ReadFileDocument(fd, crawl, &doc, &out.problems));
  out.image = doc.mime.rfind("image/", 0) == 0;
  const bool image_to_embed = out.image && embedder != nullptr;

  // The same bytes already stored (a job delivered twice, an unchanged object): done.
  auto known = store->GetByUri(in.uri);
  if (known.ok() && known->sha256 == doc.sha256 && known->size == doc.size) {
    bool has_vector = true;
    if (image_to_embed) {
      FS_ASSIGN_OR_RETURN(auto v, store->GetEmbedding(known->id, embedder->model_id()));
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
  FS_ASSIGN_OR_RETURN(out.id, store->Upsert(doc));
  *embed = image_to_embed;
  return out;
}

}  // namespace

std::vector<Result<IngestReport>> Engine::IngestFiles(const std::vector<IngestInput>& files,
                                                      const CrawlOptions& crawl, uint64_t* embedded,
                                                      uint64_t* from_cache) {
  std::vector<Result<IngestReport>> out;
  out.reserve(files.size());
  // The files whose images to embed, by use_cache (jobs may ask for the model even for known bytes).
  std::map<bool, std::vector<size_t>> to_embed;
  for (size_t i = 0; i < files.size(); ++i) {
    bool embed = false;
    out.push_back(ReadOne(store_.get(), files[i], crawl, embedder_, &embed));
    if (embed) to_embed[files[i].use_cache].push_back(i);
  }
  for (const auto& [use_cache, indices] : to_embed) {
    std::vector<std::pair<int64_t, std::string>> images;
    for (size_t i : indices) images.emplace_back(out[i]->id, files[i].local_path);
    IndexReport report;
    Status s = EmbedImages(images, &report, /*read_cache=*/use_cache);
    // The ids EmbedImages notes as failed steer an Index run's second pass; a worker has none, and
    // must not collect them for as long as it runs.
    for (const auto& image : images) failed_this_run_.erase(image.first);
    *embedded += report.embedded;
    *from_cache += report.from_cache;
    // A model or store error fails the batch's images; a file the model could not take is that
    // file's problem (the report names it by the path the model read).
    std::map<std::string, std::vector<std::string>> failures_of_path;
    for (auto& p : report.embed_failures) failures_of_path[p.path].push_back(std::move(p.reason));
    for (size_t i : indices) {
      if (!s.ok()) {
        out[i] = s;
        continue;
      }
      auto failed = failures_of_path.find(files[i].local_path);
      if (failed == failures_of_path.end()) {
        out[i]->embedded = true;
        continue;
      }
      for (const std::string& reason : failed->second) {
        out[i]->problems.push_back({RepairUtf8(files[i].display_path), reason, "embed"});
      }
    }
  }
  return out;
}

}  // namespace fs
