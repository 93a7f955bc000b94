#include "server/indexing_metrics.h"

namespace fs::server {

void DescribeIndexingMetrics(Metrics& metrics) {
  metrics.Describe("filesearch_embeddings_total", "counter",
                   "Images the model embedded while indexing, by result (ok, or error: unreadable, corrupt, an "
                   "unusable vector); cache hits are not model calls and count in the cache's families.");
  metrics.Describe("filesearch_embedding_duration_seconds", "histogram",
                   "Embedding latency by kind: text and image are queries (serve); index is one image embedded "
                   "while indexing (its batch's time divided by the batch's images).");
  metrics.Describe("filesearch_embedding_cache_hits_total", "counter",
                   "Embedding cache hits (content SHA-256 + model) in this process: /embed, image search, indexing.");
  metrics.Describe("filesearch_embedding_cache_misses_total", "counter",
                   "Embedding cache misses in this process (expired entries included).");
  metrics.Describe("filesearch_embedding_cache_hit_ratio", "gauge", "hits / (hits + misses); 0 while there were no lookups.");
  metrics.Describe("filesearch_embedding_cache_errors_total", "counter",
                   "Embedding cache lookups and stores that failed (a shared cache down or timing out); each was "
                   "bypassed: the image was embedded without the cache.");
  metrics.Describe("filesearch_worker_queue_depth", "gauge",
                   "Failed files waiting for a retry (backing off) on the failure list of the store.");
  metrics.Describe("filesearch_worker_dead_letters", "gauge",
                   "Files given up on (corrupt, unsupported, or out of attempts): `filesearch failures --dead` lists them.");
  for (const char* result : {"ok", "error"}) metrics.Add("filesearch_embeddings_total", {{"result", result}}, 0);
  SetCacheMetrics(metrics, {});
  SetFailureMetrics(metrics, {});
}

EmbedObserver EmbeddingObserver(Metrics& metrics) {
  return [&metrics](const EmbedBatchStats& batch) {
    metrics.Add("filesearch_embeddings_total", {{"result", "ok"}}, static_cast<double>(batch.ok));
    metrics.Add("filesearch_embeddings_total", {{"result", "error"}}, static_cast<double>(batch.failed));
    const uint64_t images = batch.ok + batch.failed;
    if (images > 0) {
      metrics.Observe("filesearch_embedding_duration_seconds", {{"kind", "index"}},
                      batch.seconds / static_cast<double>(images), images);
    }
  };
}

void SetCacheMetrics(Metrics& metrics, const EmbeddingCacheCounters& counters) {
  metrics.Set("filesearch_embedding_cache_hits_total", {}, static_cast<double>(counters.hits));
  metrics.Set("filesearch_embedding_cache_misses_total", {}, static_cast<double>(counters.misses));
  metrics.Set("filesearch_embedding_cache_errors_total", {}, static_cast<double>(counters.errors));
  metrics.Set("filesearch_embedding_cache_hit_ratio", {}, counters.hit_ratio());
}

void SetFailureMetrics(Metrics& metrics, const FailureCounts& counts) {
  metrics.Set("filesearch_worker_queue_depth", {}, static_cast<double>(counts.retrying));
  metrics.Set("filesearch_worker_dead_letters", {}, static_cast<double>(counts.dead));
}

}  // namespace fs::server
