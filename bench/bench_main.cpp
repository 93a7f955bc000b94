// fs_bench driver: `fs_bench <workload> [--flag value ...]`, `fs_bench --list`.
#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

#include "bench/bench.h"

namespace fs::bench {

std::vector<Workload>& Registry() {
  static std::vector<Workload> workloads;
  return workloads;
}

Args::Args(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) {
      std::string key = "?";  // a stray positional: no workload declares it, so it is refused
      key += arg;
      flags_.insert_or_assign(key, std::string());
      continue;
    }
    arg = arg.substr(2);
    if (auto eq = arg.find('='); eq != std::string::npos) {
      flags_.insert_or_assign(arg.substr(0, eq), arg.substr(eq + 1));
    } else if (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) {
      flags_.insert_or_assign(arg, std::string(argv[++i]));
    } else {
      flags_.insert_or_assign(arg, std::string(1, '1'));
    }
  }
}

std::string Args::Str(const std::string& name, const std::string& fallback) const {
  auto it = flags_.find(name);
  return it == flags_.end() ? fallback : it->second;
}

int64_t Args::Int(const std::string& name, int64_t fallback) const {
  std::string v = Str(name, "");
  return v.empty() ? fallback : std::strtoll(v.c_str(), nullptr, 10);
}

std::vector<int64_t> Args::IntList(const std::string& name, const std::vector<int64_t>& fallback) const {
  std::string v = Str(name, "");
  if (v.empty()) return fallback;
  std::vector<int64_t> out;
  size_t pos = 0;
  while (pos <= v.size()) {
    size_t comma = v.find(',', pos);
    if (comma == std::string::npos) comma = v.size();
    if (comma > pos) out.push_back(std::strtoll(v.substr(pos, comma - pos).c_str(), nullptr, 10));
    pos = comma + 1;
  }
  return out;
}

std::vector<std::string> Args::Names() const {
  std::vector<std::string> out;
  for (const auto& entry : flags_) out.push_back(entry.first);
  return out;
}

size_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  size_t total_pages = 0, resident_pages = 0;
  if (!(statm >> total_pages >> resident_pages)) return 0;
  return resident_pages * static_cast<size_t>(::sysconf(_SC_PAGESIZE));
}

void TrimHeap() {
  ::malloc_trim(0);
}

void ParallelFor(size_t n, int threads, const std::function<void(size_t, size_t)>& fn) {
  if (threads <= 1) {
    fn(0, n);
    return;
  }
  std::vector<std::thread> pool;
  const size_t per = (n + static_cast<size_t>(threads) - 1) / static_cast<size_t>(threads);
  for (size_t begin = 0; begin < n; begin += per) {
    pool.emplace_back(fn, begin, std::min(n, begin + per));
  }
  for (auto& t : pool) t.join();
}

std::string CpuDescription() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line, model = "unknown CPU";
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  }
  return model + ", " + std::to_string(std::thread::hardware_concurrency()) + " cores";
}

}  // namespace fs::bench

namespace {

void PrintUsage() {
  std::printf("usage: fs_bench <workload> [--flag value ...]\n       fs_bench --list\n\nworkloads:\n");
  for (const auto& w : fs::bench::Registry()) std::printf("  %-10s %s\n\n", w.name, w.usage);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--list" || std::string(argv[1]) == "--help") {
    PrintUsage();
    return argc < 2 ? 2 : 0;
  }
  for (const auto& w : fs::bench::Registry()) {
    if (w.name != std::string(argv[1])) continue;
    fs::bench::Args args(argc - 1, argv + 1);
    for (const std::string& flag : args.Names()) {
      if (std::string(w.usage).find("--" + flag) == std::string::npos) {
        std::fprintf(stderr, "fs_bench: workload '%s' has no flag '%s'\n\n  %s\n", w.name, flag.c_str(),
                     w.usage);
        return 2;
      }
    }
    return w.run(args);
  }
  std::fprintf(stderr, "fs_bench: unknown workload '%s'\n\n", argv[1]);
  PrintUsage();
  return 2;
}
