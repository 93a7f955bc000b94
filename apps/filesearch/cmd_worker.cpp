// `filesearch worker DIR`: keep the index of a folder current as files change.
// `filesearch worker --queue URL`: do the jobs of a queue shared by a fleet of workers.
#include <chrono>
#include <csignal>
#include <cstdio>

#include "apps/filesearch/commands.h"
#include "engine/watch.h"
#include "queue/queue_worker.h"
#include "server/indexing_metrics.h"
#include "server/metrics_endpoint.h"

namespace fs::cli {
namespace {

std::atomic<bool> g_stop{false};
extern "C" void OnStopSignal(int) { g_stop.store(true); }

// `worker --queue`: the job loop (queue/queue_worker.h); its queue families go to `metrics`, which
// --metrics-port serves.
template <typename Args>
int RunQueue(Engine* engine, const Args& args, const std::optional<OcrOptions>& ocr, const GlobalFlags& flags,
             server::Metrics* metrics) {
  auto queue = OpenQueueFromFlags(args.queue);
  if (!queue.ok()) {
    std::fprintf(stderr, "filesearch: %s\n", queue.status().ToString().c_str());
    return 1;
  }
  auto s3 = S3OptionsFromFlags(args.s3);
  if (!s3.ok()) {
    std::fprintf(stderr, "filesearch: %s\n", s3.status().message().c_str());
    return 1;
  }
  queue::QueueWorkerOptions o;
  o.s3 = *s3;
  o.max_object_bytes = args.max_object_mb << 20;
  o.crawl.ocr = ocr;
  o.crawl.progress = false;
  o.metrics = metrics;
  o.hold_ms = args.hold_ms;
  o.batch = args.batch;
  const bool quiet = flags.quiet;
  o.log = [quiet](const std::string& line) {
    if (quiet) return;
    std::fprintf(stderr, "worker: %s\n", line.c_str());
    std::fflush(stderr);
  };
  std::fprintf(stderr, "worker: taking jobs from %s (SIGTERM or Ctrl-C to stop)\n", (*queue)->name().c_str());
  auto stats = queue::RunQueueWorker(engine, queue->get(), o, g_stop);
  Status saved = engine->Checkpoint();
  if (!saved.ok()) std::fprintf(stderr, "filesearch: could not save the vector index: %s\n", saved.ToString().c_str());
  if (!stats.ok()) {
    std::fprintf(stderr, "filesearch: worker stopped: %s\n", stats.status().ToString().c_str());
    return 1;
  }
  auto n = [](uint64_t v) { return static_cast<unsigned long long>(v); };
  std::printf(
      "worker: stopped after %llu jobs: %llu done, %llu retried, %llu dead letters, %llu handed back; "
      "%llu files indexed (%llu unchanged, %llu removed), %llu images embedded (%llu from the cache)\n",
      n(stats->received), n(stats->done), n(stats->retried), n(stats->dead), n(stats->released_on_stop),
      n(stats->items_indexed), n(stats->items_unchanged), n(stats->items_removed), n(stats->embedded),
      n(stats->from_cache));
  std::fflush(stdout);
  return 0;
}

}  // namespace

void RegisterWorker(CLI::App& app, GlobalFlags& flags, int* exit_code) {
  auto* cmd = app.add_subcommand("worker",
                                 "Keep the index current: watch a folder (DIR), or do the jobs of a queue (--queue URL)")
                  ->footer("Examples:\n"
                           "  filesearch worker ~/Documents\n"
                           "  filesearch worker /srv/share --model-dir ~/models/clip-vit-base-patch32\n"
                           "  filesearch worker --queue sqs://filesearch-jobs --model-dir ~/models/clip-vit-base-patch32\n"
                           "  filesearch worker --queue redis://10.0.0.5:6379/filesearch-jobs --cache redis://10.0.0.5:6379\n\n"
                           "With DIR it first reconciles the folder with the index (changes made while no worker ran are\n"
                           "picked up), then follows changes with inotify, waiting until a burst of writes is quiet.\n"
                           "New images are embedded when a model is given (--no-embed: indexed without vectors,\n"
                           "for `filesearch backfill` later). SIGTERM or Ctrl-C finishes the current pass, saves the\n"
                           "vector index and exits 0.\n\n"
                           "With --queue it takes jobs one at a time: S3 event notifications (ObjectCreated:* indexes\n"
                           "the object, ObjectRemoved:* removes it) and {\"imageUrl\": \"s3://...\" or a path} jobs\n"
                           "('filesearch enqueue' makes them). Any number of workers on any machines share a queue. A\n"
                           "job is acknowledged only once its document and vector are in the index; a worker that\n"
                           "dies has its job handed to another after --visibility-timeout; a job that cannot succeed\n"
                           "(a missing object, a corrupt image) or fails --max-deliveries times goes to the dead-letter\n"
                           "queue and to 'filesearch failures' with its reason. SIGTERM or Ctrl-C finishes (or hands\n"
                           "back) the current job, saves the vector index and exits 0 (docs/workers.md).\n\n"
                           "Monitoring: --metrics-port 9464 serves Prometheus metrics at http://127.0.0.1:9464/metrics\n"
                           "(embeddings ok/error and their duration, cache hits, the failure list; see docs/deploy.md).");
  struct Args {
    std::string dir;
    QueueFlags queue;
    S3Flags s3;
    uint64_t max_object_mb = 256;
    int batch = 10;
    int hold_ms = 0;
    bool test_embedder = false;
    bool no_embed = false;
    int metrics_port = -1;
    std::string metrics_bind = "127.0.0.1";
    int quiet_ms = 300;
    int max_delay_ms = 2000;
    ModelFlags model;
    OcrFlags ocr;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("DIR", args->dir, "Folder to keep indexed (or give --queue)")->type_name("DIR");
  AddQueueFlags(cmd, &args->queue, /*required=*/false);
  AddS3Flags(cmd, &args->s3);
  cmd->add_option("--max-object-mb", args->max_object_mb,
                  "--queue: larger objects and files are refused (a dead letter), checked before reading")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--batch", args->batch,
                  "--queue: jobs taken at once; their images are embedded as one batch (1 = one job at a time;\n"
                  "SQS hands out at most 10)")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  // Tests of a worker killed or stopped mid-job: wait this long after taking each batch of jobs.
  cmd->add_option("--test-hold-ms", args->hold_ms)->group("");
  cmd->add_option("--quiet-ms", args->quiet_ms, "Index once the folder has had no change for this long")->capture_default_str();
  cmd->add_option("--max-delay-ms", args->max_delay_ms, "...but at most this long after the first change of a burst")
      ->capture_default_str();
  cmd->add_flag("--test-embedder", args->test_embedder,
                "Give images deterministic stand-in vectors (model test/hash-64) instead of CLIP; for tests");
  cmd->add_flag("--no-embed", args->no_embed,
                "Index files but embed no images, even with a model configured (the rollback switch: images stay\n"
                "keyword-searchable; `filesearch backfill` embeds them later)");
  cmd->add_option("--metrics-port", args->metrics_port,
                  "Serve Prometheus metrics at http://BIND:PORT/metrics (0 = any free port, printed at start)")
      ->check(CLI::Range(0, 65535))
      ->type_name("PORT");
  cmd->add_option("--metrics-bind", args->metrics_bind, "Address --metrics-port listens on")->capture_default_str();
  AddModelFlags(cmd, &args->model);
  AddOcrFlags(cmd, &args->ocr);
  cmd->callback([&flags, exit_code, args]() {
    if (args->dir.empty() == args->queue.url.empty()) {
      std::fprintf(stderr, "filesearch: worker: give a folder to watch (DIR) or a queue to take jobs from (--queue URL), not %s\n",
                   args->dir.empty() ? "neither" : "both");
      *exit_code = 2;
      return;
    }
    auto ocr = ResolveOcrFlags(args->ocr);
    if (!ocr.ok()) {
      std::fprintf(stderr, "filesearch: --ocr: %s\n", ocr.status().message().c_str());
      *exit_code = 1;
      return;
    }
    auto engine = OpenEngine(flags);
    Status s = !engine.ok()     ? engine.status()
               : args->no_embed ? Status::Ok()
                                : AttachEmbedder(engine->get(), args->model, args->test_embedder);
    if (!s.ok()) {
      std::fprintf(stderr, "filesearch: %s\n", s.ToString().c_str());
      *exit_code = 1;
      return;
    }
    if (args->no_embed) std::fprintf(stderr, "worker: --no-embed: images are indexed without embeddings\n");
    // --metrics-port: the indexing families of `serve` (server/indexing_metrics.h) plus the passes.
    server::Metrics metrics;
    std::unique_ptr<server::MetricsEndpoint> endpoint;
    Engine* e = engine->get();
    if (args->metrics_port >= 0) {
      server::DescribeIndexingMetrics(metrics);
      metrics.Describe("filesearch_worker_passes_total", "counter", "Indexing passes over the folder (the first included).");
      metrics.Describe("filesearch_worker_last_pass_timestamp_seconds", "gauge",
                       "When the last pass ended (Unix time): a worker that stops passing while files change is stuck.");
      metrics.Describe("filesearch_worker_files_total", "counter", "Files indexed by change: added, updated, removed.");
      metrics.Add("filesearch_worker_passes_total", {}, 0);
      for (const char* c : {"added", "updated", "removed"}) metrics.Add("filesearch_worker_files_total", {{"change", c}}, 0);
      e->SetEmbedObserver(server::EmbeddingObserver(metrics));
      auto started = server::MetricsEndpoint::Start(args->metrics_bind, args->metrics_port, [&metrics, e] {
        if (EmbeddingCache* cache = e->cache()) server::SetCacheMetrics(metrics, cache->counters());
        if (auto fc = e->store()->CountFailures(); fc.ok()) server::SetFailureMetrics(metrics, *fc);
        return metrics.Render();
      });
      if (!started.ok()) {
        std::fprintf(stderr, "filesearch: --metrics-port: %s (choose another port, or 0 for any free one)\n",
                     started.status().ToString().c_str());
        *exit_code = 1;
        return;
      }
      endpoint = std::move(started).value();
      std::fprintf(stderr, "worker: metrics at http://%s:%d/metrics\n", args->metrics_bind.c_str(), endpoint->port());
    }
    std::signal(SIGTERM, OnStopSignal);
    std::signal(SIGINT, OnStopSignal);
    if (!args->queue.url.empty()) {
      *exit_code = RunQueue(engine->get(), *args, *ocr, flags, &metrics);
      return;
    }
    WatchOptions o;
    o.quiet_ms = args->quiet_ms;
    o.max_delay_ms = args->max_delay_ms;
    o.crawl.progress = !flags.no_progress;
    o.crawl.ocr = *ocr;
    o.on_pass = [&metrics](const IndexReport& r, double seconds) {
      const CrawlReport& c = r.crawl;
      metrics.Add("filesearch_worker_passes_total", {});
      metrics.Set("filesearch_worker_last_pass_timestamp_seconds", {},
                  std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count());
      metrics.Add("filesearch_worker_files_total", {{"change", "added"}}, static_cast<double>(c.added));
      metrics.Add("filesearch_worker_files_total", {{"change", "updated"}}, static_cast<double>(c.updated));
      metrics.Add("filesearch_worker_files_total", {{"change", "removed"}}, static_cast<double>(c.removed));
      std::printf("pass: %llu added, %llu updated, %llu removed, %llu images embedded, %zu problems (%.3f s)\n",
                  static_cast<unsigned long long>(c.added), static_cast<unsigned long long>(c.updated),
                  static_cast<unsigned long long>(c.removed), static_cast<unsigned long long>(r.embedded),
                  c.problems.size() + r.embed_failures.size(), seconds);
      for (const auto& p : c.problems) std::fprintf(stderr, "  problem: %s: %s\n", p.path.c_str(), p.reason.c_str());
      for (const auto& p : r.embed_failures) std::fprintf(stderr, "  not embedded: %s: %s\n", p.path.c_str(), p.reason.c_str());
      std::fflush(stdout);
    };
    std::fprintf(stderr, "worker: watching %s (SIGTERM or Ctrl-C to stop)\n", args->dir.c_str());
    auto stats = WatchFolder(engine->get(), args->dir, o, g_stop);
    if (!stats.ok()) {
      std::fprintf(stderr, "filesearch: worker stopped: %s\n", stats.status().ToString().c_str());
      *exit_code = 1;
      return;
    }
    std::printf("worker: stopped after %llu passes (%llu events)\n", static_cast<unsigned long long>(stats->passes),
                static_cast<unsigned long long>(stats->events));
  });
}

}  // namespace fs::cli
