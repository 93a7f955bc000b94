// Crash safety: SIGKILL `filesearch index` at random moments of a large ingest, many times, and
// check after each kill that (1) every document the indexer acknowledged (--log-committed) is in
// the store and findable, and (2) the vector index, reopened from its snapshot + change log, holds
// exactly the embeddings the store holds. Some cycles also truncate the snapshot on disk.
#include <algorithm>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include "engine/crawl.h"
#include "engine/engine.h"
#include "spawn_util.h"

namespace fs {
namespace {

namespace stdfs = std::filesystem;

std::set<std::string> ReadLines(const std::string& path) {
  std::set<std::string> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.insert(line);
  }
  return out;
}

using ::fs::testing::RunToSuccess;
using ::fs::testing::Spawn;

TEST(CrashTest, SigkillDuringIngestLosesNothingAcknowledged) {
  const std::string base = stdfs::weakly_canonical(::testing::TempDir()).string() + "/crash_test_" + std::to_string(::getpid());
  stdfs::remove_all(base);
  const std::string corpus = base + "/corpus", data = base + "/data", ack = base + "/acked.log";
  std::mt19937 rng(1234);
  // 3,000 files: text documents and stand-in "images" (PNG signature + distinct bytes).
  for (int dir = 0; dir < 30; ++dir) {
    std::string d = corpus + "/dir" + std::to_string(dir);
    stdfs::create_directories(d);
    for (int i = 0; i < 100; ++i) {
      int n = dir * 100 + i;
      if (i % 3 == 0) {
        std::ofstream(d + "/photo" + std::to_string(n) + ".png", std::ios::binary)
            << "\x89PNG\r\n\x1A\n" << "pixels-" << n << std::string(static_cast<size_t>(rng() % 2000), 'p');
      } else {
        std::ofstream(d + "/note" + std::to_string(n) + ".txt") << "token" << n << " body text " << std::string(static_cast<size_t>(rng() % 4000), 'w');
      }
    }
  }
  const std::vector<std::string> cmd = {FILESEARCH_BINARY, "--no-progress", "--data-dir", data, "index", corpus,
                                        "--test-embedder", "--log-committed", ack, "--checkpoint-ms", "30"};
  int killed = 0, completed = 0;
  std::set<std::string> all_acked;
  // Cycles go on until the indexer has been killed mid-run 24 times (a run that finishes before
  // its kill still counts as a check, not as a kill); the kill comes sooner after each completion.
  int max_delay_ms = 400;
  for (int cycle = 0; killed < 24 && cycle < 80; ++cycle) {
    stdfs::remove(ack);
    // Rewrite 400 random files so every run has real work (updates, new hashes, re-embedding).
    for (int k = 0; k < 400; ++k) {
      int n = static_cast<int>(rng() % 3000);
      std::string d = corpus + "/dir" + std::to_string(n / 100);
      if (n % 100 % 3 == 0) {
        std::ofstream(d + "/photo" + std::to_string(n) + ".png", std::ios::binary)
            << "\x89PNG\r\n\x1A\n" << "pixels-" << n << "-v" << cycle;
      } else {
        std::ofstream(d + "/note" + std::to_string(n) + ".txt") << "token" << n << " version " << cycle;
      }
    }
    pid_t pid = Spawn(cmd);
    ASSERT_GT(pid, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(20 + rng() % static_cast<unsigned>(max_delay_ms)));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (WIFSIGNALED(status)) {
      ++killed;
    } else {
      ++completed;
      max_delay_ms = std::max(60, max_delay_ms * 3 / 4);
    }
    if (cycle % 5 == 4) {  // damage the snapshot as a crash on a bad file system might
      for (auto& e : stdfs::directory_iterator(data + "/vectors")) {
        if (e.path().extension() == ".hnsw") stdfs::resize_file(e.path(), stdfs::file_size(e.path()) / 3);
      }
    }
    std::set<std::string> acked = ReadLines(ack);
    all_acked.insert(acked.begin(), acked.end());

    EngineOptions o;
    o.data_dir = data;
    o.progress = false;
    o.model_id = "test/hash-64";
    auto engine = Engine::Open(o);
    ASSERT_TRUE(engine.ok()) << "cycle " << cycle << ": " << engine.status().ToString();
    Store* store = (*engine)->store();
    for (const auto& uri : acked) {
      auto doc = store->GetByUri(uri);
      ASSERT_TRUE(doc.ok()) << "cycle " << cycle << ": acknowledged document lost: " << uri;
    }
    // A sample of acknowledged text documents is findable by its unique token.
    int checked = 0;
    for (const auto& uri : acked) {
      if (uri.find("/note") == std::string::npos || ++checked > 20) continue;
      std::string token = "token" + uri.substr(uri.find("/note") + 5, uri.find(".txt") - uri.find("/note") - 5);
      auto page = store->KeywordSearch(token, {}, 0, 5);
      ASSERT_TRUE(page.ok());
      ASSERT_EQ(page->total, 1u) << "cycle " << cycle << ": " << token << " not searchable";
    }
    // The vector index agrees with the source of truth.
    VectorIndex* vi = (*engine)->vectors();
    ASSERT_NE(vi, nullptr);
    uint64_t embeddings = 0;
    bool all_present = true;
    ASSERT_TRUE(store->ForEachEmbedding("test/hash-64", [&](const EmbeddingRow& row) {
      ++embeddings;
      if (!vi->Contains(row.doc_id)) all_present = false;
    }).ok());
    EXPECT_TRUE(all_present) << "cycle " << cycle << ": an embedding is missing from the vector index";
    EXPECT_EQ(vi->size(), embeddings) << "cycle " << cycle << " (" << vi->open_note() << ")";
  }
  EXPECT_GE(killed, 20) << "the indexer finished before it could be killed too often; make the corpus larger";
  // A final uninterrupted run completes the index.
  ASSERT_TRUE(RunToSuccess({FILESEARCH_BINARY, "--no-progress", "--data-dir", data, "index", corpus, "--test-embedder"}));
  EngineOptions o;
  o.data_dir = data;
  o.progress = false;
  auto engine = Engine::Open(o);
  ASSERT_TRUE(engine.ok());
  auto stats = (*engine)->store()->Stats();
  EXPECT_EQ(stats->documents, 3000u);
  EXPECT_EQ(stats->embeddings, 30u * 34u);  // photo files: i % 3 == 0 for i in 0..99, in 30 folders
  EXPECT_EQ((*engine)->vectors()->size(), 30u * 34u);
  std::printf("crash test: %d kills, %d runs completed before the kill, %zu documents acknowledged overall\n", killed,
              completed, all_acked.size());
  if (!::testing::Test::HasFailure()) stdfs::remove_all(base);
}

// Backfill after SIGKILL: images indexed without a model are embedded by `filesearch backfill`,
// which is killed at random moments; after every kill the store and the vector index agree, the
// number still missing never grows, and a final run finishes the job.
TEST(CrashTest, SigkillDuringBackfillResumes) {
  const std::string base = stdfs::temp_directory_path().string() + "/backfill_crash_" + std::to_string(::getpid());
  const std::string corpus = base + "/corpus", data = base + "/data";
  stdfs::remove_all(base);
  stdfs::create_directories(corpus);
  constexpr int kImages = 6000;
  for (int i = 0; i < kImages; ++i) {
    std::ofstream(corpus + "/img" + std::to_string(i) + ".png", std::ios::binary) << "\x89PNG\r\n\x1A\n" << "pixels-" << i;
  }
  ASSERT_TRUE(RunToSuccess({FILESEARCH_BINARY, "--no-progress", "--data-dir", data, "index", corpus}));
  std::mt19937 rng(7);
  uint64_t missing_before = kImages;
  int killed = 0;
  for (int cycle = 0; cycle < 12 && missing_before > 0; ++cycle) {
    pid_t pid = Spawn({FILESEARCH_BINARY, "--no-progress", "--data-dir", data, "backfill", "--test-embedder", "--batch", "8"});
    ASSERT_GT(pid, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(30 + rng() % 120));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (WIFSIGNALED(status)) ++killed;
    EngineOptions o;
    o.data_dir = data;
    o.progress = false;
    o.model_id = "test/hash-64";
    auto engine = Engine::Open(o);
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    auto missing = (*engine)->store()->CountImagesMissingEmbedding("test/hash-64");
    ASSERT_TRUE(missing.ok());
    EXPECT_LE(*missing, missing_before) << "cycle " << cycle << ": committed embeddings were lost";
    missing_before = *missing;
    auto stats = (*engine)->store()->Stats();
    ASSERT_TRUE(stats.ok());
    EXPECT_EQ(stats->embeddings + *missing, static_cast<uint64_t>(kImages));
    EXPECT_EQ((*engine)->vectors()->size(), stats->embeddings) << "cycle " << cycle;
  }
  EXPECT_GE(killed, 3) << "backfill finished before it could be killed; make the corpus larger";
  ASSERT_TRUE(RunToSuccess({FILESEARCH_BINARY, "--no-progress", "--data-dir", data, "backfill", "--test-embedder"}));
  EngineOptions o;
  o.data_dir = data;
  o.progress = false;
  auto engine = Engine::Open(o);
  ASSERT_TRUE(engine.ok());
  EXPECT_EQ(*(*engine)->store()->CountImagesMissingEmbedding("test/hash-64"), 0u);
  EXPECT_EQ((*engine)->vectors()->size(), static_cast<size_t>(kImages));
  std::printf("backfill crash test: %d kills, %llu of %d images still missing after them\n", killed,
              static_cast<unsigned long long>(missing_before), kImages);
  if (!::testing::Test::HasFailure()) stdfs::remove_all(base);
}

}  // namespace
}  // namespace fs
