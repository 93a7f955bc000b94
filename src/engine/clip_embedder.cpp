#include "engine/clip_embedder.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <list>
#include <thread>
#include <unordered_map>

#include "core/hash.h"
#include "core/log.h"
#include "image/image.h"
#include "model/clip/clip_model.h"
#include "model/clip/preprocess.h"
#include "model/clip/text_tokenizer.h"
#include "model/clip/tokenizer.h"

namespace fs {

struct ClipEmbedder::Impl {
  ClipEmbedderOptions options;
  std::string model_dir;
  std::unique_ptr<clip::ClipModel> model;
  std::unique_ptr<clip::TextTokenizer> tokenizer;  // CLIP BPE, or XLM-R Unigram for multilingual towers
  std::mutex forward_mu;  // one forward pass at a time

  // Text queries waiting for the text tower. The first to find no pass running takes the queue
  // (up to text_batch) and runs it; the others wait to be filled in or to take the next batch.
  struct TextJob {
    std::vector<int32_t> ids;
    std::vector<float> out;
    Status status;
    bool done = false;
  };
  std::mutex text_mu;
  std::condition_variable text_cv;
  std::deque<TextJob*> text_queue;  // guarded by text_mu
  bool text_running = false;        // guarded by text_mu

  // LRU of recent query embeddings keyed by token ids (texts that tokenise alike share an entry).
  std::mutex cache_mu;
  std::list<std::pair<std::string, std::vector<float>>> lru;  // most recent first
  std::unordered_map<std::string, decltype(lru)::iterator> lru_index;

  std::atomic<uint64_t> text_queries{0}, text_cache_hits{0}, text_forward_passes{0}, text_batched{0};

  static std::string CacheKey(const std::vector<int32_t>& ids) {
    std::string key(ids.size() * sizeof(int32_t), '\0');
    std::memcpy(key.data(), ids.data(), key.size());
    return key;
  }

  bool CacheLookup(const std::string& key, std::vector<float>* out) {
    std::lock_guard lock(cache_mu);
    auto it = lru_index.find(key);
    if (it == lru_index.end()) return false;
    lru.splice(lru.begin(), lru, it->second);
    *out = it->second->second;
    return true;
  }

  void CacheInsert(std::string key, const std::vector<float>& v) {
    std::lock_guard lock(cache_mu);
    if (lru_index.count(key) != 0) return;
    lru.emplace_front(std::move(key), v);
    lru_index.emplace(lru.front().first, lru.begin());
    while (lru.size() > options.query_cache_entries) {
      lru_index.erase(lru.back().first);
      lru.pop_back();
    }
  }

  // Runs one forward pass for `batch`. If it fails (a bad text), each text is run alone so that
  // every caller gets its own text's error, not a neighbour's.
  void RunTextBatch(const std::vector<TextJob*>& batch) {
    const size_t d = model->embed_dim();
    std::vector<std::vector<int32_t>> ids;
    ids.reserve(batch.size());
    for (TextJob* job : batch) ids.push_back(job->ids);
    std::vector<float> out(batch.size() * d);
    Status status;
    if (options.before_text_pass) options.before_text_pass();
    {
      std::lock_guard lock(forward_mu);
      status = model->EncodeTexts(ids, out);
    }
    text_forward_passes.fetch_add(1);
    text_batched.fetch_add(batch.size());
    if (!status.ok() && batch.size() > 1) {
      for (TextJob* job : batch) RunTextBatch({job});
      return;
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      batch[i]->status = status;
      if (status.ok()) batch[i]->out.assign(out.begin() + static_cast<ptrdiff_t>(i * d),
                                            out.begin() + static_cast<ptrdiff_t>((i + 1) * d));
    }
  }

  Result<std::vector<float>> EncodeText(std::vector<int32_t> ids) {
    TextJob job;
    job.ids = std::move(ids);
    std::unique_lock lock(text_mu);
    text_queue.push_back(&job);
    while (!job.done) {
      if (text_running) {
        text_cv.wait(lock);
        continue;
      }
      text_running = true;
      std::vector<TextJob*> batch;
      const auto most = static_cast<size_t>(std::max(1, options.text_batch));
      while (!text_queue.empty() && batch.size() < most) {
        batch.push_back(text_queue.front());
        text_queue.pop_front();
      }
      lock.unlock();
      RunTextBatch(batch);
      lock.lock();
      for (TextJob* j : batch) j->done = true;
      text_running = false;
      text_cv.notify_all();
    }
    if (!job.status.ok()) return job.status;
    return std::move(job.out);
  }

  image::DecodeOptions Decode() const {
    image::DecodeOptions d;
    d.max_side = options.max_image_side;
    d.max_pixels = options.max_image_pixels;
    d.max_file_bytes = options.max_image_bytes;
    // Shrink-on-load keeps 2x the model's input; the exact mode decodes JPEGs at full size.
    d.min_short_side = options.exact_decode ? 0 : 2 * model->image_size();
    // Over max_side, only the part the crop reads is decoded, at full resolution: reducing the
    // whole image first would move the crop (a 2572 x 1740 PNG was cropped a pixel off).
    d.window = [size = model->image_size(), crop = Rounding()](int width, int height) {
      auto r = clip::CropSourceWindow(width, height, size, crop);
      return r.ok() ? image::Rect{r->x, r->y, r->width, r->height} : image::Rect{0, 0, width, height};
    };
    return d;
  }

  clip::CropRounding Rounding() const {
    return model->image_reference() == clip::ClipModel::ImageReference::kTransformers
               ? clip::CropRounding::kFloor
               : clip::CropRounding::kHalfToEven;
  }

  // The perceptual hash of a decoded image. A windowed decode (an image over max_side) holds only
  // the crop's part, so its hash comes from a decode of the whole image reduced to max_side, as
  // for every other image (a resized copy must hash alike).
  Result<uint64_t> HashOf(const image::RgbImage& img, const std::string& path) const {
    if (img.full_width == 0) return image::PerceptualHash(img);
    image::DecodeOptions whole = Decode();
    whole.window = nullptr;
    FS_ASSIGN_OR_RETURN(image::RgbImage reduced, image::DecodeFile(path, whole));
    return image::PerceptualHash(reduced);
  }

  Status PreprocessInto(const image::RgbImage& img, std::span<float> out) const {
    clip::PreprocessOptions p;
    p.size = model->image_size();
    p.crop = Rounding();
    return clip::Preprocess(img.pixels.data(), img.width, img.height, static_cast<size_t>(img.width) * 3, p, out,
                            clip::PixelWindow{img.x0, img.y0, img.full_width, img.full_height});
  }
};

ClipEmbedder::ClipEmbedder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ClipEmbedder::~ClipEmbedder() = default;

std::string ResolveModelDir(const std::string& flag_value) {
  if (!flag_value.empty()) return flag_value;
  if (const char* v = std::getenv("FILESEARCH_MODEL_DIR"); v && *v) return v;
  return "";
}

std::string ResolvePackedDir(const std::string& model_dir, const std::string& packed_dir) {
  if (packed_dir == "off") return "";
  if (!packed_dir.empty()) return packed_dir;
  if (::access(model_dir.c_str(), W_OK) == 0) return model_dir + "/packed";
  std::string base;
  if (const char* v = std::getenv("XDG_CACHE_HOME"); v && *v) base = v;
  else if (const char* home = std::getenv("HOME"); home && *home) base = std::string(home) + "/.cache";
  else return "";
  char* real = ::realpath(model_dir.c_str(), nullptr);
  const std::string key = real != nullptr ? real : model_dir;
  std::free(real);
  return base + "/filesearch/packed/" + Sha256Hex(key).substr(0, 16);
}

Result<std::unique_ptr<ClipEmbedder>> ClipEmbedder::Load(const std::string& model_dir,
                                                         const ClipEmbedderOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->model_dir = model_dir;
  clip::LoadOptions lo;
  lo.threads = options.threads;
  if (options.precision == "fp32") lo.precision = clip::LoadOptions::Precision::kFp32;
  else if (options.precision == "bf16") lo.precision = clip::LoadOptions::Precision::kBf16;
  else if (options.precision == "int8") lo.precision = clip::LoadOptions::Precision::kInt8;
  else return Status::InvalidArgument("unknown precision '" + options.precision + "': use fp32, bf16 or int8");
  lo.packed_dir = ResolvePackedDir(model_dir, options.packed_dir);
  FS_ASSIGN_OR_RETURN(impl->model, clip::ClipModel::Load(model_dir, lo));
  const clip::LoadReport& report = impl->model->load_report();
  if (!report.packed_note.empty()) LogWarn("CLIP model: " + report.packed_note);
  if (report.packed_written) {
    std::error_code ec;
    const auto bytes = std::filesystem::file_size(report.packed_path, ec);
    // Told to a person at a terminal (like a progress bar); scripts reading stderr get it at debug.
    LogMessage(::isatty(2) ? LogLevel::kInfo : LogLevel::kDebug,
               "CLIP model: converted weights saved to " + report.packed_path + " (" +
                   std::to_string(ec ? 0 : bytes >> 20) + " MB) so later starts map them; --packed-dir off keeps none");
  }
  if (impl->model->multilingual()) {
    // The XLM-R text towers read XLM-R's SentencePiece ids (tokenizer.json, model.type Unigram).
    const std::string file = (std::filesystem::path(model_dir) / "tokenizer.json").string();
    if (!std::filesystem::exists(file)) {
      return Status::NotFound("the multilingual model in " + model_dir +
                              " needs its tokenizer: put XLM-R's tokenizer.json beside the weights");
    }
    FS_ASSIGN_OR_RETURN(impl->tokenizer, clip::LoadTextTokenizer(file));
    if (impl->tokenizer->start_id() != 0) {
      return Status::InvalidArgument(file + " is not an XLM-R tokenizer (its start token is not <s> = 0), "
                                     "but the model's text tower is XLM-RoBERTa");
    }
  } else {
    FS_ASSIGN_OR_RETURN(impl->tokenizer, clip::Tokenizer::LoadDir(model_dir));
  }
  return std::unique_ptr<ClipEmbedder>(new ClipEmbedder(std::move(impl)));
}

Result<std::unique_ptr<ImageEmbedder>> ClipEmbedder::Clone(int threads) const {
  ClipEmbedderOptions o = impl_->options;
  o.threads = threads;
  o.decode_threads = threads;
  o.before_text_pass = nullptr;
  FS_ASSIGN_OR_RETURN(auto copy, Load(impl_->model_dir, o));
  return std::unique_ptr<ImageEmbedder>(std::move(copy));
}

const std::string& ClipEmbedder::model_id() const { return impl_->model->model_id(); }
size_t ClipEmbedder::dim() const { return impl_->model->embed_dim(); }

Status ClipEmbedder::EmbedFiles(std::span<const std::string> paths, std::span<float> out,
                                std::vector<Status>* per_file, std::vector<uint64_t>* phash) {
  const size_t dim = this->dim();
  const auto s = static_cast<size_t>(impl_->model->image_size());
  const size_t plane = 3 * s * s;
  if (out.size() != paths.size() * dim) return Status::InvalidArgument("output buffer has the wrong size");
  per_file->assign(paths.size(), Status::Ok());
  if (phash != nullptr) phash->assign(paths.size(), 0);
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
      if (phash != nullptr && (*per_file)[i].ok()) {  // ~0.3 ms, same pixels (but see HashOf)
        auto hash = impl_->HashOf(*img, paths[i]);
        (*phash)[i] = hash.ok() ? *hash : 0;
      }
    }
  };
  const size_t cores = impl_->options.decode_threads > 0 ? static_cast<size_t>(impl_->options.decode_threads)
                                                        : std::max(1u, std::thread::hardware_concurrency());
  const size_t workers = std::min<size_t>(n, cores);
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
  FS_ASSIGN_OR_RETURN(std::vector<int32_t> ids,
                      impl_->tokenizer->Encode(text, static_cast<size_t>(impl_->model->context_length())));
  impl_->text_queries.fetch_add(1);
  const bool cached = impl_->options.query_cache_entries > 0;
  std::string key = cached ? Impl::CacheKey(ids) : std::string();
  std::vector<float> out;
  if (cached && impl_->CacheLookup(key, &out)) {
    impl_->text_cache_hits.fetch_add(1);
    return out;
  }
  FS_ASSIGN_OR_RETURN(out, impl_->EncodeText(std::move(ids)));
  if (cached) impl_->CacheInsert(std::move(key), out);
  return out;
}

QueryEmbedderStats ClipEmbedder::stats() const {
  QueryEmbedderStats s;
  s.text_queries = impl_->text_queries.load();
  s.text_cache_hits = impl_->text_cache_hits.load();
  s.text_forward_passes = impl_->text_forward_passes.load();
  s.text_batched = impl_->text_batched.load();
  std::lock_guard lock(impl_->text_mu);
  s.text_waiting = impl_->text_queue.size();
  return s;
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
