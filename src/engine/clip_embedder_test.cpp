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
#include <optional>
#include <sstream>
#include <atomic>
#include <chrono>
#include <thread>

#include <unistd.h>

#include "engine/engine.h"
#include "model/clip/clip_model.h"
#include "model/clip/clip_test_util.h"
#include "model/clip/text_tokenizer.h"

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

// Generated weights with the real tokenizer, in a fresh directory; nullopt (and why) when the
// tokenizer, the photos or the generator are not available here.
std::optional<std::string> GeneratedModel(const std::string& kodak, std::string* why) {
  const std::string tokenizer = Shared() + "/clip/tokenizer.json";
  if (!stdfs::exists(tokenizer) || !stdfs::exists(kodak)) {
    *why = "needs ../shared/clip/tokenizer.json and ../shared/corpus/photos/kodak (not present here)";
    return std::nullopt;
  }
  auto model_dir = clip::testing::GenerateReference("--size small-vocab --no-reference --images 0 --texts 0", why);
  if (model_dir) stdfs::copy_file(tokenizer, *model_dir + "/tokenizer.json");
  return model_dir;
}

TEST(ClipEmbedderTest, IndexAndSearchWithGeneratedWeights) {
  const std::string kodak = Shared() + "/corpus/photos/kodak";
  std::string why;
  auto model_dir = GeneratedModel(kodak, &why);
  if (!model_dir) GTEST_SKIP() << why;

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
  // The first load packed the weights next to the model; this one maps them.
  EXPECT_TRUE(stdfs::exists(*model_dir + "/packed/clip-fp32.fspack"));
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

// The picture floor with random weights: no photo should stand out for any text, so a hybrid text
// query brings its keyword matches alone and a nonsense word brings nothing (engine/search.h).
TEST(ClipEmbedderTest, HybridTextQueriesWithRandomWeightsBringNoUnrelatedPhotos) {
  const std::string kodak = Shared() + "/corpus/photos/kodak";
  std::string why;
  auto model_dir = GeneratedModel(kodak, &why);
  if (!model_dir) GTEST_SKIP() << why;
  const std::string base = *model_dir + "/work";
  stdfs::create_directories(base + "/files/manual");
  size_t photos = 0;
  for (auto& e : stdfs::directory_iterator(kodak)) {
    if (e.path().extension() == ".png" && photos < 16) {
      stdfs::copy_file(e.path(), base + "/files/" + e.path().filename().string());
      ++photos;
    }
  }
  ASSERT_EQ(photos, 16u);
  for (int i = 0; i < 12; ++i) {
    std::ofstream(base + "/files/manual/chapter" + std::to_string(i) + ".txt")
        << "Building a Debian package, part " << i;
  }
  EngineOptions o;
  o.data_dir = base + "/data";
  o.progress = false;
  auto engine = Engine::Open(o);
  ASSERT_TRUE(engine.ok());
  auto clip = ClipEmbedder::Load(*model_dir, ClipEmbedderOptions{});
  ASSERT_TRUE(clip.ok()) << clip.status().ToString();
  auto query_clip = ClipEmbedder::Load(*model_dir, ClipEmbedderOptions{});
  ASSERT_TRUE(query_clip.ok());
  ASSERT_TRUE((*engine)->SetEmbedder(std::move(clip).value()).ok());
  (*engine)->SetQueryEmbedder(query_clip->get());
  auto report = (*engine)->Index(base + "/files");
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_EQ(report->embedded, 16u);

  auto search = [&](const std::string& q) {
    SearchRequest r;
    r.query = q;
    r.size = 50;
    QueryVectorSource source;  // keywords reach the vector leg through the text tower
    EXPECT_TRUE((*engine)->ResolveQueryVector(source, &r).ok());
    EXPECT_TRUE(r.vector_from_text);
    auto res = (*engine)->Search(r);
    EXPECT_TRUE(res.ok()) << res.status().ToString();
    EXPECT_EQ(res->mode, SearchMode::kHybrid);
    return std::move(res).value();
  };
  SearchResult nonsense = search("zqxjkvw");
  EXPECT_TRUE(nonsense.hits.empty());
  EXPECT_EQ(nonsense.total, 0u);
  SearchResult debian = search("debian package");
  EXPECT_EQ(debian.total, 12u);
  ASSERT_EQ(debian.hits.size(), 12u);
  for (const auto& h : debian.hits) {
    EXPECT_TRUE(h.text.present) << h.doc.name;
    EXPECT_FALSE(h.vector.present) << h.doc.name;
  }
  SearchResult kodim = search("kodim");  // part of every photo's name: found by words
  EXPECT_EQ(kodim.total, 16u);
  for (const auto& h : kodim.hits) EXPECT_TRUE(h.text.present) << h.doc.name;
  clip::testing::RemoveTree(*model_dir);
}

TEST(ClipEmbedderTest, PackedDirDefaultsNextToTheModelElseToTheUserCache) {
  const std::string tmp = stdfs::temp_directory_path() / ("fs_packed_" + std::to_string(::getpid()));
  stdfs::create_directories(tmp + "/model");
  EXPECT_EQ(ResolvePackedDir(tmp + "/model", "off"), "");
  EXPECT_EQ(ResolvePackedDir(tmp + "/model", "/elsewhere"), "/elsewhere");
  EXPECT_EQ(ResolvePackedDir(tmp + "/model", ""), tmp + "/model/packed");
  // A folder we cannot write (here: one that does not exist, which fails even for root).
  const char* old = std::getenv("XDG_CACHE_HOME");
  const std::string saved = old ? old : "";
  ::setenv("XDG_CACHE_HOME", (tmp + "/cache").c_str(), 1);
  const std::string a = ResolvePackedDir("/nonexistent/models/a", "");
  const std::string b = ResolvePackedDir("/nonexistent/models/b", "");
  EXPECT_EQ(a.rfind(tmp + "/cache/filesearch/packed/", 0), 0u) << a;
  EXPECT_EQ(a.size(), (tmp + "/cache/filesearch/packed/").size() + 16);
  EXPECT_NE(a, b);
  EXPECT_EQ(a, ResolvePackedDir("/nonexistent/models/a", ""));
  if (old) ::setenv("XDG_CACHE_HOME", saved.c_str(), 1);
  else ::unsetenv("XDG_CACHE_HOME");
  stdfs::remove_all(tmp);
}

// Concurrent text queries share forward passes (group commit) and the recent-query cache; each
// caller still gets exactly its own text's embedding: int8 quantises per row, so the batched result
// is bit-identical to the text embedded alone.
TEST(ClipEmbedderTest, ConcurrentTextQueriesAreBatchedAndExact) {
  const std::string tokenizer = Shared() + "/clip/tokenizer.json";
  if (!stdfs::exists(tokenizer)) GTEST_SKIP() << "needs ../shared/clip/tokenizer.json (not present here)";
  std::string why;
  auto model_dir = clip::testing::GenerateReference("--size small-vocab --no-reference --images 0 --texts 0", &why);
  if (!model_dir) GTEST_SKIP() << why;
  stdfs::copy_file(tokenizer, *model_dir + "/tokenizer.json");
  ClipEmbedderOptions eo;
  eo.precision = "int8";
  eo.threads = 1;
  eo.query_cache_entries = 0;
  auto clip = ClipEmbedder::Load(*model_dir, eo);
  ASSERT_TRUE(clip.ok()) << clip.status().ToString();
  std::vector<std::string> texts;
  for (int i = 0; i < 24; ++i) {
    std::string t = "photo number " + std::to_string(i) + " of a dog";
    for (int j = 0; j < i % 7; ++j) t += " on the beach";  // different lengths share a batch
    texts.push_back(t);
  }
  std::vector<std::vector<float>> alone;
  for (const auto& t : texts) {
    auto v = (*clip)->EmbedText(t);
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    alone.push_back(*v);
  }
  const QueryEmbedderStats before = (*clip)->stats();
  EXPECT_EQ(before.text_forward_passes, texts.size());  // one at a time: one pass each
  constexpr int kThreads = 8, kRounds = 10;
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> pool;
  for (int t = 0; t < kThreads; ++t) {
    pool.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        const size_t i = static_cast<size_t>(t * kRounds + round) % texts.size();
        auto v = (*clip)->EmbedText(texts[i]);
        if (!v.ok() || *v != alone[i]) ++mismatches[static_cast<size_t>(t)];
      }
    });
  }
  for (auto& th : pool) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(mismatches[static_cast<size_t>(t)], 0) << "thread " << t;
  const QueryEmbedderStats after = (*clip)->stats();
  const uint64_t queries = kThreads * kRounds;
  EXPECT_EQ(after.text_queries - before.text_queries, queries);
  EXPECT_EQ(after.text_batched - before.text_batched, queries);
  EXPECT_EQ(after.text_cache_hits, 0u);

  // Deterministic batching: the first pass is held until the other 7 queries are queued; they
  // then share the second pass, so 8 queries take exactly 2 passes.
  std::atomic<int> passes{0};
  std::atomic<bool> timed_out{false};
  ClipEmbedder* held = nullptr;
  eo.before_text_pass = [&] {
    if (passes.fetch_add(1) != 0) return;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (held->stats().text_waiting < kThreads - 1) {
      if (std::chrono::steady_clock::now() > deadline) {
        timed_out = true;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  };
  auto gated = ClipEmbedder::Load(*model_dir, eo);
  ASSERT_TRUE(gated.ok());
  held = gated->get();
  std::vector<int> gated_mismatch(kThreads, 0);
  pool.clear();
  for (int t = 0; t < kThreads; ++t) {
    pool.emplace_back([&, t] {
      auto v = held->EmbedText(texts[static_cast<size_t>(t)]);
      if (!v.ok() || *v != alone[static_cast<size_t>(t)]) gated_mismatch[static_cast<size_t>(t)] = 1;
    });
  }
  for (auto& th : pool) th.join();
  EXPECT_FALSE(timed_out.load());
  EXPECT_EQ(held->stats().text_forward_passes, 2u);
  EXPECT_EQ(held->stats().text_batched, static_cast<uint64_t>(kThreads));
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(gated_mismatch[static_cast<size_t>(t)], 0) << "thread " << t;
  eo.before_text_pass = nullptr;

  // The recent-query cache: a repeat (or a text that tokenises alike) is answered without a pass.
  eo.query_cache_entries = 2;
  auto cached = ClipEmbedder::Load(*model_dir, eo);
  ASSERT_TRUE(cached.ok());
  ASSERT_TRUE((*cached)->EmbedText(texts[0]).ok());
  auto again = (*cached)->EmbedText("  PHOTO number 0 of a DOG ");  // CLIP lower-cases, splits on spaces
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, alone[0]);
  ASSERT_TRUE((*cached)->EmbedText(texts[1]).ok());
  ASSERT_TRUE((*cached)->EmbedText(texts[2]).ok());  // evicts texts[0] (capacity 2)
  ASSERT_TRUE((*cached)->EmbedText(texts[0]).ok());
  const QueryEmbedderStats c = (*cached)->stats();
  EXPECT_EQ(c.text_queries, 5u);
  EXPECT_EQ(c.text_cache_hits, 1u);
  EXPECT_EQ(c.text_forward_passes, 4u);
  clip::testing::RemoveTree(*model_dir);
}

// A multilingual model folder (OpenCLIP xlm-roberta layout, generated by the oracle with seeded
// weights): the embedder reads XLM-R's tokenizer.json, so a Japanese query reaches the text tower
// as XLM-R ids. Its vector equals the tower's on the ids of the real XLM-R tokenizer, and differs
// from what CLIP's BPE ids would give; without tokenizer.json the folder is refused, naming it.
TEST(ClipEmbedderTest, MultilingualModelReadsXlmrIds) {
  const std::string tokenizer = Shared() + "/multilingual/xlm-roberta/tokenizer.json";
  const std::string vectors = Shared() + "/multilingual/xlm-roberta/test-vectors.json";
  if (!stdfs::exists(tokenizer) || !stdfs::exists(vectors)) {
    GTEST_SKIP() << "needs ../shared/multilingual/xlm-roberta (not present here)";
  }
  std::string why;
  auto out = clip::testing::GenerateReference("--size small --images 0 --layouts openclip --vectors " + vectors, &why,
                                              "xlmr_reference.py", ".venv-oracle/bin/python",
                                              "import torch, transformers, importlib.util as u; assert u.find_spec('open_clip')");
  if (!out) GTEST_SKIP() << why;
  const std::string dir = *out + "/openclip";
  ASSERT_TRUE(stdfs::exists(dir)) << "the oracle wrote no openclip folder in " << *out;
  auto refused = ClipEmbedder::Load(dir, ClipEmbedderOptions{});
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("tokenizer.json"), std::string::npos) << refused.status().ToString();

  stdfs::copy_file(tokenizer, dir + "/tokenizer.json", stdfs::copy_options::overwrite_existing);
  auto clip = ClipEmbedder::Load(dir, ClipEmbedderOptions{});
  ASSERT_TRUE(clip.ok()) << clip.status().ToString();
  const std::string query = "雪の中の赤い車";  // "a red car in the snow"
  auto got = (*clip)->EmbedText(query);
  ASSERT_TRUE(got.ok()) << got.status().ToString();

  auto xlmr = clip::LoadTextTokenizer(tokenizer);
  ASSERT_TRUE(xlmr.ok()) << xlmr.status().ToString();
  auto ids = (*xlmr)->Encode(query, 77);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(ids->front(), 0);  // <s>
  EXPECT_EQ(ids->back(), 2);   // </s>
  auto model = clip::testing::LoadOrDie(dir);
  ASSERT_NE(model, nullptr);
  std::vector<float> want(model->embed_dim());
  ASSERT_TRUE(model->EncodeTexts({*ids}, want).ok());
  EXPECT_GE(clip::testing::Cosine(*got, want, 0, want.size()), 0.99999) << "the query went through XLM-R's ids";
  // CLIP's ids for the same text (start 49406) are not what the tower read.
  std::vector<int32_t> other = *ids;
  other[1] = other[1] == 5 ? 6 : 5;
  std::vector<float> wrong(model->embed_dim());
  ASSERT_TRUE(model->EncodeTexts({other}, wrong).ok());
  EXPECT_LT(clip::testing::Cosine(*got, wrong, 0, wrong.size()), 0.9999) << "a different id changes the vector (the check can fail)";
}

}  // namespace
}  // namespace fs
