// The metric families of a process that indexes: `serve` (with --watch) and `worker
// --metrics-port` export them under the same names, so the alert rules and the dashboard in deploy/
// read one set of series from either. Image embeddings made while indexing (by result, and their
// time per image in filesearch_embedding_duration_seconds{kind="index"}), the embedding cache's
// counters, and the store's failure list (retrying / dead letters).
// Thread-safety: as Metrics; the observer may be called from any thread.
#pragma once

#include "cache/embedding_cache.h"
#include "engine/engine.h"
#include "index/store.h"
#include "server/metrics.h"

namespace fs::server {

// HELP/TYPE of every family below, each series at 0 until something happens (so a rate() over a
// fresh process is 0, not absent).
void DescribeIndexingMetrics(Metrics& metrics);
// An Engine::SetEmbedObserver callback that counts into `metrics` (borrowed; must outlive it):
// filesearch_embeddings_total{result="ok"|"error"} and, per image, the batch's time divided by its
// images in filesearch_embedding_duration_seconds{kind="index"}.
EmbedObserver EmbeddingObserver(Metrics& metrics);
// The cache's counters of this process, and hits / (hits + misses) (0 with no lookups yet).
void SetCacheMetrics(Metrics& metrics, const EmbeddingCacheCounters& counters);
// filesearch_worker_queue_depth (files backing off before a retry) and filesearch_worker_dead_letters.
void SetFailureMetrics(Metrics& metrics, const FailureCounts& counts);

}  // namespace fs::server
