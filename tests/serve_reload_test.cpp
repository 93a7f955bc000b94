// `filesearch serve --runtime-config FILE` as an operator uses it: the file's vector-search switch
// applies at start, SIGHUP re-reads it without a restart, a broken file leaves the state as it was,
// and a broken file at start stops the server with a message. Through the binary, on 127.0.0.1.
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include "core/env.h"
#include "spawn_util.h"

namespace fs {
namespace {

namespace stdfs = std::filesystem;
using Json = nlohmann::json;

std::string ReadAll(const std::string& path) {
  auto text = Env::Default()->ReadFile(path, 16 << 20);
  return text.ok() ? *text : std::string();
}

class ServeReloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = stdfs::weakly_canonical(::testing::TempDir()).string() + "/serve_reload_test_" + std::to_string(::getpid());
    stdfs::remove_all(base_);
    stdfs::create_directories(base_ + "/share");
    std::ofstream(base_ + "/share/notes.txt") << "quarterly report";
    ASSERT_TRUE(testing::RunToSuccess({FILESEARCH_BINARY, "--no-progress", "--data-dir", base_ + "/data", "index",
                                       base_ + "/share", "--test-embedder"}));
    config_ = base_ + "/runtime.json";
    log_ = base_ + "/serve.log";
  }
  void TearDown() override {
    if (pid_ > 0) Stop();
    if (!HasFailure()) stdfs::remove_all(base_);
  }
  void WriteConfig(const std::string& text) { std::ofstream(config_, std::ios::trunc) << text; }
  pid_t Serve() {
    return testing::Spawn({FILESEARCH_BINARY, "--no-progress", "--data-dir", base_ + "/data", "serve", "--no-auth",
                           "--test-embedder", "--host", "127.0.0.1", "--port", "0", "--text-logs", "--runtime-config", config_},
                          log_);
  }
  // The port from the "listening on" log line; 0 when the server exited or never said it.
  int WaitForPort() {
    const std::regex listening(R"(listening on http://127\.0\.0\.1:(\d+)/)");
    for (int i = 0; i < 300; ++i) {
      std::smatch m;
      const std::string log = ReadAll(log_);
      if (std::regex_search(log, m, listening)) return std::stoi(m[1]);
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return 0;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return 0;
  }
  Json Config() {
    httplib::Client c("127.0.0.1", port_);
    auto r = c.Get("/config");
    if (!r || r->status != 200) return Json();
    return Json::parse(r->body, nullptr, false);
  }
  // Sends SIGHUP, then waits for /config to report `enabled` (a reload is applied asynchronously).
  Json ReloadUntil(bool enabled) {
    ::kill(pid_, SIGHUP);
    Json c;
    for (int i = 0; i < 100; ++i) {
      c = Config();
      if (c.is_object() && c["vectorSearch"] == enabled) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return c;
  }
  int Stop() {
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  std::string base_, config_, log_;
  pid_t pid_ = -1;
  int port_ = 0;
};

TEST_F(ServeReloadTest, SighupRereadsTheVectorSearchSwitch) {
  WriteConfig(R"({"vector_search": {"enabled": false, "reason": "nightly maintenance"}})");
  pid_ = Serve();
  port_ = WaitForPort();
  ASSERT_GT(port_, 0) << ReadAll(log_);
  Json c = Config();
  EXPECT_EQ(c["vectorSearch"], false) << c;
  EXPECT_EQ(c["reason"], "Image search is turned off by the administrator: nightly maintenance") << c;

  WriteConfig(R"({"vector_search": {"enabled": true}})");
  c = ReloadUntil(true);
  EXPECT_EQ(c["vectorSearch"], true) << c << ReadAll(log_);
  EXPECT_EQ(c["imageSearch"], true) << "the query embedder stays loaded while vector search is off";

  // A broken file is reported in the log and changes nothing.
  WriteConfig(R"({"vector_search": {"enabled": "maybe"}})");
  ::kill(pid_, SIGHUP);
  std::string log;
  for (int i = 0; i < 100 && log.find("vector_search.enabled must be true or false") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    log = ReadAll(log_);
  }
  EXPECT_NE(log.find("vector_search.enabled must be true or false"), std::string::npos) << log;
  EXPECT_EQ(Config()["vectorSearch"], true);

  WriteConfig(R"({"vector_search": {"enabled": false, "reason": "rollback"}})");
  c = ReloadUntil(false);
  EXPECT_EQ(c["vectorSearch"], false) << c;
  EXPECT_EQ(c["reason"], "Image search is turned off by the administrator: rollback");
  EXPECT_EQ(Stop(), 0) << ReadAll(log_);
}

TEST_F(ServeReloadTest, ABrokenFileAtStartStopsTheServer) {
  WriteConfig("{\"vector_search\": ");
  pid_ = Serve();
  int status = 0;
  ASSERT_EQ(::waitpid(pid_, &status, 0), pid_);
  pid_ = -1;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0);
  EXPECT_NE(ReadAll(log_).find("runtime config is not a JSON object"), std::string::npos) << ReadAll(log_);
}

}  // namespace
}  // namespace fs
