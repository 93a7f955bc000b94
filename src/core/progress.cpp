#include "core/progress.h"

#include <unistd.h>

#include <cstdio>

namespace fs {

Progress::Progress(std::string label, uint64_t total, bool enabled)
    : label_(std::move(label)), total_(total), enabled_(enabled), tty_(::isatty(STDERR_FILENO) != 0) {
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

Progress::~Progress() { Finish(); }

void Progress::SetTotal(uint64_t total) { total_ = total; }

void Progress::Add(uint64_t n) {
  done_ += n;
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  // Terminal: redraw up to 10x/s. Log file: a line every 5 s.
  auto period = tty_ ? std::chrono::milliseconds(100) : std::chrono::milliseconds(5000);
  std::unique_lock lock(mu_, std::try_to_lock);
  if (!lock.owns_lock() || now - last_draw_ < period) return;
  last_draw_ = now;
  Draw(false);
}

void Progress::Finish() {
  std::lock_guard lock(mu_);
  if (finished_ || !enabled_) return;
  finished_ = true;
  Draw(true);
}

void Progress::Draw(bool final) {
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  uint64_t done = done_.load();
  uint64_t total = total_.load();
  double rate = secs > 0 ? static_cast<double>(done) / secs : 0.0;
  char line[256];
  if (total > 0) {
    double frac = std::min(1.0, static_cast<double>(done) / static_cast<double>(total));
    double eta = rate > 0 ? static_cast<double>(total - std::min(done, total)) / rate : 0.0;
    if (tty_) {
      constexpr int kWidth = 30;
      int filled = static_cast<int>(frac * kWidth);
      std::string bar(static_cast<size_t>(filled), '#');
      bar.append(static_cast<size_t>(kWidth - filled), '-');
      std::snprintf(line, sizeof line, "\r%s [%s] %3.0f%% %llu/%llu %.0f/s ETA %.0fs\x1b[K", label_.c_str(),
                    bar.c_str(), frac * 100, static_cast<unsigned long long>(done),
                    static_cast<unsigned long long>(total), rate, eta);
    } else {
      std::snprintf(line, sizeof line, "%s: %llu/%llu (%.0f%%) %.0f/s ETA %.0fs\n", label_.c_str(),
                    static_cast<unsigned long long>(done), static_cast<unsigned long long>(total),
                    frac * 100, rate, eta);
    }
  } else {
    std::snprintf(line, sizeof line, tty_ ? "\r%s: %llu (%.0f/s)\x1b[K" : "%s: %llu (%.0f/s)\n",
                  label_.c_str(), static_cast<unsigned long long>(done), rate);
  }
  std::fputs(line, stderr);
  if (final && tty_) std::fputs("\n", stderr);
  std::fflush(stderr);
}

}  // namespace fs
