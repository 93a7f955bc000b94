// Internal header of model/clip. CLIP hyper-parameters: read from a Hugging Face config.json, an
// OpenCLIP open_clip_config.json, or (OpenAI checkpoints without either) inferred from tensor shapes
// the way OpenAI's build_model does. Defaults are those of openai/clip-vit-base-patch32.
// Plain values; thread-compatible.
#pragma once

#include <string>

#include "core/status.h"
#include "model/clip/safetensors.h"

namespace fs::clip {

enum class Activation { kQuickGelu, kGelu };  // x*sigmoid(1.702x) | x*Phi(x) (erf)

struct TowerParams {
  int width = 768;       // W: residual stream width
  int layers = 12;       // residual attention blocks
  int heads = 12;        // attention heads; head size W / heads
  int mlp_width = 3072;  // F: hidden width of the MLP
  float ln_eps = 1e-5f;  // layer-norm epsilon
  Activation act = Activation::kQuickGelu;
};

struct ClipParams {
  TowerParams vision;                                   // ViT-B/32 defaults above
  TowerParams text{512, 12, 8, 2048, 1e-5f, Activation::kQuickGelu};
  int image_size = 224;      // S: input is 3 x S x S
  int patch_size = 32;       // P: S / P patches per side
  int context_length = 77;   // text positions
  int vocab_size = 49408;
  int embed_dim = 512;       // E: joint embedding width
  std::string model_id;      // e.g. "openai/clip-vit-base-patch32"

  int grid() const { return image_size / patch_size; }
  int vision_tokens() const { return grid() * grid() + 1; }  // patches + class token
};

// Parses a Hugging Face CLIPModel config.json (text_config / vision_config, with HF defaults for
// absent fields). Errors name the file and the field.
Result<ClipParams> ParseHfConfig(const std::string& json_text, const std::string& path);
// Parses OpenCLIP's open_clip_config.json ({"model_cfg": {embed_dim, vision_cfg, text_cfg}}).
Result<ClipParams> ParseOpenClipConfig(const std::string& json_text, const std::string& path);
// Infers hyper-parameters of an OpenAI-layout checkpoint from its tensor shapes (head size 64).
Result<ClipParams> InferOpenAiParams(const SafetensorsFile& file);

}  // namespace fs::clip
