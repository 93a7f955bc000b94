// fs_bench: one driver, named workloads. A workload is a function registered from its own file
// (workload_<name>.cpp) with FS_BENCH_WORKLOAD; the driver parses `fs_bench <name> --flag value`
// and runs it. Workloads print a plain-text report (quality beside speed, peers in the same run)
// to stdout and return a process exit code. Single-threaded registry: registration happens
// during static initialisation, before main.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace fs::bench {

// Command-line flags: `--name value` or `--name=value`; a flag without a value reads as "1".
class Args {
 public:
  Args(int argc, char** argv);  // argv[0] is the workload name
  std::string Str(const std::string& name, const std::string& fallback) const;
  int64_t Int(const std::string& name, int64_t fallback) const;
  // Comma-separated integers ("16,32,64").
  std::vector<int64_t> IntList(const std::string& name, const std::vector<int64_t>& fallback) const;
  bool Has(const std::string& name) const { return flags_.count(name) != 0; }
  // Every flag name given ("?word" for a stray positional argument).
  std::vector<std::string> Names() const;

 private:
  std::map<std::string, std::string> flags_;
};

struct Workload {
  const char* name;
  // What it measures and its flags with defaults. The driver refuses a flag whose "--name" does
  // not appear here, before running anything.
  const char* usage;
  int (*run)(const Args& args);
};

// Registry access (used by the driver and the macro below).
std::vector<Workload>& Registry();
struct Registrar {
  explicit Registrar(Workload w) { Registry().push_back(w); }
};
#define FS_BENCH_WORKLOAD(ident, name, usage, fn) \
  static ::fs::bench::Registrar fs_bench_registrar_##ident({name, usage, fn})

// --- helpers shared by workloads ---

inline double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}
// Resident set size of this process, bytes (from /proc/self/statm); 0 if unknown.
size_t ResidentBytes();
// Returns freed heap to the OS so that the next ResidentBytes() delta measures new allocations.
void TrimHeap();
// Runs fn(begin, end) over [0, n) split into `threads` contiguous ranges, one thread each.
void ParallelFor(size_t n, int threads, const std::function<void(size_t, size_t)>& fn);
// "Intel(R) Xeon(R) ..." from /proc/cpuinfo, and the core count the process may use.
std::string CpuDescription();

}  // namespace fs::bench
