// clip_bench: CLIP encoder speed on this machine, one precision per run (so peak RSS is that
// precision's). Prints one JSON object. A multilingual (XLM-R) folder is timed on its text tower
// alone (image figures 0), with the XLM-R ids of the same 5-word query. Built with
// -DFILESEARCH_BUILD_BENCH=ON (or -DFILESEARCH_BUILD_CLIP_BENCH=ON); src/model/clip/clip_bench.sh runs it
// beside its peers.
//   clip_bench --model DIR [--precision fp32|bf16|int8] [--threads 2] [--iters 20] [--ids 0,6,...,2]
// --ids: the query's token ids (comma-separated, special tokens included) instead of "a photo of a
// cat"'s; xlmr_bench.sh passes a Japanese query's XLM-R ids.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "model/clip/clip_model.h"

namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::time_point since) {
  return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}

// Process CPU time (user + system, all threads) in ms: on a shared machine this shows the work
// done, which wall time (waiting for a core) does not.
double CpuMs() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e3 +
         (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e3;
}

struct Timing {
  double wall_ms;  // median
  double cpu_ms;   // mean CPU time per run, all threads
};

template <typename Fn>
Timing Measure(int iters, Fn fn) {
  fn();  // warm-up: builds the primitives and buffers for this shape
  std::vector<double> times;
  const double cpu = CpuMs();
  for (int i = 0; i < iters; ++i) {
    const auto t = Clock::now();
    fn();
    times.push_back(Ms(t));
  }
  std::sort(times.begin(), times.end());
  return {times[times.size() / 2], (CpuMs() - cpu) / iters};
}

void Check(const fs::Status& s) {
  if (!s.ok()) {
    std::fprintf(stderr, "clip_bench: %s\n", s.ToString().c_str());
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_dir, precision_name = "fp32", packed_dir, ids_arg;
  int threads = 2, iters = 20;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--model") model_dir = argv[i + 1];
    else if (flag == "--precision") precision_name = argv[i + 1];
    else if (flag == "--threads") threads = std::atoi(argv[i + 1]);
    else if (flag == "--iters") iters = std::max(1, std::atoi(argv[i + 1]));
    else if (flag == "--packed-dir") packed_dir = argv[i + 1];
    else if (flag == "--ids") ids_arg = argv[i + 1];
  }
  if (model_dir.empty()) {
    std::fprintf(stderr, "usage: clip_bench --model DIR [--precision fp32|bf16|int8] [--threads 2] [--iters 20] [--packed-dir DIR]\n");
    return 2;
  }
  fs::clip::LoadOptions options;
  options.threads = threads;
  using P = fs::clip::LoadOptions::Precision;
  options.precision = precision_name == "bf16" ? P::kBf16 : precision_name == "int8" ? P::kInt8 : P::kFp32;
  options.packed_dir = packed_dir;

  const auto load_start = Clock::now();
  const double load_cpu_start = CpuMs();
  auto loaded = fs::clip::ClipModel::Load(model_dir, options);
  Check(loaded.status());
  const double load_ms = Ms(load_start);
  const double load_cpu_ms = CpuMs() - load_cpu_start;
  auto& model = *loaded.value();
  const size_t d = model.embed_dim();
  const size_t image_floats = 3 * static_cast<size_t>(model.image_size()) * model.image_size();
  const bool has_images = image_floats > 0;

  std::mt19937 rng(1);
  std::normal_distribution<float> dist;
  std::vector<float> pixels(32 * image_floats);
  for (auto& p : pixels) p = dist(rng);
  std::vector<float> out(32 * d);

  // Cold start: Load plus the first query (text) and the first image, primitives built on the way.
  auto t = Clock::now();
  const int v = model.vocab_size();
  // "a photo of a cat": CLIP's BPE ids, or XLM-R's (<s> a photo of a cat </s>); 7 ids either way.
  std::vector<std::vector<int32_t>> query = {
      model.multilingual() ? std::vector<int32_t>{0, 10, 16186, 111, 10, 7515, 2}
                           : std::vector<int32_t>{v - 2, 320, 1125, 539, 320, 2368, v - 1}};
  if (!ids_arg.empty()) {
    query[0].clear();
    for (size_t at = 0; at < ids_arg.size();) {
      const size_t comma = std::min(ids_arg.find(',', at), ids_arg.size());
      query[0].push_back(std::atoi(ids_arg.substr(at, comma - at).c_str()));
      at = comma + 1;
    }
  }
  Check(model.EncodeTexts(query, std::span(out).first(d)));
  const double first_text_ms = Ms(t);
  t = Clock::now();
  if (has_images)
    Check(model.EncodeImages(std::span(pixels).first(image_floats), 1, std::span(out).first(d)));
  const double first_image_ms = has_images ? Ms(t) : 0.0;

  auto images = [&](size_t n) {
    if (has_images)
      Check(model.EncodeImages(std::span(pixels).first(n * image_floats), n, std::span(out).first(n * d)));
  };
  double gflop = model.gemm_gflop();
  const Timing b1 = Measure(iters, [&] { images(1); });
  const double gflop_per_image = (model.gemm_gflop() - gflop) / (iters + 1);
  const double b8 = Measure(std::max(2, iters / 4), [&] { images(8); }).wall_ms / 8;
  const Timing b32 = Measure(std::max(2, iters / 8), [&] { images(32); });
  std::vector<std::vector<int32_t>> full(1, std::vector<int32_t>(77, 400));
  full[0][0] = model.multilingual() ? 0 : v - 2;
  full[0][76] = model.multilingual() ? 2 : v - 1;
  const Timing text7 = Measure(iters, [&] { Check(model.EncodeTexts(query, std::span(out).first(d))); });
  const Timing text77 = Measure(iters, [&] { Check(model.EncodeTexts(full, std::span(out).first(d))); });
  const std::vector<std::vector<int32_t>> queries(32, query[0]);  // throughput: 32 queries in one call
  const Timing text_b32 = Measure(std::max(2, iters / 4), [&] { Check(model.EncodeTexts(queries, out)); });

  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf(
      "{\"model\": \"%s\", \"precision\": \"%s\", \"threads\": %d, \"load_ms\": %.1f, \"load_cpu_ms\": %.1f, "
      "\"first_text_ms\": %.1f, \"first_image_ms\": %.1f, \"cold_start_ms\": %.1f, "
      "\"image_b1_ms\": %.2f, \"image_b1_cpu_ms\": %.2f, \"image_b8_ms_per_image\": %.2f, "
      "\"image_b32_ms_per_image\": %.2f, \"image_b32_cpu_ms_per_image\": %.2f, \"images_per_s_b32\": %.1f, "
      "\"query_ids\": %zu, \"text_7_ms\": %.2f, \"text_7_cpu_ms\": %.2f, \"text_77_ms\": %.2f, \"text_77_cpu_ms\": %.2f, "
      "\"text_b32_ms_per_text\": %.3f, \"texts_per_s_b32\": %.1f, "
      "\"gemm_gflop_per_image\": %.2f, \"gemm_gflops_b1\": %.1f, \"gemm_gflops_b32\": %.1f, "
      "\"peak_rss_mb\": %.0f, \"describe\": \"%s\"}\n",
      model.model_id().c_str(), precision_name.c_str(), threads, load_ms, load_cpu_ms, first_text_ms,
      first_image_ms, load_ms + first_text_ms + first_image_ms, b1.wall_ms, b1.cpu_ms, b8, b32.wall_ms / 32,
      b32.cpu_ms / 32, has_images ? 32000.0 / b32.wall_ms : 0.0, query[0].size(), text7.wall_ms, text7.cpu_ms, text77.wall_ms,
      text77.cpu_ms, text_b32.wall_ms / 32, 32000.0 / text_b32.wall_ms, gflop_per_image,
      has_images ? gflop_per_image / b1.wall_ms * 1000 : 0.0,
      has_images ? gflop_per_image / b32.wall_ms * 32000 : 0.0, usage.ru_maxrss / 1024.0,
      model.Describe().c_str());
  return 0;
}
