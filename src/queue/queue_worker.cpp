#include "queue/queue_worker.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <mutex>
#include <thread>

#include "core/env.h"
#include "core/utf8.h"
#include "engine/crawl.h"
#include "queue/job.h"
#include "server/metrics.h"
#include "storage/source.h"

namespace fs::queue {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kJobsTotal = "filesearch_queue_jobs_total";

// What one item of a job came to.
struct ItemOutcome {
  Status status;            // OK: durable in the index
  bool permanent = false;   // retrying cannot help: dead at once
  std::string stage = "read";
};

bool PermanentCode(StatusCode c) {
  return c == StatusCode::kInvalidArgument || c == StatusCode::kNotFound || c == StatusCode::kResourceExhausted ||
         c == StatusCode::kCorruption || c == StatusCode::kUnsupported;
}

class Worker {
 public:
  Worker(Engine* engine, JobQueue* queue, const QueueWorkerOptions& options, const std::atomic<bool>& stop)
      : engine_(engine), queue_(queue), options_(options), stop_(stop) {}

  Result<QueueWorkerStats> Run() {
    if (options_.metrics) DescribeQueueMetrics(options_.metrics);
    auto last_stats = Clock::now() - std::chrono::hours(1);
    auto last_checkpoint = Clock::now();
    int errors_in_a_row = 0;
    while (!stop_.load()) {
      if (Clock::now() - last_stats >= std::chrono::milliseconds(options_.stats_every_ms)) {
        RefreshGauges();
        last_stats = Clock::now();
      }
      auto got = queue_->Receive(1, options_.receive_wait_ms);
      if (!got.ok()) {
        // The queue is down or unreachable: keep trying (a fleet outlives a queue restart).
        ++errors_in_a_row;
        const int wait_ms = std::min(5000, 250 << std::min(errors_in_a_row - 1, 5));
        Log("queue " + queue_->name() + " unavailable (" + got.status().message() + "); trying again in " +
            std::to_string(wait_ms) + " ms");
        SleepUnlessStopped(wait_ms);
        continue;
      }
      errors_in_a_row = 0;
      for (const QueueMessage& m : *got) Handle(m);
      if (engine_->backend() == "embedded" &&
          Clock::now() - last_checkpoint >= std::chrono::milliseconds(options_.checkpoint_every_ms)) {
        if (Status s = engine_->Checkpoint(); !s.ok()) Log("could not save the vector snapshot: " + s.ToString());
        last_checkpoint = Clock::now();
      }
    }
    RefreshGauges();
    return stats_;
  }

 private:
  void Log(const std::string& line) const {
    if (options_.log) options_.log(line);
  }

  void Count(const char* result) {
    if (options_.metrics) options_.metrics->Add(kJobsTotal, {{"result", result}});
  }

  void RefreshGauges() {
    if (!options_.metrics) return;
    auto s = queue_->Stats();
    if (s.ok()) SetQueueGauges(options_.metrics, *s);
  }

  void SleepUnlessStopped(int ms) {
    for (int waited = 0; waited < ms && !stop_.load(); waited += 50) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  void Handle(const QueueMessage& m) {
    ++stats_.received;
    const std::string job_uri = "queue:" + queue_->name() + "#" + m.id;
    auto parsed = ParseJob(m.body);
    if (m.deliveries > queue_->options().max_deliveries) {
      Dead(m, "handed out " + std::to_string(m.deliveries) +
                  " times without being finished: every worker that took it died or ran past the visibility timeout",
           parsed.ok() ? *parsed : std::vector<JobItem>{}, job_uri, "queue");
      return;
    }
    if (!parsed.ok()) {
      ++stats_.failed;
      Count("failed");
      Dead(m, parsed.status().message(), {}, job_uri, "queue");
      return;
    }
    // Heartbeat: the job stays ours while it runs.
    std::mutex mu;
    std::condition_variable cv;
    bool finished = false;
    std::thread heartbeat;
    const int every_ms = std::max(1000, queue_->options().visibility_timeout_s * 1000 / 3);
    heartbeat = std::thread([&] {
      std::unique_lock<std::mutex> lock(mu);
      while (!cv.wait_for(lock, std::chrono::milliseconds(every_ms), [&] { return finished; })) {
        if (Status s = queue_->Extend(m); !s.ok()) Log("heartbeat for job " + m.id + " failed: " + s.message());
      }
    });
    auto stop_heartbeat = [&] {
      {
        std::lock_guard<std::mutex> lock(mu);
        finished = true;
      }
      cv.notify_all();
      heartbeat.join();
    };
    if (options_.hold_ms > 0) {
      SleepUnlessStopped(options_.hold_ms);
      if (stop_.load()) {
        stop_heartbeat();
        Status s = queue_->Release(m, 0);
        ++stats_.released_on_stop;
        Log("stopping: handed back job " + m.id + (s.ok() ? "" : " (failed: " + s.message() + ")"));
        return;
      }
    }
    ItemOutcome outcome;
    const JobItem* failed_item = nullptr;
    std::vector<std::string> done_uris;
    for (const JobItem& item : *parsed) {
      outcome = Process(item);
      if (!outcome.status.ok()) {
        failed_item = &item;
        break;
      }
      done_uris.push_back(UriOf(item.target));
    }
    if (failed_item == nullptr && engine_->backend() == "opensearch") {
      // Durable means in the index searches run on: the outbox is sent before the ack.
      auto sent = engine_->SyncRemote();
      if (!sent.ok() || sent->backlog > 0) {
        outcome.status = sent.ok() ? Status::Unavailable(std::to_string(sent->backlog) + " changes not yet in OpenSearch")
                                   : sent.status();
        outcome.permanent = false;
        failed_item = parsed->empty() ? nullptr : &parsed->back();
      }
    }
    stop_heartbeat();

    if (outcome.status.ok()) {
      Status s = queue_->Ack(m);
      if (!s.ok()) {
        // Done but not acknowledged: it comes back, and doing it again changes nothing.
        Log("job " + m.id + " done but not acknowledged (" + s.message() + "); it will be redelivered");
        return;
      }
      for (const char* stage : {"read", "embed", "queue"}) {
        if (Status r = engine_->store()->ResolveFailures(done_uris, stage); !r.ok()) Log(r.ToString());
      }
      ++stats_.done;
      Count("done");
      Log("done " + m.id + " (" + std::to_string(parsed->size()) + " items, delivery " + std::to_string(m.deliveries) + ")");
      return;
    }
    ++stats_.failed;
    Count("failed");
    const std::string target = failed_item ? failed_item->target : job_uri;
    const std::string reason = target + ": " + outcome.status.message();
    if (outcome.permanent || m.deliveries >= queue_->options().max_deliveries) {
      Dead(m, reason + (outcome.permanent ? "" : " (gave up after " + std::to_string(m.deliveries) + " deliveries)"),
           failed_item ? std::vector<JobItem>{*failed_item} : std::vector<JobItem>{}, job_uri, outcome.stage);
      return;
    }
    const int delay_s = std::min(options_.max_retry_delay_s, 1 << std::min<int64_t>(m.deliveries - 1, 16));
    Status s = queue_->Release(m, delay_s);
    RecordFailure(failed_item ? UriOf(failed_item->target) : job_uri, target, outcome.stage, reason, false);
    ++stats_.retried;
    Count("retried");
    Log("retry " + m.id + " in " + std::to_string(delay_s) + " s: " + reason +
        (s.ok() ? "" : " (release failed: " + s.message() + "; it comes back after the visibility timeout)"));
  }

  void Dead(const QueueMessage& m, const std::string& reason, const std::vector<JobItem>& items,
            const std::string& job_uri, const std::string& stage) {
    Status s = queue_->DeadLetter(m, reason);
    if (!s.ok()) {
      Log("could not dead-letter job " + m.id + " (" + s.message() + "); it will come back");
      return;
    }
    if (items.empty()) RecordFailure(job_uri, m.body.substr(0, 200), stage, reason, true);
    for (const JobItem& item : items) RecordFailure(UriOf(item.target), item.target, stage, reason, true);
    ++stats_.dead;
    Count("dead");
    Log("dead letter " + m.id + ": " + reason);
  }

  void RecordFailure(const std::string& uri, const std::string& path, const std::string& stage,
                     const std::string& reason, bool permanent) {
    std::vector<FailureInput> f = {{uri, RepairUtf8(path), stage, reason, permanent}};
    if (Status s = engine_->store()->RecordFailures(f, RetryPolicy{queue_->options().max_deliveries, 1000, 60000}, WallClockNs());
        !s.ok()) {
      Log("could not record the failure of " + uri + ": " + s.ToString());
    }
  }

  static std::string UriOf(const std::string& target) {
    return IsS3Uri(target) ? target : FileUri(target);
  }

  ItemOutcome Fail(Status s, const std::string& stage = "read") {
    ItemOutcome o;
    o.permanent = PermanentCode(s.code());
    o.status = std::move(s);
    o.stage = stage;
    return o;
  }

  ItemOutcome Process(const JobItem& item) {
    const std::string uri = UriOf(item.target);
    if (item.action == JobItem::Action::kRemove) {
      Status s = engine_->store()->Delete(uri);
      if (!s.ok() && s.code() != StatusCode::kNotFound) return Fail(s, "queue");
      ++stats_.items_removed;
      return {};
    }
    if (!source_) {
      SourceOptions so;
      so.s3 = options_.s3;
      auto opened = OpenAnySource(so);
      if (!opened.ok()) return Fail(opened.status());
      source_ = std::move(*opened);
    }
    auto entry = source_->Stat(uri);
    if (!entry.ok()) return Fail(entry.status());
    if (entry->size > options_.max_object_bytes) {
      return Fail(Status::ResourceExhausted(std::to_string(entry->size) + " bytes, over the limit of " +
                                            std::to_string(options_.max_object_bytes)));
    }
    if (!IsS3Uri(uri)) return Ingest(item, uri, item.target, item.target, entry->mtime_ns);
    auto bytes = source_->Read(uri, options_.max_object_bytes);
    if (!bytes.ok()) return Fail(bytes.status());
    // The bytes go to a private temporary file: extraction and the embedder read files.
    const std::string dir = engine_->data_dir() + "/spool";
    ::mkdir(dir.c_str(), 0700);
    std::string path = dir + "/queue-" + std::to_string(::getpid()) + "-XXXXXX";
    const int fd = ::mkstemp(path.data());
    if (fd < 0) return Fail(Status::IOError("cannot create a temporary file in " + dir + ": " + std::strerror(errno)));
    size_t written = 0;
    while (written < bytes->size()) {
      const ssize_t n = ::write(fd, bytes->data() + written, bytes->size() - written);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      written += static_cast<size_t>(n);
    }
    ::close(fd);
    ItemOutcome o = written == bytes->size() ? Ingest(item, uri, uri, path, entry->mtime_ns)
                                             : Fail(Status::IOError("cannot write a temporary file in " + dir));
    ::unlink(path.c_str());
    return o;
  }

  ItemOutcome Ingest(const JobItem& item, const std::string& uri, const std::string& display,
                     const std::string& local, int64_t mtime_ns) {
    auto r = engine_->IngestFile(uri, display, local, mtime_ns, item.use_cache, options_.crawl);
    if (!r.ok()) return Fail(r.status());
    if (r->unchanged) {
      ++stats_.items_unchanged;
      return {};
    }
    ++stats_.items_indexed;
    for (const CrawlProblem& p : r->problems) {
      if (p.stage != "embed") continue;
      // Decoding is deterministic: an image the model could not take (corrupt, a decompression
      // bomb, an unknown format) fails the same way every time. (The engine's embed observer
      // counts it in filesearch_embeddings_total.)
      // The model read a private copy of an S3 object: the reason names the object instead.
      std::string reason = p.reason;
      for (size_t at; local != display && (at = reason.find(local)) != std::string::npos;) {
        reason.replace(at, local.size(), display);
      }
      ItemOutcome o = Fail(Status::Corruption("not embedded: " + reason), "embed");
      o.permanent = true;
      return o;
    }
    if (r->embedded) {
      ++stats_.embedded;
      if (r->from_cache) ++stats_.from_cache;
    }
    return {};
  }

  Engine* engine_;
  JobQueue* queue_;
  const QueueWorkerOptions& options_;
  const std::atomic<bool>& stop_;
  std::unique_ptr<Source> source_;
  QueueWorkerStats stats_;
};

}  // namespace

void DescribeQueueMetrics(server::Metrics* m) {
  m->Describe(kJobsTotal, "counter",
              "Queue jobs by outcome: done (acknowledged), failed (an attempt failed), retried (released for "
              "another try), dead (moved to the dead-letter queue).");
  m->Describe("filesearch_queue_depth", "gauge", "Jobs waiting in the queue (approximate).");
  m->Describe("filesearch_queue_in_flight", "gauge", "Jobs taken by a worker and not yet acknowledged (approximate).");
  m->Describe("filesearch_queue_oldest_job_age_seconds", "gauge", "Age of the oldest job not yet done.");
  m->Describe("filesearch_queue_dead_letters", "gauge", "Jobs in the dead-letter queue.");
  for (const char* r : {"done", "failed", "retried", "dead"}) m->Add(kJobsTotal, {{"result", r}}, 0);
}

void SetQueueGauges(server::Metrics* m, const QueueStats& s) {
  m->Set("filesearch_queue_depth", {}, static_cast<double>(s.visible));
  m->Set("filesearch_queue_in_flight", {}, static_cast<double>(s.in_flight));
  m->Set("filesearch_queue_oldest_job_age_seconds", {}, s.oldest_age_s);
  m->Set("filesearch_queue_dead_letters", {}, static_cast<double>(std::max<int64_t>(0, s.dead)));
}

Result<QueueWorkerStats> RunQueueWorker(Engine* engine, JobQueue* queue, const QueueWorkerOptions& options,
                                        const std::atomic<bool>& stop) {
  return Worker(engine, queue, options, stop).Run();
}

}  // namespace fs::queue
