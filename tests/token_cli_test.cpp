// `filesearch token` as an administrator uses it: a token minted with the secret file `serve` reads
// is accepted by a running server, its folders limit what the holder sees (search, and the
// document routes the UI uses: /text, /preview, /content), a token minted with another secret is
// refused, and bad arguments say what to fix. Through the binary, on 127.0.0.1.
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
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

struct CliRun {
  int code = -1;
  std::string out, err;
};

// Runs `filesearch ARGS`, stdout and stderr apart.
CliRun Cli(const std::string& args, const std::string& err_file) {
  const std::string cmd = std::string(FILESEARCH_BINARY) + " " + args + " 2>" + err_file;
  CliRun r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = ReadAll(err_file);
  while (!r.out.empty() && r.out.back() == '\n') r.out.pop_back();
  return r;
}

class TokenCliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    base_ = stdfs::weakly_canonical(::testing::TempDir()).string() + "/token_cli_test_" + std::to_string(::getpid());
    stdfs::remove_all(base_);
    stdfs::create_directories(base_ + "/share/finance");
    stdfs::create_directories(base_ + "/share/sales");
    std::ofstream(base_ + "/share/finance/budget.txt") << "quarterly budget for the finance team";
    std::ofstream(base_ + "/share/sales/pipeline.txt") << "quarterly pipeline for the sales team";
    ASSERT_TRUE(testing::RunToSuccess({FILESEARCH_BINARY, "--no-progress", "--data-dir", base_ + "/data", "index",
                                       base_ + "/share"}));
    std::ofstream(base_ + "/secret") << "d3b07384d113edec49eaa6238ad5ff00c86ee6a3fa2ab1a1d2e5e1f1d0c5b7a9\n";
    std::ofstream(base_ + "/other-secret") << "another-secret-of-enough-length-0123456789abcdef\n";
    const std::string log = base_ + "/serve.log";
    pid_ = testing::Spawn({FILESEARCH_BINARY, "--no-progress", "--data-dir", base_ + "/data", "serve", "--auth-secret-file",
                           base_ + "/secret", "--host", "127.0.0.1", "--port", "0", "--text-logs"},
                          log, /*die_with_parent=*/true);
    const std::regex listening(R"(listening on http://127\.0\.0\.1:(\d+)/)");
    for (int i = 0; i < 300 && port_ == 0; ++i) {
      std::smatch m;
      const std::string text = ReadAll(log);
      if (std::regex_search(text, m, listening)) port_ = std::stoi(m[1]);
      else std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_GT(port_, 0) << ReadAll(log);
  }
  static void TearDownTestSuite() {
    testing::StopChild(pid_);
    stdfs::remove_all(base_);
  }

  static CliRun Mint(const std::string& args) { return Cli("token " + args, base_ + "/token.err"); }
  static httplib::Result Get(const std::string& path, const std::string& token) {
    httplib::Client c("127.0.0.1", port_);
    httplib::Headers h;
    if (!token.empty()) h.emplace("Authorization", "Bearer " + token);
    return c.Get(path, h);
  }
  static std::vector<std::string> Paths(const std::string& token) {
    auto r = Get("/search?q=quarterly", token);
    std::vector<std::string> out;
    if (!r || r->status != 200) {
      ADD_FAILURE() << "search answered " << (r ? std::to_string(r->status) + " " + r->body : "nothing");
      return out;
    }
    const Json body = Json::parse(r->body);
    for (const auto& h : body["hits"]) out.push_back(h["path"].get<std::string>());
    std::sort(out.begin(), out.end());
    return out;
  }

  static std::string base_;
  static pid_t pid_;
  static int port_;
};

std::string TokenCliTest::base_;
pid_t TokenCliTest::pid_ = -1;
int TokenCliTest::port_ = 0;

TEST_F(TokenCliTest, AMintedTokenIsAcceptedAndItsFoldersApply) {
  const CliRun alice = Mint("--user alice --paths " + base_ + "/share/finance/ --ttl 1h --auth-secret-file " + base_ + "/secret");
  ASSERT_EQ(alice.code, 0) << alice.err;
  EXPECT_EQ(std::count(alice.out.begin(), alice.out.end(), '.'), 2) << "a compact JWT on stdout: " << alice.out;
  EXPECT_NE(alice.err.find("token for alice"), std::string::npos) << alice.err;
  EXPECT_NE(alice.err.find("expires 20"), std::string::npos) << "the expiry as a date: " << alice.err;
  EXPECT_EQ(Paths(alice.out), std::vector<std::string>{base_ + "/share/finance/budget.txt"});

  const CliRun admin = Mint("--user ops --ttl 10m --auth-secret-file " + base_ + "/secret");
  ASSERT_EQ(admin.code, 0) << admin.err;
  const std::vector<std::string> all = {base_ + "/share/finance/budget.txt", base_ + "/share/sales/pipeline.txt"};
  EXPECT_EQ(Paths(admin.out), all);

  // The document routes the UI's previews use apply alice's folders: another folder's file is as
  // missing as a wrong id.
  auto found = Get("/search?q=pipeline", admin.out);
  ASSERT_TRUE(found && found->status == 200);
  const Json hits = Json::parse(found->body)["hits"];
  ASSERT_EQ(hits.size(), 1u);
  const std::string id = std::to_string(hits[0]["id"].get<int64_t>());
  for (const char* route : {"/text", "/preview", "/content", ""}) {
    auto mine = Get("/documents/" + id + route, admin.out);
    auto theirs = Get("/documents/" + id + route, alice.out);
    ASSERT_TRUE(mine && theirs);
    EXPECT_EQ(theirs->status, 404) << route;
    EXPECT_EQ(mine->status, std::string(route) == "/preview" ? 404 : 200) << route << mine->body;  // text: no picture
  }
  auto text = Get("/documents/" + id + "/text", admin.out);
  EXPECT_EQ(Json::parse(text->body)["text"], "quarterly pipeline for the sales team");
}

TEST_F(TokenCliTest, AnotherSecretOrNoTokenIsRefused) {
  const CliRun forged = Mint("--user mallory --auth-secret-file " + base_ + "/other-secret");
  ASSERT_EQ(forged.code, 0) << forged.err;
  auto r = Get("/search?q=quarterly", forged.out);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_NE(r->body.find("invalid token signature"), std::string::npos) << r->body;
  r = Get("/search?q=quarterly", "");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
}

TEST_F(TokenCliTest, BadArgumentsSayWhatToFix) {
  CliRun r = Mint("--user bob --ttl 8x --auth-secret-file " + base_ + "/secret");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("90s, 30m, 8h or 7d"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty());
  r = Mint("--user bob");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--auth-secret-file"), std::string::npos) << r.err;
  r = Mint("--user bob --auth-secret-file " + base_ + "/missing");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("cannot read --auth-secret-file"), std::string::npos) << r.err;
  r = Mint("--user bob --auth-secret short-secret");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("at least 32 bytes"), std::string::npos) << r.err;
  r = Mint("--paths /x/ --auth-secret-file " + base_ + "/secret");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("--user"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace fs
