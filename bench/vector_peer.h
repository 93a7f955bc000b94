// Internal header of bench/: one interface over the three HNSW implementations the `vector`
// workload compares (ours, FAISS IndexHNSWFlat, hnswlib), so the workload drives them alike.
// Not thread-safe: one caller at a time; Search itself uses `threads` threads.
// Shapes: rows and queries are row-major `n x dim` floats, already L2-normalised; labels = row.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace fs::bench {

struct PeerConfig {
  uint32_t dim = 512;
  uint32_t m = 16;
  uint32_t ef_construction = 200;
};

class VectorPeer {
 public:
  virtual ~VectorPeer() = default;
  virtual std::string name() const = 0;
  // Inserts rows 0..n-1 (label = row index) using `threads` threads.
  virtual void Build(const float* rows, size_t n, int threads) = 0;
  // Writes k labels per query, best first, into out[q * k ...] (UINT64_MAX where fewer).
  virtual void Search(const float* queries, size_t nq, size_t k, size_t ef, int threads, uint64_t* out) = 0;
  // What the index reports (or what its layout implies) for its own memory, bytes.
  virtual size_t memory_bytes() const = 0;
};

std::unique_ptr<VectorPeer> MakeFilesearchPeer(const PeerConfig& config);
std::unique_ptr<VectorPeer> MakeFaissPeer(const PeerConfig& config);
std::unique_ptr<VectorPeer> MakeHnswlibPeer(const PeerConfig& config);

}  // namespace fs::bench
