// Decode + CLIP preprocess speed on large JPEGs, with and without shrink-on-load, and Pillow doing
// the same work in the same run (tests/pillow_decode_bench.py). Not a test: prints a table.
//   build/tests/image_decode_bench FILE.jpg...
// Each configuration runs 5 times per file; the fastest run is reported (the least disturbed by
// other jobs on a shared machine), in CPU ms per image, averaged over the files.
#include <algorithm>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "image/image.h"
#include "model/clip/preprocess.h"

namespace {

// CPU time of this process: the machine these figures come from is shared, so wall time mostly
// measures the neighbours. Decoding here is single-threaded (libvips concurrency is set to 1).
double NowMs() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) * 1e-6;
}

struct Config {
  const char* name;
  int max_side;
  int min_short_side;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE.jpg...\n", argv[0]);
    return 2;
  }
  const Config configs[] = {{"full decode (no cap)", 0, 0},
                            {"max_side 2048", 2048, 0},
                            {"max_side 2048 + shrink to >=448", 2048, 448}};
  std::vector<float> tensor(3 * 224 * 224);
  std::printf("%-34s %12s %14s %10s\n", "configuration (CPU ms/image)", "decode", "preprocess", "total");
  for (const Config& config : configs) {
    fs::image::DecodeOptions options;
    options.max_side = config.max_side;
    options.min_short_side = config.min_short_side;
    double decode_sum = 0, prep_sum = 0;
    for (int f = 1; f < argc; ++f) {
      std::vector<double> decode_ms, prep_ms;
      for (int rep = 0; rep < 5; ++rep) {
        const double t0 = NowMs();
        auto img = fs::image::DecodeFile(argv[f], options);
        const double t1 = NowMs();
        if (!img.ok()) {
          std::fprintf(stderr, "%s\n", img.status().ToString().c_str());
          return 1;
        }
        if (!fs::clip::Preprocess(img->pixels.data(), img->width, img->height,
                                  static_cast<size_t>(img->width) * 3, {}, tensor).ok()) {
          return 1;
        }
        const double t2 = NowMs();
        decode_ms.push_back(t1 - t0);
        prep_ms.push_back(t2 - t1);
      }
      std::sort(decode_ms.begin(), decode_ms.end());
      std::sort(prep_ms.begin(), prep_ms.end());
      decode_sum += decode_ms[0];
      prep_sum += prep_ms[0];
    }
    const double n = argc - 1;
    std::printf("%-34s %12.1f %14.1f %10.1f\n", config.name, decode_sum / n, prep_sum / n,
                (decode_sum + prep_sum) / n);
  }
  std::fflush(stdout);
  const char* src = std::getenv("FILESEARCH_SOURCE_DIR");
  std::string cmd = "/usr/bin/python3 " + std::string(src ? src : ".") + "/tests/pillow_decode_bench.py";
  for (int f = 1; f < argc; ++f) cmd += std::string(" '") + argv[f] + "'";
  return std::system(cmd.c_str()) == 0 ? 0 : 1;
}
