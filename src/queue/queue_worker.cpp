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
      auto got = queue_->Receive(std::max(1, options_.batch), options_.receive_wait_ms);
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
      HandleBatch(*got);
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

  // One job of a batch, from receipt to its outcome.
  struct Taken {
    const QueueMessage* m = nullptr;
    std::vector<JobItem> items;
    std::vector<std::string> done_uris;
    ItemOutcome outcome;
    const JobItem* failed_item = nullptr;  // set with a failed outcome
  };

  // Every job of `messages` (one Receive): each is parsed, its items read into the index in order,
  // the images of all of them embedded as one batch, and then each is acknowledged, released or
  // dead on its own outcome.
  void HandleBatch(const std::vector<QueueMessage>& messages) {
    std::vector<Taken> jobs;
    for (const QueueMessage& m : messages) {
      ++stats_.received;
      const std::string job_uri = JobUri(m);
      auto parsed = ParseJob(m.body);
      if (m.deliveries > queue_->options().max_deliveries) {
        Dead(m, "handed out " + std::to_string(m.deliveries) +
                    " times without being finished: every worker that took it died or ran past the visibility timeout",
             parsed.ok() ? *parsed : std::vector<JobItem>{}, job_uri, "queue");
        continue;
      }
      if (!parsed.ok()) {
        ++stats_.failed;
        Count("failed");
        Dead(m, parsed.status().message(), {}, job_uri, "queue");
        continue;
      }
      Taken t;
      t.m = &m;
      t.items = std::move(*parsed);
      jobs.push_back(std::move(t));
    }
    if (jobs.empty()) return;
    // Heartbeat: the jobs stay ours while they run.
    std::mutex mu;
    std::condition_variable cv;
    bool finished = false;
    const int every_ms = std::max(1000, queue_->options().visibility_timeout_s * 1000 / 3);
    std::thread heartbeat([&] {
      std::unique_lock<std::mutex> lock(mu);
      while (!cv.wait_for(lock, std::chrono::milliseconds(every_ms), [&] { return finished; })) {
        for (const Taken& t : jobs) {
          if (Status s = queue_->Extend(*t.m); !s.ok()) Log("heartbeat for job " + t.m->id + " failed: " + s.message());
        }
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
        for (const Taken& t : jobs) {
          Status s = queue_->Release(*t.m, 0);
          ++stats_.released_on_stop;
          Log("stopping: handed back job " + t.m->id + (s.ok() ? "" : " (failed: " + s.message() + ")"));
        }
        return;
      }
    }
    DoItems(&jobs);
    bool any_ok = false;
    for (const Taken& t : jobs) any_ok |= t.outcome.status.ok();
    if (any_ok && engine_->backend() == "opensearch") {
      // Durable means in the index searches run on: the outbox is sent before the acks.
      auto sent = engine_->SyncRemote();
      if (!sent.ok() || sent->backlog > 0) {
        const Status s = sent.ok() ? Status::Unavailable(std::to_string(sent->backlog) + " changes not yet in OpenSearch")
                                   : sent.status();
        for (Taken& t : jobs) {
          if (!t.outcome.status.ok()) continue;
          t.outcome.status = s;
          t.outcome.permanent = false;
          t.failed_item = t.items.empty() ? nullptr : &t.items.back();
        }
      }
    }
    stop_heartbeat();
    for (Taken& t : jobs) Finish(&t);
  }

  // The items of every job, in order. Adds are read into the index one by one and embedded
  // together; a removal first lets the adds before it finish, so a job's order holds.
  void DoItems(std::vector<Taken>* jobs) {
    struct Pending {
      Taken* job;
      const JobItem* item;
      std::string uri, spool;  // spool: a private copy of an S3 object, removed after
    };
    std::vector<Pending> pending;
    std::vector<IngestInput> inputs;
    auto flush = [&] {
      if (inputs.empty()) return;
      auto results = engine_->IngestFiles(inputs, options_.crawl, &stats_.embedded, &stats_.from_cache);
      for (size_t i = 0; i < pending.size(); ++i) {
        Pending& p = pending[i];
        if (!p.spool.empty()) ::unlink(p.spool.c_str());
        if (p.job->failed_item != nullptr) continue;  // an earlier item of the job failed
        ItemOutcome o = Outcome(results[i], inputs[i]);
        if (!o.status.ok()) {
          p.job->outcome = std::move(o);
          p.job->failed_item = p.item;
          continue;
        }
        p.job->done_uris.push_back(p.uri);
      }
      pending.clear();
      inputs.clear();
    };
    for (Taken& t : *jobs) {
      for (const JobItem& item : t.items) {
        if (t.failed_item != nullptr) break;
        const std::string uri = UriOf(item.target);
        if (item.action == JobItem::Action::kRemove) {
          flush();
          if (t.failed_item != nullptr) break;
          Status s = engine_->store()->Delete(uri);
          if (!s.ok() && s.code() != StatusCode::kNotFound) {
            t.outcome = Fail(s, "queue");
            t.failed_item = &item;
            break;
          }
          ++stats_.items_removed;
          t.done_uris.push_back(uri);
          continue;
        }
        IngestInput in;
        std::string spool;
        ItemOutcome read = Read(item, uri, &in, &spool);
        if (!read.status.ok()) {
          t.outcome = std::move(read);
          t.failed_item = &item;
          break;
        }
        pending.push_back({&t, &item, uri, spool});
        inputs.push_back(std::move(in));
      }
    }
    flush();
  }

  // Acknowledges, dead-letters or releases one job on its outcome.
  void Finish(Taken* t) {
    const QueueMessage& m = *t->m;
    const std::string job_uri = JobUri(m);
    if (t->outcome.status.ok()) {
      Status s = queue_->Ack(m);
      if (!s.ok()) {
        // Done but not acknowledged: it comes back, and doing it again changes nothing.
        Log("job " + m.id + " done but not acknowledged (" + s.message() + "); it will be redelivered");
        return;
      }
      for (const char* stage : {"read", "embed", "queue"}) {
        if (Status r = engine_->store()->ResolveFailures(t->done_uris, stage); !r.ok()) Log(r.ToString());
      }
      ++stats_.done;
      Count("done");
      Log("done " + m.id + " (" + std::to_string(t->items.size()) + " items, delivery " + std::to_string(m.deliveries) + ")");
      return;
    }
    ++stats_.failed;
    Count("failed");
    const ItemOutcome& outcome = t->outcome;
    const std::string target = t->failed_item ? t->failed_item->target : job_uri;
    const std::string reason = target + ": " + outcome.status.message();
    if (outcome.permanent || m.deliveries >= queue_->options().max_deliveries) {
      Dead(m, reason + (outcome.permanent ? "" : " (gave up after " + std::to_string(m.deliveries) + " deliveries)"),
           t->failed_item ? std::vector<JobItem>{*t->failed_item} : std::vector<JobItem>{}, job_uri, outcome.stage);
      return;
    }
    const int delay_s = std::min(options_.max_retry_delay_s, 1 << std::min<int64_t>(m.deliveries - 1, 16));
    Status s = queue_->Release(m, delay_s);
    RecordFailure(t->failed_item ? UriOf(t->failed_item->target) : job_uri, target, outcome.stage, reason, false);
    ++stats_.retried;
    Count("retried");
    Log("retry " + m.id + " in " + std::to_string(delay_s) + " s: " + reason +
        (s.ok() ? "" : " (release failed: " + s.message() + "; it comes back after the visibility timeout)"));
  }

  std::string JobUri(const QueueMessage& m) const { return "queue:" + queue_->name() + "#" + m.id; }

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

  // Checks and reads one item to add: *in is what IngestFiles takes; an S3 object's bytes go to a
  // private temporary file (*spool; extraction and the embedder read files).
  ItemOutcome Read(const JobItem& item, const std::string& uri, IngestInput* in, std::string* spool) {
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
    in->uri = uri;
    in->mtime_ns = entry->mtime_ns;
    in->use_cache = item.use_cache;
    if (!IsS3Uri(uri)) {
      in->display_path = in->local_path = item.target;
      return {};
    }
    auto bytes = source_->Read(uri, options_.max_object_bytes);
    if (!bytes.ok()) return Fail(bytes.status());
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
    if (written != bytes->size()) {
      ::unlink(path.c_str());
      return Fail(Status::IOError("cannot write a temporary file in " + dir));
    }
    in->display_path = uri;
    in->local_path = path;
    *spool = path;
    return {};
  }

  // What IngestFiles' result for one item means for its job.
  ItemOutcome Outcome(const Result<IngestReport>& r, const IngestInput& in) {
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
      // counts it in filesearch_embeddings_total.) The model read a private copy of an S3 object:
      // the reason names the object instead.
      std::string reason = p.reason;
      for (size_t at; in.local_path != in.display_path && (at = reason.find(in.local_path)) != std::string::npos;) {
        reason.replace(at, in.local_path.size(), in.display_path);
      }
      ItemOutcome o = Fail(Status::Corruption("not embedded: " + reason), "embed");
      o.permanent = true;
      return o;
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
