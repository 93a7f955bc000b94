#include "model/clip/clip_test_util.h"

#include <cmath>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace fs::clip::testing {

std::optional<std::string> GenerateReference(const std::string& args, std::string* why) {
  const char* source = std::getenv("FILESEARCH_SOURCE_DIR");
  const std::string script = std::string(source ? source : ".") + "/tests/clip/clip_reference.py";
  if (!std::filesystem::exists(script)) {
    *why = "cannot find " + script + " (set FILESEARCH_SOURCE_DIR)";
    return std::nullopt;
  }
  if (std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0) {
    *why = "/usr/bin/python3 with PyTorch (python3-torch) is not installed";
    return std::nullopt;
  }
  std::string dir = (std::filesystem::temp_directory_path() / "clip_ref_XXXXXX").string();
  if (mkdtemp(dir.data()) == nullptr) {
    *why = "mkdtemp failed";
    return std::nullopt;
  }
  const std::string cmd = "/usr/bin/python3 " + script + " --out " + dir + " " + args;
  if (std::system(cmd.c_str()) != 0) {
    *why = "reference generator failed: " + cmd;
    return std::nullopt;
  }
  return dir;
}

std::vector<float> ReadFloats(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string bytes = ss.str();
  std::vector<float> out(bytes.size() / 4);
  std::memcpy(out.data(), bytes.data(), out.size() * 4);
  return out;
}

std::vector<std::vector<int32_t>> ReadIds(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in).get<std::vector<std::vector<int32_t>>>();
}

double Cosine(const std::vector<float>& a, const std::vector<float>& b, size_t row, size_t d) {
  double dot = 0, na = 0, nb = 0;
  for (size_t i = row * d; i < (row + 1) * d; ++i) {
    dot += static_cast<double>(a[i]) * b[i];
    na += static_cast<double>(a[i]) * a[i];
    nb += static_cast<double>(b[i]) * b[i];
  }
  return dot / std::sqrt(na * nb);
}

void RemoveTree(const std::string& dir) {
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace fs::clip::testing
