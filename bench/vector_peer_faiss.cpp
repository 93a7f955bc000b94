// The `vector` workload's adapter for FAISS IndexHNSWFlat (Debian libfaiss-dev), inner product.
// FAISS parallelises a batch search with OpenMP, its natural use; we set its thread count.
#include <faiss/IndexHNSW.h>
#include <omp.h>

#include <vector>

#include "bench/vector_peer.h"

namespace fs::bench {
namespace {

class FaissPeer final : public VectorPeer {
 public:
  explicit FaissPeer(const PeerConfig& config)
      : dim_(config.dim),
        index_(static_cast<int>(config.dim), static_cast<int>(config.m), faiss::METRIC_INNER_PRODUCT) {
    index_.hnsw.efConstruction = static_cast<int>(config.ef_construction);
  }
  std::string name() const override { return "faiss"; }
  void Build(const float* rows, size_t n, int threads) override {
    omp_set_num_threads(threads);
    index_.add(static_cast<faiss::Index::idx_t>(n), rows);
  }
  void Search(const float* queries, size_t nq, size_t k, size_t ef, int threads, uint64_t* out) override {
    omp_set_num_threads(threads);
    // FAISS 1.7.3's IndexHNSW::search ignores SearchParametersHNSW; the field is what it reads.
    index_.hnsw.efSearch = static_cast<int>(ef);
    std::vector<float> distances(nq * k);
    std::vector<faiss::Index::idx_t> labels(nq * k);
    index_.search(static_cast<faiss::Index::idx_t>(nq), queries, static_cast<faiss::Index::idx_t>(k),
                  distances.data(), labels.data());
    for (size_t i = 0; i < nq * k; ++i) {
      out[i] = labels[i] < 0 ? UINT64_MAX : static_cast<uint64_t>(labels[i]);
    }
  }
  size_t memory_bytes() const override {
    const faiss::HNSW& h = index_.hnsw;
    return static_cast<size_t>(index_.ntotal) * dim_ * sizeof(float) +
           h.neighbors.capacity() * sizeof(h.neighbors[0]) + h.offsets.capacity() * sizeof(h.offsets[0]) +
           h.levels.capacity() * sizeof(h.levels[0]);
  }

 private:
  size_t dim_;
  faiss::IndexHNSWFlat index_;
};

}  // namespace

std::unique_ptr<VectorPeer> MakeFaissPeer(const PeerConfig& config) {
  return std::make_unique<FaissPeer>(config);
}

}  // namespace fs::bench
