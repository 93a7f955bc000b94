#include "engine/clip_embedder.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <thread>

#include "image/image.h"
#include "model/clip/clip_model.h"
#include "model/clip/preprocess.h"
#include "model/clip/tokenizer.h"

namespace fs {

struct ClipEmbedder::Impl {
  ClipEmbedderOptions options;
  std::unique_ptr<clip::ClipModel> model;
  std::unique_ptr<clip::Tokenizer> tokenizer;
  std::mutex forward_mu;  // one forward pass at a time

  image::DecodeOptions Decode() const {
    image::DecodeOptions d;
    d.max_side = options.max_image_side;
    d.max_pixels = options.max_image_pixels;
    d.max_file_bytes = options.max_image_bytes;
    d.min_short_side = 2 * model->image_size();  // shrink-on-load keeps 2x the model's input
    return d;
  }

  Status PreprocessInto(const image::RgbImage& img, std::span<float> out) const {
    clip::PreprocessOptions p;
    p.size = model->image_size();
    return clip::Preprocess(img.pixels.data(), img.width, img.height, static_cast<size_t>(img.width) * 3, p, out);
  }
};

ClipEmbedder::ClipEmbedder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ClipEmbedder::~ClipEmbedder() = default;

std::string ResolveModelDir(const std::string& flag_value) {
  if (!flag_value.empty()) return flag_value;
  if (const char* v = std::getenv("FILESEARCH_MODEL_DIR"); v && *v) return v;
  return "";
}

Result<std::unique_ptr<ClipEmbedder>> ClipEmbedder::Load(const std::string& model_dir,
                                                         const ClipEmbedderOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  clip::LoadOptions lo;
  lo.threads = options.threads;
  if (options.precision == "fp32") lo.precision = clip::LoadOptions::Precision::kFp32;
  else if (options.precision == "bf16") lo.precision = clip::LoadOptions::Precision::kBf16;
  else if (options.precision == "int8") lo.precision = clip::LoadOptions::Precision::kInt8;
  else return Status::InvalidArgument("unknown precision '" + options.precision + "': use fp32, bf16 or int8");
  FS_ASSIGN_OR_RETURN(impl->model, clip::ClipModel::Load(model_dir, lo));
  FS_ASSIGN_OR_RETURN(impl->tokenizer, clip::Tokenizer::LoadDir(model_dir));
  return std::unique_ptr<ClipEmbedder>(new ClipEmbedder(std::move(impl)));
}

const std::string& ClipEmbedder::model_id() const { return impl_->model->model_id(); }
size_t ClipEmbedder::dim() const { return impl_->model->embed_dim(); }

Status ClipEmbedder::EmbedFiles(std::span<const std::string> paths, std::span<float> out,
                                std::vector<Status>* per_file) {
  const size_t dim = this->dim();
  const auto s = static_cast<size_t>(impl_->model->image_size());
  const size_t plane = 3 * s * s;
  if (out.size() != paths.size() * dim) return Status::InvalidArgument("output buffer has the wrong size");
  per_file->assign(paths.size(), Status::Ok());
  std::fill(out.begin(), out.end(), 0.0f);
  // Decode and preprocess every file, on all cores (libvips and the preprocessing are thread-safe;
  // this is most of the work for large photos); only the good ones go through the model, in one batch.
  const size_t n = paths.size();
  std::vector<float> pixels(n * plane);
  image::DecodeOptions decode = impl_->Decode();
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i; (i = next.fetch_add(1)) < n;) {
      auto img = image::DecodeFile(paths[i], decode);
      if (!img.ok()) {
        (*per_file)[i] = img.status();
        continue;
      }
      (*per_file)[i] = impl_->PreprocessInto(*img, std::span<float>(pixels.data() + i * plane, plane));
    }
  };
  const size_t workers = std::min<size_t>(n, std::max(1u, std::thread::hardware_concurrency()));
  std::vector<std::thread> pool;
  for (size_t w = 1; w < workers; ++w) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  std::vector<size_t> good;
  for (size_t i = 0; i < n; ++i) {
    if (!(*per_file)[i].ok()) continue;
    if (good.size() != i) std::copy_n(pixels.begin() + static_cast<ptrdiff_t>(i * plane), plane,
                                      pixels.begin() + static_cast<ptrdiff_t>(good.size() * plane));
    good.push_back(i);
  }
  pixels.resize(good.size() * plane);
  if (good.empty()) return Status::Ok();
  std::vector<float> vecs(good.size() * dim);
  {
    std::lock_guard lock(impl_->forward_mu);
    FS_RETURN_IF_ERROR(impl_->model->EncodeImages(pixels, good.size(), vecs));
  }
  for (size_t g = 0; g < good.size(); ++g) {
    std::copy(vecs.begin() + static_cast<ptrdiff_t>(g * dim), vecs.begin() + static_cast<ptrdiff_t>((g + 1) * dim),
              out.begin() + static_cast<ptrdiff_t>(good[g] * dim));
  }
  return Status::Ok();
}

Result<std::vector<float>> ClipEmbedder::EmbedText(std::string_view text) {
  FS_ASSIGN_OR_RETURN(std::vector<int32_t> ids, impl_->tokenizer->Encode(text));
  std::vector<float> out(dim());
  std::lock_guard lock(impl_->forward_mu);
  FS_RETURN_IF_ERROR(impl_->model->EncodeTexts({ids}, out));
  return out;
}

Result<std::vector<float>> ClipEmbedder::EmbedImageBytes(std::string_view bytes) {
  FS_ASSIGN_OR_RETURN(image::RgbImage img, image::DecodeMemory(bytes, impl_->Decode()));
  const auto s = static_cast<size_t>(impl_->model->image_size());
  std::vector<float> pixels(3 * s * s);
  FS_RETURN_IF_ERROR(impl_->PreprocessInto(img, pixels));
  std::vector<float> out(dim());
  std::lock_guard lock(impl_->forward_mu);
  FS_RETURN_IF_ERROR(impl_->model->EncodeImages(pixels, 1, out));
  return out;
}

}  // namespace fs
