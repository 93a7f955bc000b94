// The multilingual (XLM-RoBERTa) text tower against the real libraries: tests/clip/xlmr_reference.py
// builds small seeded models with open_clip_torch (CustomTextCLIP, the xlm-roberta-base-ViT-B-32
// class) and transformers (XLMRobertaModel; M-CLIP's wrapper), writes them in their own tensor names
// and computes reference embeddings of real XLM-R ids (../shared test vectors, 29 languages/scripts).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "model/clip/clip_model.h"
#include "model/clip/clip_test_util.h"

namespace fs::clip {
namespace {

using testing::Cosine;
using testing::Reference;
using testing::LoadOrDie;
using testing::ReadFloats;
using testing::ReadIds;
using Precision = LoadOptions::Precision;

// One Python start-up writes the three layouts (same seed). Removed at exit.
const Reference* GetReference(const std::string& layout, std::string* why) {
  return testing::SharedReference("xlmr-small", layout, [](std::string* reason) -> std::optional<std::string> {
    const char* shared = std::getenv("FILESEARCH_SHARED_DIR");
    const std::string vectors = (shared ? std::string(shared) : testing::SourceDir() + "/../shared") +
                                "/multilingual/xlm-roberta/test-vectors.json";
    if (!std::filesystem::exists(vectors)) {
      *reason = "no XLM-R test vectors at " + vectors + " (../shared is absent)";
      return std::nullopt;
    }
    return testing::GenerateReference(
        "--size small --images 2 --vectors " + vectors, reason, "xlmr_reference.py", ".venv-oracle/bin/python",
        "import torch, transformers, importlib.util as u; assert u.find_spec('open_clip')");
  }, why);
}

// Every text (and image, where the folder has an image tower) against the oracle; prints the worst.
void ExpectClose(ClipModel& model, const Reference& ref, double min_cosine) {
  const double worst = testing::ExpectMatches(model, ref, min_cosine);
  std::cout << "  " << model.family() << ": lowest text cosine " << std::setprecision(7) << worst << " over "
            << ref.ids.size() << " texts\n";
}

TEST(XlmrModelTest, OpenClipLayoutMatchesOpenClip) {
  REFERENCE_OR_SKIP(ref, "openclip");
  auto model = LoadOrDie(ref->dir);
  ASSERT_NE(model, nullptr);
  EXPECT_TRUE(model->multilingual());
  EXPECT_EQ(model->family(), "xlm-roberta (OpenCLIP)");
  EXPECT_EQ(model->embed_dim(), 32u);
  EXPECT_EQ(model->image_size(), 64);
  EXPECT_EQ(model->context_length(), 77);
  EXPECT_EQ(model->vocab_size(), 250002);
  EXPECT_EQ(model->pad_id(), 1);
  EXPECT_NE(model->Describe().find("mean pooling + MLP projection"), std::string::npos) << model->Describe();
  ExpectClose(*model, *ref, 0.9999);
}

TEST(XlmrModelTest, HfLayoutMatchesTransformers) {
  REFERENCE_OR_SKIP(ref, "hf");
  auto model = LoadOrDie(ref->dir);
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(model->family(), "xlm-roberta (Hugging Face)");
  EXPECT_EQ(model->model_id(), "test/xlmr-hf");
  EXPECT_EQ(model->image_size(), 0);
  EXPECT_EQ(model->context_length(), 512);
  ExpectClose(*model, *ref, 0.9999);
  std::vector<float> pixels(3 * 64 * 64), out(model->embed_dim());
  EXPECT_EQ(model->EncodeImages(pixels, 1, out).code(), StatusCode::kFailedPrecondition);
}

TEST(XlmrModelTest, MClipLayoutMatchesTransformers) {
  REFERENCE_OR_SKIP(ref, "mclip");
  auto model = LoadOrDie(ref->dir);
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(model->family(), "xlm-roberta (M-CLIP)");
  EXPECT_NE(model->Describe().find("linear projection"), std::string::npos) << model->Describe();
  ExpectClose(*model, *ref, 0.9999);
}

// The CLIP towers' bounds (clip_model.h): bf16 0.999, int8 0.995, images included.
TEST(XlmrModelTest, Bf16WithinBound) {
  if (!__builtin_cpu_supports("avx512bf16")) GTEST_SKIP() << "CPU lacks AVX512-BF16";
  REFERENCE_OR_SKIP(ref, "openclip");
  auto model = LoadOrDie(ref->dir, Precision::kBf16);
  ASSERT_NE(model, nullptr);
  ExpectClose(*model, *ref, 0.999);
}

TEST(XlmrModelTest, Int8WithinBound) {
  REFERENCE_OR_SKIP(ref, "openclip");
  auto model = LoadOrDie(ref->dir, Precision::kInt8);
  ASSERT_NE(model, nullptr);
  ExpectClose(*model, *ref, 0.995);
}

// Padding, wherever it is, and the other texts of a batch do not change a text's embedding.
TEST(XlmrModelTest, PaddingAndBatchDoNotChangeAText) {
  REFERENCE_OR_SKIP(ref, "openclip");
  auto model = LoadOrDie(ref->dir);
  ASSERT_NE(model, nullptr);
  const size_t d = model->embed_dim();
  std::vector<float> batch(ref->ids.size() * d);
  ASSERT_TRUE(model->EncodeTexts(ref->ids, batch).ok());
  for (size_t i = 0; i < ref->ids.size(); i += 5) {
    std::vector<int32_t> bare;
    for (int32_t id : ref->ids[i]) {
      if (id != 1) bare.push_back(id);
    }
    std::vector<int32_t> inner = bare;  // a pad inside the text: masked and skipped by position
    inner.insert(inner.begin() + 1, 1);
    std::vector<float> alone(2 * d);
    ASSERT_TRUE(model->EncodeTexts({bare, inner}, alone).ok());
    const std::vector<float> row(batch.begin() + static_cast<std::ptrdiff_t>(i * d),
                                 batch.begin() + static_cast<std::ptrdiff_t>((i + 1) * d));
    const std::vector<float> with_pad(alone.begin() + static_cast<std::ptrdiff_t>(d), alone.end());
    EXPECT_GE(Cosine(alone, row, 0, d), 0.99999) << "text " << i;
    EXPECT_GE(Cosine(with_pad, row, 0, d), 0.99999) << "text " << i << " with an inner pad";
  }
  std::vector<float> out(d);
  EXPECT_EQ(model->EncodeTexts({{1, 1, 1}}, out).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(model->EncodeTexts({{0, 250002, 2}}, out).code(), StatusCode::kInvalidArgument);
}

// A copy of a reference folder whose safetensors header a test edits.
class XlmrDamagedTest : public ::testing::Test {
 protected:
  void Prepare(const std::string& layout) {
    std::string why;
    ref_ = GetReference(layout, &why);
    if (ref_ == nullptr) GTEST_SKIP() << why;
    dir_ = ref_->dir + "_edited";
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    for (const auto& entry : std::filesystem::directory_iterator(ref_->dir)) {
      if (entry.path().extension() == ".json") std::filesystem::copy_file(entry.path(), dir_ + "/" + entry.path().filename().string());
    }
    std::ifstream in(ref_->dir + "/model.safetensors", std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string bytes = ss.str();
    uint64_t len = 0;
    std::memcpy(&len, bytes.data(), 8);
    header_ = nlohmann::json::parse(bytes.substr(8, len));
    data_ = bytes.substr(8 + len);
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  void WriteWeights() {
    const std::string h = header_.dump();
    const uint64_t len = h.size();
    std::ofstream(dir_ + "/model.safetensors", std::ios::binary)
        << std::string(reinterpret_cast<const char*>(&len), 8) << h << data_;
  }
  void WriteConfig(const std::string& name, const nlohmann::json& config) {
    std::ofstream(dir_ + "/" + name) << config.dump();
  }
  nlohmann::json ReadConfig(const std::string& name) {
    std::ifstream in(dir_ + "/" + name);
    return nlohmann::json::parse(in);
  }
  Status Load() {
    auto model = ClipModel::Load(dir_, LoadOptions{});
    return model.ok() ? Status::Ok() : model.status();
  }

  const Reference* ref_ = nullptr;
  std::string dir_, data_;
  nlohmann::json header_;
};

TEST_F(XlmrDamagedTest, ExtraTensorIsNamed) {
  Prepare("hf");
  if (ref_ == nullptr) return;
  header_["encoder.layer.7.output.dense.weight"] = {{"dtype", "F32"}, {"shape", {1}},
                                                    {"data_offsets", {data_.size(), data_.size() + 4}}};
  data_ += std::string(4, '\0');
  WriteWeights();
  const Status s = Load();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("'encoder.layer.7.output.dense.weight'"), std::string::npos) << s.ToString();
}

TEST_F(XlmrDamagedTest, MissingTensorIsNamed) {
  Prepare("mclip");
  if (ref_ == nullptr) return;
  header_.erase("LinearTransformation.bias");
  WriteWeights();
  const Status s = Load();
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.message().find("LinearTransformation.bias"), std::string::npos) << s.ToString();
}

TEST_F(XlmrDamagedTest, ConfigMismatchesAreNamed) {
  Prepare("mclip");
  if (ref_ == nullptr) return;
  WriteWeights();
  nlohmann::json config = ReadConfig("config.json");
  config["transformerDimensions"] = 1024;
  WriteConfig("config.json", config);
  Status s = Load();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("transformerDimensions"), std::string::npos) << s.ToString();
  config["transformerDimensions"] = 64;
  config["num_hidden_layers"] = 3;  // the file has two layers
  WriteConfig("config.json", config);
  s = Load();
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.message().find("transformer.encoder.layer.2."), std::string::npos) << s.ToString();
}

TEST_F(XlmrDamagedTest, OpenClipEncoderMustBeKnownOrDescribed) {
  Prepare("openclip");
  if (ref_ == nullptr) return;
  WriteWeights();
  std::filesystem::remove(dir_ + "/config.json");  // sizes now from the name: xlm-roberta-base
  Status s = Load();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);  // 768-wide tensors expected, 64 found
  EXPECT_NE(s.message().find("[250002, 768]"), std::string::npos) << s.ToString();
  nlohmann::json config = ReadConfig("open_clip_config.json");
  config["model_cfg"]["text_cfg"]["hf_model_name"] = "org/xlm-roberta-tiny";
  WriteConfig("open_clip_config.json", config);
  s = Load();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("org/xlm-roberta-tiny"), std::string::npos) << s.ToString();
}

}  // namespace
}  // namespace fs::clip
