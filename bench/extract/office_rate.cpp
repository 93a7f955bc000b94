// Extraction rate of the office, mail and archive readers (bench/extract/run.sh drives it).
// Usage: office_rate [--dump] [--repeat N] FILE...
// Each file's MIME type comes from its extension. Per format: files/s and MB/s (input bytes) of
// Extract(), beside the rate of merely reading the same bytes from the page cache (the floor).
// --dump prints each file's fields and text instead of timing it.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "extract/extract.h"

namespace {

const std::map<std::string, std::string> kMimes = {
    {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
    {"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
    {"pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
    {"odt", "application/vnd.oasis.opendocument.text"},
    {"ods", "application/vnd.oasis.opendocument.spreadsheet"},
    {"odp", "application/vnd.oasis.opendocument.presentation"},
    {"epub", "application/epub+zip"},
    {"zip", "application/zip"},
    {"doc", "application/msword"},
    {"xls", "application/vnd.ms-excel"},
    {"ppt", "application/vnd.ms-powerpoint"},
    {"msg", "application/vnd.ms-outlook"},
    {"rtf", "application/rtf"},
    {"eml", "message/rfc822"},
};

std::string Ext(const std::string& path) {
  auto dot = path.rfind('.');
  return dot == std::string::npos ? "" : path.substr(dot + 1);
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

struct Tally {
  int files = 0;
  double bytes = 0, text_bytes = 0, extract_s = 0, read_s = 0;
  int problems = 0;
};

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

}  // namespace

int main(int argc, char** argv) {
  bool dump = false;
  int repeat = 20;
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--dump") == 0)
      dump = true;
    else if (std::strcmp(argv[i], "--repeat") == 0 && i + 1 < argc)
      repeat = std::atoi(argv[++i]);
    else
      files.emplace_back(argv[i]);
  }
  fs::ExtractOptions options;
  options.max_text_bytes = 8 << 20;
  std::map<std::string, Tally> by_format;
  for (const auto& path : files) {
    auto mime = kMimes.find(Ext(path));
    if (mime == kMimes.end()) continue;
    if (dump) {
      std::string bytes = ReadFile(path);
      fs::Extraction e = fs::Extract(bytes, bytes.size(), mime->second, options);
      std::printf("== %s\ntitle: %s\nauthor: %s\ncreated_ns: %lld\nsaved_ns: %lld\nproblem: %s\n%s\n\n",
                  path.c_str(), e.title.c_str(), e.author.c_str(),
                  static_cast<long long>(e.created_ns.value_or(-1)),
                  static_cast<long long>(e.saved_ns.value_or(-1)), e.problem.c_str(), e.text.c_str());
      continue;
    }
    Tally& t = by_format[Ext(path)];
    auto start = std::chrono::steady_clock::now();
    std::string bytes;
    for (int r = 0; r < repeat; ++r) bytes = ReadFile(path);
    t.read_s += Seconds(start);
    start = std::chrono::steady_clock::now();
    fs::Extraction e;
    for (int r = 0; r < repeat; ++r) e = fs::Extract(bytes, bytes.size(), mime->second, options);
    t.extract_s += Seconds(start);
    t.files += repeat;
    t.bytes += static_cast<double>(bytes.size()) * repeat;
    t.text_bytes += static_cast<double>(e.text.size()) * repeat;
    t.problems += e.problem.empty() ? 0 : 1;
  }
  if (dump) return 0;
  std::printf("%-6s %6s %10s %10s %10s %10s %12s %8s\n", "format", "files", "input_KB", "files/s", "MB/s",
              "text_MB/s", "read_MB/s", "problems");
  for (const auto& [format, t] : by_format) {
    std::printf("%-6s %6d %10.1f %10.0f %10.1f %10.1f %12.0f %8d\n", format.c_str(), t.files,
                t.bytes / t.files / 1024, t.files / t.extract_s, t.bytes / t.extract_s / 1e6,
                t.text_bytes / t.extract_s / 1e6, t.bytes / t.read_s / 1e6, t.problems);
  }
  return 0;
}
