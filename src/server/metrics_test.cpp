#include "server/metrics.h"

#include <gtest/gtest.h>

#include "server/indexing_metrics.h"

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

TEST(Metrics, ObservesABatchAsThatManyObservations) {
  Metrics m;
  m.Observe("lat_seconds", {}, 0.2, 4);
  m.Observe("lat_seconds", {}, 3.0, 0);  // no observation
  const std::string out = m.Render();
  EXPECT_NE(out.find("lat_seconds_bucket{le=\"0.1\"} 0\n"), std::string::npos) << out;
  EXPECT_NE(out.find("lat_seconds_bucket{le=\"0.25\"} 4\n"), std::string::npos) << out;
  EXPECT_NE(out.find("lat_seconds_bucket{le=\"+Inf\"} 4\n"), std::string::npos) << out;
  EXPECT_NE(out.find("lat_seconds_sum 0.8\n"), std::string::npos) << out;
  EXPECT_NE(out.find("lat_seconds_count 4\n"), std::string::npos) << out;
}

TEST(IndexingMetrics, CountEmbeddingsByResultTheirTimePerImageAndTheCache) {
  Metrics m;
  DescribeIndexingMetrics(m);
  std::string out = m.Render();
  // Present at 0 before anything happened, so rate() over a fresh process is 0, not absent.
  EXPECT_NE(out.find("filesearch_embeddings_total{result=\"error\"} 0\n"), std::string::npos) << out;
  EXPECT_NE(out.find("filesearch_embeddings_total{result=\"ok\"} 0\n"), std::string::npos) << out;
  EXPECT_NE(out.find("# TYPE filesearch_embeddings_total counter\n"), std::string::npos) << out;
  EXPECT_NE(out.find("filesearch_worker_dead_letters 0\n"), std::string::npos) << out;

  EmbedObserver observe = EmbeddingObserver(m);
  observe({3, 1, 2.0});  // four images in 2 s: 0.5 s each
  observe({0, 0, 1.0});  // no image: nothing counted
  EXPECT_DOUBLE_EQ(m.Value("filesearch_embeddings_total", {{"result", "ok"}}), 3);
  EXPECT_DOUBLE_EQ(m.Value("filesearch_embeddings_total", {{"result", "error"}}), 1);
  out = m.Render();
  EXPECT_NE(out.find("filesearch_embedding_duration_seconds_bucket{kind=\"index\",le=\"0.25\"} 0\n"), std::string::npos) << out;
  EXPECT_NE(out.find("filesearch_embedding_duration_seconds_bucket{kind=\"index\",le=\"0.5\"} 4\n"), std::string::npos) << out;
  EXPECT_NE(out.find("filesearch_embedding_duration_seconds_sum{kind=\"index\"} 2\n"), std::string::npos) << out;
  EXPECT_NE(out.find("filesearch_embedding_duration_seconds_count{kind=\"index\"} 4\n"), std::string::npos) << out;

  EmbeddingCacheCounters c;
  c.hits = 3;
  c.misses = 1;
  c.errors = 2;
  SetCacheMetrics(m, c);
  EXPECT_DOUBLE_EQ(m.Value("filesearch_embedding_cache_hit_ratio", {}), 0.75);
  EXPECT_DOUBLE_EQ(m.Value("filesearch_embedding_cache_errors_total", {}), 2);
  SetFailureMetrics(m, FailureCounts{5, 7});
  EXPECT_DOUBLE_EQ(m.Value("filesearch_worker_queue_depth", {}), 5);
  EXPECT_DOUBLE_EQ(m.Value("filesearch_worker_dead_letters", {}), 7);
}

TEST(Metrics, EscapesLabelValues) {
  EXPECT_EQ(EscapeLabelValue("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

}  // namespace
}  // namespace fs::server
