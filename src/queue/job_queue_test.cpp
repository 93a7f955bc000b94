// JobQueue against real servers on 127.0.0.1: moto's SQS (server mode, started by the cache
// fixture) and Debian's redis-server. Every test body runs on both back ends.
#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <thread>

#include "cache/cache_servers_fixture.h"
#include "tests/spawn_util.h"
#include "queue/job_queue.h"

namespace fs::queue {
namespace {

using cache::testing::Shared;

std::string Unique(const std::string& base) {
  static int n = 0;
  return base + std::to_string(::getpid()) + "-" + std::to_string(++n);
}

class JobQueueTest : public ::testing::TestWithParam<std::string> {
 protected:
  // A fresh queue (and its dead-letter queue) on the back end under test.
  std::unique_ptr<JobQueue> NewQueue(int visibility_s = 30, int max_deliveries = 3) {
    const bool redis = GetParam() == "redis";
    const auto& shared = Shared(redis ? "redis" : "dynamodb");  // moto serves SQS on the same port
    if (shared.server == nullptr) {
      if (shared.skip) {
        skipped_ = shared.why;
        return nullptr;
      }
      ADD_FAILURE() << shared.why;
      return nullptr;
    }
    QueueOptions o;
    o.visibility_timeout_s = visibility_s;
    o.max_deliveries = max_deliveries;
    std::string url;
    if (redis) {
      url = shared.server->url() + "/" + Unique("jobs-");
    } else {
      url = "sqs://" + Unique("jobs-");
      o.endpoint = shared.server->url();
    }
    auto q = OpenJobQueue(url, o);
    EXPECT_TRUE(q.ok()) << q.status().ToString();
    if (!q.ok()) return nullptr;
    auto setup = (*q)->Setup();
    EXPECT_TRUE(setup.ok()) << setup.status().ToString();
    return std::move(*q);
  }

  // Receives until `n` messages came or 15 s passed (a redelivery waits for its timeout).
  static std::vector<QueueMessage> ReceiveN(JobQueue* q, size_t n) {
    std::vector<QueueMessage> out;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (out.size() < n && std::chrono::steady_clock::now() < deadline) {
      auto got = q->Receive(static_cast<int>(n - out.size()), 500);
      EXPECT_TRUE(got.ok()) << got.status().ToString();
      if (!got.ok()) break;
      out.insert(out.end(), got->begin(), got->end());
    }
    return out;
  }

  std::string skipped_;
};

#define QUEUE_OR_SKIP(var, ...)                 \
  auto var = NewQueue(__VA_ARGS__);             \
  if (!var) {                                   \
    if (!skipped_.empty()) GTEST_SKIP() << skipped_; \
    return;                                     \
  }

TEST_P(JobQueueTest, SentJobsAreReceivedOnceAndAckedAway) {
  QUEUE_OR_SKIP(q);
  std::vector<std::string> bodies;
  for (int i = 0; i < 13; ++i) bodies.push_back("{\"imageUrl\": \"/srv/" + std::to_string(i) + ".jpg\"}");
  ASSERT_TRUE(q->Send(bodies).ok());
  auto stats = q->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->visible, 13);
  EXPECT_EQ(stats->dead, 0);
  auto got = ReceiveN(q.get(), 13);
  ASSERT_EQ(got.size(), 13u);
  std::set<std::string> seen;
  for (const auto& m : got) {
    EXPECT_EQ(m.deliveries, 1);
    EXPECT_GT(m.sent_ms, 0);
    seen.insert(m.body);
  }
  EXPECT_EQ(seen, std::set<std::string>(bodies.begin(), bodies.end()));
  // Held jobs are nobody else's: nothing more to receive.
  auto none = q->Receive(10, 0);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  for (const auto& m : got) ASSERT_TRUE(q->Ack(m).ok());
  stats = q->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->visible, 0);
  EXPECT_EQ(stats->in_flight, 0);
}

TEST_P(JobQueueTest, AJobNotAckedComesBackAfterTheVisibilityTimeout) {
  QUEUE_OR_SKIP(q, /*visibility_s=*/1);
  const std::vector<std::string> one = {"{\"imageUrl\": \"/srv/a.jpg\"}"};
  ASSERT_TRUE(q->Send(one).ok());
  auto first = ReceiveN(q.get(), 1);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].deliveries, 1);
  // Not acknowledged (the worker died): handed out again, counted as a second delivery.
  auto second = ReceiveN(q.get(), 1);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].body, one[0]);
  EXPECT_EQ(second[0].deliveries, 2);
  ASSERT_TRUE(q->Ack(second[0]).ok());
}

TEST_P(JobQueueTest, ReleaseHandsTheJobOutAgainAtOnce) {
  QUEUE_OR_SKIP(q, /*visibility_s=*/60);
  const std::vector<std::string> one = {"{\"imageUrl\": \"/srv/b.jpg\"}"};
  ASSERT_TRUE(q->Send(one).ok());
  auto first = ReceiveN(q.get(), 1);
  ASSERT_EQ(first.size(), 1u);
  ASSERT_TRUE(q->Extend(first[0]).ok());
  ASSERT_TRUE(q->Release(first[0], 0).ok());
  // With a 60 s visibility timeout, only the release can bring it back within ReceiveN's 15 s.
  auto again = ReceiveN(q.get(), 1);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].body, one[0]);
  EXPECT_EQ(again[0].deliveries, 2);
}

TEST_P(JobQueueTest, DeadLettersKeepTheirReason) {
  QUEUE_OR_SKIP(q);
  const std::vector<std::string> jobs = {"not a job", "{\"imageUrl\": \"/srv/c.jpg\"}"};
  ASSERT_TRUE(q->Send(jobs).ok());
  auto got = ReceiveN(q.get(), 2);
  ASSERT_EQ(got.size(), 2u);
  for (const auto& m : got) {
    if (m.body == "not a job") ASSERT_TRUE(q->DeadLetter(m, "not a job: not JSON").ok());
    else ASSERT_TRUE(q->Ack(m).ok());
  }
  auto stats = q->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->dead, 1);
  EXPECT_EQ(stats->visible + stats->in_flight, 0);
  auto dead = q->PeekDeadLetters(10);
  ASSERT_TRUE(dead.ok()) << dead.status().ToString();
  ASSERT_EQ(dead->size(), 1u);
  EXPECT_EQ((*dead)[0].body, "not a job");
  EXPECT_EQ((*dead)[0].reason, "not a job: not JSON");
  // Nothing left to hand out.
  auto none = q->Receive(10, 0);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_P(JobQueueTest, AnUnknownQueueOrUrlIsAClearError) {
  QUEUE_OR_SKIP(q);
  EXPECT_EQ(OpenJobQueue("ftp://x/y", {}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(OpenJobQueue("redis://127.0.0.1:1", {}).status().code(), StatusCode::kInvalidArgument);
  if (GetParam() == "sqs") {
    QueueOptions o;
    o.endpoint = Shared("dynamodb").server->url();
    auto missing = OpenJobQueue("sqs://" + Unique("never-created-"), o);
    ASSERT_TRUE(missing.ok());
    auto r = (*missing)->Receive(1, 0);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
    EXPECT_NE(r.status().message().find("--create-queue"), std::string::npos) << r.status().message();
  } else {
    // A Redis server that is not there: Unavailable, not a crash.
    auto down = OpenJobQueue("redis://127.0.0.1:" + std::to_string(fs::testing::FreePort()) + "/jobs", {});
    ASSERT_TRUE(down.ok());
    auto r = (*down)->Receive(1, 0);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, JobQueueTest, ::testing::Values("sqs", "redis"),
                         [](const auto& p) { return p.param; });

}  // namespace
}  // namespace fs::queue
