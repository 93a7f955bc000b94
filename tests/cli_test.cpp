// The CLI as a person runs it: `filesearch model info` and `filesearch embed` on generated CLIP
// weights (tiny towers, the real tokenizer), checking exit codes and the JSON reply shape of the
// original embedding function; messages that must stay valid JSON, the embedding cache, a data
// directory without an index, unknown commands and the help of every command.
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "core/hash.h"
#include "model/clip/clip_test_util.h"

namespace fs {
namespace {

namespace stdfs = std::filesystem;

struct CliRun {
  int code;
  std::string out;
};

// `env`: "NAME=value ..." set for this run only.
CliRun RunCli(const std::string& args, const std::string& env = "") {
  std::string cmd = env + (env.empty() ? "" : " ") + std::string(FILESEARCH_BINARY) + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  CliRun r{-1, ""};
  if (!p) return r;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

TEST(CliTest, ModelInfoAndEmbed) {
  const char* shared_env = std::getenv("FILESEARCH_SHARED_DIR");
  const std::string shared = shared_env ? shared_env : "../shared";
  const std::string photo = shared + "/corpus/photos/kodak/kodim03.png";
  if (!stdfs::exists(shared + "/clip/tokenizer.json") || !stdfs::exists(photo)) {
    GTEST_SKIP() << "needs ../shared/clip/tokenizer.json and ../shared/corpus/photos/kodak (not present here)";
  }
  std::string why;
  auto dir = clip::testing::GenerateReference("--size small-vocab --no-reference --images 0 --texts 0", &why);
  if (!dir) GTEST_SKIP() << why;
  stdfs::copy_file(shared + "/clip/tokenizer.json", *dir + "/tokenizer.json");

  CliRun info = RunCli("model info --model-dir " + *dir);
  EXPECT_EQ(info.code, 0) << info.out;
  EXPECT_NE(info.out.find("embedding:  32 dimensions"), std::string::npos) << info.out;

  const auto started = std::chrono::steady_clock::now();
  CliRun embed = RunCli("embed --model-dir " + *dir + " " + photo + " --text 'a photo of a parrot'");
  const double wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  ASSERT_EQ(embed.code, 0) << embed.out;
  size_t lines = 0;
  size_t pos = 0;
  while (pos < embed.out.size()) {
    size_t end = embed.out.find('\n', pos);
    auto j = nlohmann::json::parse(embed.out.substr(pos, end - pos), nullptr, false);
    ASSERT_TRUE(j.is_object()) << embed.out;
    ASSERT_TRUE(j["success"].get<bool>());
    const auto& d = j["data"];
    EXPECT_EQ(d["dimension"].get<int>(), 32);
    EXPECT_EQ(d["embedding"].size(), 32u);
    EXPECT_FALSE(d["cached"].get<bool>());
    ASSERT_TRUE(d["inferenceTime"].is_number());
    EXPECT_LE(d["inferenceTime"].get<double>(), wall_seconds) << "inferenceTime is in seconds";
    // float32 values in their shortest form ("-1.2345678e-05" at most), not widened to 17 digits.
    const std::string line = embed.out.substr(pos, end - pos);
    const size_t open = line.find("\"embedding\":[") + 13, close = line.find(']', open);
    for (size_t at = open; at < close;) {
      const size_t comma = std::min(line.find(',', at), close);
      EXPECT_LE(comma - at, 15u) << line.substr(at, comma - at);
      at = comma + 1;
    }
    EXPECT_EQ(d["model"].get<std::string>(), "test/clip-small");
    if (d.contains("imageHash")) EXPECT_EQ(d["imageHash"].get<std::string>(), *Sha256File(photo));
    ++lines;
    pos = end == std::string::npos ? embed.out.size() : end + 1;
  }
  EXPECT_EQ(lines, 2u);

  CliRun bad = RunCli("embed --model-dir " + *dir + " /etc/hostname");
  EXPECT_EQ(bad.code, 1);
  auto j = nlohmann::json::parse(bad.out.substr(0, bad.out.find('\n')), nullptr, false);
  ASSERT_TRUE(j.is_object()) << bad.out;
  EXPECT_FALSE(j["success"].get<bool>());
  EXPECT_EQ(j["error"]["code"].get<std::string>(), "unsupported");

  // A truncated weights file: a clear error naming the file, exit 1, no crash.
  stdfs::resize_file(*dir + "/model.safetensors", 1000);
  CliRun broken = RunCli("model info --model-dir " + *dir);
  EXPECT_EQ(broken.code, 1);
  EXPECT_NE(broken.out.find("model.safetensors"), std::string::npos) << broken.out;
  clip::testing::RemoveTree(*dir);
}

// A multilingual folder (OpenCLIP xlm-roberta layout, tests/clip/xlmr_reference.py): model info says
// which family it is and does not ask for CLIP's BPE tokenizer.
TEST(CliTest, ModelInfoShowsTheMultilingualFamily) {
  const char* shared_env = std::getenv("FILESEARCH_SHARED_DIR");
  const std::string vectors =
      std::string(shared_env ? shared_env : "../shared") + "/multilingual/xlm-roberta/test-vectors.json";
  if (!stdfs::exists(vectors)) GTEST_SKIP() << "needs " << vectors;
  std::string why;
  auto dir = clip::testing::GenerateReference(
      "--size small --layouts openclip --images 0 --vectors " + vectors, &why, "xlmr_reference.py",
      ".venv-oracle/bin/python",
      "import torch, transformers, importlib.util as u; assert u.find_spec('open_clip')");
  if (!dir) GTEST_SKIP() << why;
  CliRun info = RunCli("model info --model-dir " + *dir + "/openclip");
  EXPECT_EQ(info.code, 0) << info.out;
  EXPECT_NE(info.out.find("family:     xlm-roberta (OpenCLIP)"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("context:    77 tokens, vocabulary 250002"), std::string::npos) << info.out;
  clip::testing::RemoveTree(*dir);
}

// `filesearch model download` against a local server laid out like the hub, serving a generated
// model (LFS-style redirect with X-Linked-Etag for the weights); the result loads with model info.
TEST(CliTest, ModelDownloadFromALocalHubThenInfo) {
  const char* shared_env = std::getenv("FILESEARCH_SHARED_DIR");
  const std::string shared = shared_env ? shared_env : "../shared";
  if (!stdfs::exists(shared + "/clip/tokenizer.json")) {
    GTEST_SKIP() << "needs ../shared/clip/tokenizer.json (not present here)";
  }
  std::string why;
  auto dir = clip::testing::GenerateReference("--size small-vocab --no-reference --images 0 --texts 0", &why);
  if (!dir) GTEST_SKIP() << why;
  stdfs::copy_file(shared + "/clip/tokenizer.json", *dir + "/tokenizer.json");
  auto read = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  const std::string weights = read(*dir + "/model.safetensors");
  httplib::Server server;
  server.Get(R"(/openai/clip-vit-base-patch32/resolve/main/(.+))", [&](const httplib::Request& req, httplib::Response& res) {
    const std::string name = req.matches[1];
    if (name == "model.safetensors") {
      res.status = 302;
      res.set_header("Location", "/lfs/weights");
      res.set_header("X-Linked-Etag", "\"" + Sha256Hex(weights) + "\"");
      res.set_header("X-Linked-Size", std::to_string(weights.size()));
      return;
    }
    if (name != "config.json" && name != "tokenizer.json") {
      res.status = 404;
      return;
    }
    res.set_content(read(*dir + "/" + name), "application/json");
  });
  server.Get("/lfs/weights", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(weights, "application/octet-stream");
  });
  const int port = server.bind_to_any_port("127.0.0.1");
  ASSERT_GT(port, 0);
  std::thread thread([&] { server.listen_after_bind(); });
  const std::string models = *dir + "_models";
  const std::string endpoint = "--endpoint http://127.0.0.1:" + std::to_string(port);
  CliRun dl = RunCli("--no-progress model download " + endpoint + " --models-dir " + models);
  EXPECT_EQ(dl.code, 0) << dl.out;
  EXPECT_NE(dl.out.find("model.safetensors: " + std::to_string(weights.size()) + " bytes, verified sha256"),
            std::string::npos) << dl.out;
  CliRun again = RunCli("--no-progress model download " + endpoint + " --models-dir " + models);
  EXPECT_EQ(again.code, 0) << again.out;
  EXPECT_NE(again.out.find("already complete"), std::string::npos) << again.out;
  CliRun info = RunCli("model info --model-dir " + models + "/openai/clip-vit-base-patch32");
  EXPECT_EQ(info.code, 0) << info.out;
  EXPECT_NE(info.out.find("embedding:  32 dimensions"), std::string::npos) << info.out;
  CliRun unknown = RunCli("--no-progress model download nobody/nothing " + endpoint + " --models-dir " + models);
  EXPECT_EQ(unknown.code, 1);
  EXPECT_NE(unknown.out.find("check the model name"), std::string::npos) << unknown.out;
  EXPECT_FALSE(stdfs::exists(models + "/nobody")) << "a failed download leaves no empty folder behind";
  // HTTP_PROXY is honoured: through a proxy that is not there, the download fails and says so.
  const std::string fresh = *dir + "_fresh_models";
  CliRun proxied = RunCli("--no-progress model download " + endpoint + " --models-dir " + fresh,
                          "HTTP_PROXY=http://127.0.0.1:1 NO_PROXY=");
  EXPECT_EQ(proxied.code, 1) << proxied.out;
  EXPECT_NE(proxied.out.find("through the proxy 127.0.0.1:1"), std::string::npos) << proxied.out;
  EXPECT_FALSE(stdfs::exists(fresh)) << "the folders it created are removed again";
  CliRun bypassed = RunCli("--no-progress model download " + endpoint + " --models-dir " + fresh,
                           "HTTP_PROXY=http://127.0.0.1:1 NO_PROXY=127.0.0.1");
  EXPECT_EQ(bypassed.code, 0) << bypassed.out;
  clip::testing::RemoveTree(fresh);
  server.stop();
  thread.join();
  clip::testing::RemoveTree(models);
  clip::testing::RemoveTree(*dir);
}

std::string TempDir(const std::string& name) {
  const std::string dir = stdfs::temp_directory_path().string() + "/cli_test_" + std::to_string(::getpid()) + "_" + name;
  stdfs::remove_all(dir);
  return dir;
}

// The JSON objects of a command's output, one per line; lines that are not JSON fail the test.
std::vector<nlohmann::json> JsonLines(const std::string& out) {
  std::vector<nlohmann::json> lines;
  size_t pos = 0;
  while (pos < out.size()) {
    const size_t end = std::min(out.find('\n', pos), out.size());
    if (end > pos) {
      auto j = nlohmann::json::parse(out.substr(pos, end - pos), nullptr, false);
      EXPECT_FALSE(j.is_discarded()) << "not JSON: " << out.substr(pos, end - pos);
      lines.push_back(std::move(j));
    }
    pos = end + 1;
  }
  return lines;
}

// Tests that need CLIP weights share one generated tiny model (with the real tokenizer).
class CliModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const char* shared_env = std::getenv("FILESEARCH_SHARED_DIR");
    shared_ = shared_env ? shared_env : "../shared";
    tiny_.Make(shared_, "corpus/photos/kodak/kodim03.png");
    model_ = tiny_.dir();
    skip_ = tiny_.why();
  }
  static void TearDownTestSuite() { tiny_.Remove(); }
  void SetUp() override {
    if (model_.empty()) GTEST_SKIP() << skip_;
    work_ = TempDir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    stdfs::create_directories(work_ + "/photos");
  }
  void TearDown() override {
    if (!work_.empty()) stdfs::remove_all(work_);
  }
  static std::string photo() { return shared_ + "/corpus/photos/kodak/kodim03.png"; }

  static inline clip::testing::SuiteTinyModel tiny_;
  static inline std::string shared_, model_, skip_;
  std::string work_;
};

// A decoder error about a file whose name is not UTF-8 (Latin-1 "café", a byte 0xFF): the message
// reaches JSON through `embed` and `backfill --json`, which aborted on it (uncaught
// nlohmann::json::type_error), and backfill did again on every run since the image stays unembedded.
TEST_F(CliModelTest, InvalidUtf8InAnErrorMessageStaysValidJson) {
  const std::string bad = work_ + "/photos/caf\xE9\xFF.png";
  std::ofstream(bad, std::ios::binary) << std::string("\x89PNG\r\n\x1A\n", 8) << std::string(64, '\xFF');
  CliRun embed = RunCli("embed --model-dir " + model_ + " '" + bad + "'");
  EXPECT_EQ(embed.code, 1) << embed.out;
  auto lines = JsonLines(embed.out);
  ASSERT_EQ(lines.size(), 1u) << embed.out;
  EXPECT_FALSE(lines[0]["success"].get<bool>());
  const std::string message = lines[0]["error"]["message"].get<std::string>();
  EXPECT_NE(message.find("caf\xEF\xBF\xBD"), std::string::npos) << "the bad bytes become U+FFFD: " << message;

  const std::string data = "--no-progress --data-dir " + work_ + "/data";
  CliRun index = RunCli(data + " index " + work_ + "/photos");
  ASSERT_EQ(index.code, 0) << index.out;
  for (int run = 0; run < 2; ++run) {
    CliRun backfill = RunCli(data + " backfill --json --model-dir " + model_);
    EXPECT_EQ(backfill.code, 3) << "partial success, run " << run << ": " << backfill.out;
    auto j = nlohmann::json::parse(backfill.out, nullptr, false);
    ASSERT_TRUE(j.is_object()) << backfill.out;
    ASSERT_EQ(j["failures"].size(), 1u) << backfill.out;
    EXPECT_NE(j["failures"][0]["path"].get<std::string>().find("caf\xEF\xBF\xBD"), std::string::npos) << backfill.out;
  }
  CliRun failures = RunCli(data + " failures --json");
  EXPECT_EQ(failures.code, 0) << failures.out;
  EXPECT_TRUE(nlohmann::json::parse(failures.out, nullptr, false).is_object()) << failures.out;
}

// `embed` reads and fills the embedding cache of the data directory (when it holds an index),
// as `index` and `backfill` do; --no-cache runs the model.
TEST_F(CliModelTest, EmbedUsesTheEmbeddingCacheOfTheDataDirectory) {
  const std::string image = work_ + "/photos/parrot.png";
  stdfs::copy_file(photo(), image);
  const std::string data = "--no-progress --data-dir " + work_ + "/data";
  auto embed = [&](const std::string& flags) {
    CliRun r = RunCli(data + " embed --model-dir " + model_ + " " + flags + " " + image);
    EXPECT_EQ(r.code, 0) << r.out;
    auto lines = JsonLines(r.out);
    EXPECT_EQ(lines.size(), 1u) << r.out;
    return lines.empty() ? nlohmann::json() : lines[0]["data"];
  };
  // No index there yet: no cache, and no data directory made for one.
  EXPECT_FALSE(embed("")["cached"].get<bool>());
  EXPECT_FALSE(stdfs::exists(work_ + "/data"));
  // Indexing with the model puts the image's vector in the cache; embed finds it there.
  CliRun index = RunCli(data + " index " + work_ + "/photos --model-dir " + model_);
  ASSERT_EQ(index.code, 0) << index.out;
  const nlohmann::json fresh = embed("--no-cache");
  EXPECT_FALSE(fresh["cached"].get<bool>());
  const nlohmann::json hit = embed("");
  EXPECT_TRUE(hit["cached"].get<bool>());
  EXPECT_EQ(hit["imageHash"], fresh["imageHash"]);
  ASSERT_EQ(hit["embedding"].size(), fresh["embedding"].size());
  for (size_t i = 0; i < fresh["embedding"].size(); ++i) {
    EXPECT_NEAR(hit["embedding"][i].get<double>(), fresh["embedding"][i].get<double>(), 1e-6) << i;
  }
  // An image embed saw first is cached by it for the next call (and for index/backfill).
  const std::string other = work_ + "/other.png";
  stdfs::copy_file(shared_ + "/corpus/photos/kodak/kodim01.png", other);
  CliRun batch = RunCli(data + " embed --batch --model-dir " + model_ + " " + other + " " + image + " " + other);
  ASSERT_EQ(batch.code, 0) << batch.out;
  auto lines = JsonLines(batch.out);
  ASSERT_EQ(lines.size(), 3u) << batch.out;
  EXPECT_FALSE(lines[0]["data"]["cached"].get<bool>());
  EXPECT_TRUE(lines[1]["data"]["cached"].get<bool>());
  EXPECT_EQ(lines[1]["data"]["imageHash"], fresh["imageHash"]) << "replies keep the order of the files";
  EXPECT_TRUE(embed("")["cached"].get<bool>());
  CliRun again = RunCli(data + " embed --model-dir " + model_ + " " + other);
  EXPECT_TRUE(JsonLines(again.out).at(0)["data"]["cached"].get<bool>()) << again.out;
}

// A mistyped --data-dir used to become a new, empty index: every command that only reads an
// index now says there is none, exits 1 and creates nothing.
TEST(CliTest, ReadOnlyCommandsOnADataDirectoryWithoutAnIndex) {
  const std::string dir = TempDir("no_index") + "/typo";
  for (const std::string command : {"search invoice", "stats", "stats --json", "duplicates", "failures",
                                    "backfill --test-embedder"}) {
    CliRun r = RunCli("--no-progress --data-dir " + dir + " " + command);
    EXPECT_EQ(r.code, 1) << command << ": " << r.out;
    EXPECT_NE(r.out.find("no index at " + dir + ": run 'filesearch index FOLDER' first, or check --data-dir"),
              std::string::npos) << command << ": " << r.out;
    EXPECT_FALSE(stdfs::exists(dir)) << command << " created the data directory";
  }
  // FILESEARCH_DATA_DIR the same.
  CliRun env = RunCli("stats", "FILESEARCH_DATA_DIR=" + dir);
  EXPECT_EQ(env.code, 1) << env.out;
  EXPECT_FALSE(stdfs::exists(dir));
  // An empty folder is not an index either.
  stdfs::create_directories(dir);
  CliRun empty = RunCli("--data-dir " + dir + " search invoice");
  EXPECT_EQ(empty.code, 1) << empty.out;
  EXPECT_FALSE(stdfs::exists(dir + "/filesearch.db"));
  stdfs::remove_all(stdfs::path(dir).parent_path());
}

// `filesearch eval` end to end on a small index (text mode: no model needed). Expected figures by
// hand (trec_eval's linear gain):
//   waterhole: its one hit is the grade-2 document        -> nDCG 1, RR 1, recall 1
//   giraffe:   the relevant document does not hold the word -> 0, 0, 0
//   report:    report.txt (name match, unjudged) first, then summary.txt (grade 1)
//              -> nDCG (1/log2 3)/1 = 0.6309297535714575, RR 0.5, recall 1
//   means over the 3 queries with a relevant document: nDCG 0.5436432511904858, MRR 0.5,
//   recall@10 0.6666666666666666 (python3: (1 + 0 + 1/math.log2(3))/3); "nothing" (grade 0 only)
//   is left out of the means.
TEST(CliTest, EvalMeasuresAJudgmentSetInJsonlAndQrels) {
  const std::string dir = TempDir("eval");
  const std::string docs = dir + "/docs";
  stdfs::create_directories(docs + "/zoo");
  auto write = [](const std::string& path, const std::string& text) { std::ofstream(path) << text; };
  write(docs + "/zoo/elephants.txt", "elephants at the waterhole");
  write(docs + "/zoo/tall.txt", "a very tall animal with a long neck");  // the word is not in it
  write(docs + "/report.txt", "misc");
  write(docs + "/summary.txt", "the report of the year, summarised");
  const std::string data = "--no-progress --data-dir " + dir + "/data ";
  CliRun indexed = RunCli(data + "index " + docs);
  ASSERT_EQ(indexed.code, 0) << indexed.out;
  write(dir + "/j.jsonl",
        "{\"query\": \"waterhole\", \"doc\": \"zoo/elephants.txt\", \"grade\": 2}\n"
        "{\"query\": \"giraffe\", \"doc\": \"zoo/tall.txt\", \"grade\": 1}\n"
        "{\"query\": \"report\", \"doc\": \"summary.txt\", \"grade\": 1}\n"
        "{\"query\": \"nothing\", \"doc\": \"report.txt\", \"grade\": 0}\n");
  CliRun run = RunCli(data + "eval " + dir + "/j.jsonl --root " + docs + " --mode text --json --per-query");
  ASSERT_EQ(run.code, 0) << run.out;
  auto j = nlohmann::json::parse(run.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << run.out;
  EXPECT_EQ(j["queries"], 4);
  EXPECT_EQ(j["evaluated"], 3);
  ASSERT_EQ(j["modes"].size(), 1u);
  const auto& text = j["modes"][0];
  EXPECT_EQ(text["mode"], "text");
  EXPECT_NEAR(text["ndcg@10"].get<double>(), 0.5436432511904858, 1e-9) << run.out;
  EXPECT_NEAR(text["mrr"].get<double>(), 0.5, 1e-9);
  EXPECT_NEAR(text["recall@10"].get<double>(), 2.0 / 3.0, 1e-9);
  EXPECT_NEAR(text["recall@100"].get<double>(), 2.0 / 3.0, 1e-9);
  ASSERT_EQ(text["perQuery"].size(), 3u);
  EXPECT_EQ(text["perQuery"][2]["query"], "report");
  EXPECT_NEAR(text["perQuery"][2]["ndcg@10"].get<double>(), 0.6309297535714575, 1e-9);
  EXPECT_NEAR(text["perQuery"][2]["rr"].get<double>(), 0.5, 1e-9);

  // The same judgments as TREC qrels with a topics file and absolute paths; the table form.
  write(dir + "/qrels.txt", "q1 0 " + docs + "/zoo/elephants.txt 2\nq2 0 " + docs + "/zoo/tall.txt 1\nq3 0 " + docs +
                                "/summary.txt 1\n");
  write(dir + "/topics.tsv", "q1\twaterhole\nq2\tgiraffe\nq3\treport\n");
  CliRun table = RunCli(data + "eval " + dir + "/qrels.txt --topics " + dir + "/topics.tsv --mode text --per-query");
  ASSERT_EQ(table.code, 0) << table.out;
  EXPECT_NE(table.out.find("3 queries, 3 judgments"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("text                           0.5436     0.6667      0.6667   0.5000"), std::string::npos)
      << table.out;
  EXPECT_NE(table.out.find("q3         report                               0.631/0.500"), std::string::npos) << table.out;

  // Mistakes say what to do.
  CliRun no_topics = RunCli(data + "eval " + dir + "/qrels.txt");
  EXPECT_EQ(no_topics.code, 1);
  EXPECT_NE(no_topics.out.find("--topics"), std::string::npos) << no_topics.out;
  write(dir + "/bad.jsonl", "{\"query\": \"a\", \"doc\": \"b\", \"grade\": 1}\n{\"query\": \"a\"}\n");
  CliRun bad = RunCli(data + "eval " + dir + "/bad.jsonl");
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.out.find("line 2"), std::string::npos) << bad.out;
  CliRun vector = RunCli(data + "eval " + dir + "/j.jsonl --mode vector");
  EXPECT_EQ(vector.code, 1);
  EXPECT_NE(vector.out.find("--model-dir"), std::string::npos) << vector.out;
  CliRun missing = RunCli(data + "eval " + dir + "/j.jsonl");  // relative paths without --root
  EXPECT_EQ(missing.code, 0) << missing.out;
  EXPECT_NE(missing.out.find("not in the index"), std::string::npos) << missing.out;
  CliRun mode = RunCli(data + "eval " + dir + "/j.jsonl --mode hybrid:max");
  EXPECT_EQ(mode.code, 1);
  EXPECT_NE(mode.out.find("hybrid:linear:0.3"), std::string::npos) << mode.out;

  // No votes yet: an empty export; qrels need a topics file.
  CliRun exported = RunCli(data + "feedback export --format jsonl");
  EXPECT_EQ(exported.code, 0) << exported.out;
  EXPECT_NE(exported.out.find("0 votes exported"), std::string::npos) << exported.out;
  CliRun qrels = RunCli(data + "feedback export --format qrels");
  EXPECT_EQ(qrels.code, 1);
  EXPECT_NE(qrels.out.find("--topics"), std::string::npos) << qrels.out;
  stdfs::remove_all(dir);
}

// `model tokenize` reads the tokenizer's type from the file: XLM-R's Unigram tokenizer.json gives
// the published ids (test-vectors.json), one JSON array per line, <s> and </s> included, cut at 77
// unless --no-truncate; CLIP's tokenizer.json still gives CLIP's ids.
TEST(CliTest, ModelTokenizeReadsTheTokenizerTypeFromTheFile) {
  const char* env = std::getenv("FILESEARCH_SHARED_DIR");
  const std::string shared = env != nullptr && *env != '\0' ? env : "../shared";
  const std::string xlmr = shared + "/multilingual/xlm-roberta";
  if (!stdfs::exists(xlmr + "/tokenizer.json") || !stdfs::exists(xlmr + "/test-vectors.json")) {
    GTEST_SKIP() << "needs ../shared/multilingual/xlm-roberta (not present here)";
  }
  std::ifstream vf(xlmr + "/test-vectors.json");
  const nlohmann::json vectors = nlohmann::json::parse(vf);
  std::string lines, expected;
  for (const nlohmann::json& c : vectors["computed_with_special_tokens"]) {
    const std::string text = c["text"].get<std::string>();
    if (text.find_first_of("\r\n") != std::string::npos) continue;
    lines += text + "\n";
    expected += c["ids"].dump() + "\n";
  }
  const std::string dir = TempDir("tokenize");
  stdfs::create_directories(dir);
  const std::string lines_file = dir + "/lines.txt";
  std::ofstream(lines_file) << lines;
  CliRun r = RunCli("model tokenize --tokenizer " + xlmr + "/tokenizer.json --lines " + lines_file);
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out, expected);
  // A folder holding the file works too, and TEXT arguments come before the lines.
  r = RunCli("model tokenize --tokenizer " + xlmr + " 'Hello World!'");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out, "[0,35378,6661,38,2]\n");
  // The context-77 vector: truncated to 77 by default; --no-truncate keeps every id.
  const nlohmann::json& long_case = vectors["computed_openclip_context77"]["cases"][1];
  const std::vector<int32_t> padded = long_case["ids"].get<std::vector<int32_t>>();
  r = RunCli("model tokenize --tokenizer " + xlmr + "/tokenizer.json '" + long_case["text"].get<std::string>() + "'");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out, nlohmann::json(padded).dump() + "\n");  // exactly 77: nothing to pad
  r = RunCli("model tokenize --no-truncate --tokenizer " + xlmr + "/tokenizer.json '" +
             long_case["text"].get<std::string>() + "'");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_GT(nlohmann::json::parse(r.out).size(), 77u);
  if (stdfs::exists(shared + "/clip/tokenizer.json")) {
    r = RunCli("model tokenize --tokenizer " + shared + "/clip/tokenizer.json 'a photo of a cat'");
    EXPECT_EQ(r.code, 0) << r.out;
    EXPECT_EQ(r.out, "[49406,320,1125,539,320,2368,49407]\n");
  }
  stdfs::remove_all(dir);
}

// An unknown command is an error (exit 2, naming it), with or without --help; CLI11 alone printed
// the main help and exited 0 for `filesearch serach --help`.
TEST(CliTest, UnknownCommandIsAnError) {
  for (const std::string args : {"serach --help", "serach", "--data-dir /tmp/x serach quarterly", "--no-progress serach -h"}) {
    CliRun r = RunCli(args);
    EXPECT_EQ(r.code, 2) << args << ": " << r.out;
    EXPECT_NE(r.out.find("filesearch: unknown command 'serach' (did you mean 'search'?); run 'filesearch --help'"),
              std::string::npos) << args << ": " << r.out;
    EXPECT_EQ(r.out.find("Quick start"), std::string::npos) << "no main help: " << r.out;
  }
  CliRun far = RunCli("frobnicate");
  EXPECT_EQ(far.code, 2) << far.out;
  EXPECT_NE(far.out.find("unknown command 'frobnicate'; run 'filesearch --help'"), std::string::npos) << far.out;
  CliRun nested = RunCli("model downlod --help");
  EXPECT_EQ(nested.code, 2) << nested.out;
  EXPECT_NE(nested.out.find("filesearch model: unknown command 'downlod' (did you mean 'download'?)"), std::string::npos)
      << nested.out;
  // What is known still works.
  EXPECT_EQ(RunCli("--help").code, 0);
  EXPECT_EQ(RunCli("--data-dir /tmp/x search --help").code, 0);
  EXPECT_EQ(RunCli("model download --help").code, 0);
}

// Flags from a config file (--config, $FILESEARCH_CONFIG): the back end and its cluster come from
// the file, a command's own table sets its flags, and the command line wins over the file.
TEST(CliTest, FlagsFromAConfigFile) {
  const std::string dir = ::testing::TempDir() + "cli_config_" + std::to_string(::getpid());
  stdfs::create_directories(dir);
  {
    std::ofstream(dir + "/config.toml") << "backend = \"opensearch\"\n"
                                        << "opensearch-url = \"http://127.0.0.1:9\"\n"
                                        << "data-dir = \"" << dir << "/data\"\n"
                                        << "[search]\nmode = \"bogus\"\n";
  }
  // The search table's bad mode is refused: the file was read, command table included.
  CliRun bad_mode = RunCli("--config " + dir + "/config.toml search anything");
  EXPECT_EQ(bad_mode.code, 2) << bad_mode.out;
  EXPECT_NE(bad_mode.out.find("bogus"), std::string::npos) << bad_mode.out;
  // The command line wins: a good mode, and the back end from the file names its url.
  CliRun from_file = RunCli("search anything --mode text", "FILESEARCH_CONFIG=" + dir + "/config.toml");
  EXPECT_NE(from_file.code, 0) << from_file.out;
  EXPECT_NE(from_file.out.find("http://127.0.0.1:9"), std::string::npos) << from_file.out;
  CliRun overridden = RunCli("--config " + dir + "/config.toml --backend embedded search anything --mode text");
  EXPECT_EQ(overridden.out.find("127.0.0.1:9"), std::string::npos) << overridden.out;
  CliRun missing = RunCli("--config " + dir + "/nope.toml stats");
  EXPECT_NE(missing.code, 0) << "a config file named on the command line must exist: " << missing.out;
  stdfs::remove_all(dir);
}

// Flags that are on by default are shown as the way to turn them off; CLI11 printed
// "--keyword-index,--no-keyword-index{false}", which reads as "off by default".
TEST(CliTest, HelpShowsOnByDefaultFlagsAsTheWayToTurnThemOff) {
  const CliRun main_help = RunCli("--help");
  ASSERT_EQ(main_help.code, 0);
  std::vector<std::string> commands = {"model tokenize", "model info", "model download", "feedback export",
                                      "opensearch setup", "opensearch status", "opensearch ef-search"};
  for (const std::string name : {"index", "backfill", "duplicates", "failures", "worker", "search", "stats", "model",
                                 "embed", "serve", "opensearch", "eval", "feedback"}) {
    EXPECT_NE(main_help.out.find("  " + name + " "), std::string::npos) << name << " missing from: " << main_help.out;
    commands.push_back(name);
  }
  for (const std::string& command : commands) {
    CliRun r = RunCli(command + " --help");
    EXPECT_EQ(r.code, 0) << command << ": " << r.out;
    EXPECT_EQ(r.out.find("{false}"), std::string::npos) << command << ": " << r.out;
    EXPECT_EQ(r.out.find("{true}"), std::string::npos) << command << ": " << r.out;
    EXPECT_EQ(r.out.find(",--no-"), std::string::npos) << command << ": " << r.out;
  }
  CliRun serve = RunCli("serve --help");
  for (const std::string off : {"--no-keyword-index", "--no-vector-search", "--text-logs"}) {
    EXPECT_NE(serve.out.find("  " + off + " "), std::string::npos) << off << ": " << serve.out;
  }
}

}  // namespace
}  // namespace fs
