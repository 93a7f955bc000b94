#include "engine/engine.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <unordered_map>
#include <set>
#include <thread>

#include <unistd.h>

#include "core/env.h"
#include "core/hash.h"
#include "index/opensearch_backend.h"
#include "index/opensearch_query.h"
#include "index/opensearch_scan.h"
#include "vector/hnsw.h"
#include "core/log.h"
#include "core/progress.h"
#include "image/image.h"

namespace fs {
namespace {

// Content the model cannot take (corrupt, unsupported, over a limit): retrying will not help.
bool IsPermanent(const Status& s) {
  switch (s.code()) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kCorruption:
    case StatusCode::kUnsupported:
    case StatusCode::kResourceExhausted:
      return true;
    default:
      return false;
  }
}

}  // namespace
namespace {

std::string SnapshotName(const std::string& model) {
  std::string out;
  for (char c : model) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.') ? c : '_';
  return out + ".hnsw";
}

}  // namespace

std::string ResolveDataDir(const std::string& flag_value) {
  if (!flag_value.empty()) return flag_value;
  if (const char* v = std::getenv("FILESEARCH_DATA_DIR"); v && *v) return v;
  if (const char* v = std::getenv("XDG_DATA_HOME"); v && *v) return std::string(v) + "/filesearch";
  if (const char* v = std::getenv("HOME"); v && *v) return std::string(v) + "/.local/share/filesearch";
  return ".filesearch";
}

Engine::~Engine() = default;

Result<std::unique_ptr<Engine>> Engine::Open(const EngineOptions& options) {
  if (options.data_dir.empty()) return Status::InvalidArgument("no data directory given");
  std::unique_ptr<Engine> engine(new Engine(options));
  Env* env = Env::Default();
  FS_RETURN_IF_ERROR(env->CreateDirs(options.data_dir + "/vectors")
                         .WithContext("creating the data directory (set --data-dir or FILESEARCH_DATA_DIR to a writable folder)"));
  FS_ASSIGN_OR_RETURN(engine->store_, Store::Open(options.data_dir + "/filesearch.db", options.store));
  if (options.use_cache && options.shared_cache) {
    engine->cache_ = options.shared_cache;
  } else if (options.use_cache) {
    EmbeddingCacheSpec spec;
    spec.spec = options.cache;
    spec.db_path = options.data_dir + "/filesearch.db";
    spec.endpoint = options.cache_endpoint;
    spec.timeout_ms = options.cache_timeout_ms;
    spec.options.ttl_seconds = options.cache_ttl_seconds;
    FS_ASSIGN_OR_RETURN(engine->owned_cache_, OpenEmbeddingCache(spec));
    engine->cache_ = engine->owned_cache_.get();
  }
  std::string model = options.model_id;
  if (model.empty()) {
    FS_ASSIGN_OR_RETURN(StoreStats stats, engine->store_->Stats());
    uint64_t best = 0;
    for (auto& [m, n] : stats.embeddings_by_model) {
      if (n > best) { best = n; model = m; }
    }
  }
  if (!model.empty()) FS_RETURN_IF_ERROR(engine->OpenVectors(model));
  if (options.remote.enabled) {
    FS_ASSIGN_OR_RETURN(engine->remote_client_, OpenSearchClient::Create(options.remote.client));
    engine->remote_sink_ = NewOpenSearchBulkSink(engine->remote_client_.get());
    // From now on every change the store commits is queued for the index (the first time: all of it).
    FS_RETURN_IF_ERROR(engine->store_->EnableMirror("opensearch " + engine->remote_client_->url() + "/" + options.remote.index));
  }
  return engine;
}

Status Engine::OpenVectors(const std::string& model) {
  if (vectors_ && vectors_->model() == model) return Status::Ok();
  VectorIndexOptions vo = options_.vectors;
  vo.progress = options_.progress;
  FS_ASSIGN_OR_RETURN(vectors_, VectorIndex::Open(store_.get(), Env::Default(),
                                                  options_.data_dir + "/vectors/" + SnapshotName(model), model, vo));
  return Status::Ok();
}

Status Engine::SetEmbedder(std::unique_ptr<ImageEmbedder> embedder) {
  FS_RETURN_IF_ERROR(SetBorrowedEmbedder(embedder.get()));
  owned_embedder_ = std::move(embedder);
  return Status::Ok();
}

Status Engine::SetBorrowedEmbedder(ImageEmbedder* embedder) {
  FS_RETURN_IF_ERROR(OpenVectors(embedder->model_id()));
  embedder_ = embedder;
  return Status::Ok();
}

// One batch on its way through the model: what PrepareEmbed read from the store and the cache,
// then (ComputeEmbed, on any thread) what the embedder returned, then CommitEmbed writes it.
struct Engine::EmbedJob {
  std::map<int64_t, std::string> sha_of;
  std::map<int64_t, std::pair<std::string, std::string>> doc_of;  // id -> (uri, display path)
  std::vector<int64_t> ok_ids;  // cache hits first, then (after commit) the embedded
  std::vector<float> ok_vecs;
  uint64_t from_cache = 0;
  std::vector<std::string> paths;                 // one per distinct content to embed
  std::vector<std::vector<int64_t>> ids_of_path;  // documents sharing that content
  std::vector<std::string> spooled;               // spool files of s3:// objects, deleted after commit
  // Filled by ComputeEmbed.
  std::vector<float> out;
  std::vector<Status> per_file;
  std::vector<uint64_t> phash;
  Status status;
  double seconds = 0;  // the model call's wall time
  // Bookkeeping of the caller (backfill: the resume point, the images the batch stands for).
  int64_t last_id = 0;
  size_t count = 0;
  bool done = false;
};

Status Engine::PrepareEmbed(const std::vector<std::pair<int64_t, std::string>>& images, bool read_cache,
                            EmbedJob* job) {
  const size_t dim = embedder_->dim();
  const std::string& model = embedder_->model_id();
  std::vector<int64_t> ids;
  for (const auto& image : images) ids.push_back(image.first);
  // Content hashes: the cache key, the key of the perceptual hashes stored below, and how identical
  // bytes in one batch are embedded once.
  {
    FS_ASSIGN_OR_RETURN(auto docs, store_->GetMany(ids));
    for (const Document& d : docs) {
      job->sha_of[d.id] = d.sha256;
      job->doc_of[d.id] = {d.uri, d.path};
    }
  }
  // Cache hits first (one batched lookup: a round trip to a shared cache costs what a local
  // lookup of the whole batch does); the rest are grouped by content so each distinct hash is
  // embedded once.
  std::vector<std::string> lookup;
  if (read_cache && cache_) {
    for (const auto& image : images) {
      auto it = job->sha_of.find(image.first);
      if (it != job->sha_of.end() && !it->second.empty()) lookup.push_back(it->second);
    }
  }
  auto cached_vectors = cache_ && !lookup.empty() ? cache_->GetMany(lookup, model)
                                                   : std::vector<std::optional<std::vector<float>>>();
  size_t next_lookup = 0;
  std::map<std::string, size_t> slot_of_sha;
  for (const auto& [id, path] : images) {
    const std::string* sha = nullptr;
    if (auto it = job->sha_of.find(id); it != job->sha_of.end() && !it->second.empty()) sha = &it->second;
    if (sha != nullptr) {
      std::optional<std::vector<float>> cached;
      if (next_lookup < cached_vectors.size()) cached = std::move(cached_vectors[next_lookup++]);
      if (cached && cached->size() == dim) {
        job->ok_ids.push_back(id);
        job->ok_vecs.insert(job->ok_vecs.end(), cached->begin(), cached->end());
        ++job->from_cache;
        continue;
      }
      if (auto slot = slot_of_sha.find(*sha); slot != slot_of_sha.end()) {
        job->ids_of_path[slot->second].push_back(id);
        continue;
      }
      slot_of_sha.emplace(*sha, job->paths.size());
    }
    job->paths.push_back(path);
    job->ids_of_path.push_back({id});
  }
  return Status::Ok();
}

// Touches nothing of the engine: backfill workers run it on their own embedders.
void Engine::ComputeEmbed(ImageEmbedder* embedder, EmbedJob* job) {
  if (job->paths.empty()) return;
  job->out.assign(job->paths.size() * embedder->dim(), 0.0f);
  job->phash.assign(job->paths.size(), 0);
  const auto start = std::chrono::steady_clock::now();
  job->status = embedder->EmbedFiles(job->paths, job->out, &job->per_file, &job->phash);
  job->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (job->phash.size() != job->paths.size()) job->phash.assign(job->paths.size(), 0);
}

// The failure-list entry of the job's i-th file: the document's own uri and path (the file embedded
// may be a downloaded copy, e.g. of an S3 object).
FailureInput Engine::FailureOf(const EmbedJob& job, size_t i, std::string reason, bool permanent) const {
  auto it = job.doc_of.find(job.ids_of_path[i].front());
  if (it == job.doc_of.end()) {
    auto [uri, shown] = SourceOfPath(job.paths[i]);
    return {uri, shown, "embed", std::move(reason), permanent};
  }
  return {it->second.first, it->second.second, "embed", std::move(reason), permanent};
}

Status Engine::CommitEmbed(EmbedJob* job, IndexReport* report) {
  if (!job->status.ok()) {
    if (embed_observer_ && !job->paths.empty()) embed_observer_({0, job->paths.size(), job->seconds});
    return job->status;
  }
  EmbedBatchStats batch{0, 0, job->seconds};
  const size_t dim = embedder_->dim();
  const std::string& model = embedder_->model_id();
  report->from_cache += job->from_cache;
  if (!job->paths.empty()) {
    std::vector<FailureInput> failed;
    std::vector<std::pair<std::string, uint64_t>> hashes;  // (content, perceptual hash) of embedded files
    for (size_t i = 0; i < job->paths.size(); ++i) {
      const std::string& path = job->paths[i];
      const Status& st = job->per_file[i];
      if (!st.ok()) {
        for (int64_t id : job->ids_of_path[i]) {
          report->embed_failures.push_back({SourceOfPath(path).second, st.ToString(), "embed"});
          failed_this_run_.insert(id);
        }
        failed.push_back(FailureOf(*job, i, st.ToString(), IsPermanent(st)));
        ++batch.failed;
        continue;
      }
      const float* v = job->out.data() + i * dim;
      // One unusable vector (all zeros, NaN) must not sink the batch: it is that file's failure.
      double norm = 0;
      for (size_t k = 0; k < dim; ++k) norm += static_cast<double>(v[k]) * v[k];
      if (!std::isfinite(norm) || norm == 0) {
        const std::string why = "the model returned an unusable embedding (zero, NaN or infinite) for this image";
        for (int64_t id : job->ids_of_path[i]) {
          report->embed_failures.push_back({SourceOfPath(path).second, why, "embed"});
          failed_this_run_.insert(id);
        }
        failed.push_back(FailureOf(*job, i, why, true));
        ++batch.failed;
        continue;
      }
      ++batch.ok;
      for (int64_t id : job->ids_of_path[i]) {
        job->ok_ids.push_back(id);
        job->ok_vecs.insert(job->ok_vecs.end(), v, v + dim);
      }
      auto sha = job->sha_of.find(job->ids_of_path[i].front());
      if (sha != job->sha_of.end() && !sha->second.empty()) {
        if (cache_) FS_RETURN_IF_ERROR(cache_->Put(sha->second, model, std::span<const float>(v, dim)));
        if (job->phash[i] != 0) hashes.emplace_back(sha->second, job->phash[i]);
      }
    }
    if (embed_observer_) embed_observer_(batch);
    FS_RETURN_IF_ERROR(store_->RecordFailures(failed, options_.retry, WallClockNs()));
    FS_RETURN_IF_ERROR(store_->PutPerceptualHashes(hashes));
  }
  if (!job->ok_ids.empty()) FS_RETURN_IF_ERROR(store_->PutEmbeddings(model, job->ok_ids, job->ok_vecs, dim));
  report->embedded += job->ok_ids.size();
  return Status::Ok();
}

Status Engine::EmbedImages(const std::vector<std::pair<int64_t, std::string>>& images, IndexReport* report,
                           bool read_cache) {
  EmbedJob job;
  FS_RETURN_IF_ERROR(PrepareEmbed(images, read_cache, &job));
  ComputeEmbed(embedder_, &job);
  return CommitEmbed(&job, report);
}

Status Engine::EmbedMissing(IndexReport* report, const Source* source, const std::string& spool_dir) {
  // Failed images wait for their backoff; dead letters wait for the file to change.
  FS_ASSIGN_OR_RETURN(auto not_due_list, store_->FailuresNotDue("embed", WallClockNs()));
  const std::set<std::string> not_due(not_due_list.begin(), not_due_list.end());
  int64_t after = 0;
  uint64_t spool_seq = 0;
  while (true) {
    FS_ASSIGN_OR_RETURN(auto missing, store_->ImagesMissingEmbedding(embedder_->model_id(), after, options_.embed_batch));
    if (missing.empty()) return Status::Ok();
    after = missing.back().first;
    std::vector<std::pair<int64_t, std::string>> batch;
    for (auto& [id, uri] : missing) {
      if (failed_this_run_.count(id) || not_due.count(uri)) continue;  // reported in this run, or backing off
      if (source && !spool_dir.empty() && IsS3Uri(uri) && source->Contains(uri)) {
        // An object committed by a run that stopped before embedding it: read it again.
        auto bytes = source->Read(uri, CrawlOptions().max_object_bytes);
        const std::string file = spool_dir + "/missing-" + std::to_string(++spool_seq);
        if (!bytes.ok() || !Env::Default()->WriteFileAtomic(file, *bytes).ok()) continue;  // the next run tries again
        spooled_uri_[file] = uri;
        batch.emplace_back(id, file);
        continue;
      }
      auto path = PathFromFileUri(uri);
      if (path.ok()) batch.emplace_back(id, *path);
    }
    FS_RETURN_IF_ERROR(EmbedSpooled(&batch, report));
  }
}

Result<std::string> Engine::SpoolObject(const std::string& uri, std::unique_ptr<Source>* objects, std::string* spool_dir) {
  if (!*objects) {
    FS_ASSIGN_OR_RETURN(*objects, OpenAnySource(options_.source));
  }
  if (spool_dir->empty()) {
    *spool_dir = options_.data_dir + "/spool/backfill-" + std::to_string(::getpid());
    FS_RETURN_IF_ERROR(Env::Default()->CreateDirs(*spool_dir));
  }
  FS_ASSIGN_OR_RETURN(std::string bytes, (*objects)->Read(uri, CrawlOptions().max_object_bytes));
  const std::string file = *spool_dir + "/" + std::to_string(spooled_uri_.size() + 1) + "-" + std::to_string(WallClockNs());
  FS_RETURN_IF_ERROR(Env::Default()->WriteFileAtomic(file, bytes));
  spooled_uri_[file] = uri;
  return file;
}

std::pair<std::string, std::string> Engine::SourceOfPath(const std::string& path) const {
  if (auto it = spooled_uri_.find(path); it != spooled_uri_.end()) return {it->second, it->second};
  return {FileUri(path), path};
}

Status Engine::EmbedSpooled(std::vector<std::pair<int64_t, std::string>>* pending, IndexReport* report) {
  Status st = EmbedImages(*pending, report);
  for (const auto& [id, path] : *pending) {
    if (spooled_uri_.erase(path)) ::unlink(path.c_str());
  }
  pending->clear();
  return st;
}

Result<IndexReport> Engine::Index(const std::string& dir, CrawlOptions crawl_options) {
  FS_ASSIGN_OR_RETURN(IndexReport report, IsS3Uri(dir) ? IndexS3(dir, std::move(crawl_options))
                                                       : IndexFolder(dir, std::move(crawl_options)));
  auto sent = SyncRemote();
  if (sent.ok()) report.remote = *sent;
  else report.remote_error = sent.status().message();
  return report;
}

Result<IndexReport> Engine::IndexFolder(const std::string& dir, CrawlOptions crawl_options) {
  IndexReport report;
  failed_this_run_.clear();
  crawl_options.progress = crawl_options.progress && options_.progress;
  std::vector<std::pair<int64_t, std::string>> pending;
  Status embed_status;
  auto last_checkpoint = std::chrono::steady_clock::now();
  if (embedder_) {
    auto user_on_image = crawl_options.on_image;
    // The user's callbacks are captured by value: they go out of scope at the end of this block.
    crawl_options.on_image = [&, user_on_image](int64_t id, const Document& doc) {
      if (user_on_image) user_on_image(id, doc);
      // Stored again with the same bytes (e.g. read for OCR) keeps its embedding: nothing to do.
      auto have = store_->GetEmbedding(id, embedder_->model_id());
      if (have.ok() && have->has_value()) return;
      auto path = PathFromFileUri(doc.uri);
      if (path.ok()) pending.emplace_back(id, *path);
    };
    auto user_on_commit = crawl_options.on_commit;
    crawl_options.on_commit = [&, user_on_commit](const std::vector<std::string>& uris) {
      // Embed after the documents are durable, a batch at a time.
      if (embed_status.ok() && pending.size() >= options_.embed_batch) {
        embed_status = EmbedImages(pending, &report);
        pending.clear();
      }
      auto now = std::chrono::steady_clock::now();
      if (embed_status.ok() && now - last_checkpoint > std::chrono::milliseconds(options_.checkpoint_every_ms)) {
        embed_status = Checkpoint();
        last_checkpoint = now;
      }
      if (user_on_commit) user_on_commit(uris);
    };
  }
  FS_ASSIGN_OR_RETURN(report.crawl, CrawlDirectory(store_.get(), dir, crawl_options));
  {
    // Files that could not be read join the failure list (a file that vanished is just gone);
    // so do files stored without their text (extraction failed: permanent until the file changes).
    std::vector<FailureInput> failed;
    for (const CrawlProblem& p : report.crawl.problems) {
      if (p.stage.empty()) continue;  // vanished: nothing to retry
      failed.push_back({FileUri(p.path), p.path, p.stage, p.reason, p.stage == "extract"});
    }
    FS_RETURN_IF_ERROR(store_->RecordFailures(failed, options_.retry, WallClockNs()));
  }
  if (embedder_ && !pending.empty() && embed_status.ok()) embed_status = EmbedImages(pending, &report);
  FS_RETURN_IF_ERROR(embed_status);
  // Images committed by an earlier run that was interrupted before embedding them.
  if (embedder_) FS_RETURN_IF_ERROR(EmbedMissing(&report));
  FS_RETURN_IF_ERROR(Checkpoint());
  return report;
}

Result<IndexReport> Engine::IndexS3(const std::string& uri, CrawlOptions crawl_options) {
  IndexReport report;
  failed_this_run_.clear();
  spooled_uri_.clear();
  crawl_options.progress = crawl_options.progress && options_.progress;
  FS_ASSIGN_OR_RETURN(std::unique_ptr<Source> source, OpenSource(uri, options_.source));
  // Images are embedded from files: each committed image's bytes wait in the spool (one folder
  // per run, removed at the end) until its batch has been embedded.
  const std::string spool = options_.data_dir + "/spool/index-" + std::to_string(::getpid());
  std::error_code ec;
  std::filesystem::remove_all(spool, ec);
  FS_RETURN_IF_ERROR(Env::Default()->CreateDirs(spool));
  struct SpoolCleanup {
    std::string dir;
    ~SpoolCleanup() {
      std::error_code ignored;
      std::filesystem::remove_all(dir, ignored);
    }
  } cleanup{spool};
  std::vector<std::pair<int64_t, std::string>> pending;
  Status embed_status;
  auto last_checkpoint = std::chrono::steady_clock::now();
  if (embedder_) {
    crawl_options.spool_dir = spool;
    crawl_options.on_image_file = [&](int64_t id, const Document& doc, const std::string& file) {
      auto have = store_->GetEmbedding(id, embedder_->model_id());
      if (have.ok() && have->has_value()) {
        ::unlink(file.c_str());
        return;
      }
      spooled_uri_[file] = doc.uri;
      pending.emplace_back(id, file);
    };
    auto user_on_commit = crawl_options.on_commit;
    crawl_options.on_commit = [&, user_on_commit](const std::vector<std::string>& uris) {
      if (embed_status.ok() && pending.size() >= options_.embed_batch) embed_status = EmbedSpooled(&pending, &report);
      auto now = std::chrono::steady_clock::now();
      if (embed_status.ok() && now - last_checkpoint > std::chrono::milliseconds(options_.checkpoint_every_ms)) {
        embed_status = Checkpoint();
        last_checkpoint = now;
      }
      if (user_on_commit) user_on_commit(uris);
    };
  }
  FS_ASSIGN_OR_RETURN(report.crawl, CrawlSource(store_.get(), *source, crawl_options));
  {
    std::vector<FailureInput> failed;
    for (const CrawlProblem& p : report.crawl.problems) {
      if (p.stage.empty()) continue;  // vanished: nothing to retry
      failed.push_back({p.path, p.path, p.stage, p.reason, p.stage == "extract"});
    }
    FS_RETURN_IF_ERROR(store_->RecordFailures(failed, options_.retry, WallClockNs()));
  }
  if (embedder_ && !pending.empty() && embed_status.ok()) embed_status = EmbedSpooled(&pending, &report);
  FS_RETURN_IF_ERROR(embed_status);
  if (embedder_) FS_RETURN_IF_ERROR(EmbedMissing(&report, source.get(), spool));
  spooled_uri_.clear();
  FS_RETURN_IF_ERROR(Checkpoint());
  return report;
}

Result<BackfillReport> Engine::Backfill(const BackfillOptions& options) {
  FS_ASSIGN_OR_RETURN(BackfillReport report, BackfillLocal(options));
  if (!options.dry_run) {
    auto sent = SyncRemote();
    if (sent.ok()) report.remote = *sent;
    else report.remote_error = sent.status().message();
  }
  if (remote_client_ && !options.all && report.remote_error.empty()) FS_RETURN_IF_ERROR(BackfillIndex(options, &report));
  return report;
}

Status Engine::BackfillIndex(const BackfillOptions& options, BackfillReport* report) {
  const std::string& model = embedder_->model_id();
  ScanOptions scan;
  scan.index = options_.remote.index;
  scan.filter = ImagesWithoutVectorFilter(model);
  scan.page = 200;
  constexpr uint64_t kMaxImageBytes = 256ull << 20;
  static const std::string kLimitReached = "backfill: --limit reached";
  Status scanned = ScanIndex(*remote_client_, scan, [&](std::vector<ScanHit>& hits) -> Status {
    // The files of this page that this machine can read, embedded as one batch (the cache first:
    // the index knows each file's content hash).
    std::vector<const ScanHit*> todo;
    std::vector<std::string> todo_paths;
    for (const ScanHit& hit : hits) {
      if (options.limit > 0 && report->processed >= options.limit) break;
      // This machine's own documents went through its journal (BackfillLocal); one still without
      // a vector failed there and is on the failure list.
      if (store_->GetByUri(hit.uri).ok()) continue;
      ++report->index_candidates;
      auto path = PathFromFileUri(hit.uri);
      if (!path.ok() || !Env::Default()->FileExists(*path)) {
        ++report->index_not_here;
        continue;
      }
      ++report->processed;
      if (options.dry_run) {
        if (report->dry_run_uris.size() < 100) report->dry_run_uris.push_back(hit.uri);
        continue;
      }
      todo.push_back(&hit);
      todo_paths.push_back(*path);
    }
    const size_t dim = embedder_->dim();
    std::vector<float> vectors(todo.size() * dim, 0.0f);
    std::vector<bool> have(todo.size(), false);
    std::vector<std::string> miss_paths;
    std::vector<size_t> miss_of;
    for (size_t i = 0; i < todo.size(); ++i) {
      if (cache_ && !todo[i]->sha256.empty()) {
        auto got = cache_->Get(todo[i]->sha256, model);
        if (got.ok() && got->has_value() && (*got)->size() == dim) {
          std::copy((*got)->begin(), (*got)->end(), vectors.begin() + i * dim);
          have[i] = true;
          ++report->index_from_cache;
          continue;
        }
      }
      miss_paths.push_back(todo_paths[i]);
      miss_of.push_back(i);
    }
    if (!miss_paths.empty()) {
      std::vector<float> out(miss_paths.size() * dim, 0.0f);
      std::vector<Status> per_file;
      const auto start = std::chrono::steady_clock::now();
      Status batch = embedder_->EmbedFiles(miss_paths, out, &per_file, nullptr);
      EmbedBatchStats tally{0, 0, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()};
      for (size_t m = 0; m < miss_paths.size(); ++m) {
        const size_t i = miss_of[m];
        const Status st = !batch.ok() ? batch : m < per_file.size() ? per_file[m] : Status::Ok();
        if (!st.ok()) {
          report->failures.push_back({todo_paths[i], st.message(), "embed"});
          ++tally.failed;
          continue;
        }
        ++tally.ok;
        std::copy(out.begin() + m * dim, out.begin() + (m + 1) * dim, vectors.begin() + i * dim);
        have[i] = true;
        if (cache_ && !todo[i]->sha256.empty()) {
          Status put = cache_->Put(todo[i]->sha256, model, std::span<const float>(out.data() + m * dim, dim));
          if (!put.ok()) LogWarn("embedding cache write failed: " + put.ToString());
        }
      }
      if (embed_observer_) embed_observer_(tally);
    }
    std::string lines;
    std::vector<std::string> uris, paths;
    for (size_t i = 0; i < todo.size(); ++i) {
      if (!have[i]) continue;
      lines += opensearch::BulkEmbeddingUpdateLines(options_.remote.index, todo[i]->doc_id,
                                                    std::span<const float>(vectors.data() + i * dim, dim), model);
      uris.push_back(todo[i]->uri);
      paths.push_back(todo_paths[i]);
    }
    if (!uris.empty()) {
      FS_ASSIGN_OR_RETURN(std::vector<BulkItemResult> results, remote_sink_->Bulk(lines, uris.size()));
      for (size_t i = 0; i < results.size() && i < uris.size(); ++i) {
        if (results[i].status >= 200 && results[i].status < 300) {
          ++report->index_embedded;
        } else {
          report->failures.push_back({paths[i], "the index refused the vector (HTTP " + std::to_string(results[i].status) +
                                                    "): " + results[i].error, "embed"});
        }
      }
    }
    // At the limit: stop the scan (a status only this lambda returns).
    if (options.limit > 0 && report->processed >= options.limit) return Status::ResourceExhausted(kLimitReached);
    return Status::Ok();
  });
  if (!scanned.ok() && scanned.message() != kLimitReached) return scanned;
  return Status::Ok();
}

Result<BackfillReport> Engine::BackfillLocal(const BackfillOptions& options) {
  if (!embedder_) {
    return Status::FailedPrecondition("backfill needs a model: give --model-dir (or FILESEARCH_MODEL_DIR)");
  }
  const std::string& model = embedder_->model_id();
  BackfillReport report;
  const std::string resume_key = "backfill_all/" + model;
  int64_t after = 0;
  if (options.all) {
    FS_ASSIGN_OR_RETURN(auto resume, store_->GetMeta(resume_key));
    if (resume && !resume->empty()) after = std::stoll(*resume);
    report.resumed_after = after;
    FS_ASSIGN_OR_RETURN(report.candidates, store_->CountImagesAfter(after));
  } else {
    FS_ASSIGN_OR_RETURN(report.candidates, store_->CountImagesMissingEmbedding(model));
  }
  uint64_t todo = report.candidates;
  if (options.limit > 0) todo = std::min(todo, options.limit);
  Progress progress(options.dry_run ? "backfill (dry run)" : "backfill", todo, options.progress && options_.progress);
  failed_this_run_.clear();
  // Images indexed from s3:// are read through this (made on first use) into a spool folder that
  // is removed at the end.
  std::unique_ptr<Source> objects;
  struct SpoolFolder {
    std::string dir;
    ~SpoolFolder() {
      std::error_code ignored;
      if (!dir.empty()) std::filesystem::remove_all(dir, ignored);
    }
  } spool;

  // The workers: copies of the model, or this engine's embedder alone.
  std::vector<std::unique_ptr<ImageEmbedder>> copies;
  const int wanted = std::max(1, options.workers);
  if (wanted > 1 && !options.dry_run) {
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    const int threads = std::max(1, cores / wanted);
    for (int w = 0; w < wanted; ++w) {
      auto copy = embedder_->Clone(threads);
      if (!copy.ok()) {
        report.workers_note = "running 1 worker: " + copy.status().message();
        copies.clear();
        break;
      }
      copies.push_back(std::move(copy).value());
    }
  }
  std::vector<ImageEmbedder*> embedders;
  for (auto& c : copies) embedders.push_back(c.get());
  if (embedders.empty()) embedders.push_back(embedder_);
  report.workers = static_cast<int>(embedders.size());

  // Jobs go to `queue` in order; workers take them, compute, mark them done; this thread commits
  // the oldest once it is done, so batches land in the store in the order they were read.
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::shared_ptr<EmbedJob>> queue, inflight;
  bool stop = false;
  std::vector<std::thread> pool;
  const bool threaded = embedders.size() > 1;
  struct Joiner {
    std::mutex& mu;
    std::condition_variable& cv;
    bool& stop;
    std::vector<std::thread>& pool;
    ~Joiner() {
      {
        std::lock_guard<std::mutex> lock(mu);
        stop = true;
      }
      cv.notify_all();
      for (auto& t : pool) t.join();
    }
  } joiner{mu, cv, stop, pool};
  if (threaded) {
    for (ImageEmbedder* e : embedders) {
      pool.emplace_back([&, e] {
        while (true) {
          std::shared_ptr<EmbedJob> job;
          {
            std::unique_lock<std::mutex> lock(mu);
            cv.wait(lock, [&] { return stop || !queue.empty(); });
            if (stop) return;
            job = queue.front();
            queue.pop_front();
          }
          ComputeEmbed(e, job.get());
          {
            std::lock_guard<std::mutex> lock(mu);
            job->done = true;
          }
          cv.notify_all();
        }
      });
    }
  }

  auto last_checkpoint = std::chrono::steady_clock::now();
  auto commit_oldest = [&]() -> Status {
    std::shared_ptr<EmbedJob> job = inflight.front();
    inflight.pop_front();
    if (threaded) {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return job->done; });
    } else {
      ComputeEmbed(embedders[0], job.get());
    }
    IndexReport r;
    Status committed = CommitEmbed(job.get(), &r);
    for (const std::string& file : job->spooled) {
      spooled_uri_.erase(file);
      ::unlink(file.c_str());
    }
    FS_RETURN_IF_ERROR(committed);
    // Committed: a killed --all run resumes after this batch.
    if (options.all) FS_RETURN_IF_ERROR(store_->SetMeta(resume_key, std::to_string(job->last_id)));
    report.embedded += r.embedded;
    report.from_cache += r.from_cache;
    report.failures.insert(report.failures.end(), r.embed_failures.begin(), r.embed_failures.end());
    progress.Add(job->count);
    const auto now = std::chrono::steady_clock::now();
    if (now - last_checkpoint > std::chrono::milliseconds(options_.checkpoint_every_ms)) {
      FS_RETURN_IF_ERROR(Checkpoint());
      last_checkpoint = now;
    }
    return Status::Ok();
  };

  const size_t max_inflight = threaded ? 2 * embedders.size() : 1;
  bool exhausted = false;
  while (true) {
    if (!exhausted && report.processed < todo && inflight.size() < max_inflight) {
      const size_t want = static_cast<size_t>(std::min<uint64_t>(options_.embed_batch, todo - report.processed));
      std::vector<std::pair<int64_t, std::string>> missing;
      if (options.all) {
        FS_ASSIGN_OR_RETURN(missing, store_->ImagesAfter(after, want));
      } else {
        FS_ASSIGN_OR_RETURN(missing, store_->ImagesMissingEmbedding(model, after, want));
      }
      if (missing.empty()) {
        exhausted = true;
        continue;
      }
      after = missing.back().first;
      report.processed += missing.size();
      if (options.dry_run) {
        for (auto& [id, uri] : missing) {
          if (report.dry_run_uris.size() < 100) report.dry_run_uris.push_back(uri);
        }
        progress.Add(missing.size());
        continue;
      }
      std::vector<std::pair<int64_t, std::string>> batch;
      std::vector<std::string> spooled;
      for (auto& [id, uri] : missing) {
        if (IsS3Uri(uri)) {
          // An object indexed from s3://: its bytes are read into the spool for the embedder.
          auto file = SpoolObject(uri, &objects, &spool.dir);
          if (file.ok()) {
            batch.emplace_back(id, *file);
            spooled.push_back(*file);
          } else {
            report.failures.push_back({uri, file.status().ToString(), "embed"});
          }
          continue;
        }
        auto path = PathFromFileUri(uri);
        if (path.ok()) {
          batch.emplace_back(id, *path);
        } else {
          report.failures.push_back({uri, path.status().ToString(), "embed"});
        }
      }
      auto job = std::make_shared<EmbedJob>();
      job->spooled = std::move(spooled);
      FS_RETURN_IF_ERROR(PrepareEmbed(batch, /*read_cache=*/!options.all, job.get()));
      job->last_id = after;
      job->count = missing.size();
      inflight.push_back(job);
      if (threaded) {
        {
          std::lock_guard<std::mutex> lock(mu);
          queue.push_back(job);
        }
        cv.notify_all();
      }
      continue;
    }
    if (inflight.empty()) break;
    FS_RETURN_IF_ERROR(commit_oldest());
  }
  progress.Finish();
  // Every image re-embedded: the next --all starts from the beginning again.
  if (options.all && !options.dry_run && report.processed >= report.candidates) {
    FS_RETURN_IF_ERROR(store_->SetMeta(resume_key, ""));
  }
  if (!options.dry_run) FS_RETURN_IF_ERROR(Checkpoint());
  return report;
}

namespace {

// Pairs of distinct contents whose perceptual hashes differ in at most `max_bits` bits. Multi-index
// hashing: split the 64 bits into max_bits + 1 blocks; by the pigeonhole principle two hashes that
// close agree exactly on at least one block, so only hashes sharing a block value are compared, and
// a pair is counted in the first block they share. Returns false when max_pairs comparisons were
// reached (the rest is not examined).
bool HashPairs(const std::vector<PerceptualHashRow>& rows, int max_bits, size_t max_pairs,
               std::vector<std::tuple<size_t, size_t, int>>* out) {
  const int blocks = std::min(max_bits + 1, 64);
  auto block_of = [blocks](uint64_t h, int b) {
    const int lo = b * 64 / blocks, hi = (b + 1) * 64 / blocks;
    const uint64_t mask = hi - lo == 64 ? ~uint64_t{0} : ((uint64_t{1} << (hi - lo)) - 1);
    return (h >> lo) & mask;
  };
  size_t compared = 0;
  for (int b = 0; b < blocks; ++b) {
    std::unordered_map<uint64_t, std::vector<size_t>> bucket;
    for (size_t i = 0; i < rows.size(); ++i) bucket[block_of(rows[i].phash, b)].push_back(i);
    for (const auto& [key, members] : bucket) {
      for (size_t x = 0; x < members.size(); ++x) {
        for (size_t y = x + 1; y < members.size(); ++y) {
          if (++compared > max_pairs) return false;
          const uint64_t hx = rows[members[x]].phash, hy = rows[members[y]].phash;
          const int distance = image::HammingDistance(hx, hy);
          if (distance > max_bits) continue;
          int first_shared = 0;
          while (block_of(hx, first_shared) != block_of(hy, first_shared)) ++first_shared;
          if (first_shared == b) out->emplace_back(members[x], members[y], distance);
        }
      }
    }
  }
  return true;
}

}  // namespace

Status Engine::HashMissingImages(const DuplicateOptions& options, DuplicateReport* report,
                                 std::vector<std::string>* hashed_uris) {
  if (options.hash_missing == 0) return Status::Ok();
  FS_ASSIGN_OR_RETURN(auto missing, store_->ImagesWithoutPerceptualHash(options.hash_missing));
  if (missing.empty()) return Status::Ok();
  // The decode the CLIP path does (its pHash comes from those pixels), on every core.
  image::DecodeOptions decode;
  decode.min_short_side = 448;
  std::vector<uint64_t> hashes(missing.size(), 0);
  Progress progress("perceptual hashes", missing.size(), options.progress && options_.progress);
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i; (i = next.fetch_add(1)) < missing.size();) {
      auto path = PathFromFileUri(missing[i].second);
      if (path.ok()) {
        auto img = image::DecodeFile(*path, decode);
        if (img.ok()) hashes[i] = image::PerceptualHash(*img);
      }
      progress.Add();
    }
  };
  std::vector<std::thread> pool;
  for (unsigned w = 1; w < std::max(1u, std::thread::hardware_concurrency()); ++w) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  progress.Finish();
  std::vector<std::pair<std::string, uint64_t>> rows;
  for (size_t i = 0; i < missing.size(); ++i) {
    if (hashes[i] != 0) {
      rows.emplace_back(missing[i].first, hashes[i]);
      hashed_uris->push_back(missing[i].second);
    } else {
      ++report->unhashable;
    }
  }
  report->hashed_now = rows.size();
  return store_->PutPerceptualHashes(rows);
}

Result<DuplicateReport> Engine::FindDuplicates(const DuplicateOptions& options) {
  DuplicateReport report;
  std::vector<std::string> hashed_uris;
  FS_RETURN_IF_ERROR(HashMissingImages(options, &report, &hashed_uris));
  // What the pairing below reads: exact groups, one perceptual hash per content, embedding
  // candidate pairs, and each candidate's content hash. From the store and the vector index, or
  // with the opensearch back end from a scan of the whole index (every machine's documents).
  std::vector<PerceptualHashRow> hashes;
  std::vector<NearDuplicate> candidates;
  std::map<int64_t, std::string> sha_of;
  if (remote_client_) {
    if (!hashed_uris.empty()) {  // the new hashes reach the index with their documents
      FS_RETURN_IF_ERROR(store_->QueueMirror(hashed_uris));
      FS_RETURN_IF_ERROR(SyncRemote().status());
    }
    FS_RETURN_IF_ERROR(DuplicateInputsFromIndex(options, &report, &hashes, &candidates, &sha_of));
  } else {
    FS_ASSIGN_OR_RETURN(report.exact, store_->ExactDuplicateGroups(options.max_groups));
    FS_ASSIGN_OR_RETURN(hashes, store_->PerceptualHashes());
    if (vectors_) {
      FS_RETURN_IF_ERROR(vectors_->Refresh());
      report.model = vectors_->model();
      // Candidate pairs while streaming the embeddings (no copy of every vector is kept), then one
      // metadata read for the ids in them to drop pairs of identical bytes (reported as exact).
      Status search_status;
      FS_RETURN_IF_ERROR(store_->ForEachEmbedding(report.model, [&](const EmbeddingRow& row) {
        if (!search_status.ok()) return;
        auto hits = vectors_->Search(row.vector, options.neighbours + 1, SearchFilters{});
        if (!hits.ok()) {
          search_status = hits.status();
          return;
        }
        for (const VectorHit& hit : *hits) {
          if (hit.id > row.doc_id && hit.score >= options.min_cosine) {
            NearDuplicate c;
            c.a = row.doc_id;
            c.b = hit.id;
            c.cosine = hit.score;
            candidates.push_back(c);
          }
        }
      }));
      FS_RETURN_IF_ERROR(search_status);
      std::vector<int64_t> ids;
      for (const NearDuplicate& c : candidates) {
        ids.push_back(c.a);
        ids.push_back(c.b);
      }
      std::sort(ids.begin(), ids.end());
      ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
      FS_ASSIGN_OR_RETURN(auto docs, store_->GetMany(ids));
      for (const Document& d : docs) sha_of[d.id] = d.sha256;
    }
  }

  std::map<std::pair<int64_t, int64_t>, NearDuplicate> found;
  // Perceptual hashes: model-independent, one per distinct content.
  report.hashed = hashes.size();
  std::map<std::string, uint64_t> hash_of_sha;
  for (const PerceptualHashRow& r : hashes) hash_of_sha[r.sha256] = r.phash;
  if (options.max_hamming >= 0) {
    std::vector<std::tuple<size_t, size_t, int>> pairs;
    report.hash_pairs_truncated = !HashPairs(hashes, options.max_hamming, options.max_hash_pairs, &pairs);
    for (const auto& [x, y, distance] : pairs) {
      const int64_t a = std::min(hashes[x].doc_id, hashes[y].doc_id), b = std::max(hashes[x].doc_id, hashes[y].doc_id);
      NearDuplicate& n = found[{a, b}];
      n.a = a;
      n.b = b;
      n.hamming = distance;
      n.by_hash = true;
    }
  }
  for (const NearDuplicate& c : candidates) {
    const std::string& sa = sha_of[c.a];
    const std::string& sb = sha_of[c.b];
    if (sa == sb) continue;
    NearDuplicate& n = found[{c.a, c.b}];
    n.a = c.a;
    n.b = c.b;
    n.cosine = c.cosine;
    n.by_embedding = true;
    auto ha = hash_of_sha.find(sa), hb = hash_of_sha.find(sb);
    if (n.hamming < 0 && ha != hash_of_sha.end() && hb != hash_of_sha.end()) {
      n.hamming = image::HammingDistance(ha->second, hb->second);
      n.by_hash = options.max_hamming >= 0 && n.hamming <= options.max_hamming;
    }
  }
  for (auto& [key, n] : found) report.near.push_back(n);
  std::sort(report.near.begin(), report.near.end(), [](const NearDuplicate& x, const NearDuplicate& y) {
    const bool bx = x.by_embedding && x.by_hash, by = y.by_embedding && y.by_hash;
    if (bx != by) return bx;
    const float cx = std::isnan(x.cosine) ? -2.0f : x.cosine, cy = std::isnan(y.cosine) ? -2.0f : y.cosine;
    if (cx != cy) return cx > cy;
    const int hx = x.hamming < 0 ? 65 : x.hamming, hy = y.hamming < 0 ? 65 : y.hamming;
    if (hx != hy) return hx < hy;
    return std::tie(x.a, x.b) < std::tie(y.a, y.b);
  });
  if (report.near.size() > options.max_groups) report.near.resize(options.max_groups);
  return report;
}

Status Engine::DuplicateInputsFromIndex(const DuplicateOptions& options, DuplicateReport* report,
                                        std::vector<PerceptualHashRow>* hashes, std::vector<NearDuplicate>* candidates,
                                        std::map<int64_t, std::string>* sha_of) {
  // 1. Every non-empty document's content hash (and perceptual hash): exact groups, hash rows.
  std::map<std::string, std::vector<int64_t>> by_sha;
  std::map<std::string, uint64_t> phash_of;
  ScanOptions scan;
  scan.index = options_.remote.index;
  scan.filter = NonEmptyFilter();
  scan.page = 2000;
  FS_RETURN_IF_ERROR(ScanIndex(*remote_client_, scan, [&](std::vector<ScanHit>& page) -> Status {
    for (const ScanHit& h : page) {
      if (h.sha256.empty()) continue;
      by_sha[h.sha256].push_back(h.doc_id);
      if (h.phash && *h.phash != 0) phash_of[h.sha256] = *h.phash;
    }
    return Status::Ok();
  }));
  std::vector<std::vector<int64_t>> groups;
  for (auto& [sha, ids] : by_sha) {
    std::sort(ids.begin(), ids.end());
    if (ids.size() > 1) groups.push_back(ids);
    auto p = phash_of.find(sha);
    if (p != phash_of.end()) hashes->push_back({ids.front(), sha, p->second});
  }
  std::sort(groups.begin(), groups.end(), [](const auto& x, const auto& y) {
    return x.size() != y.size() ? x.size() > y.size() : x.front() < y.front();
  });
  if (groups.size() > options.max_groups) groups.resize(options.max_groups);
  report->exact = std::move(groups);
  std::sort(hashes->begin(), hashes->end(), [](const auto& x, const auto& y) { return x.doc_id < y.doc_id; });

  // 2. The vectors of the active model: neighbours in an in-memory HNSW graph of them.
  const std::string model = vectors_ ? vectors_->model() : embedder_ ? embedder_->model_id() : options_.model_id;
  if (model.empty()) return Status::Ok();
  report->model = model;
  std::vector<int64_t> ids;
  std::vector<float> rows;
  size_t dim = 0;
  scan.filter = VectorsOfModelFilter(model);
  scan.vectors = true;
  scan.page = 500;
  FS_RETURN_IF_ERROR(ScanIndex(*remote_client_, scan, [&](std::vector<ScanHit>& page) -> Status {
    for (ScanHit& h : page) {
      if (h.vector.empty()) continue;
      if (dim == 0) dim = h.vector.size();
      if (h.vector.size() != dim) continue;
      ids.push_back(h.doc_id);
      rows.insert(rows.end(), h.vector.begin(), h.vector.end());
      (*sha_of)[h.doc_id] = h.sha256;
    }
    return Status::Ok();
  }));
  if (ids.empty()) return Status::Ok();
  vec::HnswOptions ho;
  ho.dim = static_cast<uint32_t>(dim);
  vec::HnswIndex graph(ho);
  std::vector<uint64_t> labels(ids.size());
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = i;
  FS_RETURN_IF_ERROR(graph.AddBatch(labels, rows, static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))));
  for (size_t i = 0; i < ids.size(); ++i) {
    FS_ASSIGN_OR_RETURN(std::vector<vec::Neighbor> hits,
                        graph.Search(std::span<const float>(rows.data() + i * dim, dim), options.neighbours + 1, 0, nullptr));
    for (const vec::Neighbor& n : hits) {
      const int64_t other = ids[n.label];
      if (other > ids[i] && n.score >= options.min_cosine) {
        NearDuplicate c;
        c.a = ids[i];
        c.b = other;
        c.cosine = n.score;
        candidates->push_back(c);
      }
    }
  }
  return Status::Ok();
}

std::unique_ptr<SearchBackend> Engine::Backend() const {
  if (!remote_client_) return NewEmbeddedBackend(store_.get(), vectors_.get());
  OpenSearchBackendOptions o;
  o.index = options_.remote.index;
  o.model = vectors_ ? vectors_->model() : query_embedder_ ? query_embedder_->model_id() : options_.model_id;
  o.dimension = vectors_ && vectors_->dim() ? vectors_->dim() : query_embedder_ ? query_embedder_->dim() : 0;
  o.space = options_.remote.space == "cosinesimil" ? opensearch::Space::kCosine : opensearch::Space::kInnerProduct;
  o.server_fusion = options_.remote.server_fusion;
  o.request = RequestsThrough(remote_client_.get());
  auto backend = NewOpenSearchBackend(std::move(o));
  FS_CHECK(backend.ok());
  return std::move(backend).value();
}

Result<SearchResult> Engine::Search(const SearchRequest& request) {
  if (remote_client_) {
    std::unique_ptr<SearchBackend> backend = Backend();
    FS_ASSIGN_OR_RETURN(SearchResult result, RunSearch(*backend, request, options_.limits));
    result.backend_took_ms = backend->took_ms();
    result.backend_wait_ms = backend->wait_ms();
    return result;
  }
  if (vectors_) FS_RETURN_IF_ERROR(vectors_->Refresh());
  return RunSearch(*store_, vectors_.get(), request, options_.limits);
}

Result<Document> Engine::GetDocumentByPath(const std::string& path) {
  FS_ASSIGN_OR_RETURN(Document doc, store_->GetByPath(path));
  if (remote_client_) doc.id = opensearch::StableDocId(doc.uri);
  return doc;
}

Result<Document> Engine::GetDocument(int64_t id) {
  if (!remote_client_) return store_->Get(id);
  const int64_t ids[] = {id};
  FS_ASSIGN_OR_RETURN(std::vector<Document> docs, Backend()->GetMany(ids));
  if (docs.empty()) return Status::NotFound("no document with id " + std::to_string(id));
  return std::move(docs.front());
}

Result<IndexCounts> Engine::CountIndex() const { return Backend()->Counts(); }

Result<std::string> Engine::DocumentText(const Document& doc) const {
  // By uri: the opensearch back end's ids are not the store's, and its index may hold files that
  // another machine's store wrote (this store then has no row for them: NotFound).
  FS_ASSIGN_OR_RETURN(Document stored, store_->GetByUri(doc.uri));
  return std::move(stored.content);
}

void Engine::AddSnippets(std::string_view query, SearchResult* result, const SnippetOptions& options) const {
  for (SearchHit& hit : result->hits) {
    auto text = DocumentText(hit.doc);
    if (text.ok()) hit.snippet = MakeSnippet(*text, query, options);
  }
}

Result<std::vector<Document>> Engine::GetDocuments(std::span<const int64_t> ids) const { return Backend()->GetMany(ids); }

Result<MirrorReport> Engine::SyncRemote() {
  if (!remote_client_) return MirrorReport{};
  MirrorOptions o;
  o.index = options_.remote.index;
  o.model = embedder_ ? embedder_->model_id() : vectors_ ? vectors_->model() : options_.model_id;
  o.progress = options_.progress;
  o.max_items = std::max<size_t>(1, options_.remote.bulk_docs);
  return SyncMirror(store_.get(), remote_sink_.get(), o);
}

Result<std::vector<float>> Engine::EmbedQueryText(std::string_view text) {
  if (!query_embedder_) return Status::Unavailable("text-to-image search is off: no CLIP model is loaded");
  return query_embedder_->EmbedText(text);
}

Result<ImageEmbedding> Engine::EmbedImageBytes(const std::string& bytes, bool use_cache) {
  if (!query_embedder_) return Status::Unavailable("image search is off: no CLIP model is loaded");
  ImageEmbedding out;
  out.sha256 = Sha256Hex(bytes);
  EmbeddingCache* cache = use_cache ? cache_ : nullptr;
  const std::string& model = query_embedder_->model_id();
  if (cache) {
    auto got = cache->Get(out.sha256, model);
    if (got.ok() && got->has_value() && (*got)->size() == query_embedder_->dim()) {
      out.vector = std::move(**got);
      out.cached = true;
      return out;
    }
    if (!got.ok()) LogWarn("embedding cache lookup failed (embedding anyway): " + got.status().ToString());
  }
  FS_ASSIGN_OR_RETURN(out.vector, query_embedder_->EmbedImageBytes(bytes));
  if (cache) {
    Status put = cache->Put(out.sha256, model, out.vector);
    if (!put.ok()) LogWarn("embedding cache write failed: " + put.ToString());
  }
  return out;
}

Status Engine::ResolveQueryVector(const QueryVectorSource& source, SearchRequest* r) {
  const int sources = static_cast<int>(!source.embedding.empty()) + static_cast<int>(source.similar_to.has_value()) +
                      static_cast<int>(source.image != nullptr);
  if (sources > 1) return Status::InvalidArgument("give at most one of a query vector, a similar document and an image");
  const std::string index_model = vectors_ ? vectors_->model() : "";
  if (!source.embedding.empty()) {
    r->vector = source.embedding;
    r->vector_model = source.embedding_model.empty() ? index_model : source.embedding_model;
  } else if (source.similar_to) {
    const int64_t id = *source.similar_to;
    FS_ASSIGN_OR_RETURN(Document doc, GetDocument(id));
    std::unique_ptr<SearchBackend> backend = Backend();
    if (!backend->has_vectors()) return Status::FailedPrecondition("find-similar needs a vector index: no embeddings are loaded");
    const std::string model = backend->vector_model();
    FS_ASSIGN_OR_RETURN(std::optional<std::vector<float>> emb, backend->GetVector(doc.id));
    if (!emb) {
      return Status::FailedPrecondition("document " + std::to_string(id) + " has no embedding for model " + model +
                                        ": only embedded images can be used with similarTo");
    }
    r->vector = std::move(*emb);
    r->vector_model = model;
    r->exclude_id = doc.id;
  } else if (source.image) {
    FS_ASSIGN_OR_RETURN(ImageEmbedding e, EmbedImageBytes(*source.image));
    r->vector = std::move(e.vector);
    r->vector_model = query_embedder_->model_id();
  } else if (source.text_to_vector && r->vector.empty() && !r->query.empty() && query_embedder_ && vectors_ &&
             (!r->mode || *r->mode != SearchMode::kText)) {
    FS_ASSIGN_OR_RETURN(r->vector, query_embedder_->EmbedText(r->query));
    r->vector_model = query_embedder_->model_id();
    r->vector_from_text = true;
  }
  return Status::Ok();
}

Status Engine::Checkpoint() {
  if (!vectors_) return Status::Ok();
  return vectors_->SaveSnapshot();
}

}  // namespace fs
