// `filesearch worker` as a person runs it: files created, changed, moved into new folders and
// deleted while it runs become searchable (or disappear) without a manual re-index; changes made
// while it is stopped are picked up when it starts again; SIGTERM ends it cleanly. Also prints
// the time from a file's write to it being searchable (p50/p95; docs/benchmarks.md).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "engine/embedder.h"
#include "engine/engine.h"
#include "spawn_util.h"

namespace fs {
namespace {

namespace stdfs = std::filesystem;
using Clock = std::chrono::steady_clock;

class WorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = stdfs::weakly_canonical(::testing::TempDir()).string() + "/worker_test_" + std::to_string(::getpid());
    stdfs::remove_all(base_);
    stdfs::create_directories(base_ + "/share/docs");
    std::ofstream(base_ + "/share/docs/old.txt") << "oldword";
  }
  void TearDown() override {
    if (pid_ > 0) StopWorker();
    if (!HasFailure()) stdfs::remove_all(base_);
  }
  void StartWorker(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv = {FILESEARCH_BINARY, "--no-progress", "--data-dir", base_ + "/data", "worker",
                                     base_ + "/share", "--test-embedder", "--quiet-ms", "100", "--max-delay-ms", "500"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    pid_ = testing::Spawn(argv, base_ + "/worker.log");
    ASSERT_GT(pid_, 0);
  }
  // `serve --watch share/` on `port`, auth off, the test embedder.
  void StartServeWatch(int port) {
    pid_ = testing::Spawn({FILESEARCH_BINARY, "--no-progress", "--data-dir", base_ + "/data", "serve", "--no-auth",
                           "--port", std::to_string(port), "--test-embedder", "--watch", base_ + "/share"},
                          base_ + "/serve.log");
    ASSERT_GT(pid_, 0);
  }
  int StopWorker() {
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  // Hits for `word` in a fresh read of the store (another process writes it).
  uint64_t Hits(const std::string& word) {
    auto store = Store::Open(base_ + "/data/filesearch.db");
    if (!store.ok()) return 0;
    auto page = (*store)->KeywordSearch(word, {}, 0, 10);
    return page.ok() ? page->total : 0;
  }
  // Seconds until Hits(word) == want, or -1 after `timeout_s`.
  double WaitFor(const std::string& word, uint64_t want, double timeout_s = 20) {
    const auto start = Clock::now();
    while (std::chrono::duration<double>(Clock::now() - start).count() < timeout_s) {
      if (Hits(word) == want) return std::chrono::duration<double>(Clock::now() - start).count();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
  }

  std::string base_;
  pid_t pid_ = -1;
};

TEST_F(WorkerTest, FollowsChangesAndCatchesUpAfterARestart) {
  StartWorker();
  ASSERT_GE(WaitFor("oldword", 1), 0) << "the first pass indexes what is there";
  // New files, one at a time: time from write to searchable.
  std::vector<double> latencies;
  for (int i = 0; i < 15; ++i) {
    std::ofstream(base_ + "/share/docs/new" + std::to_string(i) + ".txt") << "freshword" << i;
    const double s = WaitFor("freshword" + std::to_string(i), 1);
    ASSERT_GE(s, 0) << "new file " << i << " never became searchable";
    latencies.push_back(s);
  }
  // A new nested folder, a move into it, a rename, a delete, an image.
  stdfs::create_directories(base_ + "/share/projects/2026/q4");
  std::ofstream(base_ + "/share/projects/2026/q4/plan.txt") << "nestedword";
  ASSERT_GE(WaitFor("nestedword", 1), 0) << "a file in a folder created after the start";
  stdfs::rename(base_ + "/share/docs/old.txt", base_ + "/share/projects/2026/q4/moved.txt");
  ASSERT_GE(WaitFor("moved", 1), 0) << "the moved file under its new name";
  std::ofstream(base_ + "/share/docs/new0.txt", std::ios::trunc) << "rewrittenword";
  ASSERT_GE(WaitFor("rewrittenword", 1), 0);
  EXPECT_EQ(Hits("freshword0"), 0u) << "the old content of a rewritten file is gone";
  stdfs::remove(base_ + "/share/docs/new1.txt");
  ASSERT_GE(WaitFor("freshword1", 0), 0) << "a deleted file leaves the index";
  std::ofstream(base_ + "/share/docs/photo.png", std::ios::binary) << "\x89PNG\r\n\x1A\n" << "pixels";
  ASSERT_GE(WaitFor("photo", 1), 0);
  EXPECT_EQ(StopWorker(), 0) << "SIGTERM drains and exits 0";

  // Changes while no worker runs are reconciled at the next start.
  std::ofstream(base_ + "/share/docs/offline.txt") << "offlineword";
  stdfs::remove(base_ + "/share/docs/new2.txt");
  StartWorker();
  EXPECT_GE(WaitFor("offlineword", 1), 0);
  EXPECT_GE(WaitFor("freshword2", 0), 0);
  EXPECT_EQ(StopWorker(), 0);
  {
    EngineOptions o;
    o.data_dir = base_ + "/data";
    o.progress = false;
    auto engine = Engine::Open(o);
    ASSERT_TRUE(engine.ok());
    auto missing = (*engine)->store()->CountImagesMissingEmbedding("test/hash-64");
    ASSERT_TRUE(missing.ok());
    EXPECT_EQ(*missing, 0u) << "the worker embedded the new image";
  }
  std::sort(latencies.begin(), latencies.end());
  std::printf("worker: write-to-searchable over %zu files: p50 %.0f ms, p95 %.0f ms, max %.0f ms\n", latencies.size(),
              1e3 * latencies[latencies.size() / 2], 1e3 * latencies[latencies.size() * 95 / 100],
              1e3 * latencies.back());
}


// GET `path` over plain HTTP/1.0; the body, or "" when the server does not answer.
std::string HttpGet(int port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    const std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (::write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
      char buf[4096];
      ssize_t n;
      while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  const size_t body = out.find("\r\n\r\n");
  return body == std::string::npos ? "" : out.substr(body + 4);
}

TEST_F(WorkerTest, ServeWatchMakesNewFilesSearchableOverHttp) {
  const int port = testing::FreePort();
  StartServeWatch(port);
  // The total of a keyword search, as the API reports it; -1 while the server is not up.
  auto total = [&](const std::string& word) -> int {
    const std::string body = HttpGet(port, "/search?mode=text&q=" + word);
    const size_t at = body.find("\"total\":");
    return at == std::string::npos ? -1 : std::atoi(body.c_str() + at + 8);
  };
  auto wait_total = [&](const std::string& word, int want) {
    for (int i = 0; i < 2000; ++i) {
      if (total(word) == want) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  };
  ASSERT_TRUE(wait_total("oldword", 1)) << "the reconciling pass at start; log: " << base_ + "/serve.log";
  std::ofstream(base_ + "/share/docs/live.txt") << "liveword";
  EXPECT_TRUE(wait_total("liveword", 1)) << "a file written while serving";
  stdfs::remove(base_ + "/share/docs/live.txt");
  EXPECT_TRUE(wait_total("liveword", 0)) << "and deleted again";
  std::ofstream(base_ + "/share/docs/snap.png", std::ios::binary) << "\x89PNG\r\n\x1A\n" << "pixels";
  EXPECT_TRUE(wait_total("snap", 1));
  EXPECT_EQ(StopWorker(), 0) << "SIGTERM stops the watcher and the server";
}

// /metrics of `serve --watch` counts the watcher's indexing: its embedding-cache lookups land on
// the served counters, and the vector gauge follows the watcher's writes without a search first.
TEST_F(WorkerTest, ServeWatchIndexingShowsInTheMetrics) {
  std::ofstream(base_ + "/share/docs/one.png", std::ios::binary) << "\x89PNG\r\n\x1A\n" << "first pixels";
  std::ofstream(base_ + "/share/docs/two.png", std::ios::binary) << "\x89PNG\r\n\x1A\n" << "second pixels";
  const int port = testing::FreePort();
  StartServeWatch(port);
  auto metric = [&](const std::string& name) -> double {
    const std::string page = HttpGet(port, "/metrics");
    const size_t at = page.find("\n" + name + " ");
    return at == std::string::npos ? -1.0 : std::atof(page.c_str() + at + name.size() + 2);
  };
  bool indexed = false;
  for (int i = 0; i < 2000 && !indexed; ++i) {
    indexed = metric("filesearch_index_vectors") == 2.0;
    if (!indexed) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(indexed) << "filesearch_index_vectors stayed at " << metric("filesearch_index_vectors")
                       << " although the watcher embedded both images; log: " << base_ + "/serve.log";
  EXPECT_GE(metric("filesearch_embedding_cache_misses_total"), 2.0) << "the watcher looked up two new contents";
  EXPECT_EQ(StopWorker(), 0);
}

// `worker --metrics-port`: the standalone worker's /metrics counts its embeddings by result (an
// image the embedder refuses is an error and a dead letter); `--no-embed` indexes images without
// vectors (the rollback switch) and a later worker without it embeds them.
TEST_F(WorkerTest, MetricsPortCountsEmbeddingsAndNoEmbedSkipsThem) {
  std::ofstream(base_ + "/share/docs/firstphoto.png", std::ios::binary) << "\x89PNG\r\n\x1A\n" << "first pixels";
  std::ofstream(base_ + "/share/docs/bad.png", std::ios::binary) << "\x89PNG\r\n\x1A\n" << kTestEmbedFaultMarker;
  const int port = testing::FreePort();
  // The value of one series ("name{labels}"), -1 when absent or the worker does not answer.
  auto metric = [&](const std::string& series) -> double {
    const std::string page = HttpGet(port, "/metrics");
    const size_t at = page.find("\n" + series + " ");
    return at == std::string::npos ? -1.0 : std::atof(page.c_str() + at + series.size() + 2);
  };
  auto wait_metric = [&](const std::string& series, double want) {
    for (int i = 0; i < 2000; ++i) {
      if (metric(series) == want) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  };
  const std::string ok = "filesearch_embeddings_total{result=\"ok\"}";
  const std::string error = "filesearch_embeddings_total{result=\"error\"}";

  StartWorker({"--no-embed", "--metrics-port", std::to_string(port)});
  ASSERT_TRUE(wait_metric("filesearch_worker_passes_total", 1)) << "log: " << base_ + "/worker.log";
  EXPECT_EQ(metric("filesearch_worker_files_total{change=\"added\"}"), 3);
  EXPECT_EQ(metric(ok), 0) << "--no-embed embeds nothing";
  EXPECT_EQ(metric(error), 0);
  EXPECT_EQ(HttpGet(port, "/other").find("filesearch_"), std::string::npos) << "the port serves /metrics only";
  EXPECT_EQ(StopWorker(), 0);
  EXPECT_EQ(HttpGet(port, "/metrics"), "") << "the endpoint closes with the worker";
  EXPECT_EQ(Hits("firstphoto"), 1u) << "the image is indexed for keyword search";
  {
    auto store = Store::Open(base_ + "/data/filesearch.db");
    ASSERT_TRUE(store.ok());
    auto missing = (*store)->CountImagesMissingEmbedding("test/hash-64");
    ASSERT_TRUE(missing.ok());
    EXPECT_EQ(*missing, 2u) << "no vectors under --no-embed";
  }

  // Embedding back on: the reconciling pass embeds what was skipped; the marked file fails.
  StartWorker({"--metrics-port", std::to_string(port)});
  EXPECT_TRUE(wait_metric(ok, 1)) << "log: " << base_ + "/worker.log";
  EXPECT_TRUE(wait_metric(error, 1));
  EXPECT_TRUE(wait_metric("filesearch_worker_dead_letters", 1)) << "a refused image is a dead letter";
  EXPECT_GE(metric("filesearch_embedding_duration_seconds_count{kind=\"index\"}"), 2);
  EXPECT_EQ(StopWorker(), 0);
}

}  // namespace
}  // namespace fs
