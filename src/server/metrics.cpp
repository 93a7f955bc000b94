#include "server/metrics.h"

#include <cmath>
#include <cstdio>

namespace fs::server {
namespace {

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<long long>(v));
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

std::string LabelText(const Metrics::Labels& labels, const std::string& extra_key = "", const std::string& extra_value = "") {
  if (labels.empty() && extra_key.empty()) return "";
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out += ',';
    first = false;
    out += k + "=\"" + EscapeLabelValue(v) + "\"";
  }
  if (!extra_key.empty()) {
    if (!first) out += ',';
    out += extra_key + "=\"" + extra_value + "\"";
  }
  return out + "}";
}

}  // namespace

const std::vector<double>& LatencyBuckets() {
  static const std::vector<double> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                               0.1,    0.25,  0.5,    1.0,   2.5,  5.0,   10.0};
  return kBuckets;
}

std::string EscapeLabelValue(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

void Metrics::Describe(const std::string& family, const std::string& type, const std::string& help) {
  std::lock_guard lock(mu_);
  Family& f = families_[family];
  f.type = type;
  f.help = help;
}

void Metrics::Add(const std::string& family, const Labels& labels, double delta) {
  std::lock_guard lock(mu_);
  families_[family].values[labels] += delta;
}

void Metrics::Set(const std::string& family, const Labels& labels, double value) {
  std::lock_guard lock(mu_);
  families_[family].values[labels] = value;
}

void Metrics::Observe(const std::string& family, const Labels& labels, double seconds, uint64_t count) {
  if (count == 0) return;
  const auto& bounds = LatencyBuckets();
  std::lock_guard lock(mu_);
  Family& f = families_[family];
  f.type = "histogram";
  Histogram& h = f.histograms[labels];
  if (h.buckets.empty()) h.buckets.assign(bounds.size(), 0);
  for (size_t b = 0; b < bounds.size(); ++b) {
    if (seconds <= bounds[b]) {
      h.buckets[b] += count;
      break;
    }
  }
  h.count += count;
  h.sum += seconds * static_cast<double>(count);
}

double Metrics::Value(const std::string& family, const Labels& labels) const {
  std::lock_guard lock(mu_);
  auto f = families_.find(family);
  if (f == families_.end()) return 0;
  auto v = f->second.values.find(labels);
  return v == f->second.values.end() ? 0 : v->second;
}

std::string Metrics::Render() const {
  const auto& bounds = LatencyBuckets();
  std::lock_guard lock(mu_);
  std::string out;
  for (const auto& [name, f] : families_) {
    if (!f.help.empty()) out += "# HELP " + name + " " + f.help + "\n";
    out += "# TYPE " + name + " " + f.type + "\n";
    if (f.type != "histogram") {
      for (const auto& [labels, v] : f.values) out += name + LabelText(labels) + " " + FormatValue(v) + "\n";
      continue;
    }
    for (const auto& [labels, h] : f.histograms) {
      uint64_t cumulative = 0;
      for (size_t b = 0; b < bounds.size(); ++b) {
        cumulative += h.buckets[b];
        out += name + "_bucket" + LabelText(labels, "le", FormatValue(bounds[b])) + " " + std::to_string(cumulative) + "\n";
      }
      out += name + "_bucket" + LabelText(labels, "le", "+Inf") + " " + std::to_string(h.count) + "\n";
      out += name + "_sum" + LabelText(labels) + " " + FormatValue(h.sum) + "\n";
      out += name + "_count" + LabelText(labels) + " " + std::to_string(h.count) + "\n";
    }
  }
  return out;
}

}  // namespace fs::server
