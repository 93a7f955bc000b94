#include "engine/embedder.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>

#include "core/hash.h"

namespace fs {
namespace {

// Unit-norm normal vector seeded by the SHA-256 of `bytes`.
void HashVector(std::string_view sha_hex, float* row, size_t dim) {
  std::mt19937_64 rng(Fnv1a64(sha_hex));
  std::normal_distribution<float> normal;
  double norm = 0;
  for (size_t d = 0; d < dim; ++d) {
    row[d] = normal(rng);
    norm += static_cast<double>(row[d]) * row[d];
  }
  auto inv = static_cast<float>(1.0 / std::sqrt(norm));
  for (size_t d = 0; d < dim; ++d) row[d] *= inv;
}

bool HasFaultMarker(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string head(4096, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(std::max<std::streamsize>(in.gcount(), 0)));
  return head.find(kTestEmbedFaultMarker) != std::string::npos;
}

class HashQueryEmbedder final : public QueryEmbedder {
 public:
  explicit HashQueryEmbedder(size_t dim) : dim_(dim), model_("test/hash-" + std::to_string(dim)) {}
  const std::string& model_id() const override { return model_; }
  size_t dim() const override { return dim_; }
  Result<std::vector<float>> EmbedText(std::string_view text) override { return Embed(text); }
  Result<std::vector<float>> EmbedImageBytes(std::string_view bytes) override {
    if (bytes.empty()) return Status::InvalidArgument("empty image");
    return Embed(bytes);
  }

 private:
  std::vector<float> Embed(std::string_view bytes) const {
    std::vector<float> v(dim_);
    HashVector(Sha256Hex(bytes), v.data(), dim_);
    return v;
  }
  size_t dim_;
  std::string model_;
};

class HashEmbedder final : public ImageEmbedder {
 public:
  explicit HashEmbedder(size_t dim) : dim_(dim), model_("test/hash-" + std::to_string(dim)) {}
  const std::string& model_id() const override { return model_; }
  size_t dim() const override { return dim_; }
  Result<std::unique_ptr<ImageEmbedder>> Clone(int) const override {
    return std::unique_ptr<ImageEmbedder>(std::make_unique<HashEmbedder>(dim_));
  }
  Status EmbedFiles(std::span<const std::string> paths, std::span<float> out, std::vector<Status>* per_file,
                    std::vector<uint64_t>* phash) override {
    if (out.size() != paths.size() * dim_) return Status::InvalidArgument("output buffer has the wrong size");
    per_file->assign(paths.size(), Status::Ok());
    if (phash != nullptr) phash->assign(paths.size(), 0);  // no decode, no picture to hash
    for (size_t i = 0; i < paths.size(); ++i) {
      float* row = out.data() + i * dim_;
      auto sha = Sha256File(paths[i]);
      if (sha.ok() && HasFaultMarker(paths[i])) {
        sha = Status::InvalidArgument("injected embedding fault: the file holds " +
                                      std::string(kTestEmbedFaultMarker) + " (test embedder)");
      }
      if (!sha.ok()) {
        (*per_file)[i] = sha.status();
        std::fill(row, row + dim_, 0.0f);
        continue;
      }
      HashVector(*sha, row, dim_);
    }
    return Status::Ok();
  }

 private:
  size_t dim_;
  std::string model_;
};

}  // namespace

std::unique_ptr<ImageEmbedder> NewHashEmbedder(size_t dim) { return std::make_unique<HashEmbedder>(dim); }
std::unique_ptr<QueryEmbedder> NewHashQueryEmbedder(size_t dim) { return std::make_unique<HashQueryEmbedder>(dim); }

}  // namespace fs
