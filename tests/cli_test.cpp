// The CLI as a person runs it: `filesearch model info` and `filesearch embed` on generated CLIP
// weights (tiny towers, the real tokenizer), checking exit codes and the JSON reply shape of the
// original embedding function.
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

CliRun RunCli(const std::string& args) {
  std::string cmd = std::string(FILESEARCH_BINARY) + " " + args + " 2>&1";
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
  server.stop();
  thread.join();
  clip::testing::RemoveTree(models);
  clip::testing::RemoveTree(*dir);
}

}  // namespace
}  // namespace fs
