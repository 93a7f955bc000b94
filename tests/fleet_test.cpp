// The fleet, with faults (issue 13 §5). A bucket on moto's S3 holds a few hundred real images from
// ../shared/corpus/ and some poison; its objects reach a queue as jobs (S3 event notifications on
// SQS, or `filesearch enqueue s3://...` on a Redis stream); three `filesearch worker` processes with
// a small generated CLIP model and a shared embedding cache (DynamoDB on moto for SQS, Redis for
// Redis Streams) do them. One worker is SIGKILLed twice mid-job and the queue server once.
// Afterwards every image is in the index once with its vector, the poison are dead letters with
// their reasons, and a second fleet (a new index) given the same bytes runs the model for none.
//
// The queue server fault: Redis runs with an append-only file synced on every write and is SIGKILLed
// and restarted on its port. moto keeps its state in memory only (a restart would lose the queue,
// which SQS itself never does), so the SQS variant freezes it instead (SIGSTOP for 4 s, then
// SIGCONT): every request of the workers hangs or times out, as in a network partition.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "cache/cache_servers_fixture.h"
#include "core/http_client.h"
#include "index/store.h"
#include "model/clip/clip_test_util.h"
#include "queue/job.h"
#include "queue/job_queue.h"
#include "storage/s3_client.h"
#include "spawn_util.h"

namespace fs {
namespace {

namespace stdfs = std::filesystem;
using cache::testing::ServerProcess;
using cache::testing::Shared;
using Clock = std::chrono::steady_clock;

constexpr size_t kImages = 240;    // good images in the bucket
constexpr int kMaxObjectMb = 2;    // the workers' --max-object-mb

std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Every worker log's summary line: "... N images embedded (M from the cache)".
struct Summary {
  int done = 0, embedded = 0, from_cache = 0;
  bool found = false;
};
Summary SummaryOf(const std::string& log) {
  Summary s;
  std::smatch m;
  if (std::regex_search(log, m, std::regex(R"((\d+) done, .*; .* (\d+) images embedded \((\d+) from the cache\))"))) {
    s.found = true;
    s.done = std::stoi(m[1]);
    s.embedded = std::stoi(m[2]);
    s.from_cache = std::stoi(m[3]);
  }
  return s;
}

class FleetTest : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    shared_ = fs::testing::SharedDir();
    tiny_.Make(shared_, "corpus/photos");
  }
  static void TearDownTestSuite() { tiny_.Remove(); }

  void SetUp() override {
    if (tiny_.dir().empty()) GTEST_SKIP() << tiny_.why();
    sqs_ = GetParam() == "sqs";
    name_ = "fleet-" + GetParam() + "-" + std::to_string(::getpid());
    dir_ = (stdfs::temp_directory_path() / name_).string();
    stdfs::remove_all(dir_);
    stdfs::create_directories(dir_ + "/redis");
    // The cache's server is never touched; the queue's (S3 and SQS for sqs, Redis for redis) is.
    const auto& cache = Shared(sqs_ ? "dynamodb" : "redis");  // also puts moto's credentials in the env
    if (cache.server == nullptr) {
      if (cache.skip) GTEST_SKIP() << cache.why;
      FAIL() << cache.why;
    }
    cache_url_ = cache.server->url();
    std::string why;
    bool skip = false;
    s3_server_ = ServerProcess::Start("dynamodb", &why, &skip);  // moto: S3 (and SQS)
    if (!s3_server_) {
      if (skip) GTEST_SKIP() << why;
      FAIL() << why;
    }
    moto_ = s3_server_->url();
    if (!sqs_) {
      queue_server_ = ServerProcess::Start("redis", &why, &skip, dir_ + "/redis");
      if (!queue_server_) {
        if (skip) GTEST_SKIP() << why;
        FAIL() << why;
      }
    }
    queue_url_ = sqs_ ? "sqs://" + name_ : queue_server_->url() + "/" + name_;
    bucket_ = name_;
  }
  void TearDown() override {
    for (pid_t p : workers_) fs::testing::StopChild(p);
    if (sqs_ && s3_server_ && s3_server_->pid() > 0) ::kill(s3_server_->pid(), SIGCONT);
    stores_.clear();
    if (!dir_.empty() && !HasFailure()) stdfs::remove_all(dir_);
  }

  std::vector<std::string> QueueArgs() const {
    std::vector<std::string> a = {"--queue", queue_url_, "--visibility-timeout", "3", "--max-deliveries", "5"};
    if (sqs_) a.insert(a.end(), {"--queue-endpoint", moto_});
    return a;
  }
  std::vector<std::string> CacheArgs() const {
    if (sqs_) return {"--cache", "dynamodb://" + name_, "--cache-endpoint", cache_url_};
    return {"--cache", cache_url_};
  }
  std::unique_ptr<queue::JobQueue> Queue() const {
    queue::QueueOptions o;
    o.visibility_timeout_s = 3;
    o.max_deliveries = 5;
    if (sqs_) o.endpoint = moto_;
    auto q = queue::OpenJobQueue(queue_url_, o);
    EXPECT_TRUE(q.ok()) << q.status().ToString();
    if (!q.ok()) return nullptr;
    auto setup = (*q)->Setup();
    EXPECT_TRUE(setup.ok()) << setup.status().ToString();
    return std::move(*q);
  }

  pid_t StartWorker(const std::string& data, const std::string& log, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {FILESEARCH_BINARY, "--data-dir", data, "--no-progress"};
    for (auto& a : CacheArgs()) argv.push_back(a);
    argv.insert(argv.end(), {"worker", "--model-dir", tiny_.dir(), "--s3-endpoint", moto_, "--max-object-mb",
                             std::to_string(kMaxObjectMb)});
    for (auto& a : QueueArgs()) argv.push_back(a);
    for (auto& a : extra) argv.push_back(a);
    const pid_t pid = fs::testing::Spawn(argv, log);
    workers_.push_back(pid);
    return pid;
  }
  // Waits until `log` says the worker takes jobs (its index and model are open).
  static bool Started(const std::string& log) {
    for (auto end = Clock::now() + std::chrono::seconds(60); Clock::now() < end;) {
      if (ReadAll(log).find("taking jobs from") != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  // SIGTERM, and the exit status (-1: did not exit within 60 s, then killed).
  int Stop(pid_t pid) {
    ::kill(pid, SIGTERM);
    int status = 0;
    for (int i = 0; i < 3000; ++i) {
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        workers_.erase(std::remove(workers_.begin(), workers_.end(), pid), workers_.end());
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }
  void Kill(pid_t pid) {
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    workers_.erase(std::remove(workers_.begin(), workers_.end(), pid), workers_.end());
  }

  // Waits (up to `max_s`) until no job is waiting or taken, for two seconds in a row (a job handed
  // back with a delay, or held by a killed worker, is neither for a while).
  static bool Drained(queue::JobQueue* q, int max_s) {
    int quiet_polls = 0;
    for (auto end = Clock::now() + std::chrono::seconds(max_s); Clock::now() < end;) {
      auto s = q->Stats();
      quiet_polls = s.ok() && s->visible == 0 && s->in_flight == 0 ? quiet_polls + 1 : 0;
      if (quiet_polls >= 8) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    return false;
  }

  // The index of the data folder `data`, opened once the first worker has created it (else null).
  Store* StoreOf(const std::string& data) {
    auto& store = stores_[data];
    if (!store && stdfs::exists(data + "/filesearch.db")) {
      auto opened = Store::Open(data + "/filesearch.db");
      if (opened.ok()) store = std::move(*opened);
    }
    return store.get();
  }
  // The embeddings the workers have committed so far.
  uint64_t Embedded(const std::string& data) {
    Store* store = StoreOf(data);
    auto stats = store ? store->Stats() : Result<StoreStats>(Status::NotFound("no index yet"));
    return stats.ok() ? stats->embeddings : 0;
  }
  // Waits until at least `n` embeddings are committed (up to 120 s).
  bool WaitEmbedded(const std::string& data, uint64_t n) {
    for (auto end = Clock::now() + std::chrono::seconds(120); Clock::now() < end;) {
      if (Embedded(data) >= n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  Status Put(storage::S3Client* s3, const std::string& key, const std::string& bytes) const {
    return s3->PutObject(bucket_, key, bytes, "application/octet-stream");
  }

  static inline clip::testing::SuiteTinyModel tiny_;
  static inline std::string shared_;
  bool sqs_ = false;
  std::string name_, dir_, moto_, cache_url_, queue_url_, bucket_;
  std::unique_ptr<ServerProcess> s3_server_, queue_server_;
  std::map<std::string, std::unique_ptr<Store>> stores_;  // by data folder
  std::vector<pid_t> workers_;
};

// The good images: real photos under the size limit, then CIFAR-10 test images, in path order.
std::vector<std::string> CorpusImages(const std::string& shared, size_t n) {
  std::vector<std::string> photos, small;
  for (const auto& e : stdfs::recursive_directory_iterator(shared + "/corpus/photos")) {
    const std::string ext = e.path().extension().string();
    if (!e.is_regular_file() || (ext != ".jpg" && ext != ".png")) continue;
    // (The samples include a truncated JPEG: poison of its own, not one of the good images.)
    if (e.path().filename().string().find("truncated") != std::string::npos) continue;
    if (e.file_size() < (static_cast<uintmax_t>(kMaxObjectMb) << 20)) photos.push_back(e.path().string());
  }
  std::sort(photos.begin(), photos.end());
  const std::string cifar = shared + "/corpus/labelled/cifar10-test/test";
  if (stdfs::exists(cifar)) {
    for (const auto& e : stdfs::recursive_directory_iterator(cifar)) {
      if (e.is_regular_file() && e.path().extension() == ".jpg") small.push_back(e.path().string());
    }
  }
  std::sort(small.begin(), small.end());
  // Distinct bytes only: the second pass counts one cache hit per image.
  std::set<std::string> seen;
  std::vector<std::string> out;
  for (const auto* list : {&photos, &small}) {
    for (const auto& p : *list) {
      if (out.size() == n) return out;
      if (seen.insert(ReadAll(p)).second) out.push_back(p);
    }
  }
  return out;
}

TEST_P(FleetTest, ThreeWorkersSurviveKillsAndTheQueueServerAndIndexEveryImageOnce) {
  const std::vector<std::string> images = CorpusImages(shared_, kImages);
  ASSERT_EQ(images.size(), kImages) << "the corpus has fewer distinct images than the test needs";
  const std::string bomb = shared_ + "/corpus/formats/pillow/decompression_bomb.gif";
  const std::string broken = shared_ + "/corpus/formats/pillow/broken.png";
  std::string big;
  for (const auto& e : stdfs::recursive_directory_iterator(shared_ + "/corpus/photos")) {
    if (e.is_regular_file() && e.path().extension() == ".jpg" && e.file_size() > (static_cast<uintmax_t>(kMaxObjectMb) << 20)) {
      big = e.path().string();
      break;
    }
  }
  ASSERT_TRUE(stdfs::exists(bomb) && stdfs::exists(broken) && !big.empty()) << "corpus files missing";
  const std::string data = dir_ + "/data";
  std::string out;
  const auto t0 = Clock::now();
  auto note = [&](const std::string& what) {  // the test's steps, timed, for a reader of the output
    std::fprintf(stderr, "[fleet %s] %5.1f s: %s\n", GetParam().c_str(),
                 std::chrono::duration<double>(Clock::now() - t0).count(), what.c_str());
  };

  // The cache (DynamoDB: the table, as `cache setup` creates it) and the queue.
  if (sqs_) {
    std::vector<std::string> setup = {FILESEARCH_BINARY, "--no-progress"};
    for (auto& a : CacheArgs()) setup.push_back(a);
    setup.insert(setup.end(), {"cache", "setup"});
    ASSERT_EQ(fs::testing::RunCapture(setup, dir_ + "/cache-setup.log", &out), 0) << out;
  }
  auto q = Queue();
  ASSERT_TRUE(q);

  // The bucket; with SQS, S3 sends an event for every object created or removed to the queue.
  HttpClient http(HttpClientOptions{});
  HttpRequest create;
  create.method = "PUT";
  create.url = moto_ + "/" + bucket_;
  auto created = http.Send(create);
  ASSERT_TRUE(created.ok() && created->status == 200) << (created.ok() ? created->body : created.status().ToString());
  if (sqs_) {
    HttpRequest notify;
    notify.method = "PUT";
    notify.url = moto_ + "/" + bucket_ + "?notification";
    notify.headers = {{"Content-Type", "application/xml"}};  // not a form: moto would read no body
    notify.body =
        "<NotificationConfiguration><QueueConfiguration><Id>fleet</Id><Queue>arn:aws:sqs:us-east-1:123456789012:" +
        name_ +
        "</Queue><Event>s3:ObjectCreated:*</Event><Event>s3:ObjectRemoved:*</Event></QueueConfiguration>"
        "</NotificationConfiguration>";
    auto r = http.Send(notify);
    ASSERT_TRUE(r.ok() && r->status == 200) << (r.ok() ? r->body : r.status().ToString());
  }
  storage::S3Options so;
  so.endpoint = moto_;
  auto s3 = storage::S3Client::Create(so);
  ASSERT_TRUE(s3.ok()) << s3.status().ToString();
  std::vector<std::string> keys;
  for (size_t i = 0; i < images.size(); ++i) {
    const std::string rel = images[i].substr(shared_.size() + std::string("/corpus/").size());
    keys.push_back("in/" + rel);
    ASSERT_TRUE(Put(s3->get(), keys.back(), ReadAll(images[i])).ok()) << keys.back();
  }
  // Poison: a decompression bomb, a broken PNG, an object over --max-object-mb, and an object that
  // is gone by the time its job runs.
  const std::map<std::string, std::string> poison = {
      {"in/poison/bomb.gif", bomb}, {"in/poison/broken.png", broken}, {"in/poison/huge.jpg", big}};
  for (const auto& [key, file] : poison) ASSERT_TRUE(Put(s3->get(), key, ReadAll(file)).ok()) << key;
  const std::string gone = "in/poison/gone.png";
  if (sqs_) {
    ASSERT_TRUE(Put(s3->get(), gone, ReadAll(images[0])).ok());
    ASSERT_TRUE((*s3)->DeleteObject(bucket_, gone).ok());
  } else {
    std::vector<std::string> enqueue = {FILESEARCH_BINARY, "--no-progress", "enqueue", "s3://" + bucket_ + "/in/",
                                        "--s3-endpoint", moto_};
    for (auto& a : QueueArgs()) enqueue.push_back(a);
    ASSERT_EQ(fs::testing::RunCapture(enqueue, dir_ + "/enqueue.log", &out), 0) << out;
    EXPECT_NE(out.find("enqueued " + std::to_string(kImages + poison.size()) + " jobs"), std::string::npos) << out;
    const std::vector<std::string> job = {queue::PlainJob("s3://" + bucket_ + "/" + gone)};
    ASSERT_TRUE(q->Send(job).ok());
  }

  note("bucket filled: " + std::to_string(keys.size()) + " images and 4 poison objects");
  // Three workers; worker a holds each job 150 ms before doing it, so a SIGKILL finds it mid-job.
  std::vector<std::string> logs = {dir_ + "/a1.log", dir_ + "/b.log", dir_ + "/c.log"};
  const std::vector<std::string> hold = {"--test-hold-ms", "150"};
  pid_t a = StartWorker(data, logs[0], hold);
  ASSERT_TRUE(Started(logs[0])) << ReadAll(logs[0]);  // the first one creates the index
  const pid_t b = StartWorker(data, logs[1]);
  const pid_t c = StartWorker(data, logs[2]);
  ASSERT_TRUE(Started(logs[1]) && Started(logs[2])) << ReadAll(logs[1]) << ReadAll(logs[2]);

  // Faults, each once the workers are that far: worker a killed (and restarted) at 20% and 45%,
  // the queue server at 70%.
  for (const double at : {0.20, 0.45}) {
    ASSERT_TRUE(WaitEmbedded(data, static_cast<uint64_t>(at * kImages))) << ReadAll(logs[1]);
    Kill(a);
    note("worker a SIGKILLed at " + std::to_string(Embedded(data)) + " images");
    logs.push_back(dir_ + "/a" + std::to_string(logs.size() - 1) + ".log");
    a = StartWorker(data, logs.back(), hold);
  }
  ASSERT_TRUE(WaitEmbedded(data, static_cast<uint64_t>(0.70 * kImages))) << ReadAll(logs[1]);
  note(std::string("queue server ") + (sqs_ ? "frozen" : "killed") + " at " + std::to_string(Embedded(data)) + " images");
  if (sqs_) {
    ::kill(s3_server_->pid(), SIGSTOP);
    std::this_thread::sleep_for(std::chrono::seconds(4));
    ::kill(s3_server_->pid(), SIGCONT);
  } else {
    std::string why;
    ASSERT_TRUE(queue_server_->Restart(&why)) << why;  // SIGKILL, then the same port and AOF
  }

  ASSERT_TRUE(Drained(q.get(), 180)) << ReadAll(logs[1]) << ReadAll(logs.back());
  note("queue drained");
  for (pid_t p : {a, b, c}) EXPECT_EQ(Stop(p), 0);
  std::string all_logs;
  for (const auto& l : logs) all_logs += ReadAll(l);
  auto count = [&](const std::string& pattern) {
    const std::regex re(pattern);
    return std::distance(std::sregex_iterator(all_logs.begin(), all_logs.end(), re), std::sregex_iterator());
  };
  note(std::to_string(count(R"(delivery [2-9]\))")) + " jobs redone after a delivery that did not finish, " +
       std::to_string(count("unavailable")) + " queue calls that failed, " +
       std::to_string(count("not acknowledged")) + " jobs done but not acknowledged");

  // A job of a killed worker came back to another one.
  EXPECT_TRUE(std::regex_search(all_logs, std::regex(R"(delivery [2-9]\))"))) << all_logs;
  if (!sqs_) {
    EXPECT_GT(count("unavailable") + count("not acknowledged") + count("heartbeat for job"), 0)
        << "the workers saw the queue server go";
  }

  // Every image once, with its vector; the poison that could be read are documents without one.
  Store* store = StoreOf(data);
  ASSERT_NE(store, nullptr);
  auto stats = store->Stats();
  ASSERT_TRUE(stats.ok());
  ASSERT_EQ(stats->embeddings_by_model.size(), 1u);
  const std::string model_id = stats->embeddings_by_model[0].first;
  EXPECT_EQ(stats->embeddings, kImages) << all_logs;
  EXPECT_EQ(stats->documents, kImages + 2) << "the images, the bomb and the broken PNG";
  for (const auto& key : keys) {
    auto d = store->GetByUri("s3://" + bucket_ + "/" + key);
    ASSERT_TRUE(d.ok()) << key << ": " << d.status().ToString() << "\n" << all_logs;
    auto v = store->GetEmbedding(d->id, model_id);
    EXPECT_TRUE(v.ok() && v->has_value()) << key;
  }
  // The vector index a new process loads holds each image once.
  ASSERT_EQ(fs::testing::RunCapture({FILESEARCH_BINARY, "--data-dir", data, "--no-progress", "stats", "--json"},
                                    dir_ + "/stats.log", &out),
            0)
      << out;
  const auto json_start = out.find('{');
  ASSERT_NE(json_start, std::string::npos) << out;
  const auto st = nlohmann::json::parse(out.substr(json_start), nullptr, false);
  ASSERT_FALSE(st.is_discarded()) << out;
  EXPECT_EQ(st.value("vectorIndexSize", -1), static_cast<int>(kImages)) << out;

  // The poison: dead letters with their reasons, and on the failure list.
  std::map<std::string, std::string> dead;  // body -> reason
  for (int tries = 0; tries < 10 && dead.size() < 4; ++tries) {
    auto d = q->PeekDeadLetters(10);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    for (auto& e : *d) dead[e.body] = e.reason;
  }
  auto reason_of = [&](const std::string& key) {
    for (const auto& [body, reason] : dead) {
      if (reason.find(key) != std::string::npos) return reason;
    }
    return std::string();
  };
  EXPECT_EQ(dead.size(), 4u);
  EXPECT_NE(reason_of("bomb.gif").find("not embedded"), std::string::npos) << reason_of("bomb.gif");
  EXPECT_NE(reason_of("broken.png").find("not embedded"), std::string::npos) << reason_of("broken.png");
  EXPECT_NE(reason_of("huge.jpg").find("over the limit"), std::string::npos) << reason_of("huge.jpg");
  EXPECT_NE(reason_of("gone.png"), "") << "a created object deleted before its job ran";
  auto failures = store->ListFailures(/*dead_only=*/true, 100);
  ASSERT_TRUE(failures.ok());
  std::set<std::string> failed;
  for (const auto& f : *failures) failed.insert(f.uri);
  // (With S3 events, the object's ObjectRemoved job takes gone.png off the list again.)
  for (const char* key : {"bomb.gif", "broken.png", "huge.jpg", "gone.png"}) {
    if (sqs_ && std::string(key) == "gone.png") continue;
    EXPECT_EQ(failed.count("s3://" + bucket_ + "/in/poison/" + key), 1u) << key;
  }
  EXPECT_EQ(reason_of("bomb.gif").find("/spool/"), std::string::npos) << "names the object, not a temporary copy";

  // A second fleet, on a new index, given the same bytes: all cache hits, the model runs for none.
  for (size_t i = 0; i < images.size(); ++i) {
    const std::string key = "again/" + std::to_string(i) + stdfs::path(images[i]).extension().string();
    ASSERT_TRUE(Put(s3->get(), key, ReadAll(images[i])).ok()) << key;
  }
  if (!sqs_) {
    std::vector<std::string> enqueue = {FILESEARCH_BINARY, "--no-progress", "enqueue", "s3://" + bucket_ + "/again/",
                                        "--s3-endpoint", moto_};
    for (auto& x : QueueArgs()) enqueue.push_back(x);
    ASSERT_EQ(fs::testing::RunCapture(enqueue, dir_ + "/enqueue2.log", &out), 0) << out;
  }
  note("second pass: same bytes, new index");
  const std::string data2 = dir_ + "/data2";
  std::vector<std::string> logs2 = {dir_ + "/p2a.log", dir_ + "/p2b.log", dir_ + "/p2c.log"};
  std::vector<pid_t> second;
  second.push_back(StartWorker(data2, logs2[0]));
  ASSERT_TRUE(Started(logs2[0])) << ReadAll(logs2[0]);
  second.push_back(StartWorker(data2, logs2[1]));
  second.push_back(StartWorker(data2, logs2[2]));
  ASSERT_TRUE(WaitEmbedded(data2, kImages)) << ReadAll(logs2[0]);
  ASSERT_TRUE(Drained(q.get(), 60));
  Summary total;
  for (size_t i = 0; i < second.size(); ++i) {
    EXPECT_EQ(Stop(second[i]), 0);
    const Summary s = SummaryOf(ReadAll(logs2[i]));
    EXPECT_TRUE(s.found) << ReadAll(logs2[i]);
    total.embedded += s.embedded;
    total.from_cache += s.from_cache;
  }
  note("second pass done");
  EXPECT_EQ(total.embedded, static_cast<int>(kImages));
  EXPECT_EQ(total.from_cache, static_cast<int>(kImages)) << "every image of the second pass is a cache hit";
}

INSTANTIATE_TEST_SUITE_P(Queues, FleetTest, ::testing::Values("sqs", "redis"), [](const auto& p) { return p.param; });

}  // namespace
}  // namespace fs
