#include "engine/embedder.h"

#include <cmath>
#include <random>

#include "core/hash.h"

namespace fs {
namespace {

class HashEmbedder final : public ImageEmbedder {
 public:
  explicit HashEmbedder(size_t dim) : dim_(dim), model_("test/hash-" + std::to_string(dim)) {}
  const std::string& model_id() const override { return model_; }
  size_t dim() const override { return dim_; }
  Status EmbedFiles(std::span<const std::string> paths, std::span<float> out, std::vector<Status>* per_file) override {
    if (out.size() != paths.size() * dim_) return Status::InvalidArgument("output buffer has the wrong size");
    per_file->assign(paths.size(), Status::Ok());
    for (size_t i = 0; i < paths.size(); ++i) {
      float* row = out.data() + i * dim_;
      auto sha = Sha256File(paths[i]);
      if (!sha.ok()) {
        (*per_file)[i] = sha.status();
        std::fill(row, row + dim_, 0.0f);
        continue;
      }
      std::mt19937_64 rng(Fnv1a64(*sha));
      std::normal_distribution<float> normal;
      double norm = 0;
      for (size_t d = 0; d < dim_; ++d) {
        row[d] = normal(rng);
        norm += static_cast<double>(row[d]) * row[d];
      }
      auto inv = static_cast<float>(1.0 / std::sqrt(norm));
      for (size_t d = 0; d < dim_; ++d) row[d] *= inv;
    }
    return Status::Ok();
  }

 private:
  size_t dim_;
  std::string model_;
};

}  // namespace

std::unique_ptr<ImageEmbedder> NewHashEmbedder(size_t dim) { return std::make_unique<HashEmbedder>(dim); }

}  // namespace fs
