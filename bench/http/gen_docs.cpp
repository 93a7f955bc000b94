// bench_http_gen: fills a data directory with N synthetic documents through the Store API, for
// the HTTP load benchmark (bench/http/run.sh). Text documents get a few words drawn from a Zipf-like
// vocabulary ("w0" is the most common word); every `image_every`-th document is an image with a
// random unit vector of model test/hash-64 (what `filesearch serve --test-embedder` queries), and
// the HNSW snapshot is written at the end so the server starts without a rebuild.
//   bench_http_gen DATA_DIR N [image_every=5] [dim=64] [model=test/hash-64]
// (dim 512 and model openai/clip-vit-base-patch32 give vectors a server running CLIP can search.)
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "engine/engine.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: bench_http_gen DATA_DIR N [image_every=5] [dim=64] [model=test/hash-64]\n");
    return 2;
  }
  const std::string dir = argv[1];
  const long long n = std::atoll(argv[2]);
  const long long image_every = argc > 3 ? std::atoll(argv[3]) : 5;
  const size_t kDim = argc > 4 ? static_cast<size_t>(std::atoll(argv[4])) : 64;
  const std::string kModel = argc > 5 ? argv[5] : "test/hash-64";
  fs::EngineOptions eo;
  eo.data_dir = dir;
  eo.progress = false;
  auto engine = fs::Engine::Open(eo);
  if (!engine.ok()) {
    std::fprintf(stderr, "%s\n", engine.status().ToString().c_str());
    return 1;
  }
  fs::Store* store = (*engine)->store();
  std::mt19937_64 rng(42);
  // Zipf-like: word k has weight 1 / (k + 1).
  const int kVocabulary = 5000;
  std::vector<double> weights(kVocabulary);
  for (int k = 0; k < kVocabulary; ++k) weights[k] = 1.0 / (k + 1);
  std::discrete_distribution<int> word(weights.begin(), weights.end());
  std::normal_distribution<float> normal;
  const auto start = std::chrono::steady_clock::now();
  const long long kBatch = 5000;
  for (long long first = 0; first < n; first += kBatch) {
    std::vector<fs::Document> docs;
    std::vector<bool> is_image;
    for (long long i = first; i < std::min(n, first + kBatch); ++i) {
      fs::Document d;
      const bool image = image_every > 0 && i % image_every == 0;
      const std::string folder = "/bench/share/dept" + std::to_string(i % 50) + "/";
      d.name = "w" + std::to_string(word(rng)) + "-" + std::to_string(i) + (image ? ".jpg" : ".txt");
      d.path = folder + d.name;
      d.uri = "file://" + d.path;
      d.ext = image ? "jpg" : "txt";
      d.mime = image ? "image/jpeg" : "text/plain";
      d.size = 1000 + static_cast<uint64_t>(i % 100000);
      d.mtime_ns = 1700000000LL * 1000000000LL + i * 1000000000LL;
      d.sha256 = std::to_string(i);
      if (!image) {
        for (int w = 0; w < 12; ++w) d.content += "w" + std::to_string(word(rng)) + " ";
      }
      docs.push_back(std::move(d));
      is_image.push_back(image);
    }
    auto ids = store->UpsertBatch(docs);
    if (!ids.ok()) {
      std::fprintf(stderr, "%s\n", ids.status().ToString().c_str());
      return 1;
    }
    std::vector<int64_t> image_ids;
    std::vector<float> vectors;
    for (size_t j = 0; j < docs.size(); ++j) {
      if (!is_image[j]) continue;
      image_ids.push_back((*ids)[j]);
      double norm = 0;
      const size_t at = vectors.size();
      for (size_t d = 0; d < kDim; ++d) {
        vectors.push_back(normal(rng));
        norm += static_cast<double>(vectors.back()) * vectors.back();
      }
      for (size_t d = 0; d < kDim; ++d) vectors[at + d] = static_cast<float>(vectors[at + d] / std::sqrt(norm));
    }
    if (!image_ids.empty()) {
      fs::Status s = store->PutEmbeddings(kModel, image_ids, vectors, kDim);
      if (!s.ok()) {
        std::fprintf(stderr, "%s\n", s.ToString().c_str());
        return 1;
      }
    }
    if ((first / kBatch) % 20 == 0) {
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::fprintf(stderr, "%lld / %lld documents (%.0f s)\n", first + static_cast<long long>(docs.size()), n, secs);
    }
  }
  std::fprintf(stderr, "building the vector index...\n");
  engine->reset();
  eo.model_id = kModel;
  auto reopened = fs::Engine::Open(eo);  // builds the HNSW index from the store
  if (!reopened.ok()) {
    std::fprintf(stderr, "%s\n", reopened.status().ToString().c_str());
    return 1;
  }
  fs::Status s = (*reopened)->Checkpoint();
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("generated %lld documents (%lld with vectors) in %s in %.0f s\n", n,
              image_every > 0 ? (n + image_every - 1) / image_every : 0, dir.c_str(), secs);
  return 0;
}
