#include "model/clip/clip_config.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "core/env.h"
#include "core/json_dump.h"

namespace fs::clip {
namespace {

using nlohmann::json;

Status BadField(const std::string& path, const std::string& field, const std::string& why) {
  return Status::InvalidArgument("CLIP config '" + path + "': field '" + field + "' " + why);
}

// Reads an optional positive integer field; keeps `*out` (the default) when absent.
Status ReadInt(const json& obj, const char* key, const std::string& path, int* out) {
  if (!obj.contains(key) || obj[key].is_null()) return Status::Ok();
  if (!obj[key].is_number_integer() || obj[key].get<int64_t>() <= 0 ||
      obj[key].get<int64_t>() > (1 << 24)) {
    return BadField(path, key, "must be a positive integer, got " + DumpJson(obj[key]));
  }
  *out = obj[key].get<int>();
  return Status::Ok();
}

// Like ReadInt, but 0 is allowed (token ids).
Status ReadId(const json& obj, const char* key, const std::string& path, int* out) {
  if (!obj.contains(key) || obj[key].is_null()) return Status::Ok();
  if (!obj[key].is_number_integer() || obj[key].get<int64_t>() < 0 || obj[key].get<int64_t>() > (1 << 24)) {
    return BadField(path, key, "must be a token id (an integer >= 0), got " + DumpJson(obj[key]));
  }
  *out = obj[key].get<int>();
  return Status::Ok();
}

Status ReadTower(const json& obj, const std::string& path, TowerParams* t) {
  if (!obj.is_object()) return Status::Ok();
  FS_RETURN_IF_ERROR(ReadInt(obj, "hidden_size", path, &t->width));
  FS_RETURN_IF_ERROR(ReadInt(obj, "num_hidden_layers", path, &t->layers));
  FS_RETURN_IF_ERROR(ReadInt(obj, "num_attention_heads", path, &t->heads));
  FS_RETURN_IF_ERROR(ReadInt(obj, "intermediate_size", path, &t->mlp_width));
  if (obj.contains("layer_norm_eps")) {
    if (!obj["layer_norm_eps"].is_number()) return BadField(path, "layer_norm_eps", "must be a number");
    t->ln_eps = obj["layer_norm_eps"].get<float>();
  }
  if (obj.contains("hidden_act")) {
    const std::string act = obj["hidden_act"].is_string() ? obj["hidden_act"].get<std::string>() : "";
    if (act == "quick_gelu") {
      t->act = Activation::kQuickGelu;
    } else if (act == "gelu") {
      t->act = Activation::kGelu;
    } else {
      return BadField(path, "hidden_act", "is " + DumpJson(obj["hidden_act"]) +
                                              "; supported: \"quick_gelu\", \"gelu\"");
    }
  }
  return Status::Ok();
}

Status Validate(const ClipParams& p, const std::string& path) {
  for (const auto* t : {&p.vision, &p.text}) {
    if (t->layers < 1 || t->heads < 1) {
      return Status::InvalidArgument("CLIP config '" + path + "': a tower needs at least one layer and one head");
    }
    if (t->width % t->heads != 0) {
      return Status::InvalidArgument("CLIP config '" + path + "': width " + std::to_string(t->width) +
                                     " is not a multiple of " + std::to_string(t->heads) + " heads");
    }
  }
  if (p.image_size % p.patch_size != 0) {
    return Status::InvalidArgument("CLIP config '" + path + "': image_size " +
                                   std::to_string(p.image_size) + " is not a multiple of patch_size " +
                                   std::to_string(p.patch_size));
  }
  return Status::Ok();
}

json ParseObject(const std::string& text) { return json::parse(text, nullptr, false); }

// The published encoder sizes, for configs that name the encoder instead of describing it
// (OpenCLIP's text_cfg.hf_model_name, M-CLIP's modelBase). Both share the 250,002-piece tokenizer.
bool KnownXlmrEncoder(const std::string& name, XlmrParams* x) {
  const auto slash = name.find_last_of('/');
  const std::string base = slash == std::string::npos ? name : name.substr(slash + 1);
  if (base == "xlm-roberta-base") {
    x->encoder = TowerParams{768, 12, 12, 3072, 1e-5f, Activation::kGelu};
  } else if (base == "xlm-roberta-large") {
    x->encoder = TowerParams{1024, 24, 16, 4096, 1e-5f, Activation::kGelu};
  } else {
    return false;
  }
  x->vocab_size = 250002;
  x->max_positions = 514;
  x->pad_id = 1;
  x->type_vocab_size = 1;
  x->base_model = base;
  return true;
}

// Reads the fields of a Hugging Face XLMRobertaConfig that are present in `obj` into *x.
Status ReadXlmrEncoder(const json& obj, const std::string& path, XlmrParams* x) {
  FS_RETURN_IF_ERROR(ReadTower(obj, path, &x->encoder));
  if (x->encoder.act != Activation::kGelu) {
    return BadField(path, "hidden_act", "must be \"gelu\" for an XLM-RoBERTa encoder");
  }
  FS_RETURN_IF_ERROR(ReadInt(obj, "vocab_size", path, &x->vocab_size));
  FS_RETURN_IF_ERROR(ReadInt(obj, "max_position_embeddings", path, &x->max_positions));
  FS_RETURN_IF_ERROR(ReadId(obj, "pad_token_id", path, &x->pad_id));
  FS_RETURN_IF_ERROR(ReadInt(obj, "type_vocab_size", path, &x->type_vocab_size));
  if (obj.contains("position_embedding_type") && obj["position_embedding_type"] != "absolute") {
    return BadField(path, "position_embedding_type",
                    "is " + DumpJson(obj["position_embedding_type"]) + "; supported: \"absolute\"");
  }
  if (x->max_positions <= x->pad_id + 1) {
    return BadField(path, "max_position_embeddings", "leaves no position after the padding index");
  }
  if (x->pad_id >= x->vocab_size) return BadField(path, "pad_token_id", "is outside the vocabulary");
  return Status::Ok();
}

bool IsXlmrConfig(const json& obj) {
  return obj.is_object() && obj.contains("model_type") && obj["model_type"] == "xlm-roberta";
}

// The projection after mean pooling: OpenCLIP's hf_proj_type names ("mlp", "linear", "none").
Status ReadProjectionType(const json& obj, const char* key, const std::string& path, TextProjection* out) {
  if (!obj.contains(key) || obj[key].is_null()) return Status::Ok();
  const std::string type = obj[key].is_string() ? obj[key].get<std::string>() : "";
  if (type == "mlp") {
    *out = TextProjection::kMlp;
  } else if (type == "linear") {
    *out = TextProjection::kLinear;
  } else if (type == "none") {
    *out = TextProjection::kNone;
  } else {
    return BadField(path, key, "is " + DumpJson(obj[key]) + "; supported: \"mlp\", \"linear\", \"none\"");
  }
  return Status::Ok();
}

Status ValidateXlmr(const ClipParams& p, const std::string& path) {
  const XlmrParams& x = p.xlmr;
  if (x.encoder.width % x.encoder.heads != 0) {
    return Status::InvalidArgument("XLM-R config '" + path + "': hidden_size " +
                                   std::to_string(x.encoder.width) + " is not a multiple of " +
                                   std::to_string(x.encoder.heads) + " heads");
  }
  if (x.proj == TextProjection::kNone && x.encoder.width != p.embed_dim) {
    return Status::InvalidArgument("XLM-R config '" + path + "': no projection, but hidden_size " +
                                   std::to_string(x.encoder.width) + " != embedding width " +
                                   std::to_string(p.embed_dim));
  }
  return Status::Ok();
}

// Texts longer than this many tokens do not fit the position table.
int XlmrMaxTokens(const XlmrParams& x) {
  return x.max_positions - x.pad_id - 1;
}

Result<std::string> ReadConfigFile(const std::string& path) {
  return Env::Default()->ReadFile(path, 16u << 20);
}

}  // namespace

Result<ClipParams> ParseHfConfig(const std::string& json_text, const std::string& path) {
  json root = ParseObject(json_text);
  if (!root.is_object()) {
    return Status::InvalidArgument("CLIP config '" + path + "' is not a JSON object");
  }
  ClipParams p;
  if (root.contains("_name_or_path") && root["_name_or_path"].is_string()) {
    p.model_id = root["_name_or_path"].get<std::string>();
  }
  FS_RETURN_IF_ERROR(ReadInt(root, "projection_dim", path, &p.embed_dim));
  // Older transformers versions wrote *_config_dict beside (or instead of) *_config.
  for (const char* key : {"text_config_dict", "text_config"}) {
    if (root.contains(key)) {
      FS_RETURN_IF_ERROR(ReadTower(root[key], path, &p.text));
      FS_RETURN_IF_ERROR(ReadInt(root[key], "max_position_embeddings", path, &p.context_length));
      FS_RETURN_IF_ERROR(ReadInt(root[key], "vocab_size", path, &p.vocab_size));
    }
  }
  for (const char* key : {"vision_config_dict", "vision_config"}) {
    if (root.contains(key)) {
      FS_RETURN_IF_ERROR(ReadTower(root[key], path, &p.vision));
      FS_RETURN_IF_ERROR(ReadInt(root[key], "image_size", path, &p.image_size));
      FS_RETURN_IF_ERROR(ReadInt(root[key], "patch_size", path, &p.patch_size));
    }
  }
  FS_RETURN_IF_ERROR(Validate(p, path));
  return p;
}

Result<ClipParams> ParseOpenClipConfig(const std::string& json_text, const std::string& path) {
  json root = ParseObject(json_text);
  if (!root.is_object() || !root.contains("model_cfg") || !root["model_cfg"].is_object()) {
    return Status::InvalidArgument("OpenCLIP config '" + path + "' lacks a \"model_cfg\" object");
  }
  const json& cfg = root["model_cfg"];
  ClipParams p;
  FS_RETURN_IF_ERROR(ReadInt(cfg, "embed_dim", path, &p.embed_dim));
  if (cfg.contains("vision_cfg") && cfg["vision_cfg"].is_object()) {
    const json& v = cfg["vision_cfg"];
    FS_RETURN_IF_ERROR(ReadInt(v, "width", path, &p.vision.width));
    FS_RETURN_IF_ERROR(ReadInt(v, "layers", path, &p.vision.layers));
    FS_RETURN_IF_ERROR(ReadInt(v, "image_size", path, &p.image_size));
    FS_RETURN_IF_ERROR(ReadInt(v, "patch_size", path, &p.patch_size));
    int head_width = 64;
    FS_RETURN_IF_ERROR(ReadInt(v, "head_width", path, &head_width));
    p.vision.heads = p.vision.width / head_width;
    p.vision.mlp_width = 4 * p.vision.width;
    if (v.contains("mlp_ratio") && v["mlp_ratio"].is_number()) {
      p.vision.mlp_width = static_cast<int>(v["mlp_ratio"].get<double>() * p.vision.width);
    }
  }
  if (cfg.contains("text_cfg") && cfg["text_cfg"].is_object()) {
    const json& t = cfg["text_cfg"];
    FS_RETURN_IF_ERROR(ReadInt(t, "width", path, &p.text.width));
    FS_RETURN_IF_ERROR(ReadInt(t, "layers", path, &p.text.layers));
    FS_RETURN_IF_ERROR(ReadInt(t, "heads", path, &p.text.heads));
    FS_RETURN_IF_ERROR(ReadInt(t, "context_length", path, &p.context_length));
    FS_RETURN_IF_ERROR(ReadInt(t, "vocab_size", path, &p.vocab_size));
    p.text.mlp_width = 4 * p.text.width;
  }
  // OpenCLIP's default is nn.GELU; only "quick_gelu": true (the -quickgelu configs, OpenAI weights)
  // selects QuickGELU.
  const bool quick =
      cfg.contains("quick_gelu") && cfg["quick_gelu"].is_boolean() && cfg["quick_gelu"].get<bool>();
  p.vision.act = p.text.act = quick ? Activation::kQuickGelu : Activation::kGelu;
  FS_RETURN_IF_ERROR(Validate(p, path));
  return p;
}

Result<ClipParams> InferOpenAiParams(const SafetensorsFile& file) {
  auto shape = [&](const std::string& name, size_t rank) -> const std::vector<int64_t>* {
    const TensorView* v = file.Find(name);
    return v != nullptr && v->shape.size() == rank ? &v->shape : nullptr;
  };
  // Blocks: one past the highest index any tensor under `prefix` names, so that a block missing in
  // the middle (or at the start) fails the load naming its tensors instead of cutting the tower short.
  auto count_layers = [&](const std::string& prefix) {
    int n = 0;
    for (const std::string& name : file.names()) {
      if (name.compare(0, prefix.size(), prefix) != 0) continue;
      const size_t dot = name.find('.', prefix.size());
      const std::string index = name.substr(prefix.size(), dot == std::string::npos ? dot : dot - prefix.size());
      if (index.empty() || index.size() > 6 || index.find_first_not_of("0123456789") != std::string::npos) continue;
      n = std::max(n, std::stoi(index) + 1);
    }
    return n;
  };
  const auto* conv = shape("visual.conv1.weight", 4);
  const auto* vpos = shape("visual.positional_embedding", 2);
  const auto* tok = shape("token_embedding.weight", 2);
  const auto* tpos = shape("positional_embedding", 2);
  const auto* tproj = shape("text_projection", 2);
  const auto* vfc = shape("visual.transformer.resblocks.0.mlp.c_fc.weight", 2);
  const auto* tfc = shape("transformer.resblocks.0.mlp.c_fc.weight", 2);
  if (!conv || !vpos || !tok || !tpos || !tproj || !vfc || !tfc) {
    return Status::InvalidArgument(
        "cannot infer CLIP hyper-parameters from '" + file.path() +
        "': it lacks OpenAI-layout tensors (visual.conv1.weight, positional_embedding, ...); add a "
        "config.json");
  }
  ClipParams p;
  p.vision.width = static_cast<int>((*conv)[0]);
  p.patch_size = static_cast<int>((*conv)[2]);
  int grid = 1;
  while ((grid + 1) * (grid + 1) + 1 <= (*vpos)[0]) ++grid;
  p.image_size = grid * p.patch_size;
  p.vision.layers = count_layers("visual.transformer.resblocks.");
  p.vision.heads = std::max(1, p.vision.width / 64);
  p.vision.mlp_width = static_cast<int>((*vfc)[0]);
  p.text.width = static_cast<int>((*tok)[1]);
  p.vocab_size = static_cast<int>((*tok)[0]);
  p.context_length = static_cast<int>((*tpos)[0]);
  p.text.layers = count_layers("transformer.resblocks.");
  p.text.heads = std::max(1, p.text.width / 64);
  p.text.mlp_width = static_cast<int>((*tfc)[0]);
  p.embed_dim = static_cast<int>((*tproj)[1]);
  FS_RETURN_IF_ERROR(Validate(p, file.path()));
  return p;
}

namespace {

// open_clip_config.json whose text tower is XLM-R: the image tower as for any OpenCLIP model, the
// encoder's sizes from an XLM-R config.json beside it, else from the encoder's published name.
Result<ClipParams> ParseOpenClipXlmr(const json& root, const std::string& text, const std::string& path,
                                     const std::string& dir, std::string* config_text) {
  FS_ASSIGN_OR_RETURN(ClipParams p, ParseOpenClipConfig(text, path));
  const json& t = root["model_cfg"]["text_cfg"];
  const std::string name = t["hf_model_name"].get<std::string>();
  p.text_family = TextFamily::kXlmRoberta;
  p.xlmr.layout = XlmrLayout::kOpenClip;
  const std::string encoder_config = dir + "/config.json";
  json encoder;
  if (Env::Default()->FileExists(encoder_config)) {
    FS_ASSIGN_OR_RETURN(std::string encoder_text, ReadConfigFile(encoder_config));
    encoder = ParseObject(encoder_text);
    if (!IsXlmrConfig(encoder)) {
      return Status::InvalidArgument("'" + encoder_config +
                                     "' beside an OpenCLIP xlm-roberta config must be the "
                                     "encoder's XLM-RoBERTa config (model_type \"xlm-roberta\")");
    }
    *config_text += encoder_text;
  }
  if (!KnownXlmrEncoder(name, &p.xlmr) && encoder.is_null()) {
    return Status::InvalidArgument("OpenCLIP config '" + path + "': text encoder '" + name +
                                   "' is not xlm-roberta-base or xlm-roberta-large; put its config.json "
                                   "(model_type \"xlm-roberta\") in the model folder");
  }
  if (!encoder.is_null()) FS_RETURN_IF_ERROR(ReadXlmrEncoder(encoder, encoder_config, &p.xlmr));
  FS_RETURN_IF_ERROR(ReadProjectionType(t, "hf_proj_type", path, &p.xlmr.proj));
  if (t.contains("hf_pooler_type") && t["hf_pooler_type"] != "mean_pooler") {
    return BadField(path, "text_cfg.hf_pooler_type",
                    "is " + DumpJson(t["hf_pooler_type"]) + "; supported: \"mean_pooler\"");
  }
  // nn.Identity when the widths agree and no projection is asked for.
  if (t.contains("hf_proj_type") && t["hf_proj_type"].is_null() && p.xlmr.encoder.width == p.embed_dim) {
    p.xlmr.proj = TextProjection::kNone;
  }
  p.xlmr.proj_hidden = (p.xlmr.encoder.width + p.embed_dim) / 2;
  // The tokenizer's length (text_cfg.context_length, 77 by default), within the position table.
  p.context_length = 77;
  FS_RETURN_IF_ERROR(ReadInt(t, "context_length", path, &p.context_length));
  p.context_length = std::min(p.context_length, XlmrMaxTokens(p.xlmr));
  FS_RETURN_IF_ERROR(ValidateXlmr(p, path));
  return p;
}

// config.json of an XLM-R text tower alone: XLMRobertaConfig plus projection_dim (E) and
// projection_type (OpenCLIP's names, "mlp" by default); or M-CLIP's MCLIPConfig (modelBase,
// transformerDimensions, numDims, and the encoder's fields when it extends XLMRobertaConfig).
Result<ClipParams> ParseTextOnlyXlmr(const json& root, const std::string& path) {
  ClipParams p;
  p.text_family = TextFamily::kXlmRoberta;
  p.has_vision = false;
  XlmrParams& x = p.xlmr;
  if (root.contains("_name_or_path") && root["_name_or_path"].is_string()) {
    p.model_id = root["_name_or_path"].get<std::string>();
  }
  if (IsXlmrConfig(root)) {
    x.layout = XlmrLayout::kHf;
    x.base_model.clear();
    FS_RETURN_IF_ERROR(ReadXlmrEncoder(root, path, &x));
    if (!root.contains("projection_dim")) {
      return BadField(path, "projection_dim",
                      "is missing: an XLM-R text tower for CLIP needs its embedding width");
    }
    FS_RETURN_IF_ERROR(ReadInt(root, "projection_dim", path, &p.embed_dim));
    FS_RETURN_IF_ERROR(ReadProjectionType(root, "projection_type", path, &x.proj));
    x.proj_hidden = (x.encoder.width + p.embed_dim) / 2;
  } else {
    x.layout = XlmrLayout::kMClip;
    x.proj = TextProjection::kLinear;
    x.proj_bias = true;
    const std::string base = root.contains("modelBase") && root["modelBase"].is_string()
                                 ? root["modelBase"].get<std::string>()
                                 : "";
    const bool inline_encoder = root.contains("hidden_size");
    if (!KnownXlmrEncoder(base, &x) && !inline_encoder) {
      return BadField(path, "modelBase",
                      "is " + DumpJson(root.value("modelBase", json())) +
                          "; supported: xlm-roberta-base, xlm-roberta-large (or give the "
                          "encoder's XLMRobertaConfig fields in this file)");
    }
    if (inline_encoder) FS_RETURN_IF_ERROR(ReadXlmrEncoder(root, path, &x));
    int dims = x.encoder.width;
    FS_RETURN_IF_ERROR(ReadInt(root, "transformerDimensions", path, &dims));
    if (dims != x.encoder.width) {
      return BadField(
          path, "transformerDimensions",
          "is " + std::to_string(dims) + " but the encoder's width is " + std::to_string(x.encoder.width));
    }
    if (!root.contains("numDims")) return BadField(path, "numDims", "is missing");
    FS_RETURN_IF_ERROR(ReadInt(root, "numDims", path, &p.embed_dim));
  }
  p.context_length = XlmrMaxTokens(x);
  FS_RETURN_IF_ERROR(ValidateXlmr(p, path));
  return p;
}

}  // namespace

Result<ClipParams> ReadModelConfig(const std::string& dir, const SafetensorsFile& file,
                                   std::string* config_text) {
  Env* env = Env::Default();
  const std::string hf_config = dir + "/config.json";
  const std::string openclip_config = dir + "/open_clip_config.json";
  config_text->clear();
  if (env->FileExists(openclip_config)) {
    FS_ASSIGN_OR_RETURN(*config_text, ReadConfigFile(openclip_config));
    const json root = ParseObject(*config_text);
    const json* text_cfg = root.is_object() && root.contains("model_cfg") && root["model_cfg"].is_object() &&
                                   root["model_cfg"].contains("text_cfg")
                               ? &root["model_cfg"]["text_cfg"]
                               : nullptr;
    if (text_cfg != nullptr && text_cfg->is_object() && text_cfg->contains("hf_model_name")) {
      const json& name = (*text_cfg)["hf_model_name"];
      if (!name.is_string() || name.get<std::string>().find("xlm-roberta") == std::string::npos) {
        return BadField(
            openclip_config, "text_cfg.hf_model_name",
            "is " + DumpJson(name) + "; the supported Hugging Face text towers are xlm-roberta-*");
      }
      return ParseOpenClipXlmr(root, *config_text, openclip_config, dir, config_text);
    }
    // A folder with both configs (OpenCLIP's hub exports carry an HF config.json too): the one
    // whose names the weights file uses.
    const bool openai_names = file.Find("visual.class_embedding") != nullptr &&
                              file.Find("vision_model.embeddings.class_embedding") == nullptr;
    if (!env->FileExists(hf_config) || openai_names) return ParseOpenClipConfig(*config_text, openclip_config);
  }
  if (env->FileExists(hf_config)) {
    FS_ASSIGN_OR_RETURN(*config_text, ReadConfigFile(hf_config));
    const json root = ParseObject(*config_text);
    if (root.is_object() && (IsXlmrConfig(root) || root.value("model_type", json()) == "M-CLIP")) {
      return ParseTextOnlyXlmr(root, hf_config);
    }
    return ParseHfConfig(*config_text, hf_config);
  }
  if (file.Find("visual.class_embedding") != nullptr) return InferOpenAiParams(file);
  return Status::NotFound("'" + hf_config + "' is missing; a Hugging Face CLIP folder needs it");
}

std::string FamilyName(const ClipParams& p) {
  if (p.text_family == TextFamily::kClip) return "clip";
  switch (p.xlmr.layout) {
    case XlmrLayout::kOpenClip:
      return "xlm-roberta (OpenCLIP)";
    case XlmrLayout::kHf:
      return "xlm-roberta (Hugging Face)";
    case XlmrLayout::kMClip:
      return "xlm-roberta (M-CLIP)";
  }
  return "xlm-roberta";
}

}  // namespace fs::clip
