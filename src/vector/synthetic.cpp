#include "vector/synthetic.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <unordered_set>

#include "kernels/distance.h"

namespace fs::vec::testing {

std::vector<float> MakeEmbeddings(const SyntheticSpec& spec, uint64_t centre_seed) {
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  std::vector<float> centres(spec.clusters * spec.dim);
  std::mt19937_64 centre_rng(centre_seed);
  for (float& x : centres) x = gauss(centre_rng);

  std::mt19937_64 rng(spec.seed);
  std::uniform_int_distribution<size_t> pick(0, spec.clusters == 0 ? 0 : spec.clusters - 1);
  std::vector<float> out(spec.rows * spec.dim);
  for (size_t row = 0; row < spec.rows; ++row) {
    float* v = out.data() + row * spec.dim;
    if (spec.clusters == 0) {
      for (uint32_t d = 0; d < spec.dim; ++d) v[d] = gauss(rng);
    } else {
      const float* c = centres.data() + pick(rng) * spec.dim;
      for (uint32_t d = 0; d < spec.dim; ++d) v[d] = c[d] + spec.spread * gauss(rng);
    }
    double norm2 = 0;
    for (uint32_t d = 0; d < spec.dim; ++d) norm2 += double{v[d]} * v[d];
    const float inv = static_cast<float>(1.0 / std::sqrt(norm2));
    for (uint32_t d = 0; d < spec.dim; ++d) v[d] *= inv;
  }
  return out;
}

std::vector<uint64_t> ExactTopK(std::span<const float> base, uint32_t dim, std::span<const float> query,
                                size_t k, const std::function<bool(uint64_t)>& admit) {
  const size_t rows = base.size() / dim;
  std::vector<std::pair<float, uint64_t>> top;  // min-heap by score
  auto worse = [](const auto& a, const auto& b) { return a.first > b.first; };
  for (size_t row = 0; row < rows; ++row) {
    if (admit && !admit(row)) continue;
    const float s = kernels::InnerProduct(base.data() + row * dim, query.data(), dim);
    if (top.size() < k) {
      top.push_back({s, row});
      std::push_heap(top.begin(), top.end(), worse);
    } else if (s > top.front().first) {
      std::pop_heap(top.begin(), top.end(), worse);
      top.back() = {s, row};
      std::push_heap(top.begin(), top.end(), worse);
    }
  }
  std::sort(top.begin(), top.end(), worse);
  std::vector<uint64_t> labels;
  labels.reserve(top.size());
  for (const auto& entry : top) labels.push_back(entry.second);
  return labels;
}

double RecallAtK(const std::vector<std::vector<uint64_t>>& truth,
                 const std::vector<std::vector<uint64_t>>& got) {
  size_t hits = 0, total = 0;
  for (size_t q = 0; q < truth.size() && q < got.size(); ++q) {
    std::unordered_set<uint64_t> want(truth[q].begin(), truth[q].end());
    for (uint64_t label : got[q]) hits += want.count(label);
    total += truth[q].size();
  }
  return total == 0 ? 1.0 : static_cast<double>(hits) / static_cast<double>(total);
}

}  // namespace fs::vec::testing
