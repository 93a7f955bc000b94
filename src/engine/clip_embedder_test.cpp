// The real embedding path end to end: generated CLIP weights (tiny towers, CLIP's real 49,408-token
// vocabulary) in the Hugging Face layout + the real tokenizer from ../shared/clip + real photos
// from ../shared/corpus, indexed through the Engine and searched by text, by uploaded image bytes
// and by similarity. Random weights carry no meaning, so the checks are structural: an uploaded
// copy of an indexed photo finds that photo at cosine ~1, the file and bytes paths agree, bad
// images are reported per file, and a text query reaches the vector leg.
#include "engine/clip_embedder.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/engine.h"
#include "model/clip/clip_test_util.h"

namespace fs {
namespace {

namespace stdfs = std::filesystem;

std::string Shared() {
  const char* v = std::getenv("FILESEARCH_SHARED_DIR");
  return v ? v : "../shared";
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(ClipEmbedderTest, IndexAndSearchWithGeneratedWeights) {
  const std::string tokenizer = Shared() + "/clip/tokenizer.json";
  const std::string kodak = Shared() + "/corpus/photos/kodak";
  if (!stdfs::exists(tokenizer) || !stdfs::exists(kodak)) {
    GTEST_SKIP() << "needs ../shared/clip/tokenizer.json and ../shared/corpus/photos/kodak (not present here)";
  }
  std::string why;
  auto model_dir = clip::testing::GenerateReference("--size small-vocab --no-reference --images 0 --texts 0", &why);
  if (!model_dir) GTEST_SKIP() << why;
  stdfs::copy_file(tokenizer, *model_dir + "/tokenizer.json");

  ClipEmbedderOptions eo;
  auto clip = ClipEmbedder::Load(*model_dir, eo);
  ASSERT_TRUE(clip.ok()) << clip.status().ToString();
  const std::string model = (*clip)->model_id();
  EXPECT_EQ((*clip)->dim(), 32u);

  // A folder of 6 real photos, one corrupt "jpeg" and one text file.
  const std::string base = *model_dir + "/work";
  stdfs::create_directories(base + "/files");
  std::vector<std::string> photos;
  for (auto& e : stdfs::directory_iterator(kodak)) {
    if (e.path().extension() == ".png" && photos.size() < 6) {
      photos.push_back(e.path().filename().string());
      stdfs::copy_file(e.path(), base + "/files/" + e.path().filename().string());
    }
  }
  ASSERT_EQ(photos.size(), 6u);
  std::ofstream(base + "/files/broken.jpg", std::ios::binary) << "\xFF\xD8\xFF\xE0 this is not really a jpeg";
  std::ofstream(base + "/files/notes.txt") << "holiday photos from the lake";

  EngineOptions o;
  o.data_dir = base + "/data";
  o.progress = false;
  auto engine = Engine::Open(o);
  ASSERT_TRUE(engine.ok());
  auto clip_for_engine = ClipEmbedder::Load(*model_dir, eo);
  ASSERT_TRUE(clip_for_engine.ok());
  ASSERT_TRUE((*engine)->SetEmbedder(std::move(clip_for_engine).value()).ok());
  auto report = (*engine)->Index(base + "/files");
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->embedded, 6u);
  ASSERT_EQ(report->embed_failures.size(), 1u);
  EXPECT_NE(report->embed_failures[0].path.find("broken.jpg"), std::string::npos);

  // Search by an uploaded copy of a photo: that photo first, cosine ~1.
  auto query = (*clip)->EmbedImageBytes(ReadAll(base + "/files/" + photos[2]));
  ASSERT_TRUE(query.ok()) << query.status().ToString();
  double norm = 0;
  for (float v : *query) norm += static_cast<double>(v) * v;
  EXPECT_NEAR(norm, 1.0, 1e-4);
  SearchRequest r;
  r.vector = *query;
  r.vector_model = model;
  r.size = 3;
  auto res = (*engine)->Search(r);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  ASSERT_FALSE(res->hits.empty());
  EXPECT_EQ(res->hits[0].doc.name, photos[2]);
  EXPECT_GT(res->hits[0].vector.score, 0.9999);

  // A text query reaches the vector leg; hybrid fuses it with the keyword leg.
  auto text = (*clip)->EmbedText("holiday photos from the lake");
  ASSERT_TRUE(text.ok());
  SearchRequest h;
  h.query = "holiday";
  h.vector = *text;
  h.vector_model = model;
  h.size = 10;
  auto hybrid = (*engine)->Search(h);
  ASSERT_TRUE(hybrid.ok()) << hybrid.status().ToString();
  EXPECT_EQ(hybrid->mode, SearchMode::kHybrid);
  bool saw_text = false, saw_vector = false;
  for (auto& hit : hybrid->hits) {
    saw_text |= hit.text.present;
    saw_vector |= hit.vector.present;
  }
  EXPECT_TRUE(saw_text && saw_vector);

  // Hostile input to the query path: a clear error, no crash.
  EXPECT_FALSE((*clip)->EmbedImageBytes("GIF89a garbage").ok());
  EXPECT_FALSE((*clip)->EmbedImageBytes("").ok());
  auto bad_utf8 = (*clip)->EmbedText("caf\xC3 \xFF");
  EXPECT_TRUE(bad_utf8.ok());  // invalid bytes become U+FFFD
  clip::testing::RemoveTree(*model_dir);
}

}  // namespace
}  // namespace fs
