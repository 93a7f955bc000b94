// Internal header of bench/: seeded synthetic documents with realistic names, paths and content
// (a Zipf-distributed vocabulary of pseudo-words, company-like folder trees, dated file names, a
// share of Japanese names), and query sampling from the same vocabulary.
// Thread-safety: a DocGenerator is used by one thread.
#pragma once

#include <random>
#include <string>
#include <vector>

#include "index/store.h"

namespace fs::bench {

class DocGenerator {
 public:
  explicit DocGenerator(uint64_t seed, size_t vocabulary = 50000);
  Document Next(size_t index);
  // A query of 1-3 words drawn from the vocabulary (frequent words more often, like real users).
  std::string Query();

 private:
  const std::string& Word();
  std::mt19937_64 rng_;
  std::vector<std::string> words_;
  std::vector<double> cdf_;
};

struct LatencyStats {
  double p50_ms, p95_ms, p99_ms, mean_ms;
};
LatencyStats Summarise(std::vector<double> ms);

}  // namespace fs::bench
