// Full-size check (label integration): generated weights with the real ViT-B/32 shapes, ours against
// the PyTorch oracle in fp32, bf16 and int8, and the OpenAI layout with shapes inferred (no config).
// Debian's PyTorch needs ~3 s per ViT-B/32 image here, so few images and texts.
#include <gtest/gtest.h>

#include "model/clip/clip_model.h"
#include "model/clip/clip_test_util.h"

namespace fs::clip {
namespace {

using namespace fs::clip::testing;
using Precision = LoadOptions::Precision;

void CheckModel(const std::string& args, const std::vector<std::pair<Precision, double>>& runs) {
  std::string why;
  auto dir = GenerateReference(args, &why);
  if (!dir) GTEST_SKIP() << why;
  const auto pixels = ReadFloats(*dir + "/pixels.f32");
  const auto image_ref = ReadFloats(*dir + "/image_emb.f32");
  const auto text_ref = ReadFloats(*dir + "/text_emb.f32");
  const auto ids = ReadIds(*dir + "/text_ids.json");
  for (auto [precision, min_cosine] : runs) {
    if (precision == Precision::kBf16 && !__builtin_cpu_supports("avx512bf16")) continue;
    LoadOptions options;
    options.precision = precision;
    auto model = ClipModel::Load(*dir, options);
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    const size_t d = (*model)->embed_dim();
    ASSERT_EQ(d, 512u);
    ASSERT_EQ((*model)->image_size(), 224);
    const size_t images = image_ref.size() / d;
    std::vector<float> image_out(images * d), text_out(ids.size() * d);
    ASSERT_TRUE((*model)->EncodeImages(pixels, images, image_out).ok());
    ASSERT_TRUE((*model)->EncodeTexts(ids, text_out).ok());
    for (size_t i = 0; i < images; ++i) {
      const double c = Cosine(image_out, image_ref, i, d);
      EXPECT_GE(c, min_cosine) << "image " << i;
      std::printf("precision %d image %zu cosine %.7f\n", static_cast<int>(precision), i, c);
    }
    for (size_t i = 0; i < ids.size(); ++i) {
      const double c = Cosine(text_out, text_ref, i, d);
      EXPECT_GE(c, min_cosine) << "text " << i << " (" << ids[i].size() << " tokens)";
      std::printf("precision %d text %zu (%zu tokens) cosine %.7f\n", static_cast<int>(precision), i,
                  ids[i].size(), c);
    }
  }
  RemoveTree(*dir);
}

TEST(ClipModelB32Test, HfLayoutAllPrecisions) {
  CheckModel("--size b32 --images 2 --texts 3",
             {{Precision::kFp32, 0.9999}, {Precision::kBf16, 0.999}, {Precision::kInt8, 0.995}});
}

TEST(ClipModelB32Test, OpenAiLayoutInferredFromShapes) {
  CheckModel("--size b32 --layout openai --images 1 --texts 2 --seed 7", {{Precision::kFp32, 0.9999}});
}

}  // namespace
}  // namespace fs::clip
