// Internal header of model/clip. CLIP hyper-parameters: read from a Hugging Face config.json, an
// OpenCLIP open_clip_config.json, or (OpenAI checkpoints without either) inferred from tensor shapes
// the way OpenAI's build_model does. Defaults are those of openai/clip-vit-base-patch32.
// ReadModelConfig also tells the model family from the folder: CLIP's own text tower, or a
// multilingual XLM-RoBERTa text tower (OpenCLIP xlm-roberta-*, its Hugging Face layout, M-CLIP).
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

// The text tower a model folder carries.
enum class TextFamily {
  kClip,        // CLIP's causal transformer, features at the end-of-text token (OpenAI, HF, OpenCLIP)
  kXlmRoberta,  // XLM-RoBERTa encoder, mean pooling over non-padding tokens, projection
};
// Where an XLM-R tower's tensors are and what wraps it.
enum class XlmrLayout {
  kOpenClip,  // open_clip_config.json text_cfg.hf_model_name xlm-roberta-*: text.transformer.<HF names>,
              // text.proj.{0,2}.weight (mlp) or text.proj.weight (linear); the image tower as visual.*
  kHf,        // config.json model_type "xlm-roberta": XLMRobertaModel names at the top level, then
              // proj.{0,2}.weight / proj.weight (projection_dim, projection_type in config.json); text only
  kMClip,     // config.json model_type "M-CLIP": transformer.<HF names>, LinearTransformation.{weight,bias}
};
enum class TextProjection { kNone, kLinear, kMlp };  // identity | Linear | Linear, GELU, Linear

// XLM-RoBERTa encoder + pooling + projection. Defaults: xlm-roberta-base inside OpenCLIP's
// xlm-roberta-base-ViT-B-32 (hidden 768, 12 layers, 12 heads, GELU, 768 -> 640 -> 512 MLP).
struct XlmrParams {
  TowerParams encoder{768, 12, 12, 3072, 1e-5f, Activation::kGelu};  // post-LN BERT blocks
  int vocab_size = 250002;
  int max_positions = 514;  // position table rows; positions start at pad_id + 1
  int pad_id = 1;           // <pad>: masked out, never pooled
  int type_vocab_size = 1;  // token type 0 is added to every token
  XlmrLayout layout = XlmrLayout::kOpenClip;
  TextProjection proj = TextProjection::kMlp;
  int proj_hidden = 640;   // mlp: (hidden + embed_dim) / 2
  bool proj_bias = false;  // M-CLIP's LinearTransformation has a bias; OpenCLIP's projections don't
  std::string base_model;  // "xlm-roberta-base", "xlm-roberta-large", or "" when given in full
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
  TextFamily text_family = TextFamily::kClip;
  XlmrParams xlmr;         // text_family == kXlmRoberta: the text tower (text and vocab_size unused)
  bool has_vision = true;  // false: a text tower alone (XLM-R in the HF or M-CLIP layout)

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

// The hyper-parameters of the model folder `dir`, whose weights are `file`, from whichever config it
// has: open_clip_config.json (CLIP, or XLM-R when text_cfg.hf_model_name names xlm-roberta-*, the
// encoder's sizes then from an XLM-R config.json beside it or the published base/large sizes),
// config.json (HF CLIPModel, XLMRobertaConfig with projection_dim, or M-CLIP), else OpenAI shapes.
// *config_text: the text of the config files read (the packed-weight cache's key).
Result<ClipParams> ReadModelConfig(const std::string& dir, const SafetensorsFile& file,
                                   std::string* config_text);
// "clip", "xlm-roberta (OpenCLIP)", "xlm-roberta (Hugging Face)", "xlm-roberta (M-CLIP)".
std::string FamilyName(const ClipParams& p);

}  // namespace fs::clip
