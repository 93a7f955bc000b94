// Seeded synthetic embeddings and the exact k-NN oracle, shared by vector/ tests and the
// `vector` bench workload. Not part of the production library (target fs_vector_testing).
// Thread-safety: pure functions. Shapes: row-major `rows x dim` floats, each row L2-normalised.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace fs::vec::testing {

struct SyntheticSpec {
  size_t rows = 0;
  uint32_t dim = 512;
  // 0: uniform on the unit sphere. Otherwise rows are drawn around `clusters` random centres.
  size_t clusters = 0;
  // Noise around a centre, relative to the centre's norm (0.6: same-cluster cosine ~0.73).
  float spread = 0.6f;
  uint64_t seed = 1;
};

// Generates spec.rows normalised rows. Two calls with the same spec (and the same centre seed,
// see `centre_seed`) give the same rows; `centre_seed` lets queries share the base's clusters.
std::vector<float> MakeEmbeddings(const SyntheticSpec& spec, uint64_t centre_seed);

// Exact top-k labels (row indices) by inner product over the rows `admit` accepts (null: all),
// best first.
std::vector<uint64_t> ExactTopK(std::span<const float> base, uint32_t dim, std::span<const float> query,
                                size_t k, const std::function<bool(uint64_t)>& admit);

// Fraction of `truth` (k labels per query) found among `got` (k labels per query).
double RecallAtK(const std::vector<std::vector<uint64_t>>& truth,
                 const std::vector<std::vector<uint64_t>>& got);

}  // namespace fs::vec::testing
