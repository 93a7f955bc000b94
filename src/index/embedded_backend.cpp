// The embedded SearchBackend: thin forwarding to the Store (keyword leg, documents, generation)
// and the model's VectorIndex (vector leg). No state of its own.
#include "index/search_backend.h"

namespace fs {
namespace {

class EmbeddedBackend final : public SearchBackend {
 public:
  EmbeddedBackend(const Store* store, const VectorIndex* vectors) : store_(store), vectors_(vectors) {}

  std::string_view kind() const override { return "embedded"; }
  Result<uint64_t> Generation() const override { return store_->Generation(); }
  Result<KeywordPage> KeywordSearch(std::string_view query, const SearchFilters& filters, size_t offset, size_t limit,
                                    const std::optional<KeywordAfter>& after) const override {
    return store_->KeywordSearch(query, filters, offset, limit, after);
  }
  bool has_vectors() const override { return vectors_ != nullptr; }
  std::string vector_model() const override { return vectors_ ? vectors_->model() : std::string(); }
  size_t vector_dim() const override { return vectors_ ? vectors_->dim() : 0; }
  Result<std::vector<VectorHit>> VectorSearch(std::span<const float> query, size_t k, const SearchFilters& filters,
                                              size_t ef) const override {
    if (!vectors_) return Status::FailedPrecondition("no vector index is loaded");
    return vectors_->Search(query, k, filters, ef);
  }
  Result<std::vector<Document>> GetMany(std::span<const int64_t> ids) const override { return store_->GetMany(ids); }
  Result<IndexCounts> Counts() const override {
    FS_ASSIGN_OR_RETURN(StoreStats st, store_->Stats());
    IndexCounts c;
    c.documents = st.documents;
    c.vectors_by_model = std::move(st.embeddings_by_model);
    return c;
  }
  Result<VectorSample> SampleVectorScores(std::span<const float> query, size_t n) const override {
    VectorSample sample;
    if (!vectors_) return sample;
    sample.population = vectors_->size();
    FS_ASSIGN_OR_RETURN(sample.scores, vectors_->SampleScores(query, n));
    return sample;
  }
  Result<std::optional<std::vector<float>>> GetVector(int64_t id) const override {
    if (!vectors_) return std::optional<std::vector<float>>();
    return store_->GetEmbedding(id, vectors_->model());
  }

 private:
  const Store* store_;
  const VectorIndex* vectors_;
};

}  // namespace

Result<LegsReply> SearchBackend::SearchLegs(const LegsRequest& r) const {
  LegsReply reply;
  if (r.text) {
    FS_ASSIGN_OR_RETURN(reply.text, KeywordSearch(*r.text, r.filters, r.text_after ? 0 : r.text_offset, r.text_limit,
                                                  r.text_after));
  }
  if (!r.vector.empty()) {
    FS_ASSIGN_OR_RETURN(reply.vector, VectorSearch(r.vector, r.k, r.filters, r.ef));
    reply.vector_total = reply.vector.size();
  }
  return reply;
}

std::unique_ptr<SearchBackend> NewEmbeddedBackend(const Store* store, const VectorIndex* vectors) {
  return std::make_unique<EmbeddedBackend>(store, vectors);
}

}  // namespace fs
