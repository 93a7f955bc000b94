// RunQueueWorker: `filesearch worker --queue URL`. Takes jobs (queue/job.h) from a JobQueue and
// brings the index in line with them, a batch of jobs at a time (options.batch), until `stop` is set.
//
// At-least-once, with idempotent results:
//   - a job is acknowledged only after every item is durable in the index (the document and, for an
//     image, its vector committed to the store; with the opensearch back end, sent to OpenSearch);
//   - while a batch runs, a heartbeat keeps its jobs invisible (Extend every visibility_timeout / 3), so a
//     slow job is not handed to a second worker, and a worker that dies stops the heartbeat: the
//     job comes back after the visibility timeout and another worker does it;
//   - doing a job twice changes nothing: documents are keyed by their uri (s3://bucket/key or
//     file:///path), the same bytes are not read into the index again, and a removal of a missing
//     document is a success.
// Failures: a job that cannot ever succeed (not a job, a missing object, an object over the size
// limit, an image the model cannot decode) is moved to the dead-letter queue at once; a transient
// failure (S3 or the index unavailable) releases the job with a backoff, and after max_deliveries
// deliveries it is dead too. A job delivered more than max_deliveries times (it killed every worker
// that took it) is dead without being tried again. Every dead letter is also on the store's failure
// list (`filesearch failures`) with its reason, so poison never blocks the queue.
// SIGTERM (stop): a job not yet started is released at once; a job being processed is finished
// and acknowledged; then the worker returns (the caller saves the vector snapshot and exits 0).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "core/status.h"
#include "engine/engine.h"
#include "queue/job_queue.h"
#include "storage/s3_client.h"

namespace fs::server {
class Metrics;
}

namespace fs::queue {

struct QueueWorkerOptions {
  int receive_wait_ms = 1000;        // long poll per Receive (also how soon a stop is noticed when idle)
  // Jobs taken at once (one Receive; SQS gives at most 10): their images are embedded as one batch,
  // so decoding and the model's batched forward pass use every core. 1 = one job at a time.
  int batch = 10;
  int stats_every_ms = 5000;         // queue depth / age / dead-letter gauges refreshed this often
  int checkpoint_every_ms = 60000;   // the vector snapshot is saved this often while jobs come
  int max_retry_delay_s = 60;        // a released job waits 2^(deliveries-1) s, at most this
  uint64_t max_object_bytes = 256ull << 20;  // larger S3 objects / files are refused (a dead letter)
  storage::S3Options s3;             // for s3:// items
  CrawlOptions crawl;                // extraction settings (OCR ...); progress is ignored
  server::Metrics* metrics = nullptr;  // optional: the filesearch_queue_* families
  // For tests of a worker killed or stopped mid-job: wait this long after taking each job before
  // doing it (a stop during the wait releases the job). 0 in real use.
  int hold_ms = 0;
  std::function<void(const std::string& line)> log;  // one line per job outcome; may be empty
};

struct QueueWorkerStats {
  uint64_t received = 0;
  uint64_t done = 0;      // acknowledged
  uint64_t failed = 0;    // attempts that failed (each is retried or dead)
  uint64_t retried = 0;   // released for another try
  uint64_t dead = 0;      // moved to the dead-letter queue
  uint64_t released_on_stop = 0;
  uint64_t items_indexed = 0, items_unchanged = 0, items_removed = 0, embedded = 0, from_cache = 0;
};

Result<QueueWorkerStats> RunQueueWorker(Engine* engine, JobQueue* queue, const QueueWorkerOptions& options,
                                        const std::atomic<bool>& stop);

// The queue gauges (depth, oldest age, dead letters) of `stats` into `metrics`, and their HELP.
void DescribeQueueMetrics(server::Metrics* metrics);
void SetQueueGauges(server::Metrics* metrics, const QueueStats& stats);

}  // namespace fs::queue
