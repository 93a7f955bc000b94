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
  Result<std::optional<std::vector<float>>> GetVector(int64_t id) const override {
    if (!vectors_) return std::optional<std::vector<float>>();
    return store_->GetEmbedding(id, vectors_->model());
  }

 private:
  const Store* store_;
  const VectorIndex* vectors_;
};

}  // namespace

std::unique_ptr<SearchBackend> NewEmbeddedBackend(const Store* store, const VectorIndex* vectors) {
  return std::make_unique<EmbeddedBackend>(store, vectors);
}

}  // namespace fs
