#include "model/clip/tokenizer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "core/check.h"
#include "core/utf8.h"
#include "model/clip/tokenizer_corpus.h"
#include "model/clip/tokenizer_test_util.h"

namespace fs::clip {
namespace {

namespace stdfs = std::filesystem;

using testing::TempDir;

// GPT-2's byte -> printable character map, written independently of tokenizer.cpp.
std::string ByteChar(int b) {
  int n = 0;
  for (int x = 0; x < 256; ++x) {
    const bool printable = (x >= 33 && x <= 126) || (x >= 161 && x <= 172) || x >= 174;
    if (x == b) {
      std::string s;
      AppendUtf8(static_cast<uint32_t>(printable ? x : 256 + n), &s);
      return s;
    }
    if (!printable) ++n;
  }
  return "";
}

// A tiny CLIP-shaped vocabulary: 256 byte characters, the same with </w>, a few merges, specials.
struct Tiny {
  nlohmann::json vocab = nlohmann::json::object();
  std::vector<std::string> merges;
  Tiny() {
    int id = 0;
    for (int b = 0; b < 256; ++b) vocab[ByteChar(b)] = id++;
    for (int b = 0; b < 256; ++b) vocab[ByteChar(b) + "</w>"] = id++;
    for (const char* m : {"h e", "l l", "he ll", "hell o</w>", "a a", "a a</w>"}) {
      std::string s = m;
      const size_t sp = s.find(' ');
      vocab[s.substr(0, sp) + s.substr(sp + 1)] = id++;
      merges.push_back(s);
    }
    vocab["<|startoftext|>"] = id++;
    vocab["<|endoftext|>"] = id++;
  }
  int32_t Id(const std::string& token) const { return vocab.at(token).get<int32_t>(); }
  std::string MergesTxt() const {
    std::string s = "#version: 0.2\n";
    for (const std::string& m : merges) s += m + "\n";
    return s;
  }
};

std::unique_ptr<Tokenizer> LoadTiny(const TempDir& dir, const Tiny& tiny) {
  dir.Write("merges.txt", tiny.MergesTxt());
  Result<std::unique_ptr<Tokenizer>> tok = Tokenizer::Load(dir.Write("vocab.json", tiny.vocab.dump()));
  FS_CHECK_MSG(tok.ok(), tok.status().ToString().c_str());
  return std::move(tok).value();
}

std::vector<int32_t> Ids(const Tokenizer& tok, std::string_view text, size_t max_len = 77) {
  Result<std::vector<int32_t>> ids = tok.Encode(text, max_len);
  EXPECT_TRUE(ids.ok()) << ids.status().ToString();
  return ids.ok() ? *ids : std::vector<int32_t>{};
}

TEST(ClipTokenizerTiny, MergesByRankLeftmostFirst) {
  TempDir dir;
  Tiny tiny;
  std::unique_ptr<Tokenizer> tok = LoadTiny(dir, tiny);
  const int32_t s = tiny.Id("<|startoftext|>"), e = tiny.Id("<|endoftext|>");
  EXPECT_EQ(tok->start_id(), s);
  EXPECT_EQ(tok->end_id(), e);
  EXPECT_EQ(tok->vocab_size(), 256u * 2 + 6 + 2);
  EXPECT_EQ(Ids(*tok, "hello"), (std::vector<int32_t>{s, tiny.Id("hello</w>"), e}));
  EXPECT_EQ(Ids(*tok, "HeLLo"), (std::vector<int32_t>{s, tiny.Id("hello</w>"), e}));
  EXPECT_EQ(Ids(*tok, "hel"), (std::vector<int32_t>{s, tiny.Id("he"), tiny.Id("l</w>"), e}));
  // "a a" (rank 4) beats "a a</w>" (rank 5); leftmost first among equal ranks.
  EXPECT_EQ(Ids(*tok, "aaa"), (std::vector<int32_t>{s, tiny.Id("aa"), tiny.Id("a</w>"), e}));
  EXPECT_EQ(Ids(*tok, "aaaa"), (std::vector<int32_t>{s, tiny.Id("aa"), tiny.Id("aa</w>"), e}));
  // Pre-tokenizer: whitespace dropped, digits one by one, punctuation runs, contractions.
  EXPECT_EQ(Ids(*tok, " 12 "), (std::vector<int32_t>{s, tiny.Id("1</w>"), tiny.Id("2</w>"), e}));
  EXPECT_EQ(Ids(*tok, "?!"), (std::vector<int32_t>{s, tiny.Id("?"), tiny.Id("!</w>"), e}));
  EXPECT_EQ(Ids(*tok, "h'll"),
            (std::vector<int32_t>{s, tiny.Id("h</w>"), tiny.Id("'"), tiny.Id("l"), tiny.Id("l</w>"), e}));
  EXPECT_EQ(Ids(*tok, ""), (std::vector<int32_t>{s, e}));
  EXPECT_EQ(Ids(*tok, " \t\n "), (std::vector<int32_t>{s, e}));
  EXPECT_EQ(Ids(*tok, "<|endoftext|>"), (std::vector<int32_t>{s, e, e}));
}

TEST(ClipTokenizerTiny, Truncation) {
  TempDir dir;
  Tiny tiny;
  std::unique_ptr<Tokenizer> tok = LoadTiny(dir, tiny);
  std::string text;
  for (int i = 0; i < 100; ++i) text += "hello ";
  const std::vector<int32_t> full = Ids(*tok, text, 0);
  ASSERT_EQ(full.size(), 102u);
  const std::vector<int32_t> cut = Ids(*tok, text);
  ASSERT_EQ(cut.size(), 77u);
  EXPECT_EQ(cut.front(), tok->start_id());
  EXPECT_EQ(cut.back(), tok->end_id());
  EXPECT_TRUE(std::equal(cut.begin(), cut.end() - 1, full.begin()));
  EXPECT_EQ(Ids(*tok, text, 2), (std::vector<int32_t>{tok->start_id(), tok->end_id()}));
  EXPECT_EQ(Ids(*tok, "hello", 77).size(), 3u);  // short texts are not padded
  Result<std::vector<int32_t>> one = tok->Encode(text, 1);
  EXPECT_EQ(one.status().code(), StatusCode::kInvalidArgument);
}

TEST(ClipTokenizerTiny, InvalidUtf8BecomesReplacementCharacter) {
  TempDir dir;
  Tiny tiny;
  std::unique_ptr<Tokenizer> tok = LoadTiny(dir, tiny);
  for (std::string_view bad :
       {std::string_view("caf\xC3"), std::string_view("\xFF\xFE hello"), std::string_view("\xED\xA0\x80"),
        std::string_view("\xC0\xAF"), std::string_view("a\x80\x80\x80 b")}) {
    Result<std::vector<int32_t>> ids = tok->Encode(bad);
    ASSERT_TRUE(ids.ok()) << ids.status().ToString();
    EXPECT_GE(ids->size(), 3u);
  }
  EXPECT_EQ(Ids(*tok, "\xFF"), Ids(*tok, "\xEF\xBF\xBD"));  // same as an explicit U+FFFD
}

TEST(ClipTokenizerTiny, CorruptOrMissingFilesNameTheFile) {
  TempDir dir;
  Tiny tiny;
  auto expect_error = [](const std::string& path, StatusCode code, const std::string& mention) {
    Result<std::unique_ptr<Tokenizer>> tok = Tokenizer::Load(path);
    ASSERT_FALSE(tok.ok()) << path;
    EXPECT_EQ(tok.status().code(), code) << tok.status().ToString();
    EXPECT_NE(tok.status().message().find(mention), std::string::npos) << tok.status().ToString();
  };
  expect_error(dir.path() + "/nope.json", StatusCode::kNotFound, "nope.json");
  expect_error(dir.Write("empty.json", ""), StatusCode::kCorruption, "empty.json");
  expect_error(dir.Write("bad.json", "{\"model\": {"), StatusCode::kCorruption, "bad.json");
  expect_error(dir.Write("array.json", "{\"model\": []}"), StatusCode::kCorruption, "array.json");
  expect_error(dir.Write("wp.json", R"({"model": {"type": "WordPiece", "vocab": {}}})"),
               StatusCode::kUnsupported, "wp.json");
  expect_error(dir.Write("ids.json", R"({"a": "x"})"), StatusCode::kCorruption, "ids.json");
  // vocab.json with no merges.txt beside it.
  expect_error(dir.Write("vocab.json", tiny.vocab.dump()), StatusCode::kNotFound, "merges.txt");
  dir.Write("merges.txt", "#version: 0.2\nh e\nnot-a-merge\n");
  expect_error(dir.path() + "/vocab.json", StatusCode::kCorruption, "merges.txt");
  dir.Write("merges.txt", "#version: 0.2\nh e\nq zz\n");  // "zz" is no token
  expect_error(dir.path() + "/vocab.json", StatusCode::kCorruption, "vocab.json");
  // A vocabulary without the byte tokens or without the specials.
  nlohmann::json small = {{"a", 0}, {"b", 1}};
  dir.Write("merges.txt", "a b\n");
  expect_error(dir.Write("vocab.json", small.dump()), StatusCode::kCorruption, "byte");
  // gzip: a damaged stream, and one that is valid but holds too few merges.
  expect_error(dir.Write("bpe.txt.gz", std::string("\x1F\x8B\x08\x00garbage", 12)), StatusCode::kCorruption,
               "bpe.txt.gz");
  expect_error(dir.Write("bpe.txt", "\"bpe_simple_vocab_16e6.txt#version: 0.2\nh e\n"),
               StatusCode::kCorruption, "bpe.txt");
  expect_error(dir.Write("random.bin", std::string("\x00\x01\x02\xFF\xFE", 5)), StatusCode::kCorruption,
               "random.bin");
  // A folder with none of the files.
  const std::string empty_dir = dir.path() + "/emptydir";
  stdfs::create_directory(empty_dir);
  expect_error(empty_dir, StatusCode::kNotFound, "emptydir");
  EXPECT_EQ(Tokenizer::Load("").status().code(), StatusCode::kInvalidArgument);
}

TEST(ClipTokenizerTiny, TokenizeCommand) {
  TempDir dir;
  Tiny tiny;
  dir.Write("merges.txt", tiny.MergesTxt());
  const std::string vocab = dir.Write("vocab.json", tiny.vocab.dump());
  const std::string lines = dir.Write("lines.txt", "hello\r\n\nhel\n");
  const std::string s = std::to_string(tiny.Id("<|startoftext|>"));
  const std::string e = std::to_string(tiny.Id("<|endoftext|>"));
  const std::string hello = std::to_string(tiny.Id("hello</w>"));
  std::ostringstream out, err;
  EXPECT_EQ(TokenizeCommand(vocab, {"hello", ""}, lines, out, err), 0) << err.str();
  EXPECT_EQ(out.str(), "[" + s + "," + hello + "," + e + "]\n[" + s + "," + e + "]\n[" + s + "," + hello +
                           "," + e + "]\n[" + s + "," + e + "]\n[" + s + "," + std::to_string(tiny.Id("he")) +
                           "," + std::to_string(tiny.Id("l</w>")) + "," + e + "]\n");
  EXPECT_EQ(err.str(), "");
  // A folder works as well as a file.
  std::ostringstream out2, err2;
  EXPECT_EQ(TokenizeCommand(dir.path(), {"hello"}, "", out2, err2), 0) << err2.str();

  std::ostringstream out3, err3;
  EXPECT_EQ(TokenizeCommand(dir.path() + "/missing.json", {"x"}, "", out3, err3), 1);
  EXPECT_NE(err3.str().find("missing.json"), std::string::npos) << err3.str();
  EXPECT_EQ(out3.str(), "");
  std::ostringstream out4, err4;
  EXPECT_EQ(TokenizeCommand(vocab, {}, "", out4, err4), 2);
  EXPECT_NE(err4.str().find("nothing to tokenize"), std::string::npos);
  std::ostringstream out5, err5;
  EXPECT_EQ(TokenizeCommand("", {"x"}, "", out5, err5), 2);
  std::ostringstream out6, err6;
  EXPECT_EQ(TokenizeCommand(vocab, {}, dir.path() + "/nolines.txt", out6, err6), 1);
  EXPECT_NE(err6.str().find("nolines.txt"), std::string::npos) << err6.str();
}

// --- On the real CLIP files (../shared/clip) --------------------------------------------------

class ClipTokenizerShared : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* env = std::getenv("FILESEARCH_SHARED_DIR");
    dir_ = std::string(env != nullptr && *env != '\0' ? env : "../shared") + "/clip";
    if (!stdfs::exists(dir_ + "/tokenizer.json") || !stdfs::exists(dir_ + "/bpe_simple_vocab_16e6.txt.gz")) {
      GTEST_SKIP() << "CLIP tokenizer files not found in " << dir_
                   << " (set FILESEARCH_SHARED_DIR to the folder holding clip/tokenizer.json)";
    }
  }
  std::string dir_;
};

TEST_F(ClipTokenizerShared, KnownIds) {
  Result<std::unique_ptr<Tokenizer>> tok = Tokenizer::Load(dir_ + "/tokenizer.json");
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  const Tokenizer& t = **tok;
  EXPECT_EQ(t.vocab_size(), 49408u);
  EXPECT_EQ(t.start_id(), kStartOfTextId);
  EXPECT_EQ(t.end_id(), kEndOfTextId);
  // Reference ids printed by tests/node/clip_tokenize.mjs (Hugging Face).
  using V = std::vector<int32_t>;
  EXPECT_EQ(Ids(t, "a photo of a cat"), (V{49406, 320, 1125, 539, 320, 2368, 49407}));
  EXPECT_EQ(Ids(t, "Hello, World! 123 's it's"),
            (V{49406, 3306, 267, 1002, 256, 272, 273, 274, 568, 585, 568, 49407}));
  EXPECT_EQ(Ids(t, "café"), (V{49406, 15304, 49407}));
  EXPECT_EQ(Ids(t, "cafe\u0301"), (V{49406, 15304, 49407}));  // NFC
  EXPECT_EQ(Ids(t, "ΟΔΟΣ"), (V{49406, 138, 123, 138, 112, 138, 123, 139, 480, 49407}));
  EXPECT_EQ(Ids(t, "<|ENDOFTEXT|>"), (V{49406, 49407, 49407}));
  EXPECT_EQ(Ids(t, "<|STARTOFTEXT|>x"), (V{49406, 49406, 343, 49407}));
  EXPECT_EQ(Ids(t, "日本語のテキスト"),
            (V{49406, 39121, 44353, 34002, 252, 21575, 2429, 228, 47121, 32421, 486, 49407}));
  EXPECT_EQ(Ids(t, "😀👍🏽"), (V{49406, 12832, 43722, 49407}));
  EXPECT_EQ(Ids(t, ""), (V{49406, 49407}));
  EXPECT_EQ(Ids(t, " \t\u3000\n"), (V{49406, 49407}));
}

TEST_F(ClipTokenizerShared, ThreeFormatsGiveIdenticalIds) {
  Result<std::unique_ptr<Tokenizer>> from_json = Tokenizer::Load(dir_ + "/tokenizer.json");
  ASSERT_TRUE(from_json.ok()) << from_json.status().ToString();
  Result<std::unique_ptr<Tokenizer>> from_gz = Tokenizer::Load(dir_ + "/bpe_simple_vocab_16e6.txt.gz");
  ASSERT_TRUE(from_gz.ok()) << from_gz.status().ToString();

  // vocab.json + merges.txt, written from tokenizer.json the way Hugging Face ships them.
  TempDir tmp;
  std::ifstream f(dir_ + "/tokenizer.json");
  const nlohmann::json root = nlohmann::json::parse(f);
  tmp.Write("vocab.json", root["model"]["vocab"].dump());
  std::string merges = "#version: 0.2\n";
  for (const nlohmann::json& m : root["model"]["merges"]) {
    merges += m.is_string() ? m.get<std::string>() : m[0].get<std::string>() + " " + m[1].get<std::string>();
    merges += "\n";
  }
  tmp.Write("merges.txt", merges);
  Result<std::unique_ptr<Tokenizer>> from_vocab = Tokenizer::Load(tmp.path() + "/vocab.json");
  ASSERT_TRUE(from_vocab.ok()) << from_vocab.status().ToString();
  Result<std::unique_ptr<Tokenizer>> from_dir = Tokenizer::LoadDir(tmp.path());
  ASSERT_TRUE(from_dir.ok()) << from_dir.status().ToString();

  EXPECT_EQ((*from_gz)->vocab_size(), 49408u);
  EXPECT_EQ((*from_vocab)->vocab_size(), 49408u);
  size_t differ = 0;
  for (const std::string& text : TokenizerCorpus()) {
    const std::vector<int32_t> want = Ids(**from_json, text, 0);
    if (Ids(**from_gz, text, 0) != want || Ids(**from_vocab, text, 0) != want ||
        Ids(**from_dir, text, 0) != want) {
      if (++differ <= 5) ADD_FAILURE() << "formats disagree on " << nlohmann::json(text).dump();
    }
  }
  EXPECT_EQ(differ, 0u);
}

TEST_F(ClipTokenizerShared, ConcurrentEncodesAgree) {
  Result<std::unique_ptr<Tokenizer>> tok = Tokenizer::Load(dir_ + "/tokenizer.json");
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  const std::vector<std::string> corpus = TokenizerCorpus();
  std::vector<std::vector<int32_t>> want;
  {
    Result<std::unique_ptr<Tokenizer>> fresh = Tokenizer::Load(dir_ + "/tokenizer.json");
    ASSERT_TRUE(fresh.ok());
    for (const std::string& text : corpus) want.push_back(Ids(**fresh, text));
  }
  constexpr size_t kThreads = 4;
  std::vector<size_t> wrong(kThreads, 0);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = 0; i < corpus.size(); ++i) {
        const size_t k = (i * 7 + t * 131) % corpus.size();
        Result<std::vector<int32_t>> ids = (*tok)->Encode(corpus[k]);
        if (!ids.ok() || *ids != want[k]) ++wrong[t];
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (size_t t = 0; t < kThreads; ++t) EXPECT_EQ(wrong[t], 0u) << "thread " << t;
}

// Prints encode speed for the record (docs/tokenizer.md); asserts nothing about time.
TEST_F(ClipTokenizerShared, ReportsEncodeSpeed) {
  Result<std::unique_ptr<Tokenizer>> tok = Tokenizer::Load(dir_ + "/tokenizer.json");
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  const char* kQueries[] = {"a photo of a red car in the snow",
                            "quarterly report 2023",
                            "dog playing on the beach at sunset",
                            "invoice",
                            "会議の議事録",
                            "children's birthday party with candles and a big cake"};
  using Clock = std::chrono::steady_clock;
  auto micros = [](Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); };
  // Cold: every word is new to the cache.
  const auto cold_start = Clock::now();
  size_t ids = 0;
  for (const char* q : kQueries) ids += Ids(**tok, q).size();
  const double cold = micros(Clock::now() - cold_start) / std::size(kQueries);
  constexpr int kRounds = 2000;
  const auto warm_start = Clock::now();
  for (int round = 0; round < kRounds; ++round) {
    for (const char* q : kQueries) ids += Ids(**tok, q).size();
  }
  const double warm = micros(Clock::now() - warm_start) / (kRounds * std::size(kQueries));
  EXPECT_GT(ids, 0u);
  std::printf("[ clip ] encode per query: %.1f us cold (words not cached), %.2f us warm\n", cold, warm);
}

TEST_F(ClipTokenizerShared, TruncatedGzipIsCorruption) {
  std::ifstream f(dir_ + "/bpe_simple_vocab_16e6.txt.gz", std::ios::binary);
  std::string data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  TempDir tmp;
  const std::string path = tmp.Write("cut.txt.gz", std::string_view(data).substr(0, data.size() / 2));
  Result<std::unique_ptr<Tokenizer>> tok = Tokenizer::Load(path);
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().code(), StatusCode::kCorruption);
  EXPECT_NE(tok.status().message().find("cut.txt.gz"), std::string::npos) << tok.status().ToString();
}

}  // namespace
}  // namespace fs::clip
