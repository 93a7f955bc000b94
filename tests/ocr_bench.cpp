// OCR cost per image on the indexing path (decode under image/'s limits, scale to max_pixels,
// Tesseract, confidence filter): engine's OcrImageFile, as `filesearch index --ocr` runs it.
// Not a test: prints one line per set of files (docs/benchmarks.md, "OCR").
//   build/tests/ocr_bench [--languages eng+jpn] [--reps N] FILE...
// Wall time is what indexing waits for; CPU time (all threads of the process) is shown beside
// it because Tesseract's OpenMP loops use more than one core and the machine is shared.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "engine/image_text.h"

namespace {

double Ms(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) * 1e-6;
}

std::string ReadAll(const char* path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

int main(int argc, char** argv) {
  fs::OcrOptions options;
  int reps = 1;
  std::vector<const char*> files;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--languages") == 0 && i + 1 < argc) {
      options.languages = argv[++i];
    } else if (std::strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
      reps = std::max(1, std::atoi(argv[++i]));
    } else {
      files.push_back(argv[i]);
    }
  }
  if (files.empty()) {
    std::fprintf(stderr, "usage: %s [--languages eng+jpn] [--reps N] FILE...\n", argv[0]);
    return 2;
  }
  auto setup = fs::ResolveOcr(options);
  if (!setup.ok()) {
    std::fprintf(stderr, "%s\n", setup.status().ToString().c_str());
    return 1;
  }
  // The first call loads the models (once per thread); timed apart from the images.
  const std::string first_file = ReadAll(files[0]);
  double w0 = Ms(CLOCK_MONOTONIC);
  (void)fs::OcrImageFile(first_file, options);
  const double first_ms = Ms(CLOCK_MONOTONIC) - w0;

  std::vector<double> wall;
  double cpu_sum = 0, chars = 0;
  int failures = 0;
  for (const char* path : files) {
    const std::string bytes = ReadAll(path);
    double best_wall = 1e300, best_cpu = 1e300;
    size_t text_size = 0;
    for (int rep = 0; rep < reps; ++rep) {
      const double w = Ms(CLOCK_MONOTONIC), c = Ms(CLOCK_PROCESS_CPUTIME_ID);
      auto text = fs::OcrImageFile(bytes, options);
      best_wall = std::min(best_wall, Ms(CLOCK_MONOTONIC) - w);
      best_cpu = std::min(best_cpu, Ms(CLOCK_PROCESS_CPUTIME_ID) - c);
      if (!text.ok()) {
        ++failures;
        std::fprintf(stderr, "%s: %s\n", path, text.status().ToString().c_str());
        break;
      }
      text_size = text->size();
    }
    wall.push_back(best_wall);
    cpu_sum += best_cpu;
    chars += static_cast<double>(text_size);
  }
  std::vector<double> sorted = wall;
  std::sort(sorted.begin(), sorted.end());
  double wall_sum = 0;
  for (double w : wall) wall_sum += w;
  const double n = static_cast<double>(files.size());
  std::printf(
      "languages %-8s images %3zu  wall ms/image mean %7.0f median %7.0f max %7.0f  CPU ms/image %7.0f  "
      "text bytes/image %6.0f  failures %d  (first call incl. model load %.0f ms)\n",
      setup->languages.c_str(), files.size(), wall_sum / n, sorted[sorted.size() / 2], sorted.back(),
      cpu_sum / n, chars / n, failures, first_ms);
  return 0;
}
