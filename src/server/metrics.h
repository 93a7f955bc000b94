// Metrics: counters and latency histograms for the HTTP server, rendered in the Prometheus text
// exposition format (version 0.0.4). Label values are escaped; families are printed sorted so the
// output is stable. Thread-safe: every method may be called from any thread (one mutex; the work
// under it is a map lookup and an add, far below a request's own cost).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "core/check.h"

namespace fs::server {

// Upper bounds (seconds) of the latency buckets: 0.5 ms .. 10 s.
const std::vector<double>& LatencyBuckets();

class Metrics {
 public:
  using Labels = std::vector<std::pair<std::string, std::string>>;

  // Registers HELP text for a family (optional; families without HELP still print).
  void Describe(const std::string& family, const std::string& type, const std::string& help);
  void Add(const std::string& family, const Labels& labels, double delta = 1.0);
  void Set(const std::string& family, const Labels& labels, double value);
  // Records `count` observations of `seconds` each in a histogram with LatencyBuckets() (a batch
  // of images embedded together counts each image at the batch's time per image).
  void Observe(const std::string& family, const Labels& labels, double seconds, uint64_t count = 1);
  // Current value of a counter or gauge (0 when never touched); for tests and derived gauges.
  double Value(const std::string& family, const Labels& labels) const;
  // The whole registry in Prometheus text format.
  std::string Render() const;

 private:
  struct Histogram {
    std::vector<uint64_t> buckets;  // cumulative at render time; stored per bucket here
    uint64_t count = 0;
    double sum = 0;
  };
  struct Family {
    std::string type = "gauge";
    std::string help;
    std::map<Labels, double> values;
    std::map<Labels, Histogram> histograms;
  };
  mutable std::mutex mu_;
  std::map<std::string, Family> families_ FS_GUARDED_BY(mu_);
};

// Escapes a label value: backslash, double quote and newline.
std::string EscapeLabelValue(const std::string& v);

}  // namespace fs::server
