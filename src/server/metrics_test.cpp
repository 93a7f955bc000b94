#include "server/metrics.h"

#include <gtest/gtest.h>

namespace fs::server {
namespace {

TEST(Metrics, RendersCountersGaugesAndCumulativeHistograms) {
  Metrics m;
  m.Describe("reqs_total", "counter", "Requests.");
  m.Add("reqs_total", {{"route", "/search"}, {"status", "200"}});
  m.Add("reqs_total", {{"route", "/search"}, {"status", "200"}}, 2);
  m.Set("docs", {}, 42);
  m.Observe("lat_seconds", {{"mode", "text"}}, 0.003);
  m.Observe("lat_seconds", {{"mode", "text"}}, 0.2);
  std::string out = m.Render();
  EXPECT_NE(out.find("# HELP reqs_total Requests.\n# TYPE reqs_total counter\n"), std::string::npos);
  EXPECT_NE(out.find("reqs_total{route=\"/search\",status=\"200\"} 3\n"), std::string::npos);
  EXPECT_NE(out.find("docs 42\n"), std::string::npos);
  EXPECT_NE(out.find("# TYPE lat_seconds histogram\n"), std::string::npos);
  EXPECT_NE(out.find("lat_seconds_bucket{mode=\"text\",le=\"0.001\"} 0\n"), std::string::npos);
  EXPECT_NE(out.find("lat_seconds_bucket{mode=\"text\",le=\"0.005\"} 1\n"), std::string::npos);
  EXPECT_NE(out.find("lat_seconds_bucket{mode=\"text\",le=\"0.25\"} 2\n"), std::string::npos);
  EXPECT_NE(out.find("lat_seconds_bucket{mode=\"text\",le=\"+Inf\"} 2\n"), std::string::npos);
  EXPECT_NE(out.find("lat_seconds_count{mode=\"text\"} 2\n"), std::string::npos);
  EXPECT_DOUBLE_EQ(m.Value("reqs_total", {{"route", "/search"}, {"status", "200"}}), 3);
  EXPECT_DOUBLE_EQ(m.Value("nothing", {}), 0);
}

TEST(Metrics, EscapesLabelValues) {
  EXPECT_EQ(EscapeLabelValue("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

}  // namespace
}  // namespace fs::server
