#include "model/clip/clip_model.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <set>

#include "core/env.h"
#include "core/hash.h"
#include "model/clip/clip_config.h"
#include "model/clip/kernels/clip_gemm.h"
#include "model/clip/kernels/clip_kernels.h"
#include "model/clip/safetensors.h"

namespace fs::clip {
namespace {

// ---------------------------------------------------------------------------------------------
// Weights, as in OpenAI's model definition.

struct LayerNorm {
  std::vector<float> gamma, beta;  // [W]
};

struct Block {  // ResidualAttentionBlock: x += attn(ln_1(x)); x += mlp(ln_2(x))
  LayerNorm ln_1, ln_2;
  Linear qkv;  // [3W, W]: q (pre-scaled by 1/sqrt(head size)), k, v
  Linear out;  // [W, W]
  Linear fc1;  // [F, W], activation fused
  Linear fc2;  // [W, F]
};

struct Tower {
  TowerParams params;
  std::vector<Block> blocks;
};

struct VisionWeights {
  Linear patch;                          // conv1 as a GEMM: [W, 3*P*P], no bias
  std::vector<float> class_embedding;    // [W]
  std::vector<float> position;           // [T, W], T = grid^2 + 1
  LayerNorm ln_pre, ln_post;
  Tower tower;
  Linear proj;                           // [E, W], no bias
};

struct TextWeights {
  const TensorView* token_embedding = nullptr;  // [V, W], read in place from the mapping
  std::vector<float> position;                  // [C, W]
  Tower tower;
  LayerNorm ln_final;
  Linear proj;                                  // [E, W], no bias
};

// XLM-RoBERTa text tower, as Hugging Face's XLMRobertaModel + mean pooling + projection. Its
// blocks reuse Block with post-LN meaning: x = ln_1(x + attn(x)); x = ln_2(x + mlp(x)).
struct XlmrWeights {
  const TensorView* word_embedding = nullptr;  // [V, W], read in place from the mapping
  std::vector<float> position;                 // [P, W], token type 0's embedding added to every row
  LayerNorm ln_embed;                          // embeddings.LayerNorm
  Tower tower;
  Linear proj1;  // mlp: [H, W] + GELU; linear: [E, W]; none: unused
  Linear proj2;  // mlp: [E, H]; else unused
};

// Activation buffers of one tower, sized for the largest batch seen (grow only, never per call).
struct Buffers {
  std::vector<float> x;        // [M, W] residual stream
  std::vector<float> h;        // [M, W] layer-norm output, then attention output
  std::vector<float> qkv;      // [M, 3W]
  std::vector<float> mlp;      // [M, F]
  std::vector<float> scratch;  // [threads, attention scratch]
  std::vector<float> aux;      // vision: patches [n*g*g, 3PP] then embeddings; text: unused
  std::vector<float> pooled;   // [n, W]
  std::vector<float> normed;   // [n, W]
};

// Below this much work (floats touched, or multiply-adds) a step runs on the calling thread: a
// parallel region's barrier costs more than it saves, and far more when another process holds
// the second core.
constexpr size_t kParallelFloats = size_t{1} << 18;

void Grow(std::vector<float>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}

// ---------------------------------------------------------------------------------------------
// Loading.

enum class Layout { kHf, kOpenAi };

class WeightReader {
 public:
  WeightReader(const SafetensorsFile& file, Layout layout) : file_(file), layout_(layout) {}
  Layout layout() const { return layout_; }

  // Converts tensor `name` to fp32 into *out (resized; reusing one vector across the big weights
  // spares a fresh allocation, its page faults and its zeroing per tensor).
  Status Read(const std::string& name, const std::vector<int64_t>& shape, std::vector<float>* out) const {
    const TensorView* view = Find(name);
    if (view == nullptr) {
      return Status::NotFound("tensor '" + name + "' is missing from '" + file_.path() +
                              "' (is this a CLIP checkpoint of the expected layout?)");
    }
    FS_RETURN_IF_ERROR(CheckShape(name, *view, shape));
    out->resize(static_cast<size_t>(view->numel()));
    file_.PrefaultPages(*view);
    FS_RETURN_IF_ERROR(ToFloat32(name, *view, *out));
    file_.ReleasePages(*view);
    return Status::Ok();
  }

  // Like Read, but an aligned F32 tensor is used in place; call Release(name) once it is packed.
  Result<std::span<const float>> ReadInPlace(const std::string& name, const std::vector<int64_t>& shape,
                                             std::vector<float>* scratch) const {
    const TensorView* view = Find(name);
    if (view == nullptr) {
      return Status::NotFound("tensor '" + name + "' is missing from '" + file_.path() +
                              "' (is this a CLIP checkpoint of the expected layout?)");
    }
    FS_RETURN_IF_ERROR(CheckShape(name, *view, shape));
    file_.PrefaultPages(*view);
    return Float32View(name, *view, scratch);
  }
  void Release(const std::string& name) const {
    if (const TensorView* view = file_.Find(name)) file_.ReleasePages(*view);
  }

  Result<std::vector<float>> Get(const std::string& name, std::vector<int64_t> shape) const {
    std::vector<float> out;
    FS_RETURN_IF_ERROR(Read(name, shape, &out));
    return out;
  }

  // Reusable conversion buffers for the weights that are packed and then dropped.
  std::vector<float>& scratch(int slot) const { return scratch_[slot]; }

  void Release(const TensorView& view) const { file_.ReleasePages(view); }

  Result<const TensorView*> View(const std::string& name, std::vector<int64_t> shape) const {
    const TensorView* view = Find(name);
    if (view == nullptr) {
      return Status::NotFound("tensor '" + name + "' is missing from '" + file_.path() + "'");
    }
    FS_RETURN_IF_ERROR(CheckShape(name, *view, shape));
    if (view->dtype != DType::kF32 && view->dtype != DType::kF16 && view->dtype != DType::kBF16) {
      return Status::Unsupported("tensor '" + name + "' has dtype " + view->dtype_name +
                                 "; CLIP weights must be F32, F16 or BF16");
    }
    return view;
  }

  // Marks a tensor the model knowingly does not use (a buffer, the logit scale).
  void Ignore(const std::string& name) const { used_.insert(name); }
  // Marks a GEMM weight as accounted for before Linear::Create, which reads it only when the
  // packed-weight file does not supply it (that file was made from this very weights file).
  void Claim(const std::string& name) const { used_.insert(name); }
  // Fails naming the tensors of the file that no weight was read from and none was Ignore()d:
  // a checkpoint of another architecture, or one whose names this loader misreads.
  Status CheckAllUsed() const {
    std::string extra;
    int count = 0;
    for (const std::string& name : file_.names()) {
      if (used_.count(name) != 0) continue;
      if (++count <= 5) extra += (extra.empty() ? "'" : ", '") + name + "'";
    }
    if (count == 0) return Status::Ok();
    return Status::InvalidArgument("'" + file_.path() + "' has " + std::to_string(count) +
                                   " tensor(s) this model does not use: " + extra +
                                   (count > 5 ? ", ..." : "") + " (is the config the checkpoint's own?)");
  }

 private:
  const TensorView* Find(const std::string& name) const {
    used_.insert(name);
    return file_.Find(name);
  }
  Status CheckShape(const std::string& name, const TensorView& view,
                    const std::vector<int64_t>& shape) const {
    if (view.shape != shape) {
      return Status::InvalidArgument("tensor '" + name + "' in '" + file_.path() + "' has shape " +
                                     ShapeString(view.shape) + ", expected " + ShapeString(shape) +
                                     " from the model's configuration");
    }
    return Status::Ok();
  }
  const SafetensorsFile& file_;
  Layout layout_;
  mutable std::vector<float> scratch_[3];
  mutable std::set<std::string> used_;  // names looked up (present or not) and ignored ones
};

Result<LayerNorm> LoadLayerNorm(const WeightReader& r, const std::string& prefix, int width) {
  LayerNorm ln;
  FS_ASSIGN_OR_RETURN(ln.gamma, r.Get(prefix + ".weight", {width}));
  FS_ASSIGN_OR_RETURN(ln.beta, r.Get(prefix + ".bias", {width}));
  return ln;
}

// PREFIX.weight [out, in] and, unless !bias, PREFIX.bias [out].
Result<Linear> LoadLinear(GemmContext* ctx, const WeightReader& r, const std::string& prefix, int in, int out,
                          GemmEpilogue epilogue, bool bias = true) {
  std::span<const float> b;
  if (bias) {
    FS_ASSIGN_OR_RETURN(b, r.ReadInPlace(prefix + ".bias", {out}, &r.scratch(1)));
  }
  r.Claim(prefix + ".weight");
  auto weight = [&]() { return r.ReadInPlace(prefix + ".weight", {out, in}, &r.scratch(0)); };
  auto linear = Linear::Create(ctx, weight, b, in, out, epilogue);
  r.Release(prefix + ".weight");
  r.Release(prefix + ".bias");
  return linear;
}

// Where q, k and v are: one fused in_proj (OpenAI, OpenCLIP) or three Linears (Hugging Face).
struct QkvNames {
  std::string fused;                 // "PREFIX.attn" (reads .in_proj_weight / .in_proj_bias), or ""
  std::array<std::string, 3> parts;  // "PREFIX.self_attn.q_proj", ... (reads .weight / .bias)
};

// Reads q, k and v's WHAT ("weight" or "bias", each part of `part_shape`) one after the other into *out.
Status ReadQkv(const WeightReader& r, const QkvNames& names, const std::string& what,
               const std::vector<int64_t>& part_shape, std::vector<float>* out) {
  if (!names.fused.empty()) {
    std::vector<int64_t> shape = part_shape;
    shape[0] *= 3;
    return r.Read(names.fused + ".in_proj_" + what, shape, out);
  }
  std::vector<float>& part = r.scratch(2);
  out->clear();
  for (const std::string& name : names.parts) {
    FS_RETURN_IF_ERROR(r.Read(name + "." + what, part_shape, &part));
    out->insert(out->end(), part.begin(), part.end());
  }
  return Status::Ok();
}

// q, k and v as one [3W, W] GEMM. Attention's 1/sqrt(head size) is folded into q, as
// nn.MultiheadAttention and BERT's self-attention scale q.k after projection.
Result<Linear> LoadQkv(GemmContext* ctx, const WeightReader& r, const QkvNames& names, const TowerParams& p) {
  const int w = p.width;
  const float scale = 1.0f / std::sqrt(static_cast<float>(w / p.heads));
  const size_t ww = static_cast<size_t>(w) * static_cast<size_t>(w);
  std::vector<float>& qkv_b = r.scratch(1);  // [3W]
  FS_RETURN_IF_ERROR(ReadQkv(r, names, "bias", {w}, &qkv_b));
  for (size_t i = 0; i < static_cast<size_t>(w); ++i) qkv_b[i] *= scale;
  if (names.fused.empty()) {
    for (const std::string& part : names.parts) r.Claim(part + ".weight");
  } else {
    r.Claim(names.fused + ".in_proj_weight");
  }
  auto qkv_weight = [&]() -> Result<std::span<const float>> {
    std::vector<float>& qkv_w = r.scratch(0);
    FS_RETURN_IF_ERROR(ReadQkv(r, names, "weight", {w, w}, &qkv_w));
    for (size_t i = 0; i < ww; ++i) qkv_w[i] *= scale;
    return std::span<const float>(qkv_w);
  };
  return Linear::Create(ctx, qkv_weight, qkv_b, w, 3 * w, GemmEpilogue::kNone);
}

GemmEpilogue EpilogueOf(Activation act) {
  return act == Activation::kGelu ? GemmEpilogue::kGelu : GemmEpilogue::kQuickGelu;
}

// prefix: "vision_model.encoder.layers.3" (HF) or "visual.transformer.resblocks.3" (OpenAI).
Result<Block> LoadBlock(GemmContext* ctx, const WeightReader& r, const std::string& prefix,
                        const TowerParams& p) {
  const int w = p.width;
  const bool hf = r.layout() == Layout::kHf;
  const GemmEpilogue act = EpilogueOf(p.act);
  Block block;
  FS_ASSIGN_OR_RETURN(block.ln_1, LoadLayerNorm(r, prefix + (hf ? ".layer_norm1" : ".ln_1"), w));
  FS_ASSIGN_OR_RETURN(block.ln_2, LoadLayerNorm(r, prefix + (hf ? ".layer_norm2" : ".ln_2"), w));
  const std::string attn = prefix + ".self_attn.";
  QkvNames qkv =
      hf ? QkvNames{"", {attn + "q_proj", attn + "k_proj", attn + "v_proj"}} : QkvNames{prefix + ".attn", {}};
  FS_ASSIGN_OR_RETURN(block.qkv, LoadQkv(ctx, r, qkv, p));
  FS_ASSIGN_OR_RETURN(block.out, LoadLinear(ctx, r, prefix + (hf ? ".self_attn.out_proj" : ".attn.out_proj"),
                                            w, w, GemmEpilogue::kNone));
  FS_ASSIGN_OR_RETURN(block.fc1, LoadLinear(ctx, r, prefix + (hf ? ".mlp.fc1" : ".mlp.c_fc"), w,
                                            p.mlp_width, act));
  FS_ASSIGN_OR_RETURN(block.fc2, LoadLinear(ctx, r, prefix + (hf ? ".mlp.fc2" : ".mlp.c_proj"),
                                            p.mlp_width, w, GemmEpilogue::kNone));
  return block;
}

Result<Tower> LoadTower(GemmContext* ctx, const WeightReader& r, const std::string& prefix,
                        const TowerParams& p) {
  Tower tower{p, {}};
  for (int layer = 0; layer < p.layers; ++layer) {
    FS_ASSIGN_OR_RETURN(auto block, LoadBlock(ctx, r, prefix + std::to_string(layer), p));
    tower.blocks.push_back(std::move(block));
  }
  return tower;
}

// A projection matrix as [E, W]: HF stores it so (nn.Linear), OpenAI as [W, E] (x @ proj).
Result<Linear> LoadProjection(GemmContext* ctx, const WeightReader& r, const std::string& hf_name,
                              const std::string& openai_name, int width, int embed) {
  std::vector<float> w;
  r.Claim(r.layout() == Layout::kHf ? hf_name : openai_name);
  auto weight = [&]() -> Result<std::span<const float>> {
    if (r.layout() == Layout::kHf) {
      FS_ASSIGN_OR_RETURN(w, r.Get(hf_name, {embed, width}));
    } else {
      FS_ASSIGN_OR_RETURN(auto t, r.Get(openai_name, {width, embed}));
      w.resize(t.size());
      for (int row = 0; row < width; ++row) {
        for (int col = 0; col < embed; ++col) {
          w[static_cast<size_t>(col * width + row)] = t[static_cast<size_t>(row * embed + col)];
        }
      }
    }
    return std::span<const float>(w);
  };
  return Linear::Create(ctx, weight, {}, width, embed, GemmEpilogue::kNone);
}

Result<VisionWeights> LoadVision(GemmContext* ctx, const WeightReader& r, const ClipParams& p) {
  const bool hf = r.layout() == Layout::kHf;
  const int w = p.vision.width, patch = p.patch_size;
  VisionWeights v;
  std::vector<float> conv;
  const char* conv_name = hf ? "vision_model.embeddings.patch_embedding.weight" : "visual.conv1.weight";
  r.Claim(conv_name);
  auto conv_weight = [&]() -> Result<std::span<const float>> {
    FS_ASSIGN_OR_RETURN(conv, r.Get(conv_name, {w, 3, patch, patch}));
    return std::span<const float>(conv);
  };
  // The patch embedding stays fp32 in every precision: with trained-like outliers the attention
  // is sharp enough that its int8 rounding, small as it is, moved images to cosine 0.982; it is
  // under 1 % of the image tower's work.
  FS_ASSIGN_OR_RETURN(v.patch, Linear::Create(ctx, conv_weight, {}, 3 * patch * patch, w, GemmEpilogue::kNone,
                                              /*keep_fp32=*/true));
  FS_ASSIGN_OR_RETURN(v.class_embedding,
                      r.Get(hf ? "vision_model.embeddings.class_embedding" : "visual.class_embedding", {w}));
  FS_ASSIGN_OR_RETURN(v.position, r.Get(hf ? "vision_model.embeddings.position_embedding.weight"
                                           : "visual.positional_embedding",
                                        {p.vision_tokens(), w}));
  FS_ASSIGN_OR_RETURN(v.ln_pre, LoadLayerNorm(r, hf ? "vision_model.pre_layrnorm" : "visual.ln_pre", w));
  FS_ASSIGN_OR_RETURN(v.tower, LoadTower(ctx, r, hf ? "vision_model.encoder.layers." : "visual.transformer.resblocks.",
                                         p.vision));
  FS_ASSIGN_OR_RETURN(v.ln_post, LoadLayerNorm(r, hf ? "vision_model.post_layernorm" : "visual.ln_post", w));
  FS_ASSIGN_OR_RETURN(v.proj, LoadProjection(ctx, r, "visual_projection.weight", "visual.proj", w, p.embed_dim));
  return v;
}

// A token table [rows, W], read in place from the mapping. Unless source_checked (the weights file is
// the one a valid packed file was made from, so its values were checked then), every row is checked
// finite now, so that a damaged row cannot surface later as a NaN vector.
Result<const TensorView*> LoadTokenTable(const WeightReader& r, const std::string& name, int rows, int width,
                                         bool source_checked) {
  FS_ASSIGN_OR_RETURN(const TensorView* table, r.View(name, {rows, width}));
  if (source_checked) return table;
  std::vector<float> rows_buf;
  const size_t row_bytes = table->data.size() / static_cast<size_t>(rows);
  for (int first = 0; first < rows; first += 1024) {
    const int count = std::min(1024, rows - first);
    TensorView part = *table;
    part.shape = {count, width};
    part.data =
        part.data.subspan(static_cast<size_t>(first) * row_bytes, static_cast<size_t>(count) * row_bytes);
    FS_RETURN_IF_ERROR(Float32View(name, part, &rows_buf).status());
    r.Release(part);  // as it goes: XLM-R's table is 0.77 GB, which need not be resident at once
  }
  r.Release(*table);  // rows come back from disk as texts use them
  return table;
}

Result<TextWeights> LoadText(GemmContext* ctx, const WeightReader& r, const ClipParams& p, bool source_checked) {
  const bool hf = r.layout() == Layout::kHf;
  const int w = p.text.width;
  TextWeights t;
  const std::string tok_name = hf ? "text_model.embeddings.token_embedding.weight" : "token_embedding.weight";
  FS_ASSIGN_OR_RETURN(t.token_embedding, LoadTokenTable(r, tok_name, p.vocab_size, w, source_checked));
  FS_ASSIGN_OR_RETURN(t.position, r.Get(hf ? "text_model.embeddings.position_embedding.weight"
                                           : "positional_embedding",
                                        {p.context_length, w}));
  FS_ASSIGN_OR_RETURN(t.tower, LoadTower(ctx, r, hf ? "text_model.encoder.layers." : "transformer.resblocks.",
                                         p.text));
  FS_ASSIGN_OR_RETURN(t.ln_final, LoadLayerNorm(r, hf ? "text_model.final_layer_norm" : "ln_final", w));
  FS_ASSIGN_OR_RETURN(t.proj, LoadProjection(ctx, r, "text_projection.weight", "text_projection", w, p.embed_dim));
  return t;
}

// One post-LN BERT layer in Hugging Face names. prefix: "text.transformer.encoder.layer.3".
Result<Block> LoadBertBlock(GemmContext* ctx, const WeightReader& r, const std::string& prefix,
                            const TowerParams& p) {
  const int w = p.width;
  Block block;
  const std::string self = prefix + ".attention.self.";
  FS_ASSIGN_OR_RETURN(block.qkv,
                      LoadQkv(ctx, r, QkvNames{"", {self + "query", self + "key", self + "value"}}, p));
  FS_ASSIGN_OR_RETURN(block.out,
                      LoadLinear(ctx, r, prefix + ".attention.output.dense", w, w, GemmEpilogue::kNone));
  FS_ASSIGN_OR_RETURN(block.ln_1, LoadLayerNorm(r, prefix + ".attention.output.LayerNorm", w));
  FS_ASSIGN_OR_RETURN(block.fc1,
                      LoadLinear(ctx, r, prefix + ".intermediate.dense", w, p.mlp_width, EpilogueOf(p.act)));
  FS_ASSIGN_OR_RETURN(block.fc2,
                      LoadLinear(ctx, r, prefix + ".output.dense", p.mlp_width, w, GemmEpilogue::kNone));
  FS_ASSIGN_OR_RETURN(block.ln_2, LoadLayerNorm(r, prefix + ".output.LayerNorm", w));
  return block;
}

// The XLM-R text tower in the layout p.xlmr.layout names (see clip_config.h). Tensors a real
// checkpoint carries but the forward pass does not need are accepted and skipped: the position_ids /
// token_type_ids buffers older transformers versions saved, and XLMRobertaModel's pooler.
Result<XlmrWeights> LoadXlmr(GemmContext* ctx, const WeightReader& r, const ClipParams& p,
                             bool source_checked) {
  const XlmrParams& x = p.xlmr;
  const int w = x.encoder.width, e = p.embed_dim;
  const std::string prefix = x.layout == XlmrLayout::kOpenClip ? "text.transformer."
                             : x.layout == XlmrLayout::kMClip  ? "transformer."
                                                               : "";
  for (const char* unused :
       {"embeddings.position_ids", "embeddings.token_type_ids", "pooler.dense.weight", "pooler.dense.bias"}) {
    r.Ignore(prefix + unused);
  }
  XlmrWeights t;
  FS_ASSIGN_OR_RETURN(t.word_embedding, LoadTokenTable(r, prefix + "embeddings.word_embeddings.weight",
                                                       x.vocab_size, w, source_checked));
  FS_ASSIGN_OR_RETURN(t.position,
                      r.Get(prefix + "embeddings.position_embeddings.weight", {x.max_positions, w}));
  FS_ASSIGN_OR_RETURN(auto types,
                      r.Get(prefix + "embeddings.token_type_embeddings.weight", {x.type_vocab_size, w}));
  for (size_t row = 0; row < static_cast<size_t>(x.max_positions); ++row) {  // every token is of type 0
    for (size_t i = 0; i < static_cast<size_t>(w); ++i)
      t.position[row * static_cast<size_t>(w) + i] += types[i];
  }
  FS_ASSIGN_OR_RETURN(t.ln_embed, LoadLayerNorm(r, prefix + "embeddings.LayerNorm", w));
  t.tower.params = x.encoder;
  for (int layer = 0; layer < x.encoder.layers; ++layer) {
    FS_ASSIGN_OR_RETURN(auto block,
                        LoadBertBlock(ctx, r, prefix + "encoder.layer." + std::to_string(layer), x.encoder));
    t.tower.blocks.push_back(std::move(block));
  }
  const std::string proj = x.layout == XlmrLayout::kOpenClip ? "text.proj"
                           : x.layout == XlmrLayout::kMClip  ? "LinearTransformation"
                                                             : "proj";
  if (x.proj == TextProjection::kMlp) {  // Linear (no bias), GELU, Linear (no bias)
    FS_ASSIGN_OR_RETURN(t.proj1,
                        LoadLinear(ctx, r, proj + ".0", w, x.proj_hidden, GemmEpilogue::kGelu, false));
    FS_ASSIGN_OR_RETURN(t.proj2,
                        LoadLinear(ctx, r, proj + ".2", x.proj_hidden, e, GemmEpilogue::kNone, false));
  } else if (x.proj == TextProjection::kLinear) {
    FS_ASSIGN_OR_RETURN(t.proj1, LoadLinear(ctx, r, proj, w, e, GemmEpilogue::kNone, x.proj_bias));
  }
  return t;
}

const char* PrecisionName(GemmPrecision p) {
  return p == GemmPrecision::kBf16 ? "bf16" : p == GemmPrecision::kInt8 ? "int8" : "fp32";
}

std::string BaseName(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  const auto pos = dir.find_last_of('/');
  return pos == std::string::npos ? dir : dir.substr(pos + 1);
}

}  // namespace

// -----------------------------------------------------------------------------------------------
// The model.

// Text batches with fewer rows (texts x tokens) than this run on one thread.
constexpr int kSerialTextRows = 32;

struct ClipModel::Impl {
  ClipParams params;
  LoadOptions options;
  int threads = 1;
  std::unique_ptr<SafetensorsFile> file;
  std::unique_ptr<GemmContext> gemm;
  VisionWeights vision;
  TextWeights text;  // text_family kClip
  XlmrWeights xlmr;  // text_family kXlmRoberta
  Buffers vision_buf, text_buf;
  const ClipKernels* kernels = nullptr;
  std::mutex mu;                       // one Encode* at a time
  size_t weight_bytes = 0;             // packed GEMM weights
  Layout layout = Layout::kOpenAi;     // the image tower's names
  double calibration_cosine = 0;       // bf16/int8: the worst cosine of CheckPrecisionBound, 0 if not run
  int outlier_channels = 0;            // bf16/int8: GEMM input channels computed in fp32
  LoadReport load_report;

  // Sizes the buffers of `tower` for m rows and n sequences, and builds its GEMMs for them (the
  // last block runs only its qkv on all m rows; the rest of it on n).
  Status PrepareTower(Tower& tower, Buffers& buf, int m, int n) {
    const auto& p = tower.params;
    const auto rows = static_cast<size_t>(m);
    const auto width = static_cast<size_t>(p.width), seqs = static_cast<size_t>(n);
    Grow(buf.x, rows * width);
    Grow(buf.h, rows * width);
    Grow(buf.qkv, rows * 3 * width);
    Grow(buf.mlp, rows * static_cast<size_t>(p.mlp_width));
    Grow(buf.pooled, seqs * width);
    Grow(buf.normed, seqs * width);
    const size_t tokens = static_cast<size_t>(m / n);
    Grow(buf.scratch, static_cast<size_t>(threads) * AttentionScratchFloats(tokens, static_cast<size_t>(p.width / p.heads)));
    for (Block& b : tower.blocks) {
      const bool last = &b == &tower.blocks.back();
      FS_RETURN_IF_ERROR(b.qkv.Prepare(m, false));
      FS_RETURN_IF_ERROR(b.out.Prepare(last ? n : m, true));
      FS_RETURN_IF_ERROR(b.fc1.Prepare(last ? n : m, false));
      FS_RETURN_IF_ERROR(b.fc2.Prepare(last ? n : m, true));
    }
    return Status::Ok();
  }

  void LayerNormRows(const LayerNorm& ln, const float* x, float* y, int rows, int width, float eps) {
    const int chunk = std::max(1, (rows + threads - 1) / threads);
#pragma omp parallel for num_threads(threads) if (static_cast<size_t>(rows * width) >= kParallelFloats)
    for (int first = 0; first < rows; first += chunk) {
      const int count = std::min(chunk, rows - first);
      kernels->layer_norm(x + static_cast<int64_t>(first) * width, y + static_cast<int64_t>(first) * width,
                          static_cast<size_t>(count), static_cast<size_t>(width), ln.gamma.data(),
                          ln.beta.data(), eps);
    }
  }

  // Multi-head attention over n sequences of `tokens`: qkv [n*T, 3W] -> out [n*T, W].
  // With `pick` (one token per sequence), only that token's query: out [n, W], and a causal
  // sequence's keys end at the picked token.
  void Attention(const float* qkv, int n, int tokens, const TowerParams& p, bool causal, const int* pick,
                 float* out, Buffers& buf) {
    const int w = p.width, head_dim = w / p.heads;
    const size_t scratch_floats = AttentionScratchFloats(static_cast<size_t>(tokens), static_cast<size_t>(head_dim));
    const int jobs = n * p.heads;
    const auto work = static_cast<size_t>(static_cast<int64_t>(jobs) * (pick ? 1 : tokens) * tokens * head_dim);
#pragma omp parallel for num_threads(threads) schedule(static) if (work >= kParallelFloats)
    for (int job = 0; job < jobs; ++job) {
      const int seq = job / p.heads, head = job % p.heads;
      const float* base = qkv + static_cast<int64_t>(seq) * tokens * 3 * w + static_cast<int64_t>(head) * head_dim;
      float* scratch = buf.scratch.data() + static_cast<size_t>(omp_get_thread_num()) * scratch_floats;
      const size_t stride = static_cast<size_t>(3 * w);
      if (pick == nullptr) {
        kernels->attention_head(base, base + w, base + 2 * w, stride, static_cast<size_t>(tokens),
                                static_cast<size_t>(tokens), static_cast<size_t>(head_dim), causal,
                                out + static_cast<int64_t>(seq) * tokens * w + static_cast<int64_t>(head) * head_dim,
                                static_cast<size_t>(w), scratch);
      } else {
        const int keys = causal ? pick[seq] + 1 : tokens;
        kernels->attention_head(base + static_cast<size_t>(pick[seq]) * stride, base + w, base + 2 * w, stride, 1,
                                static_cast<size_t>(keys), static_cast<size_t>(head_dim), false,
                                out + static_cast<int64_t>(seq) * w + static_cast<int64_t>(head) * head_dim,
                                static_cast<size_t>(w), scratch);
      }
    }
  }

  // One ResidualAttentionBlock on x [n*T, W], in place.
  void BlockForward(Block& b, const TowerParams& p, int n, int tokens, bool causal, Buffers& buf) {
    const int m = n * tokens, w = p.width;
    float* x = buf.x.data();
    LayerNormRows(b.ln_1, x, buf.h.data(), m, w, p.ln_eps);            // h = ln_1(x)          [M, W]
    b.qkv.Forward(buf.h.data(), m, buf.qkv.data(), false);              // qkv = h Wqkv^T + b   [M, 3W]
    Attention(buf.qkv.data(), n, tokens, p, causal, nullptr, buf.h.data(), buf);  // h = attn [M, W]
    b.out.Forward(buf.h.data(), m, x, true);                            // x += h Wo^T + bo     [M, W]
    LayerNormRows(b.ln_2, x, buf.h.data(), m, w, p.ln_eps);             // h = ln_2(x)          [M, W]
    b.fc1.Forward(buf.h.data(), m, buf.mlp.data(), false);              // f = act(h W1^T + b1) [M, F]
    b.fc2.Forward(buf.mlp.data(), m, x, true);                          // x += f W2^T + b2     [M, W]
  }

  // The last block, computed only for the one token per sequence the tower's output is read from
  // (the class token, or the end-of-text token): every other row would be thrown away.
  // x [n*T, W] -> pooled [n, W] = the block's output at token pick[seq].
  void LastBlockForward(Block& b, const TowerParams& p, int n, int tokens, bool causal, const int* pick,
                        Buffers& buf) {
    const int m = n * tokens, w = p.width;
    float* x = buf.x.data();
    float* pooled = buf.pooled.data();
    LayerNormRows(b.ln_1, x, buf.h.data(), m, w, p.ln_eps);             // h = ln_1(x)           [M, W]
    b.qkv.Forward(buf.h.data(), m, buf.qkv.data(), false);               // qkv (all keys/values) [M, 3W]
    Attention(buf.qkv.data(), n, tokens, p, causal, pick, buf.h.data(), buf);  // h = attn     [n, W]
    for (int seq = 0; seq < n; ++seq) {                                  // pooled = x[seq, pick] [n, W]
      std::memcpy(pooled + static_cast<int64_t>(seq) * w, x + (static_cast<int64_t>(seq) * tokens + pick[seq]) * w,
                  static_cast<size_t>(w) * sizeof(float));
    }
    b.out.Forward(buf.h.data(), n, pooled, true);                         // pooled += h Wo^T + bo [n, W]
    LayerNormRows(b.ln_2, pooled, buf.h.data(), n, w, p.ln_eps);          // h = ln_2(pooled)      [n, W]
    b.fc1.Forward(buf.h.data(), n, buf.mlp.data(), false);                // f = act(h W1^T + b1)  [n, F]
    b.fc2.Forward(buf.mlp.data(), n, pooled, true);                       // pooled += f W2^T + b2 [n, W]
  }

  // All blocks of `tower`; the output rows at pick[seq] land in buf.pooled [n, W].
  void TowerForward(Tower& tower, int n, int tokens, bool causal, const int* pick, Buffers& buf) {
    Block& last = tower.blocks.back();
    for (size_t layer = 0; layer + 1 < tower.blocks.size(); ++layer) {
      BlockForward(tower.blocks[layer], tower.params, n, tokens, causal, buf);
    }
    LastBlockForward(last, tower.params, n, tokens, causal, pick, buf);
  }

  // Rows of `in` [n, E] scaled to unit length into out.
  static void Normalize(const float* in, int n, int e, float* out) {
    for (int row = 0; row < n; ++row) {
      double sum = 0;
      for (int i = 0; i < e; ++i) sum += static_cast<double>(in[row * e + i]) * in[row * e + i];
      const float inv = sum > 0 ? static_cast<float>(1.0 / std::sqrt(sum)) : 0.0f;
      for (int i = 0; i < e; ++i) out[row * e + i] = in[row * e + i] * inv;
    }
  }

  Status VisionForward(const float* pixels, int n, float* out) {
    const ClipParams& p = params;
    const int w = p.vision.width, s = p.image_size, patch = p.patch_size, grid = p.grid();
    const int tokens = p.vision_tokens(), m = n * tokens, patches = grid * grid;
    const int patch_len = 3 * patch * patch;
    Buffers& buf = vision_buf;
    FS_RETURN_IF_ERROR(PrepareTower(vision.tower, buf, m, n));
    FS_RETURN_IF_ERROR(vision.patch.Prepare(n * patches, false));
    FS_RETURN_IF_ERROR(vision.proj.Prepare(n, false));
    Grow(buf.aux, static_cast<size_t>(n * patches * std::max(patch_len, w) * 2));
    float* cols = buf.aux.data();                                     // [n*g*g, 3*P*P]
    float* emb = cols + static_cast<int64_t>(n) * patches * patch_len;  // [n*g*g, W]
    // im2col: patch (gy, gx) of image img, channel-major like conv1's weight [W, 3, P, P].
#pragma omp parallel for num_threads(threads) collapse(2) if (n >= 4)
    for (int img = 0; img < n; ++img) {
      for (int gy = 0; gy < grid; ++gy) {
        for (int gx = 0; gx < grid; ++gx) {
          float* row = cols + (static_cast<int64_t>(img) * patches + gy * grid + gx) * patch_len;
          for (int c = 0; c < 3; ++c) {
            for (int py = 0; py < patch; ++py) {
              const float* src = pixels + ((static_cast<int64_t>(img) * 3 + c) * s + gy * patch + py) * s + gx * patch;
              std::memcpy(row + (c * patch + py) * patch, src, static_cast<size_t>(patch) * sizeof(float));
            }
          }
        }
      }
    }
    vision.patch.Forward(cols, n * patches, emb, false);  // emb = conv1(pixels)   [n*g*g, W]
    float* x = buf.x.data();                              // x = [cls; emb] + pos  [n, T, W]
    for (int img = 0; img < n; ++img) {
      for (int token = 0; token < tokens; ++token) {
        float* dst = x + (static_cast<int64_t>(img) * tokens + token) * w;
        const float* src = token == 0 ? vision.class_embedding.data()
                                      : emb + (static_cast<int64_t>(img) * patches + token - 1) * w;
        const float* pos = vision.position.data() + static_cast<int64_t>(token) * w;
        for (int i = 0; i < w; ++i) dst[i] = src[i] + pos[i];
      }
    }
    LayerNormRows(vision.ln_pre, x, x, m, w, p.vision.ln_eps);  // x = ln_pre(x)  [n*T, W]
    class_rows.assign(static_cast<size_t>(n), 0);               // read at the class token
    TowerForward(vision.tower, n, tokens, false, class_rows.data(), buf);  // pooled = x[:, 0]  [n, W]
    LayerNormRows(vision.ln_post, buf.pooled.data(), buf.normed.data(), n, w, p.vision.ln_eps);
    vision.proj.Forward(buf.normed.data(), n, buf.pooled.data(), false);  // [n, E]
    Normalize(buf.pooled.data(), n, p.embed_dim, out);
    return Status::Ok();
  }

  Status TextForward(const std::vector<std::vector<int32_t>>& ids, size_t first, int n, float* out) {
    const ClipParams& p = params;
    const int w = p.text.width;
    // Causal attention: positions after a text's end-of-text token never influence it, so the
    // batch is computed only up to the latest end-of-text position.
    std::vector<int>& eot = eot_scratch;
    eot.assign(static_cast<size_t>(n), 0);
    int tokens = 1;
    for (int seq = 0; seq < n; ++seq) {
      const auto& t = ids[first + static_cast<size_t>(seq)];
      const int pos = static_cast<int>(std::max_element(t.begin(), t.end()) - t.begin());
      eot[static_cast<size_t>(seq)] = pos;
      tokens = std::max(tokens, pos + 1);
    }
    const int m = n * tokens;
    // A short query (a few words: 5-10 rows) is faster on one thread: its GEMMs are too small to
    // split, and waking the other threads costs more than they save (measured 2.5-3.1 ms on one
    // thread against 4.7-6.2 ms on two for a 7-token int8 query). It also leaves the other cores to
    // other queries.
    omp_set_num_threads(m < kSerialTextRows ? 1 : threads);
    Buffers& buf = text_buf;
    FS_RETURN_IF_ERROR(PrepareTower(text.tower, buf, m, n));
    FS_RETURN_IF_ERROR(text.proj.Prepare(n, false));
    float* x = buf.x.data();  // x = token_embedding[ids] + pos  [n, L, W]
    const TensorView& table = *text.token_embedding;
    const size_t row_bytes = table.data.size() / static_cast<size_t>(p.vocab_size);
    for (int seq = 0; seq < n; ++seq) {
      const auto& t = ids[first + static_cast<size_t>(seq)];
      for (int token = 0; token < tokens; ++token) {
        float* dst = x + (static_cast<int64_t>(seq) * tokens + token) * w;
        const float* pos = text.position.data() + static_cast<int64_t>(token) * w;
        if (token < static_cast<int>(t.size())) {
          FS_RETURN_IF_ERROR(ToFloat32("token_embedding", table.dtype,
                                       table.data.subspan(static_cast<size_t>(t[static_cast<size_t>(token)]) * row_bytes, row_bytes),
                                       std::span<float>(dst, static_cast<size_t>(w))));
          for (int i = 0; i < w; ++i) dst[i] += pos[i];
        } else {
          std::memcpy(dst, pos, static_cast<size_t>(w) * sizeof(float));  // padding, never seen
        }
      }
    }
    TowerForward(text.tower, n, tokens, true, eot.data(), buf);  // pooled = x[:, eot]  [n, W]
    LayerNormRows(text.ln_final, buf.pooled.data(), buf.normed.data(), n, w, p.text.ln_eps);
    text.proj.Forward(buf.normed.data(), n, buf.pooled.data(), false);  // [n, E]
    Normalize(buf.pooled.data(), n, p.embed_dim, out);
    return Status::Ok();
  }

  // XLM-R: n texts from ids[first], each without its padding ids, packed one after the other
  // (rows offsets[seq] .. offsets[seq] + lengths[seq]): padding never enters a GEMM. This equals
  // XLMRobertaModel with attention_mask = (ids != pad): padded keys are masked, positions count
  // non-padding tokens only (create_position_ids_from_input_ids), and mean pooling skips padding.
  Status XlmrForward(const std::vector<std::vector<int32_t>>& ids, size_t first, int n, float* out) {
    const ClipParams& p = params;
    const XlmrParams& xp = p.xlmr;
    const TowerParams& tp = xp.encoder;
    const int w = tp.width;
    std::vector<int>& offsets = text_offsets;  // [n + 1]
    offsets.assign(static_cast<size_t>(n) + 1, 0);
    int longest = 1;
    for (int seq = 0; seq < n; ++seq) {
      const auto& t = ids[first + static_cast<size_t>(seq)];
      const int len =
          static_cast<int>(t.size() - static_cast<size_t>(std::count(t.begin(), t.end(), xp.pad_id)));
      offsets[static_cast<size_t>(seq) + 1] = offsets[static_cast<size_t>(seq)] + len;
      longest = std::max(longest, len);
    }
    const int m = offsets[static_cast<size_t>(n)];
    omp_set_num_threads(m < kSerialTextRows ? 1 : threads);
    Buffers& buf = text_buf;
    const auto rows = static_cast<size_t>(m), width = static_cast<size_t>(w);
    Grow(buf.x, rows * width);
    Grow(buf.h, rows * width);
    Grow(buf.qkv, rows * 3 * width);
    Grow(buf.mlp, rows * static_cast<size_t>(tp.mlp_width));
    Grow(buf.pooled, static_cast<size_t>(n) * std::max(width, static_cast<size_t>(p.embed_dim)));
    Grow(buf.normed,
         static_cast<size_t>(n) * static_cast<size_t>(std::max({w, xp.proj_hidden, p.embed_dim})));
    Grow(buf.scratch,
         static_cast<size_t>(threads) *
             AttentionScratchFloats(static_cast<size_t>(longest), static_cast<size_t>(w / tp.heads)));
    for (Block& b : xlmr.tower.blocks) {
      FS_RETURN_IF_ERROR(b.qkv.Prepare(m, false));
      FS_RETURN_IF_ERROR(b.out.Prepare(m, true));
      FS_RETURN_IF_ERROR(b.fc1.Prepare(m, false));
      FS_RETURN_IF_ERROR(b.fc2.Prepare(m, true));
    }
    if (xp.proj != TextProjection::kNone) FS_RETURN_IF_ERROR(xlmr.proj1.Prepare(n, false));
    if (xp.proj == TextProjection::kMlp) FS_RETURN_IF_ERROR(xlmr.proj2.Prepare(n, false));

    float* x = buf.x.data();  // x = word[ids] + position[pad + 1 + j] + type[0]  [M, W]
    const TensorView& table = *xlmr.word_embedding;
    const size_t row_bytes = table.data.size() / static_cast<size_t>(xp.vocab_size);
    for (int seq = 0; seq < n; ++seq) {
      int row = offsets[static_cast<size_t>(seq)];
      for (const int32_t id : ids[first + static_cast<size_t>(seq)]) {
        if (id == xp.pad_id) continue;
        const int position = xp.pad_id + 1 + row - offsets[static_cast<size_t>(seq)];
        float* dst = x + static_cast<int64_t>(row) * w;
        FS_RETURN_IF_ERROR(ToFloat32("word_embeddings", table.dtype,
                                     table.data.subspan(static_cast<size_t>(id) * row_bytes, row_bytes),
                                     std::span<float>(dst, width)));
        const float* pos = xlmr.position.data() + static_cast<int64_t>(position) * w;
        for (int i = 0; i < w; ++i) dst[i] += pos[i];
        ++row;
      }
    }
    LayerNormRows(xlmr.ln_embed, x, x, m, w, tp.ln_eps);  // x = LayerNorm(x)  [M, W]
    for (Block& b : xlmr.tower.blocks) {
      b.qkv.Forward(x, m, buf.qkv.data(), false);  // qkv = x Wqkv^T + b    [M, 3W]
      PackedAttention(buf.qkv.data(), n, offsets.data(), longest, tp, buf.h.data(), buf);  // h = attn [M, W]
      b.out.Forward(buf.h.data(), m, x, true);       // x += h Wo^T + bo      [M, W]
      LayerNormRows(b.ln_1, x, x, m, w, tp.ln_eps);  // x = ln_1(x)           [M, W]
      b.fc1.Forward(x, m, buf.mlp.data(), false);    // f = gelu(x W1^T + b1) [M, F]
      b.fc2.Forward(buf.mlp.data(), m, x, true);     // x += f W2^T + b2      [M, W]
      LayerNormRows(b.ln_2, x, x, m, w, tp.ln_eps);  // x = ln_2(x)           [M, W]
    }
    float* pooled = buf.pooled.data();  // pooled = mean of each text's rows  [n, W]
    for (int seq = 0; seq < n; ++seq) {
      const int begin = offsets[static_cast<size_t>(seq)], end = offsets[static_cast<size_t>(seq) + 1];
      float* dst = pooled + static_cast<int64_t>(seq) * w;
      std::fill(dst, dst + w, 0.0f);
      for (int row = begin; row < end; ++row) {
        const float* src = x + static_cast<int64_t>(row) * w;
        for (int i = 0; i < w; ++i) dst[i] += src[i];
      }
      const float inv = 1.0f / static_cast<float>(end - begin);
      for (int i = 0; i < w; ++i) dst[i] *= inv;
    }
    const float* embedded = pooled;
    if (xp.proj == TextProjection::kMlp) {
      xlmr.proj1.Forward(pooled, n, buf.normed.data(), false);  // g = gelu(pooled W1^T) [n, H]
      xlmr.proj2.Forward(buf.normed.data(), n, pooled, false);  // e = g W2^T            [n, E]
    } else if (xp.proj == TextProjection::kLinear) {
      xlmr.proj1.Forward(pooled, n, buf.normed.data(), false);  // e = pooled W^T (+ b)  [n, E]
      embedded = buf.normed.data();
    }
    Normalize(embedded, n, p.embed_dim, out);
    return Status::Ok();
  }

  // Bidirectional multi-head attention over n packed sequences (see XlmrForward): qkv [M, 3W] ->
  // out [M, W], sequence seq being rows offsets[seq] .. offsets[seq + 1], none longer than `longest`.
  void PackedAttention(const float* qkv, int n, const int* offsets, int longest, const TowerParams& p,
                       float* out, Buffers& buf) {
    const int w = p.width, head_dim = w / p.heads, jobs = n * p.heads;
    const size_t scratch_floats =
        AttentionScratchFloats(static_cast<size_t>(longest), static_cast<size_t>(head_dim));
    const auto work =
        static_cast<size_t>(jobs) * static_cast<size_t>(longest) * static_cast<size_t>(longest * head_dim);
#pragma omp parallel for num_threads(threads) schedule(dynamic) if (work >= kParallelFloats)
    for (int job = 0; job < jobs; ++job) {
      const int seq = job / p.heads, head = job % p.heads;
      const auto len = static_cast<size_t>(offsets[seq + 1] - offsets[seq]);
      const float* base =
          qkv + static_cast<int64_t>(offsets[seq]) * 3 * w + static_cast<int64_t>(head) * head_dim;
      float* scratch = buf.scratch.data() + static_cast<size_t>(omp_get_thread_num()) * scratch_floats;
      kernels->attention_head(
          base, base + w, base + 2 * w, static_cast<size_t>(3 * w), len, len, static_cast<size_t>(head_dim),
          false, out + static_cast<int64_t>(offsets[seq]) * w + static_cast<int64_t>(head) * head_dim,
          static_cast<size_t>(w), scratch);
    }
  }

  std::vector<int> eot_scratch;   // per text: its end-of-text position
  std::vector<int> text_offsets;  // XLM-R: per text, its first packed row; then the total
  std::vector<int> class_rows;   // per image: 0, the class token
};

ClipModel::ClipModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ClipModel::~ClipModel() = default;

Result<std::unique_ptr<ClipModel>> ClipModel::Load(const std::string& model_dir, const LoadOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->threads = options.threads > 0 ? options.threads : omp_get_num_procs();
  if (options.max_batch < 1) return Status::InvalidArgument("LoadOptions::max_batch must be >= 1");
  GemmPrecision precision = GemmPrecision::kFp32;
  if (options.precision == LoadOptions::Precision::kBf16) {
    if (!__builtin_cpu_supports("avx512bf16")) {
      return Status::Unsupported("bf16 precision needs a CPU with AVX512-BF16; use fp32 or int8");
    }
    precision = GemmPrecision::kBf16;
  } else if (options.precision == LoadOptions::Precision::kInt8) {
    precision = GemmPrecision::kInt8;
  }
  impl->kernels = &BestClipKernels();

  // OpenCLIP's hub exports name their safetensors file open_clip_model.safetensors.
  std::string weights_path = model_dir + "/model.safetensors";
  if (!Env::Default()->FileExists(weights_path) && Env::Default()->FileExists(model_dir + "/open_clip_model.safetensors")) {
    weights_path = model_dir + "/open_clip_model.safetensors";
  }
  FS_ASSIGN_OR_RETURN(impl->file, SafetensorsFile::Open(weights_path));
  const SafetensorsFile& file = *impl->file;
  const bool hf_vision = file.Find("vision_model.embeddings.class_embedding") != nullptr;
  const bool openai_vision = file.Find("visual.class_embedding") != nullptr;
  if (!hf_vision && !openai_vision && !Env::Default()->FileExists(model_dir + "/config.json") &&
      !Env::Default()->FileExists(model_dir + "/open_clip_config.json")) {
    return Status::InvalidArgument(
        "'" + weights_path +
        "' is not a CLIP checkpoint: it has neither "
        "'vision_model.embeddings.class_embedding' (Hugging Face) nor "
        "'visual.class_embedding' (OpenAI/OpenCLIP), and the folder has no config");
  }
  std::string config_text;
  FS_ASSIGN_OR_RETURN(impl->params, ReadModelConfig(model_dir, file, &config_text));
  const ClipParams& params = impl->params;
  const bool xlmr = params.text_family == TextFamily::kXlmRoberta;
  // The image tower's names; an XLM-R tower's own names come from its layout (clip_config.h).
  Layout layout = hf_vision ? Layout::kHf : Layout::kOpenAi;
  if (params.has_vision && (xlmr ? !openai_vision : !hf_vision && !openai_vision)) {
    return Status::InvalidArgument("'" + weights_path +
                                   "' is not a CLIP checkpoint: it has neither "
                                   "'vision_model.embeddings.class_embedding' (Hugging Face) nor "
                                   "'visual.class_embedding' (OpenAI/OpenCLIP)");
  }
  if (impl->params.model_id.empty()) impl->params.model_id = BaseName(model_dir);

  impl->gemm = std::make_unique<GemmContext>(precision, impl->threads);
  omp_set_num_threads(impl->threads);
  // The packed-weight file of this precision, valid while the weights file, config and layout are
  // the ones it was made from (GemmContext adds oneDNN's version and the CPU's ISA to the key).
  std::string packed_path, packed_key;
  bool packed_valid = false;
  if (!options.packed_dir.empty()) {
    packed_path = options.packed_dir + "/clip-" + PrecisionName(precision) + ".fspack";
    packed_key = "clip;weights=" + file.identity() + ";config=" + Sha256Hex(config_text) +
                 ";layout=" + (layout == Layout::kHf ? "hf" : "openai") + ";family=" + FamilyName(params);
    Status s = impl->gemm->OpenPacked(packed_path, packed_key);
    packed_valid = s.ok();
    if (!s.ok() && s.code() != StatusCode::kNotFound) impl->load_report.packed_note = s.message();
  }
  // bf16/int8 whose weights are converted here: an fp32 twin runs the calibration inputs first, and
  // the input ranges it sees pick each GEMM's outlier channels (kept in fp32, clip_gemm.h); the twin
  // then checks the bound. A packed file was written only after that check passed, with the
  // channels it picked, so a load that maps one needs neither.
  std::unique_ptr<ClipModel> reference;
  if (precision != GemmPrecision::kFp32 && !packed_valid) {
    LoadOptions reference_options = options;
    reference_options.precision = LoadOptions::Precision::kFp32;
    reference_options.packed_dir.clear();
    FS_ASSIGN_OR_RETURN(reference, Load(model_dir, reference_options));
    FS_ASSIGN_OR_RETURN(auto ranges, reference->CalibrationRanges());
    impl->gemm->SetInputRanges(std::move(ranges));
  }
  impl->layout = layout;
  WeightReader reader(file, layout);
  if (params.has_vision) {
    FS_ASSIGN_OR_RETURN(impl->vision, LoadVision(impl->gemm.get(), reader, params));
  }
  if (xlmr) {
    FS_ASSIGN_OR_RETURN(impl->xlmr, LoadXlmr(impl->gemm.get(), reader, params, packed_valid));
  } else {
    FS_ASSIGN_OR_RETURN(impl->text, LoadText(impl->gemm.get(), reader, params, packed_valid));
  }
  // Every tensor accounted for: an extra one (a block past the config's layer count, another
  // architecture's tensor) means the checkpoint is not what the config says, and would otherwise
  // be dropped without a word. Only what the forward pass knowingly does not need is skipped: the
  // contrastive logit scale/bias, the position_ids buffers older transformers versions saved, and
  // the hyper-parameter scalars some OpenAI conversions keep.
  for (const char* unused : {"logit_scale", "logit_bias", "input_resolution", "context_length", "vocab_size",
                             "vision_model.embeddings.position_ids", "text_model.embeddings.position_ids"}) {
    reader.Ignore(unused);
  }
  FS_RETURN_IF_ERROR(reader.CheckAllUsed());
  LoadReport& report = impl->load_report;
  report.packed_path = packed_path;
  report.packed_hits = impl->gemm->packed_hits();
  report.packed_misses = impl->gemm->packed_misses();
  std::vector<const Linear*> linears = {&impl->vision.patch, &impl->vision.proj, &impl->text.proj,
                                        &impl->xlmr.proj1, &impl->xlmr.proj2};
  for (const Tower* tower : {&impl->vision.tower, &impl->text.tower, &impl->xlmr.tower}) {
    for (const Block& b : tower->blocks) linears.insert(linears.end(), {&b.qkv, &b.out, &b.fc1, &b.fc2});
  }
  for (const Linear* linear : linears) {
    impl->weight_bytes += linear->weight_bytes();
    impl->outlier_channels += linear->outlier_channels();
  }
  // Everything but the token table now lives in converted copies: let the kernel drop the pages.
  file.ReleasePages();
  auto model = std::unique_ptr<ClipModel>(new ClipModel(std::move(impl)));
  // A reduced precision must hold its bound on this model, or the load fails: checked whenever the
  // weights were converted here (a packed file is written only after the check passed).
  if (precision != GemmPrecision::kFp32 && report.packed_misses > 0) {
    FS_RETURN_IF_ERROR(CheckPrecisionBound(*model, reference.get(), model_dir, options));
  }
  if (!packed_path.empty() && report.packed_misses > 0) {
    Impl& loaded = *model->impl_;
    Status s = Env::Default()->CreateDirs(options.packed_dir);
    if (s.ok()) s = loaded.gemm->WritePacked(packed_path, packed_key);
    loaded.load_report.packed_written = s.ok();
    if (!s.ok()) {
      loaded.load_report.packed_note = "could not write packed weights (the next start packs again): " + s.message();
    }
  }
  return model;
}

namespace {

// Deterministic standard-normal values (an LCG and Box-Muller: the same on every platform, unlike
// std::normal_distribution), the calibration images' pixels.
class CalibrationNoise {
 public:
  explicit CalibrationNoise(uint64_t seed) : state_(seed) {}
  float Next() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double u1 = (static_cast<double>(NextBits()) + 1.0) / 4294967297.0;
    const double u2 = static_cast<double>(NextBits()) / 4294967296.0;
    const double r = std::sqrt(-2.0 * std::log(u1));
    spare_ = static_cast<float>(r * std::sin(6.283185307179586 * u2));
    has_spare_ = true;
    return static_cast<float>(r * std::cos(6.283185307179586 * u2));
  }
  uint32_t NextBits() {
    state_ = state_ * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>(state_ >> 32);
  }

 private:
  uint64_t state_;
  float spare_ = 0;
  bool has_spare_ = false;
};

// Built-in inputs for calibration and the bound check: noise images (pixels ~ N(0, 1), the spread
// of normalised photos) and texts of random ids, 5 to context_length tokens long.
struct CalibrationInputs {
  size_t images = 0;
  std::vector<float> pixels;
  std::vector<std::vector<int32_t>> ids;
};

CalibrationInputs MakeCalibrationInputs(const ClipModel& model, uint64_t seed, size_t images, size_t texts) {
  CalibrationNoise noise(seed);
  CalibrationInputs in;
  if (model.image_size() > 0) {
    const auto s = static_cast<size_t>(model.image_size());
    in.images = images;
    in.pixels.resize(images * 3 * s * s);
    for (float& v : in.pixels) v = noise.Next();
  }
  const int vocab = model.vocab_size(), context = model.context_length();
  constexpr std::array<int, 4> kLengths = {5, 9, 20, 77};
  in.ids.resize(texts);
  for (size_t text = 0; text < texts; ++text) {
    const int len = std::min(context, kLengths[text % kLengths.size()]);
    // CLIP: <|startoftext|> = vocab - 2 ... <|endoftext|> = vocab - 1 (the largest id, where the
    // features are read). XLM-R: <s> = 0 ... </s> = 2, words from 3 up.
    const bool xlmr = model.multilingual();
    const int first = xlmr ? 3 : 1, last = xlmr ? vocab - 1 : vocab - 3;
    in.ids[text].push_back(xlmr ? 0 : vocab - 2);
    for (int token = 2; token < len; ++token) {
      in.ids[text].push_back(first + static_cast<int>(noise.NextBits() % static_cast<uint32_t>(last - first + 1)));
    }
    in.ids[text].push_back(xlmr ? 2 : vocab - 1);
  }
  return in;
}

// Different inputs calibrate and check, so the check measures what unseen inputs get.
constexpr uint64_t kCalibrationSeed = 0x9E3779B97F4A7C15ull, kCheckSeed = 0x2545F4914F6CDD1Dull;

}  // namespace

Result<std::vector<std::vector<float>>> ClipModel::CalibrationRanges() {
  const CalibrationInputs in = MakeCalibrationInputs(*this, kCalibrationSeed, 8, 8);
  std::vector<float> out(std::max(in.images, in.ids.size()) * embed_dim());
  impl_->gemm->RecordInputRanges(true);
  Status s = Status::Ok();
  if (in.images > 0) s = EncodeImages(in.pixels, in.images, std::span(out).first(in.images * embed_dim()));
  if (s.ok()) s = EncodeTexts(in.ids, std::span(out).first(in.ids.size() * embed_dim()));
  impl_->gemm->RecordInputRanges(false);
  FS_RETURN_IF_ERROR(s);
  return impl_->gemm->TakeInputRanges();
}

// The bounds LoadOptions::Precision documents, measured as cosine against fp32 on built-in inputs
// (four images and four texts, not the calibration ones).
Status ClipModel::CheckPrecisionBound(ClipModel& model, ClipModel* reference, const std::string& model_dir,
                                      const LoadOptions& options) {
  const GemmPrecision precision = model.impl_->gemm->precision();
  const double bound = precision == GemmPrecision::kBf16 ? 0.999 : 0.995;
  std::unique_ptr<ClipModel> loaded;
  if (reference == nullptr) {
    LoadOptions reference_options = options;
    reference_options.precision = LoadOptions::Precision::kFp32;
    reference_options.packed_dir.clear();
    FS_ASSIGN_OR_RETURN(loaded, Load(model_dir, reference_options));
    reference = loaded.get();
  }
  const size_t d = model.embed_dim();
  double worst = 1.0;
  std::string worst_input;
  auto compare = [&](const std::vector<float>& a, const std::vector<float>& b, size_t n, const char* kind) {
    for (size_t row = 0; row < n; ++row) {
      double dot = 0;
      for (size_t i = 0; i < d; ++i) dot += static_cast<double>(a[row * d + i]) * b[row * d + i];
      if (dot < worst) {
        worst = dot;
        worst_input = std::string(kind) + " " + std::to_string(row);
      }
    }
  };
  const CalibrationInputs in = MakeCalibrationInputs(model, kCheckSeed, 4, 4);
  if (in.images > 0) {
    std::vector<float> ours(in.images * d), theirs(in.images * d);
    FS_RETURN_IF_ERROR(model.EncodeImages(in.pixels, in.images, ours));
    FS_RETURN_IF_ERROR(reference->EncodeImages(in.pixels, in.images, theirs));
    compare(ours, theirs, in.images, "image");
  }
  std::vector<float> ours(in.ids.size() * d), theirs(in.ids.size() * d);
  FS_RETURN_IF_ERROR(model.EncodeTexts(in.ids, ours));
  FS_RETURN_IF_ERROR(reference->EncodeTexts(in.ids, theirs));
  compare(ours, theirs, in.ids.size(), "text");
  model.impl_->calibration_cosine = worst;
  if (worst >= bound) return Status::Ok();
  char figure[64];
  std::snprintf(figure, sizeof figure, "%.4f", worst);
  return Status::Unsupported(std::string(PrecisionName(precision)) + " precision cannot hold its bound on '" +
                             model.model_id() + "': cosine " + figure + " against fp32 on built-in calibration " +
                             worst_input + " (the bound is " + (precision == GemmPrecision::kBf16 ? "0.999" : "0.995") +
                             ", with " + std::to_string(model.impl_->outlier_channels) +
                             " outlier channels kept in fp32); load it in fp32" +
                             (precision == GemmPrecision::kInt8 ? " or bf16" : ""));
}

Status ClipModel::EncodeImages(std::span<const float> pixels, size_t n, std::span<float> out) {
  const ClipParams& p = impl_->params;
  if (!p.has_vision) {
    return Status::FailedPrecondition("EncodeImages: model '" + p.model_id + "' is a text tower only (" +
                                      FamilyName(p) + "); it has no image tower");
  }
  const auto image_floats = static_cast<size_t>(3 * p.image_size * p.image_size);
  if (pixels.size() != n * image_floats) {
    return Status::InvalidArgument("EncodeImages: " + std::to_string(pixels.size()) + " floats for " +
                                   std::to_string(n) + " images; expected n x 3 x " +
                                   std::to_string(p.image_size) + " x " + std::to_string(p.image_size));
  }
  if (out.size() != n * embed_dim()) {
    return Status::InvalidArgument("EncodeImages: output holds " + std::to_string(out.size()) +
                                   " floats; expected n x " + std::to_string(embed_dim()));
  }
  std::lock_guard<std::mutex> lock(impl_->mu);
  omp_set_num_threads(impl_->threads);
  const auto batch = static_cast<size_t>(impl_->options.max_batch);
  for (size_t first = 0; first < n; first += batch) {
    const size_t count = std::min(batch, n - first);
    FS_RETURN_IF_ERROR(impl_->VisionForward(pixels.data() + first * image_floats, static_cast<int>(count),
                                            out.data() + first * embed_dim()));
  }
  return Status::Ok();
}

Status ClipModel::EncodeTexts(const std::vector<std::vector<int32_t>>& ids, std::span<float> out) {
  const ClipParams& p = impl_->params;
  if (out.size() != ids.size() * embed_dim()) {
    return Status::InvalidArgument("EncodeTexts: output holds " + std::to_string(out.size()) +
                                   " floats; expected " + std::to_string(ids.size()) + " x " +
                                   std::to_string(embed_dim()));
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i].empty() || ids[i].size() > static_cast<size_t>(p.context_length)) {
      return Status::InvalidArgument("EncodeTexts: text " + std::to_string(i) + " has " +
                                     std::to_string(ids[i].size()) + " tokens; expected 1 to " +
                                     std::to_string(p.context_length) + " (truncate it)");
    }
    for (int32_t id : ids[i]) {
      if (id < 0 || id >= vocab_size()) {
        return Status::InvalidArgument("EncodeTexts: text " + std::to_string(i) + " has token id " +
                                       std::to_string(id) + ", outside the vocabulary [0, " +
                                       std::to_string(vocab_size()) + ")");
      }
    }
    if (p.text_family == TextFamily::kXlmRoberta && std::count(ids[i].begin(), ids[i].end(), p.xlmr.pad_id) ==
                                                        static_cast<std::ptrdiff_t>(ids[i].size())) {
      return Status::InvalidArgument("EncodeTexts: text " + std::to_string(i) + " is all padding (id " +
                                     std::to_string(p.xlmr.pad_id) + "); it needs at least one token");
    }
  }
  std::lock_guard<std::mutex> lock(impl_->mu);
  omp_set_num_threads(impl_->threads);
  const auto batch = static_cast<size_t>(impl_->options.max_batch);
  for (size_t first = 0; first < ids.size(); first += batch) {
    const size_t count = std::min(batch, ids.size() - first);
    float* dst = out.data() + first * embed_dim();
    FS_RETURN_IF_ERROR(impl_->params.text_family == TextFamily::kXlmRoberta
                           ? impl_->XlmrForward(ids, first, static_cast<int>(count), dst)
                           : impl_->TextForward(ids, first, static_cast<int>(count), dst));
  }
  return Status::Ok();
}

size_t ClipModel::embed_dim() const { return static_cast<size_t>(impl_->params.embed_dim); }
int ClipModel::image_size() const {
  return impl_->params.has_vision ? impl_->params.image_size : 0;
}
int ClipModel::context_length() const { return impl_->params.context_length; }
int ClipModel::vocab_size() const {
  return impl_->params.text_family == TextFamily::kXlmRoberta ? impl_->params.xlmr.vocab_size
                                                              : impl_->params.vocab_size;
}
std::string ClipModel::family() const {
  return FamilyName(impl_->params);
}
bool ClipModel::multilingual() const {
  return impl_->params.text_family == TextFamily::kXlmRoberta;
}
int ClipModel::pad_id() const {
  return multilingual() ? impl_->params.xlmr.pad_id : -1;
}
ClipModel::ImageReference ClipModel::image_reference() const {
  return impl_->layout == Layout::kHf ? ImageReference::kTransformers : ImageReference::kTorchvision;
}
std::string ClipModel::image_reference_name() const {
  return image_reference() == ImageReference::kTransformers
             ? "transformers CLIPImageProcessor (crop offset rounded down)"
             : "torchvision (OpenAI/OpenCLIP preprocess, crop offset rounded half to even)";
}
const std::string& ClipModel::model_id() const { return impl_->params.model_id; }
double ClipModel::gemm_gflop() const { return impl_->gemm->gflop(); }
const LoadReport& ClipModel::load_report() const { return impl_->load_report; }

std::string ClipModel::Describe() const {
  const ClipParams& p = impl_->params;
  const bool xlmr = p.text_family == TextFamily::kXlmRoberta;
  const TowerParams& text = xlmr ? p.xlmr.encoder : p.text;
  const char* proj = !xlmr                                    ? ""
                     : p.xlmr.proj == TextProjection::kMlp    ? ", mean pooling + MLP projection"
                     : p.xlmr.proj == TextProjection::kLinear ? ", mean pooling + linear projection"
                                                              : ", mean pooling";
  return p.model_id + " [" + FamilyName(p) + "]: " +
         (p.has_vision
              ? "image " + std::to_string(p.image_size) + "px/" + std::to_string(p.patch_size) + " width " +
                    std::to_string(p.vision.width) + " x" + std::to_string(p.vision.layers) + ", "
              : std::string("no image tower, ")) +
         "text width " + std::to_string(text.width) + " x" + std::to_string(text.layers) + proj + ", embed " +
         std::to_string(p.embed_dim) + ", " + PrecisionName(impl_->gemm->precision()) + " (" +
         std::to_string(impl_->weight_bytes >> 20) + " MB of GEMM weights), kernels " + impl_->kernels->name +
         ", " + std::to_string(impl_->threads) + " threads" +
         (impl_->calibration_cosine > 0
              ? ", cosine " + std::to_string(impl_->calibration_cosine).substr(0, 6) +
                    " against fp32 on the calibration inputs"
              : std::string()) +
         (impl_->outlier_channels > 0
              ? ", " + std::to_string(impl_->outlier_channels) + " outlier input channels computed in fp32"
              : std::string()) +
         (impl_->load_report.packed_path.empty() ? std::string()
          : impl_->load_report.packed_misses == 0
              ? ", packed weights mapped from " + impl_->load_report.packed_path
          : impl_->load_report.packed_written
              ? ", packed weights written to " + impl_->load_report.packed_path
              : std::string());
}

}  // namespace fs::clip
