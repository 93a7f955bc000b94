// The `vector` workload's adapter for our own index (src/vector/hnsw.h).
#include <vector>

#include "bench/bench.h"
#include "bench/vector_peer.h"
#include "core/check.h"
#include "vector/hnsw.h"

namespace fs::bench {
namespace {

class FilesearchPeer final : public VectorPeer {
 public:
  explicit FilesearchPeer(const PeerConfig& config) : dim_(config.dim) {
    vec::HnswOptions options;
    options.dim = config.dim;
    options.m = config.m;
    options.ef_construction = config.ef_construction;
    options.model_id = "bench";
    index_ = std::make_unique<vec::HnswIndex>(options);
  }
  std::string name() const override { return "filesearch"; }
  void Build(const float* rows, size_t n, int threads) override {
    std::vector<uint64_t> labels(n);
    for (size_t row = 0; row < n; ++row) labels[row] = row;
    Status s = index_->AddBatch(labels, {rows, n * dim_}, threads);
    FS_CHECK_MSG(s.ok(), s.ToString().c_str());
  }
  void Search(const float* queries, size_t nq, size_t k, size_t ef, int threads, uint64_t* out) override {
    ParallelFor(nq, threads, [&](size_t begin, size_t end) {
      for (size_t q = begin; q < end; ++q) {
        auto got = index_->Search({queries + q * dim_, dim_}, k, ef, nullptr);
        FS_CHECK_MSG(got.ok(), got.status().ToString().c_str());
        for (size_t i = 0; i < k; ++i) out[q * k + i] = i < got->size() ? (*got)[i].label : UINT64_MAX;
      }
    });
  }
  size_t memory_bytes() const override { return index_->memory_bytes(); }

 private:
  size_t dim_;
  std::unique_ptr<vec::HnswIndex> index_;
};

}  // namespace

std::unique_ptr<VectorPeer> MakeFilesearchPeer(const PeerConfig& config) {
  return std::make_unique<FilesearchPeer>(config);
}

}  // namespace fs::bench
