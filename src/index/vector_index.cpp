#include "index/vector_index.h"

#include <algorithm>
#include <mutex>

#include "core/log.h"
#include "core/progress.h"

namespace fs {

Result<std::unique_ptr<VectorIndex>> VectorIndex::Open(Store* store, Env* env, const std::string& snapshot_path,
                                                       const std::string& model, const VectorIndexOptions& options) {
  std::unique_ptr<VectorIndex> index(new VectorIndex(store, env, snapshot_path, model, options));
  if (env->FileExists(snapshot_path)) {
    uint64_t seq = 0;
    auto loaded = vec::HnswIndex::Load(env, snapshot_path, &seq);
    if (loaded.ok() && (*loaded)->options().model_id == model) {
      index->hnsw_ = std::move(loaded).value();
      index->applied_seq_ = seq;
      index->open_note_ = "snapshot";
    } else {
      std::string why = loaded.ok() ? "snapshot holds model '" + (*loaded)->options().model_id + "'"
                                    : loaded.status().ToString();
      LogWarn("vector snapshot '" + snapshot_path + "' is unusable (" + why + "); rebuilding it from the database");
      FS_RETURN_IF_ERROR(index->Rebuild());
      index->open_note_ = "rebuilt: " + why;
    }
  } else {
    FS_RETURN_IF_ERROR(index->Rebuild());
    index->open_note_ = index->hnsw_ ? "rebuilt: no snapshot" : "empty";
  }
  FS_RETURN_IF_ERROR(index->Refresh());
  return index;
}

Status VectorIndex::EnsureIndexLocked(size_t dim) {
  if (hnsw_) {
    if (hnsw_->options().dim != dim) {
      return Status::Corruption("embedding of dimension " + std::to_string(dim) + " stored for model '" + model_ +
                                "', whose index has dimension " + std::to_string(hnsw_->options().dim));
    }
    return Status::Ok();
  }
  vec::HnswOptions o;
  o.dim = static_cast<uint32_t>(dim);
  o.m = options_.m;
  o.ef_construction = options_.ef_construction;
  o.ef_search = options_.ef_search;
  o.model_id = model_;
  hnsw_ = std::make_unique<vec::HnswIndex>(o);
  return Status::Ok();
}

Status VectorIndex::Rebuild() {
  std::unique_lock lock(mu_);
  hnsw_.reset();
  // Read the sequence first: changes racing with the rebuild are replayed by Refresh (upserts
  // are idempotent, removals of absent labels are ignored).
  FS_ASSIGN_OR_RETURN(applied_seq_, store_->LastChangeSeq(model_));
  FS_ASSIGN_OR_RETURN(StoreStats stats, store_->Stats());
  uint64_t total = 0;
  for (auto& [m, n] : stats.embeddings_by_model) {
    if (m == model_) total = n;
  }
  Progress bar("building vector index (" + model_ + ")", total, options_.progress && total > 10000);
  Status inner;
  FS_RETURN_IF_ERROR(store_->ForEachEmbedding(model_, [&](const EmbeddingRow& row) {
    if (!inner.ok()) return;
    inner = EnsureIndexLocked(row.vector.size());
    if (inner.ok()) inner = hnsw_->Add(static_cast<uint64_t>(row.doc_id), row.vector);
    bar.Add();
  }));
  return inner;
}

Status VectorIndex::ApplyLocked(int64_t doc_id, bool upsert) {
  auto label = static_cast<uint64_t>(doc_id);
  if (!upsert) {
    if (hnsw_ && hnsw_->Contains(label)) return hnsw_->Remove(label);
    return Status::Ok();
  }
  FS_ASSIGN_OR_RETURN(auto vec, store_->GetEmbedding(doc_id, model_));
  if (!vec) {  // set, then removed later in the log: the removal entry follows
    if (hnsw_ && hnsw_->Contains(label)) return hnsw_->Remove(label);
    return Status::Ok();
  }
  FS_RETURN_IF_ERROR(EnsureIndexLocked(vec->size()));
  return hnsw_->Add(label, *vec);
}

Status VectorIndex::Reload(uint64_t trimmed) {
  uint64_t seq = 0;
  if (env_->FileExists(path_)) {
    auto loaded = vec::HnswIndex::Load(env_, path_, &seq);
    if (loaded.ok() && (*loaded)->options().model_id == model_ && seq >= trimmed) {
      std::unique_lock lock(mu_);
      hnsw_ = std::move(loaded).value();
      applied_seq_ = seq;
      LogInfo("vector index reloaded from the snapshot another process wrote (its change log was trimmed)");
      return Status::Ok();
    }
  }
  LogWarn("vector index rebuilt: another process trimmed the change log past it and no usable snapshot covers the gap");
  return Rebuild();
}

Status VectorIndex::Refresh() {
  uint64_t from;
  {
    std::shared_lock lock(mu_);
    from = applied_seq_;
  }
  // Another process (a worker) that saved a snapshot trimmed the log: entries this index never
  // applied may be gone. Reload the snapshot that holds them (or rebuild), then replay the rest.
  FS_ASSIGN_OR_RETURN(uint64_t trimmed, store_->TrimmedThrough(model_));
  if (trimmed > from) {
    FS_RETURN_IF_ERROR(Reload(trimmed));
    std::shared_lock lock(mu_);
    from = applied_seq_;
  }
  FS_ASSIGN_OR_RETURN(std::vector<VectorChange> changes, store_->ChangesSince(model_, from));
  if (changes.empty()) return Status::Ok();
  std::unique_lock lock(mu_);
  for (const VectorChange& c : changes) {
    if (c.seq <= applied_seq_) continue;
    FS_RETURN_IF_ERROR(ApplyLocked(c.doc_id, c.upsert));
    applied_seq_ = c.seq;
  }
  return Status::Ok();
}

Result<std::vector<VectorHit>> VectorIndex::Search(std::span<const float> query, size_t k,
                                                   const SearchFilters& filters, size_t ef) const {
  std::vector<VectorHit> out;
  std::optional<vec::LabelFilter> filter;
  if (!filters.empty()) {
    FS_ASSIGN_OR_RETURN(std::vector<int64_t> ids, store_->FilterIds(filters));
    if (ids.empty()) return out;
    int64_t max_id = *std::max_element(ids.begin(), ids.end());
    filter.emplace(static_cast<uint64_t>(max_id) + 1);
    for (int64_t id : ids) filter->Set(static_cast<uint64_t>(id));
  }
  std::shared_lock lock(mu_);
  if (!hnsw_ || hnsw_->size() == 0) return out;
  if (query.size() != hnsw_->options().dim) {
    return Status::InvalidArgument("query vector has dimension " + std::to_string(query.size()) + " but model '" +
                                   model_ + "' has dimension " + std::to_string(hnsw_->options().dim));
  }
  size_t breadth = std::max<size_t>({ef ? ef : options_.ef_search, k});
  FS_ASSIGN_OR_RETURN(std::vector<vec::Neighbor> hits, hnsw_->Search(query, k, breadth, filter ? &*filter : nullptr));
  out.reserve(hits.size());
  for (const auto& h : hits) out.push_back({static_cast<int64_t>(h.label), h.score});
  std::stable_sort(out.begin(), out.end(), [](const VectorHit& a, const VectorHit& b) {
    return a.score != b.score ? a.score > b.score : a.id < b.id;
  });
  return out;
}

Result<std::vector<float>> VectorIndex::SampleScores(std::span<const float> query, size_t n) const {
  std::shared_lock lock(mu_);
  if (!hnsw_ || hnsw_->size() == 0 || query.size() != hnsw_->options().dim) return std::vector<float>{};
  return hnsw_->SampleScores(query, n);
}

Status VectorIndex::SaveSnapshot() {
  FS_RETURN_IF_ERROR(Refresh());
  uint64_t seq;
  {
    std::shared_lock lock(mu_);
    if (!hnsw_) return Status::Ok();
    seq = applied_seq_;
    FS_RETURN_IF_ERROR(hnsw_->Save(env_, path_, seq));
  }
  return store_->TrimChanges(model_, seq);
}

bool VectorIndex::Contains(int64_t id) const {
  std::shared_lock lock(mu_);
  return hnsw_ && hnsw_->Contains(static_cast<uint64_t>(id));
}

size_t VectorIndex::dim() const {
  std::shared_lock lock(mu_);
  return hnsw_ ? hnsw_->options().dim : 0;
}
size_t VectorIndex::size() const {
  std::shared_lock lock(mu_);
  return hnsw_ ? hnsw_->size() : 0;
}
size_t VectorIndex::memory_bytes() const {
  std::shared_lock lock(mu_);
  return hnsw_ ? hnsw_->memory_bytes() : 0;
}
uint64_t VectorIndex::applied_seq() const {
  std::shared_lock lock(mu_);
  return applied_seq_;
}

}  // namespace fs
