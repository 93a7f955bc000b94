#include "model/clip/xlmr_tokenizer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "core/base64.h"
#include "core/check.h"
#include "core/utf8.h"
#include "model/clip/tokenizer_test_util.h"
#include "model/clip/unicode.h"

namespace fs::clip {
namespace {

namespace stdfs = std::filesystem;
using Json = nlohmann::json;
using V = std::vector<int32_t>;

using testing::ReplaceInvalidUtf8;
using testing::TempDir;

V Ids(const TextTokenizer& t, std::string_view text, size_t max_len = 0) {
  Result<V> ids = t.Encode(text, max_len);
  EXPECT_TRUE(ids.ok()) << ids.status().ToString();
  return ids.ok() ? *ids : V{};
}

// --- Synthetic tokenizer.json files --------------------------------------------------------------

// A small XLM-R-shaped tokenizer.json: specials 0..3, pieces with chosen scores, an optional
// charsmap, WhitespaceSplit + Metaspace, <s> A </s>.
Json TinyJson(const std::vector<std::pair<std::string, double>>& pieces) {
  Json vocab = Json::array({Json::array({"<s>", 0.0}), Json::array({"<pad>", 0.0}),
                            Json::array({"</s>", 0.0}), Json::array({"<unk>", 0.0})});
  for (const auto& [piece, score] : pieces) vocab.push_back(Json::array({piece, score}));
  vocab.push_back(Json::array({"<mask>", 0.0}));
  const int mask = static_cast<int>(vocab.size()) - 1;
  auto added = [](int id, const char* content, bool lstrip) {
    return Json{{"id", id},        {"content", content},  {"single_word", false}, {"lstrip", lstrip},
                {"rstrip", false}, {"normalized", false}, {"special", true}};
  };
  Json special = Json::object();
  special["<s>"] = {{"id", "<s>"}, {"ids", {0}}, {"tokens", {"<s>"}}};
  special["</s>"] = {{"id", "</s>"}, {"ids", {2}}, {"tokens", {"</s>"}}};
  return Json{{"version", "1.0"},
              {"added_tokens",
               {added(0, "<s>", false), added(1, "<pad>", false), added(2, "</s>", false),
                added(3, "<unk>", false), added(mask, "<mask>", true)}},
              {"normalizer", nullptr},
              {"pre_tokenizer",
               {{"type", "Sequence"},
                {"pretokenizers",
                 {{{"type", "WhitespaceSplit"}},
                  {{"type", "Metaspace"}, {"replacement", "\u2581"}, {"add_prefix_space", true}}}}}},
              {"post_processor",
               {{"type", "TemplateProcessing"},
                {"single",
                 {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                  {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                  {{"SpecialToken", {{"id", "</s>"}, {"type_id", 0}}}}}},
                {"special_tokens", special}}},
              {"model", {{"type", "Unigram"}, {"unk_id", 3}, {"vocab", vocab}, {"byte_fallback", false}}}};
}

// Pieces of the tiny model: ids 4.. in this order.
const std::vector<std::pair<std::string, double>> kTinyPieces = {
    {"\u2581", -2.0},    // 4
    {"a", -3.0},         // 5
    {"b", -3.0},         // 6
    {"ab", -4.0},        // 7: beats a + b (-6)
    {"\u2581ab", -4.5},  // 8: beats ▁ + ab (-6)
    {"c", -3.0},         // 9
    {"abc", -9.5},       // 10: loses to ab + c (-7)
    {"\u2581c", -3.0},   // 11
    {"x", -5.0},         // 12
    {"xx", -10.0},       // 13: ties x + x (-10): the longer, earlier-starting piece wins
};

class XlmrTiny : public ::testing::Test {
 protected:
  std::unique_ptr<XlmrTokenizer> Load(const Json& json) {
    Result<std::unique_ptr<XlmrTokenizer>> tok =
        XlmrTokenizer::Load(dir_.Write("tokenizer.json", json.dump()));
    EXPECT_TRUE(tok.ok()) << tok.status().ToString();
    return tok.ok() ? std::move(*tok) : nullptr;
  }
  Status LoadError(const Json& json) {
    return XlmrTokenizer::Load(dir_.Write("bad.json", json.dump())).status();
  }
  TempDir dir_;
};

TEST_F(XlmrTiny, ViterbiPicksTheBestScoringSegmentation) {
  auto tok = Load(TinyJson(kTinyPieces));
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->vocab_size(), kTinyPieces.size() + 5);
  EXPECT_EQ(tok->start_id(), 0);
  EXPECT_EQ(tok->end_id(), 2);
  EXPECT_EQ(tok->pad_id(), 1);
  EXPECT_EQ(tok->unk_id(), 3);
  EXPECT_EQ(Ids(*tok, "ab"), (V{0, 8, 2}));        // ▁ab
  EXPECT_EQ(Ids(*tok, "abc"), (V{0, 8, 9, 2}));    // ▁ab c, not ▁ abc
  EXPECT_EQ(Ids(*tok, "c ab"), (V{0, 11, 8, 2}));  // one ▁ per word
  EXPECT_EQ(Ids(*tok, "  c\t\nab  "), (V{0, 11, 8, 2}));
  EXPECT_EQ(Ids(*tok, "xx"), (V{0, 4, 13, 2}));  // tie: xx (found first) over x x
  EXPECT_EQ(Ids(*tok, ""), (V{0, 2}));
  EXPECT_EQ(Ids(*tok, " \t "), (V{0, 2}));
}

TEST_F(XlmrTiny, UnknownCharactersFuseIntoOneUnk) {
  auto tok = Load(TinyJson(kTinyPieces));
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(Ids(*tok, "q"), (V{0, 4, 3, 2}));
  EXPECT_EQ(Ids(*tok, "qzé"), (V{0, 4, 3, 2}));        // three unknown characters, one <unk>
  EXPECT_EQ(Ids(*tok, "qaz"), (V{0, 4, 3, 5, 3, 2}));  // a known piece in between
  EXPECT_EQ(Ids(*tok, "q z"), (V{0, 4, 3, 4, 3, 2}));  // not across words: each has its ▁
}

TEST_F(XlmrTiny, AddedTokensAreCutFromTheRawText) {
  auto tok = Load(TinyJson(kTinyPieces));
  ASSERT_NE(tok, nullptr);
  const auto mask = static_cast<int32_t>(tok->vocab_size() - 1);
  EXPECT_EQ(Ids(*tok, "<s>"), (V{0, 0, 2}));
  EXPECT_EQ(Ids(*tok, "ab<s>c"), (V{0, 8, 0, 11, 2}));
  EXPECT_EQ(Ids(*tok, "ab <mask> c"), (V{0, 8, mask, 11, 2}));  // <mask> takes the space on its left
  EXPECT_EQ(Ids(*tok, "ab<mask>c"), (V{0, 8, mask, 11, 2}));
  EXPECT_EQ(Ids(*tok, "<pad></s><unk>"), (V{0, 1, 2, 3, 2}));
  EXPECT_EQ(Ids(*tok, "<s"), (V{0, 4, 3, 2}));
}

TEST_F(XlmrTiny, TruncationKeepsTheEndToken) {
  auto tok = Load(TinyJson(kTinyPieces));
  ASSERT_NE(tok, nullptr);
  const V full = Ids(*tok, "ab c ab c ab c");
  ASSERT_EQ(full, (V{0, 8, 11, 8, 11, 8, 11, 2}));
  for (size_t max_len = 3; max_len <= full.size() + 2; ++max_len) {
    V want(full.begin(), full.begin() + static_cast<ptrdiff_t>(std::min(max_len, full.size()) - 1));
    want.push_back(2);
    EXPECT_EQ(Ids(*tok, "ab c ab c ab c", max_len), want) << "max_len " << max_len;
  }
  EXPECT_EQ(tok->Encode("ab", 2).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(tok->Encode("ab", 1).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(XlmrTiny, MetaspaceOptions) {
  Json json = TinyJson(kTinyPieces);
  json["pre_tokenizer"] = {
      {"type", "Metaspace"}, {"replacement", "\u2581"}, {"prepend_scheme", "never"}, {"split", true}};
  auto never = Load(json);
  ASSERT_NE(never, nullptr);
  EXPECT_EQ(Ids(*never, "ab c"), (V{0, 7, 11, 2}));  // "ab", "▁c": no ▁ before the first word
  json["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "\u2581"}, {"add_prefix_space", true}};
  auto always = Load(json);
  ASSERT_NE(always, nullptr);
  EXPECT_EQ(Ids(*always, "ab c"), (V{0, 8, 11, 2}));
  EXPECT_EQ(Ids(*always, "ab\u2581c"), (V{0, 8, 11, 2}));  // a literal ▁ splits too
}

TEST_F(XlmrTiny, UnsupportedComponentsAreRefusedByName) {
  auto expect_unsupported = [&](Json json, const std::string& what) {
    const Status s = LoadError(json);
    EXPECT_EQ(s.code(), StatusCode::kUnsupported) << s.ToString();
    EXPECT_NE(s.ToString().find(what), std::string::npos) << s.ToString();
  };
  Json json = TinyJson(kTinyPieces);
  json["normalizer"] = {{"type", "NFKC"}};
  expect_unsupported(json, "NFKC");
  json = TinyJson(kTinyPieces);
  json["pre_tokenizer"] = {{"type", "ByteLevel"}};
  expect_unsupported(json, "ByteLevel");
  json = TinyJson(kTinyPieces);
  json["post_processor"] = {{"type", "RobertaProcessing"}};
  expect_unsupported(json, "RobertaProcessing");
  json = TinyJson(kTinyPieces);
  json["model"]["byte_fallback"] = true;
  expect_unsupported(json, "byte_fallback");
  json = TinyJson(kTinyPieces);
  json["model"]["type"] = "WordPiece";
  expect_unsupported(json, "Unigram");
}

// A charsmap whose trie is garbage (but whose sizes add up) loads, and lookups through it stay
// inside the blob: encoding never crashes, whatever the units say.
TEST_F(XlmrTiny, GarbageCharsmapNeverReadsOutOfBounds) {
  uint64_t state = 12345;
  auto next = [&state] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>(state >> 33);
  };
  for (int round = 0; round < 20; ++round) {
    const uint32_t units = 1 + next() % 64;
    std::string blob(4 + units * 4, '\0');
    const uint32_t trie_bytes = units * 4;
    std::memcpy(blob.data(), &trie_bytes, 4);  // little-endian hosts only, as the project builds
    for (uint32_t i = 0; i < units; ++i) {
      const uint32_t unit = next();
      std::memcpy(blob.data() + 4 + i * 4, &unit, 4);
    }
    blob += "x\0y\0";
    Json json = TinyJson(kTinyPieces);
    json["normalizer"] = {{"type", "Precompiled"}, {"precompiled_charsmap", Base64Encode(blob)}};
    auto tok = Load(json);
    ASSERT_NE(tok, nullptr);
    for (const char* text : {"abc", "\x01\x7f", "é\u0301 ｶﾞ", "\U0001F600 x\u200Dy", "<s> ab"}) {
      EXPECT_TRUE(tok->Encode(text).ok()) << text;
    }
  }
}

TEST_F(XlmrTiny, CorruptFilesAreErrorsNamingTheFile) {
  auto expect_corrupt = [&](const Json& json) {
    const Status s = LoadError(json);
    EXPECT_EQ(s.code(), StatusCode::kCorruption) << s.ToString();
    EXPECT_NE(s.ToString().find("bad.json"), std::string::npos) << s.ToString();
  };
  Json json = TinyJson(kTinyPieces);
  json["model"]["unk_id"] = 999;
  expect_corrupt(json);
  json = TinyJson(kTinyPieces);
  json["model"]["vocab"][5] = "a";
  expect_corrupt(json);
  json = TinyJson(kTinyPieces);
  json["normalizer"] = {{"type", "Precompiled"},
                        {"precompiled_charsmap", Base64Encode(std::string("\x10\0\0\0ab", 6))}};
  expect_corrupt(json);  // trie size beyond the blob
  json["normalizer"]["precompiled_charsmap"] = "not base64!";
  EXPECT_NE(LoadError(json).code(), StatusCode::kOk);
  const std::string not_json = dir_.Write("bad.json", "{\"model\": ");
  EXPECT_EQ(XlmrTokenizer::Load(not_json).status().code(), StatusCode::kCorruption);
  EXPECT_EQ(XlmrTokenizer::Load(dir_.path() + "/missing.json").status().code(), StatusCode::kNotFound);
}

// --- On the real file (../shared/multilingual/xlm-roberta) ---------------------------------------

class XlmrShared : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const char* env = std::getenv("FILESEARCH_SHARED_DIR");
    dir_ = new std::string(std::string(env != nullptr && *env != '\0' ? env : "../shared") +
                           "/multilingual/xlm-roberta");
    if (!stdfs::exists(*dir_ + "/tokenizer.json") || !stdfs::exists(*dir_ + "/test-vectors.json")) return;
    const auto start = std::chrono::steady_clock::now();
    Result<std::unique_ptr<XlmrTokenizer>> tok = XlmrTokenizer::Load(*dir_ + "/tokenizer.json");
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (!tok.ok()) {
      load_error_ = new std::string(tok.status().ToString());
      return;
    }
    std::printf("[ xlmr ] tokenizer.json loaded in %.0f ms\n", ms);
    tok_ = tok->release();
  }
  static void TearDownTestSuite() {
    delete tok_;
    tok_ = nullptr;
    delete dir_;
    delete load_error_;
    load_error_ = nullptr;
  }
  void SetUp() override {
    if (tok_ == nullptr && load_error_ == nullptr) {
      GTEST_SKIP() << "XLM-R tokenizer files not found in " << *dir_
                   << " (set FILESEARCH_SHARED_DIR to the folder holding multilingual/xlm-roberta/)";
    }
    ASSERT_EQ(load_error_, nullptr) << *load_error_;
  }
  static Json Vectors() {
    std::ifstream f(*dir_ + "/test-vectors.json", std::ios::binary);
    return Json::parse(f);
  }
  static inline std::string* dir_ = nullptr;
  static inline std::string* load_error_ = nullptr;
  static inline XlmrTokenizer* tok_ = nullptr;
};

TEST_F(XlmrShared, PublishedAndComputedTestVectors) {
  const Json vectors = Vectors();
  const XlmrTokenizer& t = *tok_;
  EXPECT_EQ(t.vocab_size(), 250002u);
  EXPECT_EQ(t.pad_id(), 1);
  size_t checked = 0;
  for (const char* group : {"published_with_special_tokens", "computed_with_special_tokens"}) {
    for (const Json& c : vectors[group]) {
      const std::string text = c["text"].get<std::string>();
      EXPECT_EQ(Ids(t, text), c["ids"].get<V>()) << group << ": " << c["text"].dump();
      ++checked;
    }
  }
  for (const Json& c : vectors["published_without_special_tokens"]["cases"]) {
    V want = c["ids"].get<V>();
    want.insert(want.begin(), t.start_id());
    want.push_back(t.end_id());
    EXPECT_EQ(Ids(t, c["text"].get<std::string>()), want) << "without specials: " << c["text"].dump();
    ++checked;
  }
  // OpenCLIP / Immich: truncated to 77 keeping </s>, padded to 77 with <pad>, mask = ids != pad.
  for (const Json& c : vectors["computed_openclip_context77"]["cases"]) {
    V ids = Ids(t, c["text"].get<std::string>(), kContextLength);
    ASSERT_LE(ids.size(), kContextLength);
    V mask(ids.size(), 1);
    ids.resize(kContextLength, t.pad_id());
    mask.resize(kContextLength, 0);
    EXPECT_EQ(ids, c["ids"].get<V>()) << "context 77: " << c["text"].dump();
    EXPECT_EQ(mask, c["attention_mask"].get<V>());
    ++checked;
  }
  EXPECT_EQ(checked, 81u);
}

TEST_F(XlmrShared, InvalidUtf8BecomesReplacementCharacters) {
  const XlmrTokenizer& t = *tok_;
  uint64_t state = 0x9E3779B97F4A7C15ull;
  auto next = [&state] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  for (int round = 0; round < 500; ++round) {
    std::string bytes;
    const size_t n = next() % 40;
    for (size_t i = 0; i < n; ++i) {
      const uint64_t r = next();
      // Mostly lead and continuation bytes, some ASCII, so that truncated sequences are common.
      bytes.push_back(
          static_cast<char>(r % 3 == 0 ? 'a' + static_cast<int>(r % 26) : 0x80 + static_cast<int>(r % 128)));
    }
    Result<V> ids = t.Encode(bytes, 0);
    ASSERT_TRUE(ids.ok()) << ids.status().ToString();
    EXPECT_EQ(*ids, Ids(t, ReplaceInvalidUtf8(bytes))) << "round " << round;
  }
  EXPECT_EQ(Ids(t,
                "a\xFF\xFE"
                "b"),
            Ids(t,
                "a\uFFFD\uFFFD"
                "b"));
}

TEST_F(XlmrShared, LongTextsTruncateEarly) {
  const XlmrTokenizer& t = *tok_;
  std::string text;
  for (int i = 0; i < 20000; ++i) text += i % 3 == 0 ? "東京の夜景 " : "photo of a cat, ";
  const V full = Ids(t, text, 0);
  ASSERT_GT(full.size(), 20000u);
  V want(full.begin(), full.begin() + 76);
  want.push_back(t.end_id());
  EXPECT_EQ(Ids(t, text, kContextLength), want);
  // Chunks are cut only at a space that is a cluster of its own: not before a combining mark.
  std::string marks;
  for (int i = 0; i < 3000; ++i) marks += i % 2 == 0 ? "ab \u0301cd\u3000e\t" : "\u0915\u094D \u0937 ";
  const V marks_full = Ids(t, marks, 0);
  for (size_t max_len : {size_t{3}, size_t{77}, size_t{2000}, size_t{5000}}) {
    V cut(marks_full.begin(),
          marks_full.begin() + static_cast<ptrdiff_t>(std::min(max_len, marks_full.size()) - 1));
    cut.push_back(t.end_id());
    EXPECT_EQ(Ids(t, marks, max_len), cut) << "max_len " << max_len;
  }
  // One unbroken 100,000-character word.
  const std::string word(100000, 'x');
  EXPECT_EQ(Ids(t, word, 0).back(), t.end_id());
}

TEST_F(XlmrShared, ConcurrentEncodesAgree) {
  const XlmrTokenizer& t = *tok_;
  const std::vector<std::string> texts = {"a photo of a cat", "東京の夜景", "Фотография кошки", "🌫🌫x",
                                          "ﬁ\u0301 ｶﾞ",       "नमस्ते दुनिया", "<mask> <s>"};
  std::vector<V> want;
  for (const std::string& text : texts) want.push_back(Ids(t, text));
  std::vector<std::thread> threads;
  std::vector<int> bad(4, 0);
  for (size_t worker = 0; worker < bad.size(); ++worker) {
    threads.emplace_back([&, worker] {
      for (int round = 0; round < 300; ++round) {
        const size_t k = (worker + static_cast<size_t>(round)) % texts.size();
        Result<V> ids = t.Encode(texts[k]);
        if (!ids.ok() || *ids != want[k]) ++bad[worker];
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(bad, std::vector<int>(bad.size(), 0));
}

TEST(XlmrGrapheme, ClustersFollowUax29) {
  auto clusters = [](std::string_view utf8) {
    std::u32string text;
    size_t pos = 0;
    while (pos < utf8.size()) text.push_back(NextCodePoint(utf8, &pos));
    std::vector<size_t> ends;
    for (size_t at = 0; at < text.size();) ends.push_back(at = unicode::GraphemeClusterEnd(text, at));
    return ends;
  };
  using S = std::vector<size_t>;
  EXPECT_EQ(clusters("ab"), (S{1, 2}));
  EXPECT_EQ(clusters("\r\n\n"), (S{2, 3}));                          // GB3, GB4
  EXPECT_EQ(clusters("e\u0301x"), (S{2, 3}));                        // GB9 Extend
  EXPECT_EQ(clusters("\u1100\u1161\u11A8"), (S{3}));                 // Hangul L V T
  EXPECT_EQ(clusters("\U0001F1EF\U0001F1F5\U0001F1FA"), (S{2, 3}));  // regional indicator pairs
  EXPECT_EQ(clusters("\U0001F469\u200D\U0001F4BB!"), (S{3, 4}));     // GB11 emoji ZWJ sequence
  EXPECT_EQ(clusters("a\u200D\U0001F4BB"), (S{2, 3}));               // ZWJ after a non-emoji: no GB11
  EXPECT_EQ(clusters("\u0E01\u0E33"), (S{2}));                       // Thai SARA AM: SpacingMark
  EXPECT_EQ(clusters("\u0600\u0661"), (S{2}));                       // Prepend
  EXPECT_EQ(clusters("a\u0007\u0301"), (S{1, 2, 3}));                // GB4/GB5 around a control
  EXPECT_EQ(clusters("\u0915\u094D\u0937"), (S{3}));                 // GB9c: क्ष is one cluster
  EXPECT_EQ(clusters("\u0915\u094D\u200D\u0937"), (S{4}));
  EXPECT_EQ(clusters("\u0915\u093F\u0937"), (S{2, 3}));  // no linker: two clusters
  EXPECT_EQ(clusters("a\U000E0020\U000E0021"), (S{3}));  // tags are Extend, not Control
  EXPECT_EQ(clusters("\u0CB5\u0CC0"), (S{2}));           // Unicode 16: U+0CC0 is Extend
}

}  // namespace
}  // namespace fs::clip
