#include "model/clip/clip_test_util.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

namespace fs::clip::testing {

std::string SourceDir() {
  const char* source = std::getenv("FILESEARCH_SOURCE_DIR");
  return source ? source : ".";
}

std::optional<std::string> GenerateReference(const std::string& args, std::string* why,
                                             const std::string& script, const std::string& python,
                                             const std::string& check) {
  const std::string path = SourceDir() + "/tests/clip/" + script;
  if (!std::filesystem::exists(path)) {
    *why = "cannot find " + path + " (set FILESEARCH_SOURCE_DIR)";
    return std::nullopt;
  }
  const std::string interpreter = python[0] == '/' ? python : SourceDir() + "/" + python;
  if (std::system((interpreter + " -c \"" + check + "\" >/dev/null 2>&1").c_str()) != 0) {
    *why = interpreter + " fails `" + check + "`" +
           (python == "/usr/bin/python3" ? " (install python3-torch)" : " (run scripts/py-oracle-deps)");
    return std::nullopt;
  }
  std::string dir = (std::filesystem::temp_directory_path() / "clip_ref_XXXXXX").string();
  if (mkdtemp(dir.data()) == nullptr) {
    *why = "mkdtemp failed";
    return std::nullopt;
  }
  const std::string cmd = interpreter + " " + path + " --out " + dir + " " + args;
  if (std::system(cmd.c_str()) != 0) {
    *why = "reference generator failed: " + cmd;
    return std::nullopt;
  }
  return dir;
}

std::optional<std::string> GenerateTinyModel(const std::string& shared, std::string* why) {
  const std::string tokenizer = shared + "/clip/tokenizer.json";
  if (!std::filesystem::exists(tokenizer)) {
    *why = "needs " + tokenizer + " (the real CLIP tokenizer; not present here)";
    return std::nullopt;
  }
  auto dir = GenerateReference("--size small-vocab --no-reference --images 0 --texts 0", why);
  if (dir) std::filesystem::copy_file(tokenizer, *dir + "/tokenizer.json");
  return dir;
}

void SuiteTinyModel::Make(const std::string& shared, const std::string& needs) {
  if (!std::filesystem::exists(shared + "/" + needs)) {
    why_ = "needs " + shared + "/" + needs + " (not present here)";
    return;
  }
  if (auto dir = GenerateTinyModel(shared, &why_)) dir_ = *dir;
}

void SuiteTinyModel::Remove() {
  if (!dir_.empty()) RemoveTree(dir_);
  dir_.clear();
}

const Reference* SharedReference(const std::string& key, const std::string& variant,
                                 const std::function<std::optional<std::string>(std::string*)>& make,
                                 std::string* why) {
  struct Generated {
    std::optional<std::string> root;
    std::string why;
    std::map<std::string, Reference> variants;
  };
  static struct Roots {
    std::map<std::string, Generated> by_key;
    ~Roots() {
      for (const auto& [key, generated] : by_key) {
        if (generated.root) RemoveTree(*generated.root);
      }
    }
  } roots;
  auto it = roots.by_key.find(key);
  if (it == roots.by_key.end()) {
    Generated generated;
    generated.root = make(&generated.why);
    it = roots.by_key.emplace(key, std::move(generated)).first;
  }
  Generated& generated = it->second;
  *why = generated.why;
  if (!generated.root) return nullptr;
  auto ref = generated.variants.find(variant);
  if (ref == generated.variants.end()) {
    const std::string dir = *generated.root + "/" + variant;
    Reference r{dir, {}, {}, ReadFloats(dir + "/text_emb.f32"), ReadIds(dir + "/text_ids.json")};
    if (std::filesystem::exists(dir + "/pixels.f32")) {
      r.pixels = ReadFloats(dir + "/pixels.f32");
      r.image_emb = ReadFloats(dir + "/image_emb.f32");
    }
    ref = generated.variants.emplace(variant, std::move(r)).first;
  }
  return &ref->second;
}

double ExpectMatches(ClipModel& model, const Reference& ref, double min_cosine) {
  const size_t d = model.embed_dim(), texts = ref.ids.size();
  EXPECT_EQ(ref.text_emb.size(), texts * d);
  std::vector<float> text_out(texts * d);
  EXPECT_TRUE(model.EncodeTexts(ref.ids, text_out).ok());
  double worst = 1.0;
  for (size_t i = 0; i < texts; ++i) {
    const double cosine = Cosine(text_out, ref.text_emb, i, d);
    EXPECT_GE(cosine, min_cosine) << "text " << i;
    worst = std::min(worst, cosine);
  }
  double norm = 0;
  for (size_t i = 0; i < d; ++i) norm += text_out[i] * text_out[i];
  EXPECT_NEAR(norm, 1.0, 1e-5);
  if (!ref.pixels.empty()) {
    const size_t images = ref.image_emb.size() / d;
    std::vector<float> image_out(images * d);
    EXPECT_TRUE(model.EncodeImages(ref.pixels, images, image_out).ok());
    for (size_t i = 0; i < images; ++i) {
      EXPECT_GE(Cosine(image_out, ref.image_emb, i, d), min_cosine) << "image " << i;
    }
  }
  return worst;
}

std::unique_ptr<ClipModel> LoadWithOutliers(const std::string& dir, LoadOptions::Precision precision) {
  LoadOptions options;
  options.threads = 2;
  options.precision = precision;
  auto model = ClipModel::Load(dir, options);
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  if (!model.ok()) return nullptr;
  std::printf("  %s\n", (*model)->Describe().c_str());
  EXPECT_NE((*model)->Describe().find("outlier input channels computed in fp32"), std::string::npos);
  return std::move(*model);
}

std::unique_ptr<ClipModel> LoadOrDie(const std::string& dir, LoadOptions::Precision precision, int threads) {
  LoadOptions options;
  options.precision = precision;
  options.threads = threads;
  auto model = ClipModel::Load(dir, options);
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  return model.ok() ? std::move(model).value() : nullptr;
}

std::vector<float> ReadFloats(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string bytes = ss.str();
  std::vector<float> out(bytes.size() / 4);
  std::memcpy(out.data(), bytes.data(), out.size() * 4);
  return out;
}

std::vector<std::vector<int32_t>> ReadIds(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in).get<std::vector<std::vector<int32_t>>>();
}

double Cosine(const std::vector<float>& a, const std::vector<float>& b, size_t row, size_t d) {
  double dot = 0, na = 0, nb = 0;
  for (size_t i = row * d; i < (row + 1) * d; ++i) {
    dot += static_cast<double>(a[i]) * b[i];
    na += static_cast<double>(a[i]) * a[i];
    nb += static_cast<double>(b[i]) * b[i];
  }
  return dot / std::sqrt(na * nb);
}

void RemoveTree(const std::string& dir) {
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace fs::clip::testing
