// Runs the data-driven end-to-end cases in tests/e2e/*.test (format: tests/e2e/README.md).
// Each case builds a folder, indexes it, queries, restarts the engine, and queries again.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/crawl.h"
#include "engine/engine.h"

namespace fs {
namespace {

namespace stdfs = std::filesystem;

std::string SourceDir() {
  const char* v = std::getenv("FILESEARCH_SOURCE_DIR");
  return v ? v : ".";
}

std::vector<std::string> CaseFiles() {
  std::vector<std::string> out;
  std::string dir = SourceDir() + "/tests/e2e";
  if (!stdfs::exists(dir)) return out;
  for (auto& e : stdfs::directory_iterator(dir)) {
    if (e.path().extension() == ".test") out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> Split(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> out;
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

class E2eTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    base_ = stdfs::weakly_canonical(::testing::TempDir()).string() + "/e2e_" + std::to_string(::getpid()) + "_" +
            std::to_string(counter_++);
    stdfs::remove_all(base_);
    stdfs::create_directories(base_ + "/files");
    Reopen();
  }
  void TearDown() override {
    engine_.reset();
    stdfs::remove_all(base_);
  }
  void Reopen() {
    engine_.reset();
    EngineOptions o;
    o.data_dir = base_ + "/data";
    o.progress = false;
    auto e = Engine::Open(o);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(e).value();
    ASSERT_TRUE(engine_->SetEmbedder(NewHashEmbedder(32)).ok());
  }
  std::string Rel(const std::string& path) {
    std::string root = base_ + "/files/";
    return path.rfind(root, 0) == 0 ? path.substr(root.size()) : path;
  }

  std::string base_;
  std::unique_ptr<Engine> engine_;
  static inline int counter_ = 0;
};

TEST_P(E2eTest, Case) {
  const std::string file = SourceDir() + "/tests/e2e/" + GetParam();
  std::ifstream in(file);
  ASSERT_TRUE(in) << "cannot read " << file;
  std::string line;
  int lineno = 0;
  Result<SearchResult> last = Status::FailedPrecondition("no query yet");
  auto where = [&] { return GetParam() + ":" + std::to_string(lineno); };
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty() || line[0] == '#') continue;
    auto words = Split(line);
    const std::string& op = words[0];
    if (op == "file") {
      ASSERT_GE(words.size(), 2u) << where();
      std::string path = base_ + "/files/" + line.substr(5);  // the rest of the line: names may have spaces
      stdfs::create_directories(stdfs::path(path).parent_path());
      std::string content, body;
      while (std::getline(in, body) && body != "----") {
        ++lineno;
        content += body + "\n";
      }
      ++lineno;
      std::ofstream(path, std::ios::binary) << content;
    } else if (op == "image") {  // image PATH SEED: PNG signature + seed bytes (hash embedder input)
      ASSERT_EQ(words.size(), 3u) << where();
      std::string path = base_ + "/files/" + words[1];
      stdfs::create_directories(stdfs::path(path).parent_path());
      std::ofstream(path, std::ios::binary) << "\x89PNG\r\n\x1A\n" << words[2];
    } else if (op == "remove") {
      stdfs::remove_all(base_ + "/files/" + words.at(1));
    } else if (op == "index") {
      auto r = engine_->Index(base_ + "/files");
      ASSERT_TRUE(r.ok()) << where() << ": " << r.status().ToString();
    } else if (op == "restart") {
      Reopen();
    } else if (op == "query" || op == "similar") {
      SearchRequest r;
      size_t sep = line.find("::");
      std::string opts = line.substr(op.size(), sep == std::string::npos ? std::string::npos : sep - op.size());
      if (sep != std::string::npos) r.query = line.substr(sep + 2);
      for (const auto& kv : Split(opts)) {
        auto eq = kv.find('=');
        ASSERT_NE(eq, std::string::npos) << where() << ": options are key=value";
        std::string k = kv.substr(0, eq), v = kv.substr(eq + 1);
        if (k == "mode") r.mode = *ParseSearchMode(v);
        else if (k == "ext") r.filters.extensions.push_back(v);
        else if (k == "type") r.filters.types.push_back(v);
        else if (k == "prefix") r.filters.path_prefix = base_ + "/files/" + v;
        else if (k == "limit") r.size = std::stoul(v);
        else if (k == "from") r.from = std::stoul(v);
        else if (k == "fusion") r.fusion = *ParseFusionMethod(v);
        else if (k == "like") {  // query vector = the stored embedding of that file
          auto doc = engine_->store()->GetByUri(FileUri(base_ + "/files/" + v));
          ASSERT_TRUE(doc.ok()) << where() << ": no document " << v;
          auto vec = engine_->store()->GetEmbedding(doc->id, "test/hash-32");
          ASSERT_TRUE(vec.ok() && vec->has_value()) << where() << ": " << v << " has no embedding";
          r.vector = **vec;
          r.vector_model = "test/hash-32";
          if (op == "similar") r.exclude_id = doc->id;
        } else FAIL() << where() << ": unknown option " << k;
      }
      last = engine_->Search(r);
    } else if (op == "expect" || op == "expect-unordered") {
      ASSERT_TRUE(last.ok()) << where() << ": query failed: " << last.status().ToString();
      std::vector<std::string> got, want;
      // Paths are space-separated; a path with spaces is written with '|' for each space.
      for (size_t i = 1; i < words.size(); ++i) {
        std::string w = words[i];
        std::replace(w.begin(), w.end(), '|', ' ');
        want.push_back(w);
      }
      for (auto& h : last->hits) got.push_back(Rel(h.doc.path));
      if (op == "expect-unordered") {
        std::sort(got.begin(), got.end());
        std::sort(want.begin(), want.end());
      }
      EXPECT_EQ(got, want) << where();
    } else if (op == "expect-first") {
      ASSERT_TRUE(last.ok()) << where() << ": " << last.status().ToString();
      ASSERT_FALSE(last->hits.empty()) << where();
      EXPECT_EQ(Rel(last->hits[0].doc.path), words.at(1)) << where();
    } else if (op == "expect-none") {
      ASSERT_TRUE(last.ok()) << where() << ": " << last.status().ToString();
      EXPECT_TRUE(last->hits.empty()) << where();
    } else if (op == "expect-total") {
      ASSERT_TRUE(last.ok()) << where() << ": " << last.status().ToString();
      EXPECT_EQ(last->total, std::stoull(words.at(1))) << where();
    } else if (op == "expect-error") {
      ASSERT_FALSE(last.ok()) << where() << ": expected an error";
      EXPECT_EQ(StatusCodeName(last.status().code()), words.at(1)) << where() << ": " << last.status().ToString();
    } else {
      FAIL() << where() << ": unknown command '" << op << "'";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, E2eTest, ::testing::ValuesIn(CaseFiles()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string n = info.param.substr(0, info.param.find('.'));
                           for (auto& c : n) if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(E2eTest);

}  // namespace
}  // namespace fs
