// Progress: a progress bar with rate and ETA on a terminal, plain periodic lines otherwise.
// Update() may be called from many threads (counters are atomic); drawing is rate-limited to
// 10 per second and serialised. Output goes to stderr so stdout stays machine-readable.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace fs {

class Progress {
 public:
  // total = 0 means unknown (a spinner-like counter instead of a bar).
  Progress(std::string label, uint64_t total, bool enabled = true);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void Add(uint64_t n = 1);
  void SetTotal(uint64_t total);
  // Draws the final state and a newline.
  void Finish();

 private:
  void Draw(bool final);

  std::string label_;
  std::atomic<uint64_t> done_{0};
  std::atomic<uint64_t> total_;
  bool enabled_;
  bool tty_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
  std::mutex mu_;
};

}  // namespace fs
