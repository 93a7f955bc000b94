// The CLIP tokenizer against its reference: the Hugging Face tokenizer (@huggingface/tokenizers,
// run by node from tests/node) on ../shared/clip/tokenizer.json, string by string over
// TokenizerCorpus(). Skips with a message where node, the npm module or the shared file is missing.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "model/clip/tokenizer.h"
#include "model/clip/tokenizer_corpus.h"
#include "model/clip/tokenizer_test_util.h"

namespace fs::clip {
namespace {

using testing::Capture;
using testing::EnvOr;
using testing::NodeOracleMissing;

std::string JsonIds(const std::vector<int32_t>& ids) {
  return nlohmann::json(ids).dump();
}

TEST(ClipTokenizerHf, IdsEqualHuggingFaceOnCorpus) {
  const std::string shared = EnvOr("FILESEARCH_SHARED_DIR", "../shared");
  const std::string source = EnvOr("FILESEARCH_SOURCE_DIR", ".");
  const std::string tokenizer_json = shared + "/clip/tokenizer.json";
  const std::string node_dir = source + "/tests/node";
  const std::string missing = NodeOracleMissing(tokenizer_json, node_dir, "@huggingface/tokenizers");
  if (!missing.empty()) GTEST_SKIP() << missing;
  int rc = 0;

  const std::vector<std::string> corpus = TokenizerCorpus();
  ASSERT_GE(corpus.size(), 2000u);
  char dir_template[] = "/tmp/clip_tokenizer_hf_XXXXXX";
  ASSERT_NE(::mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  const std::string corpus_path = dir + "/corpus.json";
  {
    std::ofstream f(corpus_path, std::ios::binary);
    f << nlohmann::json(corpus).dump();
    ASSERT_TRUE(f.good());
  }
  const std::string command =
      "cd '" + node_dir + "' && node clip_tokenize.mjs '" + tokenizer_json + "' '" + corpus_path + "'";
  const std::string reference = Capture(command, &rc);
  std::remove(corpus_path.c_str());
  ::rmdir(dir.c_str());
  ASSERT_EQ(rc, 0) << "the reference failed: " << command;

  std::vector<std::string> expected;
  std::istringstream lines(reference);
  for (std::string line; std::getline(lines, line);) expected.push_back(line);
  ASSERT_EQ(expected.size(), corpus.size()) << "the reference printed a different number of lines";

  Result<std::unique_ptr<Tokenizer>> tok = Tokenizer::Load(tokenizer_json);
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  size_t mismatches = 0, truncated = 0;
  const auto start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < corpus.size(); ++i) {
    Result<std::vector<int32_t>> ids = (*tok)->Encode(corpus[i], 0);
    ASSERT_TRUE(ids.ok()) << ids.status().ToString();
    const std::string got = JsonIds(*ids);
    if (got != expected[i]) {
      if (++mismatches <= 10) {
        ADD_FAILURE() << "string " << i << ": " << nlohmann::json(corpus[i]).dump()
                      << "\n  hf:   " << expected[i] << "\n  ours: " << got;
      }
      continue;
    }
    // Truncation to 77 is ours (the tokenizer.json sets none): the reference's first 76 + end.
    std::vector<int32_t> want = nlohmann::json::parse(expected[i]).get<std::vector<int32_t>>();
    if (want.size() > kContextLength) {
      ++truncated;
      want.resize(kContextLength);
      want.back() = kEndOfTextId;
    }
    Result<std::vector<int32_t>> ids77 = (*tok)->Encode(corpus[i]);
    ASSERT_TRUE(ids77.ok());
    EXPECT_EQ(*ids77, want) << "truncated ids differ for string " << i;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(mismatches, 0u) << "of " << corpus.size() << " strings";
  EXPECT_GT(truncated, 50u) << "the corpus should hold texts longer than 77 tokens";
  std::printf(
      "[ clip ] %zu strings, %zu mismatches, %zu longer than 77 tokens (%.1f us/string, "
      "both encodings)\n",
      corpus.size(), mismatches, truncated, seconds * 1e6 / static_cast<double>(corpus.size()));
}

}  // namespace
}  // namespace fs::clip
