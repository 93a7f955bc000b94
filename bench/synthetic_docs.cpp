#include "bench/synthetic_docs.h"

#include <algorithm>
#include <cmath>

namespace fs::bench {
namespace {
const char* kSyllables[] = {"ka", "ri", "to", "men", "sa", "lo", "ver", "dan", "qui", "pro", "ex", "tel",
                            "mar", "no", "si", "ber", "ul", "tra", "gen", "fo", "lin", "cor", "pa", "des",
                            "ta", "mi", "ren", "vo", "zu", "hal", "ex", "ni"};
const char* kDepartments[] = {"finance", "legal", "engineering", "marketing", "sales", "hr", "operations", "design"};
const char* kExtensions[] = {"pdf", "docx", "xlsx", "txt", "md", "jpg", "png", "pptx", "csv", "html"};
const char* kJapanese[] = {"請求書", "議事録", "見積書", "報告書", "契約書", "東京支社", "大阪支社", "企画書"};
}  // namespace

DocGenerator::DocGenerator(uint64_t seed, size_t vocabulary) : rng_(seed) {
  std::mt19937_64 wr(42);  // the vocabulary is the same for every seed
  for (size_t i = 0; i < vocabulary; ++i) {
    std::string w;
    int syl = 2 + static_cast<int>(wr() % 3);
    for (int s = 0; s < syl; ++s) w += kSyllables[wr() % 32];
    words_.push_back(w);
  }
  double sum = 0;
  for (size_t i = 0; i < vocabulary; ++i) {
    sum += 1.0 / std::pow(static_cast<double>(i + 1), 1.05);
    cdf_.push_back(sum);
  }
  for (auto& c : cdf_) c /= sum;
}

const std::string& DocGenerator::Word() {
  double u = std::uniform_real_distribution<double>(0, 1)(rng_);
  size_t i = static_cast<size_t>(std::lower_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin());
  return words_[std::min(i, words_.size() - 1)];
}

Document DocGenerator::Next(size_t index) {
  Document d;
  std::string dept = kDepartments[rng_() % 8];
  int year = 2015 + static_cast<int>(rng_() % 11);
  std::string project = Word();
  std::string ext = kExtensions[rng_() % 10];
  std::string name = (rng_() % 20 == 0) ? std::string(kJapanese[rng_() % 8]) + "_" + std::to_string(year)
                                        : Word() + "-" + Word() + "-" + std::to_string(year);
  name += "-" + std::to_string(index) + "." + ext;
  d.path = "/srv/share/" + dept + "/" + project + "/" + std::to_string(year) + "/" + name;
  d.uri = "file://" + d.path;
  d.name = name;
  d.ext = ext;
  d.mime = ext == "jpg" ? "image/jpeg" : ext == "png" ? "image/png" : ext == "pdf" ? "application/pdf" : "text/plain";
  d.size = 1000 + rng_() % 5000000;
  d.mtime_ns = (1420070400LL + static_cast<int64_t>(rng_() % 340000000)) * 1000000000LL;
  d.sha256 = std::to_string(rng_());
  if (d.mime.rfind("image/", 0) != 0) {
    size_t words = 20 + rng_() % 120;
    for (size_t i = 0; i < words; ++i) {
      if (i) d.content += ' ';
      d.content += Word();
    }
  }
  return d;
}

std::string DocGenerator::Query() {
  size_t n = 1 + rng_() % 3;
  std::string q;
  for (size_t i = 0; i < n; ++i) {
    if (i) q += ' ';
    q += Word();
  }
  return q;
}

LatencyStats Summarise(std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  auto at = [&](double p) { return ms.empty() ? 0.0 : ms[std::min(ms.size() - 1, static_cast<size_t>(p * static_cast<double>(ms.size())))]; };
  double sum = 0;
  for (double v : ms) sum += v;
  return {at(0.50), at(0.95), at(0.99), ms.empty() ? 0 : sum / static_cast<double>(ms.size())};
}

}  // namespace fs::bench
