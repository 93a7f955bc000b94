// `filesearch serve` under the attacks of the hardening issue, all on 127.0.0.1, bounded in count
// and time: 1,000 idle and 200 slowloris connections, header floods, oversized and malformed
// requests, a second server on the same port, a burst of new connections, and SIGTERM while
// clients hold connections open. It asserts behaviour (answers, status codes, memory bounds),
// with generous time limits where the issue states one ("within a few seconds", "within 2 s").
// The latency figures it prints are for docs/benchmarks.md; bench/http/attack.sh runs it.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "server/raw_http_client.h"
#include "server/test_tokens.h"
#include "spawn_util.h"

namespace fs {
namespace {

using server::testing::ClosedByPeer;
using server::testing::Connect;
using server::testing::Exchange;
using server::testing::RawReply;
using server::testing::ReadReply;
using server::testing::SendAll;
using Clock = std::chrono::steady_clock;

// The binary under attack: this build's, or FILESEARCH_ATTACK_BINARY (bench/http/attack.sh points
// it at another build to compare transports under the same attacks).
std::string Binary() {
  const char* other = std::getenv("FILESEARCH_ATTACK_BINARY");
  return other && *other ? other : FILESEARCH_BINARY;
}

double MsSince(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }


long RssKb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

class ServeAttackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // This test holds 1,400+ sockets itself.
    rlimit lim{};
    ::getrlimit(RLIMIT_NOFILE, &lim);
    lim.rlim_cur = std::min<rlim_t>(lim.rlim_max, 8192);
    ::setrlimit(RLIMIT_NOFILE, &lim);
    ASSERT_GE(lim.rlim_cur, 2000u) << "the open-file hard limit is too low for this test";
    base_ = std::filesystem::temp_directory_path() / ("fs_attack_" + std::to_string(::getpid()));
    std::filesystem::remove_all(base_);
    std::filesystem::create_directories(base_ + "/share");
    for (int i = 0; i < 20; ++i) {
      std::ofstream(base_ + "/share/report" + std::to_string(i) + ".txt")
          << "quarterly report number " << i << " about invoices and budgets\n"
          << std::string(2000, 'x') << "\n";
    }
    ASSERT_TRUE(testing::RunToSuccess({Binary(), "--no-progress", "--data-dir", base_ + "/data", "index", base_ + "/share"}));
    secret_ = "attack-test-secret-of-at-least-32-bytes!";
    std::ofstream(base_ + "/hs256.key") << secret_;
    token_ = server::testing::SignHs256(secret_, {{"sub", "alice"}, {"exp", server::testing::NowSeconds() + 3600}});
  }
  void TearDown() override {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    std::filesystem::remove_all(base_);
  }
  // Starts `serve` and waits until it answers; extra flags go after the defaults.
  void StartServe(std::vector<std::string> extra = {}) {
    port_ = testing::FreePort();
    std::vector<std::string> argv = {Binary(), "--no-progress", "--data-dir", base_ + "/data", "serve",
                                     "--port", std::to_string(port_), "--auth-secret-file", base_ + "/hs256.key",
                                     "--storage-root", base_ + "/share"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    pid_ = testing::Spawn(argv, base_ + "/serve.log");
    ASSERT_GT(pid_, 0);
    for (int i = 0; i < 1000; ++i) {
      if (Exchange(port_, "GET /healthz HTTP/1.1\r\n\r\n").status == 200) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    FAIL() << "serve did not start; log: " << base_ + "/serve.log";
  }
  std::string SearchRequest() const {
    return "GET /search?q=quarterly+report&limit=5 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + token_ + "\r\n\r\n";
  }
  // `n` authenticated searches from 127.0.0.1, one at a time; their latencies in ms (-1: no 200).
  // Stops early after 5 failures (each waits 5 s), so a server that is down does not take minutes.
  std::vector<double> TimedSearches(int n) {
    std::vector<double> ms;
    int failed = 0;
    for (int i = 0; i < n && failed < 5; ++i) {
      auto t = Clock::now();
      RawReply r = Exchange(port_, SearchRequest());
      const bool ok = r.status == 200 && r.body.find("\"hits\"") != std::string::npos;
      failed += ok ? 0 : 1;
      ms.push_back(ok ? MsSince(t) : -1);
    }
    return ms;
  }
  static double Percentile(std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
  }

  std::string base_;
  std::string secret_, token_;
  int port_ = 0;
  pid_t pid_ = -1;
};

TEST_F(ServeAttackTest, IdleAndSlowlorisConnectionsDoNotStarveSearch) {
  StartServe();
  const std::vector<double> quiet = TimedSearches(20);
  // 1,000 idle connections from four addresses (250 each, under the per-client limit of 256) and
  // 200 slowloris connections that send a header byte every 200 ms.
  std::vector<int> idle, slow;
  const char* idle_from[] = {"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"};
  for (int i = 0; i < 1000; ++i) {
    int fd = Connect(port_, idle_from[i % 4]);
    ASSERT_GE(fd, 0) << "connection " << i;
    idle.push_back(fd);
  }
  for (int i = 0; i < 200; ++i) {
    int fd = Connect(port_, "127.0.0.6");
    ASSERT_GE(fd, 0);
    SendAll(fd, "GET /search?q=x HTTP/1.1\r\nHost: a\r\n");
    slow.push_back(fd);
  }
  std::atomic<bool> stop{false};
  std::thread trickle([&] {
    while (!stop) {
      for (int fd : slow) SendAll(fd, "X");
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  });
  const std::vector<double> attacked = TimedSearches(40);
  stop = true;
  trickle.join();
  EXPECT_EQ(attacked.size(), 40u);
  for (double ms : attacked) {
    EXPECT_GE(ms, 0) << "a search failed under attack";
    EXPECT_LT(ms, 3000) << "a search took " << ms << " ms with 1,000 idle and 200 slowloris connections open";
  }
  const long failures = std::count(attacked.begin(), attacked.end(), -1.0);
  std::printf("[attack] search latency, quiet: p50 %.2f ms p95 %.2f ms; with 1000 idle + 200 slowloris: p50 %.2f ms "
              "p95 %.2f ms max %.2f ms, %ld of %zu failed\n",
              Percentile(quiet, 0.5), Percentile(quiet, 0.95), Percentile(attacked, 0.5), Percentile(attacked, 0.95),
              Percentile(attacked, 1.0), failures, attacked.size());
  // The slowloris connections are cut at the header deadline (10 s) with a 408.
  std::string pending;
  RawReply cut = ReadReply(slow.front(), &pending, 15000);
  EXPECT_EQ(cut.status, 408);
  for (int fd : idle) ::close(fd);
  for (int fd : slow) ::close(fd);
}

TEST_F(ServeAttackTest, HeaderFloodsKeepMemoryBounded) {
  StartServe();
  const long before = RssKb(pid_);
  // 24 connections, each sending header lines without end (the flood that took RSS to 2.4 GB).
  std::vector<std::thread> floods;
  std::atomic<int> refused{0};
  for (int c = 0; c < 24; ++c) {
    floods.emplace_back([&, c] {
      std::string from = "127.0.1." + std::to_string(c + 1);
      int fd = Connect(port_, from.c_str());
      if (fd < 0) return;
      SendAll(fd, "GET / HTTP/1.1\r\n");
      std::string lines;
      for (int i = 0; i < 1000; ++i) lines += "X-Flood-" + std::to_string(i) + ": " + std::string(100, 'f') + "\r\n";
      for (int round = 0; round < 200; ++round) {  // up to ~20 MB per connection, stopped by the server
        if (::send(fd, lines.data(), lines.size(), MSG_NOSIGNAL) <= 0) break;
      }
      std::string pending;
      RawReply r = ReadReply(fd, &pending, 5000);
      if (r.status == 431 || r.status == 0) ++refused;
      ::close(fd);
    });
  }
  for (auto& t : floods) t.join();
  const long after = RssKb(pid_);
  std::printf("[attack] header flood: RSS %ld KB before, %ld KB after 24 flooding connections\n", before, after);
  EXPECT_EQ(refused.load(), 24);
  EXPECT_LT(after - before, 64 * 1024) << "RSS grew by more than 64 MB under a header flood";
  EXPECT_EQ(TimedSearches(1)[0] >= 0, true);
}

TEST_F(ServeAttackTest, OversizedAndMalformedRequestsGet4xxQuickly) {
  StartServe();
  auto t = Clock::now();
  EXPECT_EQ(Exchange(port_, "POST /search HTTP/1.1\r\nContent-Length: 1e12\r\n\r\n").status, 400);
  EXPECT_EQ(Exchange(port_, "POST /search HTTP/1.1\r\nContent-Length: 1000000000000\r\n\r\n").status, 413);
  EXPECT_EQ(Exchange(port_, "GET /" + std::string(20000, 'a') + " HTTP/1.1\r\n\r\n").status, 414);
  EXPECT_EQ(Exchange(port_, "GET /healthz HTTP/1.1\r\nX: " + std::string(100000, 'a') + "\r\n\r\n").status, 431);
  EXPECT_EQ(Exchange(port_, "GARBAGE\r\n\r\n").status, 400);
  EXPECT_LT(MsSince(t), 3000) << "refusals must not wait for a body or a timeout";
  // A 16 KB token reaches authentication: 401 with WWW-Authenticate, not a header-limit 400.
  RawReply big_token = Exchange(port_, "GET /search?q=x HTTP/1.1\r\nAuthorization: Bearer " + std::string(16000, 'A') + "\r\n\r\n");
  EXPECT_EQ(big_token.status, 401);
  EXPECT_EQ(big_token.headers.count("www-authenticate"), 1u);
  // A Range that starts past the end of a file: 416 with the size, never a bogus 206.
  RawReply ranged = Exchange(port_, "GET /documents/1/content HTTP/1.1\r\nAuthorization: Bearer " + token_ +
                                        "\r\nRange: bytes=999999999-\r\n\r\n");
  EXPECT_EQ(ranged.status, 416);
  EXPECT_EQ(ranged.headers["content-range"].rfind("bytes */", 0), 0u) << ranged.headers["content-range"];
  RawReply part = Exchange(port_, "GET /documents/1/content HTTP/1.1\r\nAuthorization: Bearer " + token_ + "\r\nRange: bytes=0-7\r\n\r\n");
  EXPECT_EQ(part.status, 206);
  EXPECT_EQ(part.body, "quarterl");
}

TEST_F(ServeAttackTest, ASecondServerOnTheSamePortFailsAtStart) {
  StartServe();
  const pid_t second = testing::Spawn({Binary(), "--no-progress", "--data-dir", base_ + "/data", "serve",
                                       "--no-auth", "--port", std::to_string(port_)},
                                      base_ + "/second.log");
  int status = 0;
  pid_t waited = 0;
  for (int i = 0; i < 1000 && (waited = ::waitpid(second, &status, WNOHANG)) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (waited == 0) {  // it is serving on the same port: the defect this test guards against
    ::kill(second, SIGKILL);
    ::waitpid(second, &status, 0);
    FAIL() << "a second server started on a port that is already in use";
  }
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << "the second server must exit with an error";
  std::ifstream log(base_ + "/second.log");
  std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("already in use"), std::string::npos) << text;
  // Every anonymous request still goes to the authenticated server.
  for (int i = 0; i < 20; ++i) EXPECT_EQ(Exchange(port_, "GET /search?q=report HTTP/1.1\r\n\r\n").status, 401);
}

TEST_F(ServeAttackTest, ABurstOfNewConnectionsIsAnswered) {
  StartServe();
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  std::vector<double> ms(64);
  for (int i = 0; i < 64; ++i) {
    clients.emplace_back([&, i] {
      auto t = Clock::now();
      if (Exchange(port_, SearchRequest()).status == 200) ++ok;
      ms[static_cast<size_t>(i)] = MsSince(t);
    });
  }
  for (auto& c : clients) c.join();
  EXPECT_EQ(ok.load(), 64);
  std::printf("[attack] burst of 64 new connections: p50 %.2f ms p95 %.2f ms\n", Percentile(ms, 0.5), Percentile(ms, 0.95));
}

TEST_F(ServeAttackTest, SigtermExitsPromptlyWhateverClientsHoldOpen) {
  StartServe();
  std::vector<int> held;
  for (int i = 0; i < 200; ++i) held.push_back(Connect(port_, "127.0.0.7"));
  for (int i = 0; i < 50; ++i) {
    int fd = Connect(port_, "127.0.0.8");
    SendAll(fd, "GET /search HTTP/1.1\r\nHost: a\r\n");  // half a head
    held.push_back(fd);
  }
  int body = Connect(port_);
  SendAll(body, "POST /search HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"q\":");
  held.push_back(body);
  int keep = Connect(port_);
  SendAll(keep, SearchRequest());
  std::string pending;
  EXPECT_EQ(ReadReply(keep, &pending).status, 200);  // now an idle keep-alive connection
  held.push_back(keep);
  auto t = Clock::now();
  ASSERT_EQ(::kill(pid_, SIGTERM), 0);
  int status = 0;
  pid_t done = 0;
  while ((done = ::waitpid(pid_, &status, WNOHANG)) == 0 && MsSince(t) < 10000) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const double exit_ms = MsSince(t);
  ASSERT_EQ(done, pid_) << "serve did not exit within 10 s of SIGTERM";
  pid_ = -1;
  std::printf("[attack] SIGTERM to exit with 252 connections held open: %.0f ms\n", exit_ms);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_LT(exit_ms, 2000);
  for (int fd : held) ::close(fd);
}

}  // namespace
}  // namespace fs
