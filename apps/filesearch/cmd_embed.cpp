// `filesearch embed IMAGE... | --text TEXT`: embeddings as JSON shaped like the original
// embedding function's reply; plus the --model-dir flags shared by every CLIP-using command.
#include <chrono>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "apps/filesearch/commands.h"
#include "core/hash.h"
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
}

Result<std::unique_ptr<ClipEmbedder>> LoadModel(const ModelFlags& flags) {
  std::string dir = ResolveModelDir(flags.model_dir);
  if (dir.empty()) return std::unique_ptr<ClipEmbedder>();
  ClipEmbedderOptions o;
  o.precision = flags.precision;
  o.threads = flags.threads;
  o.query_cache_entries = flags.query_cache;
  o.packed_dir = flags.packed_dir;
  if (const char* v = std::getenv("MAX_IMAGE_SIZE"); v && *v) o.max_image_side = std::atoi(v);
  auto m = ClipEmbedder::Load(dir, o);
  if (!m.ok()) return m.status().WithContext("loading the CLIP model from '" + dir + "'");
  return std::move(m).value();
}

namespace {

std::string ErrorJson(const Status& s) {
  nlohmann::ordered_json j = {{"success", false},
                              {"error", {{"code", std::string(StatusCodeName(s.code()))}, {"message", s.message()}}}};
  return j.dump();
}

// Floats in their shortest exact form, seconds for inferenceTime: the same reply as POST /embed.
std::string ReplyJson(std::span<const float> v, const std::string& model, double seconds, const std::string& hash) {
  return EmbeddingReplyToJson({v, model, seconds, false, hash});
}

}  // namespace

void RegisterEmbed(CLI::App& app, GlobalFlags& /*flags*/, int* exit_code) {
  auto* cmd = app.add_subcommand("embed", "Print CLIP embeddings of images or texts as JSON (one reply per line)")
                  ->footer("Examples:\n"
                           "  filesearch embed --model-dir ~/models/clip-vit-base-patch32 photo.jpg\n"
                           "  filesearch embed --text \"a red car in the snow\"\n"
                           "  filesearch embed --batch *.jpg > embeddings.jsonl\n\n"
                           "Each line: {\"success\":true,\"data\":{\"embedding\":[...],\"dimension\":512,\"model\":...,\n"
                           "\"inferenceTime\":seconds,\"cached\":false,\"imageHash\":sha256}}; a failed input prints\n"
                           "{\"success\":false,\"error\":{...}} and the exit code is 1.");
  struct Args {
    std::vector<std::string> images;
    std::vector<std::string> texts;
    bool batch = false;
    ModelFlags model;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("IMAGE", a->images, "Image files");
  cmd->add_option("--text", a->texts, "Text to embed (repeatable)")->allow_extra_args(false);
  cmd->add_flag("--batch", a->batch, "Run images through the model in batches of 16 (faster for many files)");
  AddModelFlags(cmd, &a->model);
  cmd->callback([exit_code, a]() {
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
    for (const auto& t : a->texts) {
      auto start = Clock::now();
      auto v = clip.EmbedText(t);
      const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
      if (!v.ok()) {
        std::printf("%s\n", ErrorJson(v.status()).c_str());
        *exit_code = 1;
        continue;
      }
      std::printf("%s\n", ReplyJson(*v, clip.model_id(), seconds, "").c_str());
    }
    const size_t step = a->batch ? 16 : 1;
    for (size_t start_i = 0; start_i < a->images.size(); start_i += step) {
      std::span<const std::string> paths(a->images.data() + start_i, std::min(step, a->images.size() - start_i));
      std::vector<float> out(paths.size() * clip.dim());
      std::vector<Status> per_file;
      auto start = Clock::now();
      Status s = clip.EmbedFiles(paths, out, &per_file, nullptr);
      const double seconds =
          std::chrono::duration<double>(Clock::now() - start).count() / static_cast<double>(paths.size());
      for (size_t i = 0; i < paths.size(); ++i) {
        Status st = s.ok() ? per_file[i] : s;
        if (!st.ok()) {
          std::printf("%s\n", ErrorJson(st.message().find(paths[i]) == std::string::npos ? st.WithContext(paths[i]) : st).c_str());
          *exit_code = 1;
          continue;
        }
        auto hash = Sha256File(paths[i]);
        const std::span<const float> v(out.data() + i * clip.dim(), clip.dim());
        std::printf("%s\n", ReplyJson(v, clip.model_id(), seconds, hash.ok() ? *hash : "").c_str());
      }
      std::fflush(stdout);
    }
  });
}

}  // namespace fs::cli
