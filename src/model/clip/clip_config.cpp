#include "model/clip/clip_config.h"

#include <nlohmann/json.hpp>

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
  if (cfg.contains("quick_gelu") && cfg["quick_gelu"].is_boolean() && !cfg["quick_gelu"].get<bool>()) {
    p.vision.act = p.text.act = Activation::kGelu;
  }
  FS_RETURN_IF_ERROR(Validate(p, path));
  return p;
}

Result<ClipParams> InferOpenAiParams(const SafetensorsFile& file) {
  auto shape = [&](const std::string& name, size_t rank) -> const std::vector<int64_t>* {
    const TensorView* v = file.Find(name);
    return v != nullptr && v->shape.size() == rank ? &v->shape : nullptr;
  };
  auto count_layers = [&](const std::string& prefix) {
    int n = 0;
    while (file.Find(prefix + std::to_string(n) + ".ln_1.weight") != nullptr) ++n;
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

}  // namespace fs::clip
