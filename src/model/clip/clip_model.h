// model/clip: CLIP image and text towers on the CPU. ClipModel::Load reads a model folder
// (model.safetensors + config.json in the Hugging Face CLIPModel layout, or OpenAI/OpenCLIP tensor
// names with open_clip_config.json or no config at all; or a multilingual XLM-RoBERTa text tower:
// OpenCLIP xlm-roberta-*-ViT-*, or a text tower alone in Hugging Face or M-CLIP names, see
// clip_config.h), memory-maps the weights, validates every
// tensor (name, shape, dtype, finite values) and converts them once into the GEMM layout of the
// chosen precision. Encode* turn preprocessed images / token ids into L2-normalised embeddings.
// Shapes: pixels [n, 3, S, S] fp32 (S = image_size(), already normalised with CLIP's mean/std);
// token ids: per text <= 77 ids with <|startoftext|> and <|endoftext|> included; out [n, E] fp32
// (E = embed_dim()), cosine similarity = dot product.
// Thread-safety: one Encode* call at a time per ClipModel (calls are serialised by an internal mutex);
// each call runs on LoadOptions::threads OpenMP threads. The const accessors are safe anywhere.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"

namespace fs::clip {

struct LoadOptions {
  // Threads per Encode* call; 0 = all cores of the machine.
  int threads = 0;
  // Weight and activation precision of the GEMMs (layer norms, softmax and residuals stay fp32).
  //   kFp32: exact (cosine >= 0.9999 against PyTorch).
  //   kBf16: bf16 weights and GEMM inputs, fp32 accumulation; needs AVX512-BF16; cosine >= 0.999.
  //   kInt8: int8 weights (per-column scales) and inputs (one dynamic scale per row), int32
  //          accumulation (AVX512-VNNI where present); cosine >= 0.995.
  // A reduced precision is held to its bound: whenever its weights are converted (not mapped from
  // a packed file, which is written only after this check passed), the load first loads the model
  // in fp32 and runs built-in calibration inputs through it; each GEMM then keeps its outlier input
  // channels and outlier weight rows in fp32 (trained towers' 15-30x residual channels, see
  // kernels/clip_gemm.h), and the image tower's patch embedding stays fp32. Then other built-in
  // images and texts are encoded both ways, and the load fails with kUnsupported, naming the
  // cosine, if any falls below the bound. Never silently degraded; costs one more fp32 load.
  enum class Precision { kFp32, kBf16, kInt8 } precision = Precision::kFp32;
  // Largest number of images or texts run through the towers at once; bigger requests are split.
  // Bounds the activation buffers (about 1 MB per image for ViT-B/32 in fp32).
  int max_batch = 32;
  // Folder of the packed-weight files ("" = none). A load whose weights file, config, precision,
  // oneDNN and CPU match a file there maps the converted weights from it instead of reading,
  // converting and packing model.safetensors (cold start; see docs/architecture.md); any other
  // load packs as usual and writes the file for next time. The folder is created when missing; a
  // file that cannot be read or written only costs that speed-up (LoadReport says why).
  std::string packed_dir;
};

// How Load got its weights.
struct LoadReport {
  std::string packed_path;  // the packed-weight file consulted; empty without LoadOptions::packed_dir
  int packed_hits = 0;      // GEMM weight matrices mapped from it
  int packed_misses = 0;    // GEMM weight matrices read from model.safetensors and packed
  bool packed_written = false;  // this load wrote packed_path
  std::string packed_note;  // why the file was not used or not written, if that went wrong
};

class ClipModel {
 public:
  // model_dir holds model.safetensors and config.json (see the file comment). Errors name the file
  // and the tensor: kNotFound (missing file or tensor), kCorruption (truncated file, bad header,
  // NaN/Inf weights), kInvalidArgument (shape or config mismatch), kUnsupported (dtype, CPU).
  static Result<std::unique_ptr<ClipModel>> Load(const std::string& model_dir,
                                                 const LoadOptions& options);
  ~ClipModel();
  ClipModel(const ClipModel&) = delete;
  ClipModel& operator=(const ClipModel&) = delete;

  // pixels: n x 3 x S x S floats. out: n x embed_dim, L2-normalised.
  Status EncodeImages(std::span<const float> pixels, size_t n, std::span<float> out);
  // ids: one list per text, start/end tokens included, 1..context_length() ids in [0, vocab).
  // CLIP: the text's features are taken at its largest id (the end-of-text token), as OpenAI and HF
  // do; positions after it are not computed. XLM-R (multilingual()): ids from the XLM-R tokenizer
  // (<s> ... </s>); pad_id() tokens are dropped wherever they are (OpenCLIP's attention mask is
  // ids != pad), the rest mean-pooled and projected. out: ids.size() x embed_dim, L2-normalised.
  Status EncodeTexts(const std::vector<std::vector<int32_t>>& ids, std::span<float> out);

  size_t embed_dim() const;
  int image_size() const;
  int context_length() const;
  int vocab_size() const;
  // From config.json's _name_or_path, else the folder's name ("openai/clip-vit-base-patch32").
  const std::string& model_id() const;
  // Which text tower the folder holds: "clip", or "xlm-roberta (OpenCLIP|Hugging Face|M-CLIP)".
  std::string family() const;
  // True for an XLM-RoBERTa text tower: EncodeTexts then takes XLM-R ids (<s>=0 ... </s>=2, padding
  // pad_id() anywhere is skipped), and image_size() is 0 when the folder has no image tower.
  bool multilingual() const;
  int pad_id() const;  // XLM-R's <pad> (1); -1 for CLIP
  // Whose image preprocessing made the vectors this folder's layout is published with, and so
  // whose centre crop Preprocess must reproduce (preprocess.h CropRounding): Hugging Face names
  // were made with transformers' CLIPImageProcessor (crop offset rounded down), OpenAI/OpenCLIP
  // names with torchvision's CenterCrop (rounded half to even). The two differ by one pixel when
  // the resized side exceeds the crop by an odd number of pixels.
  enum class ImageReference { kTorchvision, kTransformers };
  ImageReference image_reference() const;
  // "torchvision (OpenAI/OpenCLIP preprocess)" or "transformers CLIPImageProcessor".
  std::string image_reference_name() const;
  // Human-readable summary: sizes, precision, kernels, weight bytes.
  std::string Describe() const;
  // GFLOP executed by GEMMs since Load (for benchmarks).
  double gemm_gflop() const;
  const LoadReport& load_report() const;

 private:
  struct Impl;
  explicit ClipModel(std::unique_ptr<Impl> impl);
  // Fails (kUnsupported, naming the precision, the cosine and the input) when `model`, loaded in
  // bf16 or int8, falls below its bound against `reference`, an fp32 load of the same folder (loaded
  // here when null).
  static Status CheckPrecisionBound(ClipModel& model, ClipModel* reference, const std::string& model_dir,
                                    const LoadOptions& options);
  // Runs built-in calibration inputs and returns every GEMM's input channel ranges (clip_gemm.h).
  Result<std::vector<std::vector<float>>> CalibrationRanges();
  std::unique_ptr<Impl> impl_;
};

}  // namespace fs::clip
