// `filesearch embed IMAGE... | --text TEXT`: embeddings as JSON shaped like the original
// embedding function's reply; plus the --model-dir flags shared by every CLIP-using command.
#include <chrono>
#include <cstdio>
#include <optional>

#include <nlohmann/json.hpp>

#include "apps/filesearch/commands.h"
#include "cache/embedding_cache.h"
#include "core/hash.h"
#include "core/json_dump.h"
#include "engine/search_json.h"

namespace fs::cli {

void AddModelFlags(CLI::App* cmd, ModelFlags* flags) {
  cmd->add_option("--model-dir", flags->model_dir,
                  "CLIP model folder: model.safetensors + config.json + tokenizer.json (or vocab.json + merges.txt); "
                  "default $FILESEARCH_MODEL_DIR")
      ->type_name("DIR");
  cmd->add_option("--precision", flags->precision, "fp32 (exact), bf16 (AVX512-BF16) or int8 (VNNI)")
      ->check(CLI::IsMember({"fp32", "bf16", "int8"}))
      ->capture_default_str();
  cmd->add_option("--model-threads", flags->threads, "Threads per CLIP forward pass (0 = all cores)")->capture_default_str();
  cmd->add_option("--packed-dir", flags->packed_dir,
                  "Where the model's weights are kept converted for --precision, so later starts map them "
                  "in milliseconds instead of converting (written on first use; about the model's size per "
                  "precision). Default: MODEL_DIR/packed, or ~/.cache/filesearch/packed/... when the model "
                  "folder is read-only; 'off' to keep none")
      ->type_name("DIR|off");
  cmd->add_flag("--exact-decode", flags->exact_decode,
                "Decode JPEGs at full size for CLIP (no DCT shrink-on-load): the image tensor then equals "
                "Pillow's, at 2-4x the decode time of large JPEGs (docs/params.md)");
}

Result<std::unique_ptr<ClipEmbedder>> LoadModel(const ModelFlags& flags) {
  std::string dir = ResolveModelDir(flags.model_dir);
  if (dir.empty()) return std::unique_ptr<ClipEmbedder>();
  ClipEmbedderOptions o;
  o.precision = flags.precision;
  o.threads = flags.threads;
  o.query_cache_entries = flags.query_cache;
  o.packed_dir = flags.packed_dir;
  o.exact_decode = flags.exact_decode;
  if (const char* v = std::getenv("MAX_IMAGE_SIZE"); v && *v) o.max_image_side = std::atoi(v);
  auto m = ClipEmbedder::Load(dir, o);
  if (!m.ok()) return m.status().WithContext("loading the CLIP model from '" + dir + "'");
  return std::move(m).value();
}

namespace {

std::string ErrorJson(const Status& s) {
  nlohmann::ordered_json j = {{"success", false},
                              {"error", {{"code", std::string(StatusCodeName(s.code()))}, {"message", s.message()}}}};
  return DumpJson(j);
}

// Floats in their shortest exact form, seconds for inferenceTime: the same reply as POST /embed.
std::string ReplyJson(std::span<const float> v, const std::string& model, double seconds, const std::string& hash,
                      bool cached) {
  return EmbeddingReplyToJson({v, model, seconds, cached, hash});
}

// The shared cache of --cache, or the embedding cache of the data directory when it holds an
// index: embed reads and fills it as `index` and `backfill` do, but never creates a data
// directory of its own. Null: no cache.
std::unique_ptr<EmbeddingCache> OpenCacheIfIndexed(const GlobalFlags& flags) {
  const EmbeddingCacheSpec spec = CacheSpecFromFlags(flags);
  if (spec.spec == "embedded" && !ExistingIndexDb(flags).ok()) return nullptr;
  auto cache = OpenEmbeddingCache(spec);
  if (!cache.ok()) {
    std::fprintf(stderr, "filesearch embed: not using the embedding cache: %s\n", cache.status().ToString().c_str());
    return nullptr;
  }
  return std::move(cache).value();
}

// One image of a batch: its content hash and, on a cache hit, its vector.
struct ImageSlot {
  std::string hash;  // "" when the file could not be read
  std::optional<std::vector<float>> cached;
};

}  // namespace

void RegisterEmbed(CLI::App& app, GlobalFlags& flags, int* exit_code) {
  auto* cmd = app.add_subcommand("embed", "Print CLIP embeddings of images or texts as JSON (one reply per line)")
                  ->footer("Examples:\n"
                           "  filesearch embed --model-dir ~/models/clip-vit-base-patch32 photo.jpg\n"
                           "  filesearch embed --text \"a red car in the snow\"\n"
                           "  filesearch embed --batch *.jpg > embeddings.jsonl\n\n"
                           "Each line: {\"success\":true,\"data\":{\"embedding\":[...],\"dimension\":512,\"model\":...,\n"
                           "\"inferenceTime\":seconds,\"cached\":false,\"imageHash\":sha256}}; a failed input prints\n"
                           "{\"success\":false,\"error\":{...}} and the exit code is 1.\n"
                           "Images whose bytes were embedded before by this model come from the embedding cache of\n"
                           "the data directory (\"cached\":true) when it holds an index; new ones are added to it.");
  struct Args {
    std::vector<std::string> images;
    std::vector<std::string> texts;
    bool batch = false;
    bool no_cache = false;
    ModelFlags model;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("IMAGE", a->images, "Image files");
  cmd->add_option("--text", a->texts, "Text to embed (repeatable)")->allow_extra_args(false);
  cmd->add_flag("--batch", a->batch, "Run images through the model in batches of 16 (faster for many files)");
  cmd->add_flag("--no-cache", a->no_cache, "Run the model for every image, ignoring the embedding cache");
  AddModelFlags(cmd, &a->model);
  cmd->callback([&flags, exit_code, a]() {
    if (a->images.empty() && a->texts.empty()) {
      std::fprintf(stderr, "filesearch embed: give image files or --text \"...\"\n");
      *exit_code = 2;
      return;
    }
    auto model = LoadModel(a->model);
    if (!model.ok() || !*model) {
      std::fprintf(stderr, "filesearch embed: %s\n",
                   model.ok() ? "no CLIP model: pass --model-dir DIR or set FILESEARCH_MODEL_DIR"
                              : model.status().ToString().c_str());
      *exit_code = 1;
      return;
    }
    ClipEmbedder& clip = **model;
    using Clock = std::chrono::steady_clock;
    auto seconds_since = [](Clock::time_point start) {
      return std::chrono::duration<double>(Clock::now() - start).count();
    };
    for (const auto& t : a->texts) {
      auto start = Clock::now();
      auto v = clip.EmbedText(t);
      const double seconds = seconds_since(start);
      if (!v.ok()) {
        std::printf("%s\n", ErrorJson(v.status()).c_str());
        *exit_code = 1;
        continue;
      }
      std::printf("%s\n", ReplyJson(*v, clip.model_id(), seconds, "", false).c_str());
    }
    std::unique_ptr<EmbeddingCache> cache = a->no_cache || a->images.empty() ? nullptr : OpenCacheIfIndexed(flags);
    const size_t step = a->batch ? 16 : 1;
    for (size_t start_i = 0; start_i < a->images.size(); start_i += step) {
      std::span<const std::string> paths(a->images.data() + start_i, std::min(step, a->images.size() - start_i));
      // Cache lookups first; only the misses go through the model.
      auto start = Clock::now();
      std::vector<ImageSlot> slots(paths.size());
      std::vector<std::string> misses;
      for (size_t i = 0; i < paths.size(); ++i) {
        auto hash = Sha256File(paths[i]);
        if (hash.ok()) slots[i].hash = *hash;
        if (cache && hash.ok()) {
          auto hit = cache->Get(*hash, clip.model_id());
          if (hit.ok() && *hit && (*hit)->size() == clip.dim()) slots[i].cached = std::move(**hit);
        }
        if (!slots[i].cached) misses.push_back(paths[i]);
      }
      const double lookup_seconds = seconds_since(start);
      std::vector<float> out(misses.size() * clip.dim());
      std::vector<Status> per_file;
      start = Clock::now();
      Status s = misses.empty() ? Status::Ok() : clip.EmbedFiles(misses, out, &per_file, nullptr);
      const double seconds = misses.empty() ? 0.0 : seconds_since(start) / static_cast<double>(misses.size());
      for (size_t i = 0, miss = 0; i < paths.size(); ++i) {
        const ImageSlot& slot = slots[i];
        if (slot.cached) {
          std::printf("%s\n", ReplyJson(*slot.cached, clip.model_id(), lookup_seconds / static_cast<double>(paths.size()),
                                        slot.hash, true).c_str());
          continue;
        }
        const size_t row = miss++;
        Status st = s.ok() ? per_file[row] : s;
        if (!st.ok()) {
          std::printf("%s\n", ErrorJson(st.message().find(paths[i]) == std::string::npos ? st.WithContext(paths[i]) : st).c_str());
          *exit_code = 1;
          continue;
        }
        const std::span<const float> v(out.data() + row * clip.dim(), clip.dim());
        if (cache && !slot.hash.empty()) {
          Status put = cache->Put(slot.hash, clip.model_id(), std::vector<float>(v.begin(), v.end()));
          if (!put.ok()) std::fprintf(stderr, "filesearch embed: not cached: %s\n", put.ToString().c_str());
        }
        std::printf("%s\n", ReplyJson(v, clip.model_id(), seconds, slot.hash, false).c_str());
      }
      std::fflush(stdout);
    }
  });
}

}  // namespace fs::cli
