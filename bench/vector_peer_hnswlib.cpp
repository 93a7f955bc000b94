// The `vector` workload's adapter for hnswlib (Debian libhnswlib-dev, header-only), inner
// product. hnswlib picks its SIMD path at compile time (__AVX512F__), so this file alone is built
// with -mavx512f -mfma (bench/CMakeLists.txt): the peer runs at its best on this machine.
#include <hnswlib/hnswlib.h>

#include <memory>

#include "bench/bench.h"
#include "bench/vector_peer.h"

namespace fs::bench {
namespace {

class HnswlibPeer final : public VectorPeer {
 public:
  explicit HnswlibPeer(const PeerConfig& config) : config_(config), space_(config.dim) {}
  std::string name() const override { return "hnswlib"; }
  void Build(const float* rows, size_t n, int threads) override {
    index_ =
        std::make_unique<hnswlib::HierarchicalNSW<float>>(&space_, n, config_.m, config_.ef_construction, 42);
    ParallelFor(n, threads, [&](size_t begin, size_t end) {  // addPoint is thread-safe
      for (size_t row = begin; row < end; ++row) index_->addPoint(rows + row * config_.dim, row);
    });
  }
  void Search(const float* queries, size_t nq, size_t k, size_t ef, int threads, uint64_t* out) override {
    index_->setEf(ef);
    ParallelFor(nq, threads, [&](size_t begin, size_t end) {
      for (size_t q = begin; q < end; ++q) {
        auto result = index_->searchKnn(queries + q * config_.dim, k);
        for (size_t i = result.size(); i < k; ++i) out[q * k + i] = UINT64_MAX;
        for (size_t i = result.size(); i-- > 0; result.pop()) out[q * k + i] = result.top().second;
      }
    });
  }
  size_t memory_bytes() const override {
    if (!index_) return 0;
    size_t bytes = index_->max_elements_ * (index_->size_data_per_element_ + sizeof(void*));
    for (size_t i = 0; i < index_->cur_element_count; ++i) {
      bytes += static_cast<size_t>(index_->element_levels_[i]) * index_->size_links_per_element_;
    }
    return bytes;
  }

 private:
  PeerConfig config_;
  hnswlib::InnerProductSpace space_;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> index_;
};

}  // namespace

std::unique_ptr<VectorPeer> MakeHnswlibPeer(const PeerConfig& config) {
  return std::make_unique<HnswlibPeer>(config);
}

}  // namespace fs::bench
