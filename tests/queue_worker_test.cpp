// `filesearch worker --queue` and `filesearch enqueue` as child processes, against real servers on
// 127.0.0.1: moto (server mode: SQS, and S3 with bucket notifications to SQS) and Debian's
// redis-server. Every test body runs on both queue back ends (sqs, redis).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "cache/cache_servers_fixture.h"
#include <nlohmann/json.hpp>

#include "core/http_client.h"
#include "engine/crawl.h"
#include "index/store.h"
#include "queue/job.h"
#include "queue/job_queue.h"
#include "storage/s3_client.h"
#include "spawn_util.h"

namespace fs {
namespace {

using cache::testing::Shared;
using Clock = std::chrono::steady_clock;

std::string ReadAll(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Bytes that are a PNG by their signature and header (the stand-in embedder hashes them, it does
// not decode), different for each `seed`.
std::string FakePng(const std::string& seed) {
  std::string b("\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10\x08\x02\0\0\0", 33);
  b += "\0\0\0\0";
  b += seed;
  return b;
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

int WaitExit(pid_t pid, int max_s) {
  int status = 0;
  for (int waited = 0; waited < max_s * 50; ++waited) {
    if (::waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return -1;
}

class QueueWorkerTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const auto& moto = Shared("dynamodb");  // moto's server: SQS and S3 on one port
    if (moto.server == nullptr) {
      if (moto.skip) GTEST_SKIP() << moto.why;
      FAIL() << moto.why;
    }
    moto_ = moto.server->url();
    if (GetParam() == "redis") {
      const auto& redis = Shared("redis");
      if (redis.server == nullptr) {
        if (redis.skip) GTEST_SKIP() << redis.why;
        FAIL() << redis.why;
      }
      redis_ = redis.server->url();
    }
    static int n = 0;
    name_ = "qw" + std::to_string(::getpid()) + "-" + std::to_string(++n);
    dir_ = std::filesystem::temp_directory_path() / ("fs_queue_worker_" + name_);
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ + "/files");
    data_ = dir_ + "/data";
    url_ = GetParam() == "redis" ? redis_ + "/" + name_ : "sqs://" + name_;
  }
  void TearDown() override {
    for (pid_t p : workers_) testing::StopChild(p);
    if (!dir_.empty() && !HasFailure()) std::filesystem::remove_all(dir_);
  }

  std::vector<std::string> QueueArgs(int visibility_s = 30, int max_deliveries = 3) const {
    std::vector<std::string> a = {"--queue", url_, "--visibility-timeout", std::to_string(visibility_s),
                                  "--max-deliveries", std::to_string(max_deliveries)};
    if (GetParam() == "sqs") a.insert(a.end(), {"--queue-endpoint", moto_});
    return a;
  }

  // The queue as this test process sees it (to send, peek and count).
  std::unique_ptr<queue::JobQueue> Queue(int visibility_s = 30, int max_deliveries = 3) const {
    queue::QueueOptions o;
    o.visibility_timeout_s = visibility_s;
    o.max_deliveries = max_deliveries;
    if (GetParam() == "sqs") o.endpoint = moto_;
    auto q = queue::OpenJobQueue(url_, o);
    EXPECT_TRUE(q.ok()) << q.status().ToString();
    auto setup = (*q)->Setup();
    EXPECT_TRUE(setup.ok()) << setup.status().ToString();
    return std::move(*q);
  }

  pid_t StartWorker(const std::string& log, std::vector<std::string> extra = {}, int visibility_s = 30) {
    std::vector<std::string> argv = {FILESEARCH_BINARY, "--data-dir", data_, "--no-progress", "worker",
                                     "--test-embedder", "--s3-endpoint", moto_};
    for (auto& a : QueueArgs(visibility_s)) argv.push_back(a);
    for (auto& a : extra) argv.push_back(a);
    const pid_t pid = testing::Spawn(argv, log);
    workers_.push_back(pid);
    return pid;
  }

  // Waits (up to 30 s) until the queue has no job left, waiting or taken.
  static bool Drained(queue::JobQueue* q) {
    for (auto end = Clock::now() + std::chrono::seconds(30); Clock::now() < end;) {
      auto s = q->Stats();
      if (s.ok() && s->visible == 0 && s->in_flight == 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  // Waits (up to 30 s) until a worker holds a job.
  static bool Taken(queue::JobQueue* q) {
    for (auto end = Clock::now() + std::chrono::seconds(30); Clock::now() < end;) {
      auto s = q->Stats();
      if (s.ok() && s->in_flight > 0 && s->visible == 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  std::unique_ptr<Store> OpenStore() const {
    auto s = Store::Open(data_ + "/filesearch.db");
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(*s) : nullptr;
  }

  // The document of `uri` and whether it has its stand-in vector.
  bool Indexed(Store* store, const std::string& uri, bool* has_vector = nullptr) const {
    auto d = store->GetByUri(uri);
    if (!d.ok()) return false;
    if (has_vector) {
      auto v = store->GetEmbedding(d->id, "test/hash-64");
      *has_vector = v.ok() && v->has_value();
    }
    return true;
  }

  std::string moto_, redis_, name_, dir_, data_, url_;
  std::vector<pid_t> workers_;
};

// "worker: stopped after N jobs: D done, ..." -> D
int DoneCount(const std::string& log) {
  std::smatch m;
  std::regex re(R"((\d+) done, (\d+) retried)");
  return std::regex_search(log, m, re) ? std::stoi(m[1]) : -1;
}

TEST_P(QueueWorkerTest, EnqueuedFilesAreIndexedOnceByTwoWorkersThatExitZeroOnSigterm) {
  constexpr int kFiles = 12;
  for (int i = 0; i < kFiles; ++i) WriteFile(dir_ + "/files/img" + std::to_string(i) + ".png", FakePng(name_ + std::to_string(i)));
  WriteFile(dir_ + "/files/notes.txt", "queue workers index text files too");
  std::vector<std::string> enqueue = {FILESEARCH_BINARY, "--no-progress", "enqueue", dir_ + "/files", "--create-queue"};
  for (auto& a : QueueArgs()) enqueue.push_back(a);
  std::string out;
  ASSERT_EQ(testing::RunCapture(enqueue, dir_ + "/enqueue.log", &out), 0) << out;
  EXPECT_NE(out.find("enqueued 13 jobs"), std::string::npos) << out;

  auto q = Queue();
  const pid_t a = StartWorker(dir_ + "/a.log");
  const pid_t b = StartWorker(dir_ + "/b.log");
  ASSERT_TRUE(Drained(q.get())) << ReadAll(dir_ + "/a.log") << ReadAll(dir_ + "/b.log");
  ::kill(a, SIGTERM);
  ::kill(b, SIGTERM);
  EXPECT_EQ(WaitExit(a, 30), 0) << ReadAll(dir_ + "/a.log");
  EXPECT_EQ(WaitExit(b, 30), 0) << ReadAll(dir_ + "/b.log");
  workers_.clear();
  const std::string la = ReadAll(dir_ + "/a.log"), lb = ReadAll(dir_ + "/b.log");
  // Each job was done once, between them.
  EXPECT_EQ(DoneCount(la) + DoneCount(lb), kFiles + 1) << la << lb;

  auto store = OpenStore();
  ASSERT_TRUE(store);
  for (int i = 0; i < kFiles; ++i) {
    bool vec = false;
    EXPECT_TRUE(Indexed(store.get(), FileUri(dir_ + "/files/img" + std::to_string(i) + ".png"), &vec)) << i;
    EXPECT_TRUE(vec) << i;
  }
  EXPECT_TRUE(Indexed(store.get(), FileUri(dir_ + "/files/notes.txt")));
  auto stats = store->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->documents, static_cast<uint64_t>(kFiles + 1));
  EXPECT_EQ(stats->embeddings, static_cast<uint64_t>(kFiles));

  // The same jobs again: nothing changes (idempotent), still one document each.
  ASSERT_EQ(testing::RunCapture(enqueue, dir_ + "/enqueue.log", &out), 0) << out;
  const pid_t c = StartWorker(dir_ + "/c.log");
  ASSERT_TRUE(Drained(q.get()));
  ::kill(c, SIGTERM);
  EXPECT_EQ(WaitExit(c, 30), 0);
  workers_.clear();
  stats = store->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->documents, static_cast<uint64_t>(kFiles + 1));
}

TEST_P(QueueWorkerTest, AJobOfAWorkerKilledMidJobIsDoneByAnother) {
  const std::string file = dir_ + "/files/cat.png";
  WriteFile(file, FakePng(name_ + "cat"));
  auto q = Queue(/*visibility_s=*/2);
  const std::vector<std::string> job = {queue::PlainJob(file)};
  ASSERT_TRUE(q->Send(job).ok());
  // The first worker holds the job (as if the model were slow) and is killed while it does.
  const pid_t a = StartWorker(dir_ + "/a.log", {"--test-hold-ms", "600000"}, /*visibility_s=*/2);
  ASSERT_TRUE(Taken(q.get())) << ReadAll(dir_ + "/a.log");
  ::kill(a, SIGKILL);
  EXPECT_EQ(WaitExit(a, 10), 128 + SIGKILL);
  workers_.clear();
  // Another worker gets it once the visibility timeout has run out.
  const pid_t b = StartWorker(dir_ + "/b.log", {}, /*visibility_s=*/2);
  ASSERT_TRUE(Drained(q.get())) << ReadAll(dir_ + "/b.log");
  ::kill(b, SIGTERM);
  EXPECT_EQ(WaitExit(b, 30), 0);
  workers_.clear();
  const std::string lb = ReadAll(dir_ + "/b.log");
  EXPECT_NE(lb.find("delivery 2"), std::string::npos) << lb;
  auto store = OpenStore();
  ASSERT_TRUE(store);
  bool vec = false;
  EXPECT_TRUE(Indexed(store.get(), FileUri(file), &vec));
  EXPECT_TRUE(vec);
}

TEST_P(QueueWorkerTest, SigtermHandsBackAJobNotStartedAndExitsZero) {
  const std::string file = dir_ + "/files/dog.png";
  WriteFile(file, FakePng(name_ + "dog"));
  auto q = Queue(/*visibility_s=*/600);
  const std::vector<std::string> job = {queue::PlainJob(file)};
  ASSERT_TRUE(q->Send(job).ok());
  const pid_t a = StartWorker(dir_ + "/a.log", {"--test-hold-ms", "600000"}, /*visibility_s=*/600);
  ASSERT_TRUE(Taken(q.get())) << ReadAll(dir_ + "/a.log");
  ::kill(a, SIGTERM);
  EXPECT_EQ(WaitExit(a, 30), 0) << ReadAll(dir_ + "/a.log");
  workers_.clear();
  EXPECT_NE(ReadAll(dir_ + "/a.log").find("1 handed back"), std::string::npos) << ReadAll(dir_ + "/a.log");
  // With a 10-minute visibility timeout, only the hand-back makes it visible again now.
  auto s = q->Stats();
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->visible, 1);
  auto got = q->Receive(1, 2000);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0].body, job[0]);
  ASSERT_TRUE(q->Ack((*got)[0]).ok());
}

TEST_P(QueueWorkerTest, PoisonJobsAreDeadLettersWithReasonsAndNeverBlockTheQueue) {
  const std::string good = dir_ + "/files/good.png";
  WriteFile(good, FakePng(name_ + "good"));
  const std::string big = dir_ + "/files/big.png";
  WriteFile(big, FakePng(name_ + "big") + std::string(2 << 20, 'x'));
  auto q = Queue();
  const std::vector<std::string> jobs = {
      "this is not a job",
      queue::PlainJob(dir_ + "/files/missing.png"),
      queue::PlainJob("s3://no-such-bucket-" + name_ + "/missing.png"),
      queue::PlainJob(big),
      queue::PlainJob(good)};
  ASSERT_TRUE(q->Send(jobs).ok());
  const pid_t a = StartWorker(dir_ + "/a.log", {"--max-object-mb", "1", "--metrics-port", "0"});
  ASSERT_TRUE(Drained(q.get())) << ReadAll(dir_ + "/a.log");
  // The queue families on the worker's /metrics: 4 dead, 1 done, and the dead-letter gauge (refreshed
  // every 5 s, so read until it shows them).
  std::smatch port;
  const std::string started = ReadAll(dir_ + "/a.log");
  ASSERT_TRUE(std::regex_search(started, port, std::regex(R"(metrics at http://127\.0\.0\.1:(\d+)/metrics)"))) << started;
  HttpClient http(HttpClientOptions{});
  HttpRequest get;
  get.url = "http://127.0.0.1:" + port[1].str() + "/metrics";
  std::string page;
  for (auto end = Clock::now() + std::chrono::seconds(20); Clock::now() < end;) {
    auto r = http.Send(get);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    page = r->body;
    if (page.find("filesearch_queue_dead_letters 4") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  EXPECT_NE(page.find("filesearch_queue_dead_letters 4"), std::string::npos) << page;
  EXPECT_NE(page.find("filesearch_queue_jobs_total{result=\"dead\"} 4"), std::string::npos) << page;
  EXPECT_NE(page.find("filesearch_queue_jobs_total{result=\"done\"} 1"), std::string::npos) << page;
  EXPECT_NE(page.find("filesearch_queue_depth 0"), std::string::npos) << page;
  ::kill(a, SIGTERM);
  EXPECT_EQ(WaitExit(a, 30), 0);
  workers_.clear();
  const std::string log = ReadAll(dir_ + "/a.log");

  auto s = q->Stats();
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->dead, 4) << log;
  std::vector<queue::JobQueue::DeadLetterEntry> dead;
  for (int tries = 0; tries < 5 && dead.size() < 4; ++tries) {  // SQS hands out up to 10 per peek, maybe fewer
    auto d = q->PeekDeadLetters(10);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    for (auto& e : *d) {
      bool seen = false;
      for (auto& x : dead) seen |= x.body == e.body;
      if (!seen) dead.push_back(e);
    }
  }
  ASSERT_EQ(dead.size(), 4u) << log;
  std::map<std::string, std::string> reason_of;
  for (auto& e : dead) reason_of[e.body] = e.reason;
  EXPECT_NE(reason_of[jobs[0]].find("not a job"), std::string::npos) << reason_of[jobs[0]];
  EXPECT_NE(reason_of[jobs[1]].find("no file "), std::string::npos) << reason_of[jobs[1]];
  EXPECT_NE(reason_of[jobs[2]].find("no-such-bucket"), std::string::npos) << reason_of[jobs[2]];
  EXPECT_NE(reason_of[jobs[3]].find("over the limit"), std::string::npos) << reason_of[jobs[3]];

  // The good job behind them was done; the poison is on the failure list with the same reasons.
  auto store = OpenStore();
  ASSERT_TRUE(store);
  bool vec = false;
  EXPECT_TRUE(Indexed(store.get(), FileUri(good), &vec));
  EXPECT_TRUE(vec);
  EXPECT_FALSE(Indexed(store.get(), FileUri(big)));
  auto failures = store->ListFailures(/*dead_only=*/true, 100);
  ASSERT_TRUE(failures.ok());
  std::map<std::string, std::string> failed;
  for (const auto& f : *failures) failed[f.uri] = f.reason;
  EXPECT_EQ(failures->size(), 4u);
  EXPECT_NE(failed[FileUri(dir_ + "/files/missing.png")].find("no file "), std::string::npos);
  EXPECT_NE(failed[FileUri(big)].find("over the limit"), std::string::npos);
  EXPECT_EQ(failed.count("s3://no-such-bucket-" + name_ + "/missing.png"), 1u);
}

// One Receive hands a worker several jobs (--batch): their images are embedded together, but each
// job's items still happen in queue order. An add then a removal of one file leaves it out of the
// index; a removal then an add leaves it in. A poison job in the batch is dead on its own.
TEST_P(QueueWorkerTest, JobsTakenAsOneBatchKeepTheirOrderAndTheirOwnOutcomes) {
  const std::string gone = dir_ + "/files/gone.png", kept = dir_ + "/files/kept.png";
  WriteFile(gone, FakePng(name_ + "gone"));
  WriteFile(kept, FakePng(name_ + "kept"));
  std::vector<std::string> jobs = {queue::PlainJob(gone), queue::PlainJob(gone, true, /*remove=*/true),
                                   queue::PlainJob(kept, true, /*remove=*/true), queue::PlainJob(kept),
                                   queue::PlainJob(dir_ + "/files/missing.png")};
  for (int i = 0; i < 4; ++i) {
    const std::string f = dir_ + "/files/more" + std::to_string(i) + ".png";
    WriteFile(f, FakePng(name_ + "more" + std::to_string(i)));
    jobs.push_back(queue::PlainJob(f));
  }
  auto q = Queue();
  ASSERT_TRUE(q->Send(jobs).ok());
  const pid_t a = StartWorker(dir_ + "/a.log", {"--batch", "10"});
  ASSERT_TRUE(Drained(q.get())) << ReadAll(dir_ + "/a.log");
  ::kill(a, SIGTERM);
  EXPECT_EQ(WaitExit(a, 30), 0);
  workers_.clear();
  const std::string log = ReadAll(dir_ + "/a.log");
  EXPECT_EQ(DoneCount(log), 8) << log;
  auto store = OpenStore();
  ASSERT_TRUE(store);
  EXPECT_FALSE(Indexed(store.get(), FileUri(gone))) << log;
  bool vec = false;
  EXPECT_TRUE(Indexed(store.get(), FileUri(kept), &vec)) << log;
  EXPECT_TRUE(vec);
  for (int i = 0; i < 4; ++i) {
    vec = false;
    EXPECT_TRUE(Indexed(store.get(), FileUri(dir_ + "/files/more" + std::to_string(i) + ".png"), &vec)) << i;
    EXPECT_TRUE(vec) << i;
  }
  auto s = q->Stats();
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->dead, 1) << log;
}

TEST_P(QueueWorkerTest, S3EventsIndexCreatedObjectsAndRemoveDeletedOnes) {
  // A bucket on moto's S3, and an object whose key has a space, a '+' and a non-ASCII letter.
  const std::string bucket = name_;
  HttpClient http(HttpClientOptions{});
  HttpRequest create;
  create.method = "PUT";
  create.url = moto_ + "/" + bucket;
  auto created = http.Send(create);
  ASSERT_TRUE(created.ok() && created->status == 200) << (created.ok() ? created->body : created.status().ToString());
  storage::S3Options so;
  so.endpoint = moto_;
  auto s3 = storage::S3Client::Create(so);
  ASSERT_TRUE(s3.ok());
  const std::string key = "summer 2024/caf\xC3\xA9+1.png";
  ASSERT_TRUE((*s3)->PutObject(bucket, key, FakePng(name_ + "s3"), "image/png").ok());
  auto q = Queue();
  // The ObjectCreated event S3 sends (key URL-encoded: space as '+', '+' as %2B).
  auto event = [&](const std::string& name) {
    nlohmann::json record = {{"eventVersion", "2.1"}, {"eventSource", "aws:s3"}, {"eventName", name},
                             {"s3", {{"bucket", {{"name", bucket}}}, {"object", {{"key", "summer+2024/caf%C3%A9%2B1.png"}}}}}};
    return nlohmann::json({{"Records", {record}}}).dump();
  };
  const std::vector<std::string> created_event = {event("ObjectCreated:Put")};
  ASSERT_TRUE(q->Send(created_event).ok());
  const pid_t a = StartWorker(dir_ + "/a.log");
  ASSERT_TRUE(Drained(q.get())) << ReadAll(dir_ + "/a.log");
  const std::string uri = "s3://" + bucket + "/" + key;
  {
    auto store = OpenStore();
    ASSERT_TRUE(store);
    bool vec = false;
    EXPECT_TRUE(Indexed(store.get(), uri, &vec)) << ReadAll(dir_ + "/a.log");
    EXPECT_TRUE(vec);
  }
  HttpRequest del;
  del.method = "DELETE";
  del.url = moto_ + "/" + bucket + "/" + "summer%202024/caf%C3%A9%2B1.png";
  ASSERT_TRUE(http.Send(del).ok());
  const std::vector<std::string> removed_event = {event("ObjectRemoved:Delete")};
  ASSERT_TRUE(q->Send(removed_event).ok());
  ASSERT_TRUE(Drained(q.get())) << ReadAll(dir_ + "/a.log");
  ::kill(a, SIGTERM);
  EXPECT_EQ(WaitExit(a, 30), 0);
  workers_.clear();
  auto store = OpenStore();
  ASSERT_TRUE(store);
  EXPECT_FALSE(Indexed(store.get(), uri)) << ReadAll(dir_ + "/a.log");
}

TEST_P(QueueWorkerTest, BackfillEnqueueFansOutAndWatchesTheQueueAndTheIndex) {
  constexpr int kImages = 8;
  for (int i = 0; i < kImages; ++i) WriteFile(dir_ + "/files/p" + std::to_string(i) + ".png", FakePng(name_ + "p" + std::to_string(i)));
  std::string out;
  // Indexed without a model: the images have no vectors yet.
  ASSERT_EQ(testing::RunCapture({FILESEARCH_BINARY, "--data-dir", data_, "--no-progress", "index", dir_ + "/files"},
                                dir_ + "/index.log", &out),
            0)
      << out;
  const pid_t a = StartWorker(dir_ + "/a.log");
  std::vector<std::string> backfill = {FILESEARCH_BINARY, "--data-dir", data_, "--no-progress", "backfill",
                                       "--test-embedder", "--enqueue", "--wait", "--create-queue"};
  for (auto& x : QueueArgs()) backfill.push_back(x);
  ASSERT_EQ(testing::RunCapture(backfill, dir_ + "/backfill.log", &out), 0) << out << ReadAll(dir_ + "/a.log");
  EXPECT_NE(out.find("backfill --enqueue: 8 jobs"), std::string::npos) << out;
  EXPECT_NE(out.find("queue drained; 0 images of this index still without an embedding; 0 dead letters"),
            std::string::npos)
      << out;
  ::kill(a, SIGTERM);
  EXPECT_EQ(WaitExit(a, 30), 0);
  workers_.clear();
  auto store = OpenStore();
  ASSERT_TRUE(store);
  auto missing = store->CountImagesMissingEmbedding("test/hash-64");
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(*missing, 0u);
}

INSTANTIATE_TEST_SUITE_P(Backends, QueueWorkerTest, ::testing::Values("sqs", "redis"),
                         [](const auto& p) { return p.param; });

}  // namespace
}  // namespace fs
