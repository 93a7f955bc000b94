// The XLM-R tokenizer against its reference: the Hugging Face tokenizer's Rust core (the
// `tokenizers` npm package, run by node from tests/node) on
// ../shared/multilingual/xlm-roberta/tokenizer.json, string by string over TokenizerCorpus() and
// XlmrTokenizerCorpus(), plus invalid UTF-8 (the reference gets each invalid byte as U+FFFD).
// Skips with a message where node, the npm module or the shared file is missing.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "model/clip/tokenizer_corpus.h"
#include "model/clip/tokenizer_test_util.h"
#include "model/clip/xlmr_tokenizer.h"

namespace fs::clip {
namespace {

using testing::Capture;
using testing::EnvOr;
using testing::NodeOracleMissing;
using testing::ReplaceInvalidUtf8;
using testing::TempDir;

// Invalid UTF-8 made from valid strings: a lead byte without its continuation, a stray
// continuation byte, an overlong form, a surrogate's encoding, bytes that never occur.
std::vector<std::string> InvalidUtf8(const std::vector<std::string>& valid) {
  const std::string_view damage[] = {"\xE3\x81", "\x80",     "\xC0\xAF",     "\xED\xA0\x80",
                                     "\xFF",     "\xFE\xFE", "\xF0\x9F\x98", "\xC3"};
  std::vector<std::string> out;
  for (size_t i = 0; i < valid.size(); i += 7) {
    std::string s = valid[i];
    const size_t at = s.empty() ? 0 : (i * 31) % s.size();
    s.insert(at, damage[i % std::size(damage)]);
    out.push_back(std::move(s));
  }
  return out;
}

TEST(XlmrTokenizerHf, IdsEqualHuggingFaceOnCorpus) {
  const std::string shared = EnvOr("FILESEARCH_SHARED_DIR", "../shared");
  const std::string source = EnvOr("FILESEARCH_SOURCE_DIR", ".");
  const std::string tokenizer_json = shared + "/multilingual/xlm-roberta/tokenizer.json";
  const std::string node_dir = source + "/tests/node";
  const std::string missing = NodeOracleMissing(tokenizer_json, node_dir, "tokenizers");
  if (!missing.empty()) GTEST_SKIP() << missing;
  int rc = 0;

  std::vector<std::string> corpus = TokenizerCorpus();
  const std::vector<std::string> xlmr = XlmrTokenizerCorpus();
  corpus.insert(corpus.end(), xlmr.begin(), xlmr.end());
  const std::vector<std::string> invalid = InvalidUtf8(corpus);
  // The reference gets valid strings: the invalid ones as Encode reads them.
  std::vector<std::string> sent = corpus;
  for (const std::string& s : invalid) sent.push_back(ReplaceInvalidUtf8(s));
  ASSERT_GE(corpus.size(), 5000u);

  TempDir dir;
  const std::string corpus_path = dir.Write("corpus.json", nlohmann::json(sent).dump());
  // --bench: the reference prints its load time and tokens/s to stderr, beside ours below.
  auto run_reference = [&](const std::string& engine, std::vector<std::string>* out) {
    const std::string command = "cd '" + node_dir + "' && node xlmr_tokenize.mjs --bench --engine " + engine +
                                " '" + tokenizer_json + "' '" + corpus_path + "'";
    const std::string reference = Capture(command, &rc);
    ASSERT_EQ(rc, 0) << "the reference failed: " << command;
    std::istringstream lines(reference);
    for (std::string line; std::getline(lines, line);) out->push_back(line);
    ASSERT_EQ(out->size(), sent.size()) << "the reference printed a different number of lines";
  };
  std::vector<std::string> expected;
  run_reference("rust", &expected);
  if (HasFatalFailure()) return;

  const auto load_start = std::chrono::steady_clock::now();
  Result<std::unique_ptr<XlmrTokenizer>> tok = XlmrTokenizer::Load(tokenizer_json);
  const double load_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - load_start).count();
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  std::vector<std::vector<int32_t>> got(sent.size());
  size_t tokens = 0;
  const auto start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < sent.size(); ++i) {
    Result<std::vector<int32_t>> ids =
        (*tok)->Encode(i < corpus.size() ? corpus[i] : invalid[i - corpus.size()], 0);
    ASSERT_TRUE(ids.ok()) << ids.status().ToString();
    tokens += ids->size();
    got[i] = std::move(ids).value();
  }
  const double encode_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();

  size_t mismatches = 0, truncated = 0;
  for (size_t i = 0; i < sent.size(); ++i) {
    const std::string ours = nlohmann::json(got[i]).dump();
    if (ours != expected[i]) {
      if (++mismatches <= 10) {
        ADD_FAILURE() << "string " << i << ": " << nlohmann::json(sent[i]).dump()
                      << "\n  hf:   " << expected[i] << "\n  ours: " << ours;
      }
      continue;
    }
    // Truncation to 77 as Hugging Face's (max_length 77): the first 75 text ids, then </s>.
    std::vector<int32_t> want = got[i];
    if (want.size() > kContextLength) {
      ++truncated;
      want.resize(kContextLength - 1);
      want.push_back((*tok)->end_id());
    }
    Result<std::vector<int32_t>> ids77 =
        (*tok)->Encode(i < corpus.size() ? corpus[i] : invalid[i - corpus.size()]);
    ASSERT_TRUE(ids77.ok());
    EXPECT_EQ(*ids77, want) << "truncated ids differ for string " << i;
  }
  EXPECT_EQ(mismatches, 0u) << "of " << sent.size() << " strings";
  EXPECT_GT(truncated, 100u) << "the corpus should hold texts longer than 77 tokens";
  std::fprintf(
      stderr,
      "ours: load %.0f ms, %zu strings, %zu tokens in %.0f ms (%.0f tokens/s); %zu with invalid UTF-8, %zu "
      "mismatches, %zu longer than 77 tokens\n",
      load_ms, sent.size(), tokens, encode_ms, static_cast<double>(tokens) / encode_ms * 1000.0,
      invalid.size(), mismatches, truncated);

  // FILESEARCH_TOKENIZER_BENCH=1: also the pure-JS port (@huggingface/tokenizers), for its speed and
  // for how often its NFKC approximation of the charsmap gives other ids (reported, not asserted).
  if (EnvOr("FILESEARCH_TOKENIZER_BENCH", "")[0] == '1' &&
      NodeOracleMissing(tokenizer_json, node_dir, "@huggingface/tokenizers").empty()) {
    std::vector<std::string> js;
    run_reference("js", &js);
    size_t differ = 0;
    for (size_t i = 0; i < js.size(); ++i) differ += js[i] != expected[i] ? 1 : 0;
    std::fprintf(stderr, "js port: %zu of %zu strings give other ids than the Rust core\n", differ,
                 js.size());
  }
}

}  // namespace
}  // namespace fs::clip
