// ClipEmbedder: the real embedder. Composes image/ (decode with limits and shrink-on-load),
// model/clip preprocessing (Pillow-exact resize + crop + normalise), the CLIP towers and the BPE
// tokenizer into the ImageEmbedder (files -> vectors, for indexing) and QueryEmbedder (text or
// uploaded image -> vector, for search) interfaces.
// Thread-safety: all methods may be called from many threads; forward passes are serialised
// (each one already uses every core). Text queries that arrive while a forward pass runs wait and
// then share the next pass (group commit: no added latency when idle, one weight sweep for many
// queries under load), and recent query embeddings are kept in a small LRU cache.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "engine/embedder.h"

namespace fs {

struct ClipEmbedderOptions {
  int threads = 0;                  // forward-pass threads; 0 = all cores
  int decode_threads = 0;           // threads decoding one EmbedFiles batch; 0 = all cores
  std::string precision = "fp32";   // fp32 | bf16 | int8
  int max_image_side = 2048;        // MAX_IMAGE_SIZE: larger images are processed at this size
                                    // (for CLIP: only the crop's part of them, at full resolution)
  // JPEGs decoded at full size (no DCT shrink-on-load to 2x the model's input): the image tensor
  // then equals Pillow's (the reference's) exactly, at 2-4x the decode time of large JPEGs.
  // false: shrink-on-load, within the bound measured in docs/params.md (min_short_side).
  bool exact_decode = false;
  uint64_t max_image_pixels = 100'000'000;  // refuse images whose header declares more
  uint64_t max_image_bytes = 256ull << 20;  // refuse files larger than this
  int text_batch = 16;                      // most queued text queries one forward pass takes
  size_t query_cache_entries = 4096;        // recent text-query embeddings kept; 0 = no cache
  std::function<void()> before_text_pass;   // tests: called before each text forward pass
  // Folder of the packed-weight files that make later starts fast (clip::LoadOptions::packed_dir):
  // "" = MODEL_DIR/packed when the model folder is writable, else
  // $XDG_CACHE_HOME (~/.cache)/filesearch/packed/<hash of the model folder>; "off" = none.
  std::string packed_dir;
};

// The folder ClipEmbedderOptions::packed_dir names for `model_dir` ("" for "off").
std::string ResolvePackedDir(const std::string& model_dir, const std::string& packed_dir);

class ClipEmbedder final : public ImageEmbedder, public QueryEmbedder {
 public:
  // model_dir: model.safetensors + config.json + tokenizer (tokenizer.json or vocab.json + merges.txt).
  static Result<std::unique_ptr<ClipEmbedder>> Load(const std::string& model_dir, const ClipEmbedderOptions& options);
  ~ClipEmbedder() override;

  const std::string& model_id() const override;
  size_t dim() const override;
  Status EmbedFiles(std::span<const std::string> paths, std::span<float> out, std::vector<Status>* per_file,
                    std::vector<uint64_t>* phash) override;
  Result<std::vector<float>> EmbedText(std::string_view text) override;
  Result<std::vector<float>> EmbedImageBytes(std::string_view bytes) override;
  QueryEmbedderStats stats() const override;
  // Loads the model again (the packed-weight file makes that a mapping of the same pages).
  Result<std::unique_ptr<ImageEmbedder>> Clone(int threads) const override;

 private:
  struct Impl;
  explicit ClipEmbedder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Where a CLI command finds its model: --model-dir, else $FILESEARCH_MODEL_DIR, else "".
std::string ResolveModelDir(const std::string& flag_value);

}  // namespace fs
