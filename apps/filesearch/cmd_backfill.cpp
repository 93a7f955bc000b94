// `filesearch backfill`: embed the images that have no embedding for the current model.
#include <chrono>
#include <csignal>
#include <cstdio>
#include <thread>

#include <nlohmann/json.hpp>

#include "apps/filesearch/commands.h"
#include "core/json_dump.h"
#include "core/progress.h"
#include "engine/engine.h"

namespace fs::cli {
namespace {

std::atomic<bool> g_backfill_stop{false};
extern "C" void OnBackfillStop(int) { g_backfill_stop.store(true); }

// backfill --enqueue: a job per image of this index without an embedding of the model, then (with
// --wait) a progress bar read back from the queue (jobs left) and the index (images left) until the
// queue is drained. Returns the exit code.
int EnqueueBackfill(Engine* engine, const std::string& model, const QueueFlags& queue_flags, uint64_t limit,
                    bool wait, bool use_cache, bool progress) {
  if (model.empty()) {
    std::fprintf(stderr, "filesearch: backfill --enqueue needs the model the workers embed with: give --model-dir "
                         "(or $FILESEARCH_MODEL_DIR)\n");
    return 1;
  }
  auto queue = OpenQueueFromFlags(queue_flags);
  if (!queue.ok()) {
    std::fprintf(stderr, "filesearch: %s\n", queue.status().ToString().c_str());
    return 1;
  }
  auto missing_now = [&](uint64_t fallback) {
    auto n = engine->store()->CountImagesMissingEmbedding(model);
    return n.ok() ? *n : fallback;
  };
  std::vector<std::string> targets;
  for (int64_t after = 0;;) {
    auto page = engine->store()->ImagesMissingEmbedding(model, after, 1000);
    if (!page.ok()) {
      std::fprintf(stderr, "filesearch: %s\n", page.status().ToString().c_str());
      return 1;
    }
    if (page->empty()) break;
    after = page->back().first;
    for (const auto& [id, uri] : *page) {
      if (limit > 0 && targets.size() >= limit) break;
      if (uri.rfind("s3://", 0) == 0) {
        targets.push_back(uri);
      } else if (auto path = PathFromFileUri(uri); path.ok()) {
        targets.push_back(*path);
      }
    }
    if (limit > 0 && targets.size() >= limit) break;
  }
  const uint64_t missing_at_start = missing_now(0);
  std::signal(SIGINT, OnBackfillStop);
  std::signal(SIGTERM, OnBackfillStop);
  auto sent = EnqueueTargets(queue->get(), targets, use_cache, /*remove=*/false, progress);
  if (!sent.ok()) {
    std::fprintf(stderr, "filesearch: enqueue stopped: %s\n", sent.status().ToString().c_str());
    return 1;
  }
  std::printf("backfill --enqueue: %llu jobs on %s for the images without a %s embedding\n",
              static_cast<unsigned long long>(*sent), (*queue)->name().c_str(), model.c_str());
  if (!wait || *sent == 0) return 0;
  // Done = jobs gone from the queue, or images that got their vector in this index (workers that
  // share it: the same data directory, or the opensearch back end), whichever is further.
  Progress bar("backfill via " + (*queue)->name(), *sent, progress);
  uint64_t shown = 0, left_in_queue = *sent;
  queue::QueueStats last;
  // SQS's counts are approximate and may read 0 for a moment while jobs remain: drained is three
  // empty readings in a row, a second apart.
  int empty_readings = 0;
  while (!g_backfill_stop.load()) {
    auto st = (*queue)->Stats();
    if (st.ok()) {
      last = *st;
      left_in_queue = static_cast<uint64_t>(std::max<int64_t>(0, st->visible + st->in_flight));
    }
    const uint64_t missing = missing_now(missing_at_start);
    const uint64_t by_queue = *sent > left_in_queue ? *sent - left_in_queue : 0;
    const uint64_t by_index = missing_at_start > missing ? missing_at_start - missing : 0;
    const uint64_t done = std::min<uint64_t>(*sent, std::max(by_queue, by_index));
    if (done > shown) {
      bar.Add(done - shown);
      shown = done;
    }
    empty_readings = st.ok() && left_in_queue == 0 ? empty_readings + 1 : 0;
    if (empty_readings >= 3) break;
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  bar.Finish();
  const uint64_t missing = missing_now(0);
  std::printf("backfill --enqueue: %s; %llu images of this index still without an embedding; %lld dead letters\n",
              g_backfill_stop.load() ? "stopped watching (the jobs stay queued)" : "queue drained",
              static_cast<unsigned long long>(missing), static_cast<long long>(std::max<int64_t>(0, last.dead)));
  return g_backfill_stop.load() ? 130 : 0;
}

}  // namespace

void RegisterBackfill(CLI::App& app, GlobalFlags& flags, int* exit_code) {
  auto* cmd = app.add_subcommand("backfill", "Embed every indexed image that has no embedding for the current model yet")
                  ->footer("Examples:\n"
                           "  filesearch backfill --model-dir ~/models/clip-vit-base-patch32\n"
                           "  filesearch backfill --dry-run --model-dir ...      what would be embedded\n"
                           "  filesearch backfill --limit 1000 --model-dir ...   a slice at a time\n"
                           "  filesearch backfill --all --model-dir ...          re-embed everything (new weights)\n\n"
                           "Use it after indexing without a model, after switching models, or to retry failed\n"
                           "images. Each batch is committed before the next: interrupted (Ctrl-C, kill, power\n"
                           "loss), it carries on where it stopped when run again. Images whose bytes were embedded\n"
                           "before come from the embedding cache without running the model.\n\n"
                           "With --enqueue --queue URL the images are not embedded here: each becomes a job for the\n"
                           "workers of that queue ('filesearch worker --queue URL' on any number of machines), and\n"
                           "--wait shows their progress, read back from the queue and this index.");
  struct Args {
    uint64_t limit = 0;
    bool dry_run = false;
    bool all = false;
    bool json = false;
    bool test_embedder = false;
    bool no_cache = false;
    size_t batch = 16;
    int workers = 1;
    ModelFlags model;
    S3Flags s3;  // images indexed from s3:// are read from their bucket
    bool enqueue = false;
    bool wait = false;
    QueueFlags queue;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("--limit", args->limit, "Embed at most N images in this run (0: all)")->type_name("N");
  cmd->add_flag("--all", args->all,
                "Re-embed every image, not only those without an embedding (new weights or precision under the\n"
                "same model id); old vectors stay searchable until each is replaced; resumable");
  cmd->add_flag("--dry-run", args->dry_run, "Count and list the images that would be embedded; change nothing");
  cmd->add_option("--batch", args->batch, "Images per model call (and per commit)")->capture_default_str()->check(CLI::Range(1, 1024));
  cmd->add_option("--workers", args->workers,
                  "Batches embedded at once, each by its own copy of the model with cores/N threads (the copies\n"
                  "share the packed weights' memory); batches still commit in order, so resuming stays exact.\n"
                  "More than 1 helps on machines with more cores than one forward pass uses well")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  cmd->add_flag("--json", args->json, "Print the closing summary as JSON");
  cmd->add_flag("--no-cache", args->no_cache, "Run the model for every image, ignoring the embedding cache");
  cmd->add_flag("--test-embedder", args->test_embedder,
                "Use the deterministic stand-in model test/hash-64 instead of CLIP; for tests");
  AddModelFlags(cmd, &args->model);
  AddS3Flags(cmd, &args->s3);
  cmd->add_flag("--enqueue", args->enqueue, "Fan the work out as queue jobs (needs --queue) instead of embedding here");
  cmd->add_flag("--wait", args->wait, "--enqueue: show the progress of the workers until the queue is drained");
  AddQueueFlags(cmd, &args->queue, /*required=*/false);
  cmd->callback([&flags, exit_code, args]() {
    if (args->enqueue == args->queue.url.empty()) {
      std::fprintf(stderr, "filesearch: backfill: --enqueue and --queue URL go together\n");
      *exit_code = 2;
      return;
    }
    EngineOptions o;
    auto s3 = S3OptionsFromFlags(args->s3);
    if (!s3.ok()) {
      std::fprintf(stderr, "filesearch: %s\n", s3.status().message().c_str());
      *exit_code = 2;
      return;
    }
    o.source.s3 = *s3;
    o.data_dir = ResolveDataDir(flags.data_dir);
    o.progress = !flags.no_progress;
    o.use_cache = !args->no_cache;
    o.embed_batch = args->batch;
    // Only an index has images to embed: a mistyped --data-dir is reported, not created.
    auto db = ExistingIndexDb(flags);
    Status backend = ApplyBackend(flags, &o);
    // With the opensearch back end the images are in the index: a machine that crawled nothing
    // backfills what it can read of it, in a new data directory.
    auto engine = !backend.ok() ? Result<std::unique_ptr<Engine>>(backend)
                  : db.ok() || o.remote.enabled ? Engine::Open(o)
                                : Result<std::unique_ptr<Engine>>(db.status());
    if (!engine.ok()) {
      std::fprintf(stderr, "filesearch: %s\n", OpenError(engine.status()).c_str());
      *exit_code = 1;
      return;
    }
    Status s = AttachEmbedder(engine->get(), args->model, args->test_embedder);
    if (!s.ok()) {
      std::fprintf(stderr, "filesearch: %s\n", s.ToString().c_str());
      *exit_code = 1;
      return;
    }
    if (args->enqueue) {
      *exit_code = EnqueueBackfill(engine->get(), (*engine)->vectors() ? (*engine)->vectors()->model() : "",
                                   args->queue, args->limit, args->wait, !args->no_cache, !flags.no_progress);
      return;
    }
    BackfillOptions bo;
    bo.limit = args->limit;
    bo.dry_run = args->dry_run;
    bo.all = args->all;
    bo.workers = args->workers;
    auto report = (*engine)->Backfill(bo);
    if (!report.ok() && report.status().code() == StatusCode::kFailedPrecondition) {
      std::fprintf(stderr, "filesearch: %s\n", report.status().ToString().c_str());
      *exit_code = 1;
      return;
    }
    if (!report.ok()) {
      std::fprintf(stderr, "filesearch: backfill stopped: %s\n(what was committed stays; run it again to go on)\n",
                   report.status().ToString().c_str());
      *exit_code = 1;
      return;
    }
    const BackfillReport& r = *report;
    const bool engine_is_remote = (*engine)->backend() == "opensearch";
    if (!r.remote_error.empty()) {
      std::fprintf(stderr, "filesearch: the new embeddings wait for OpenSearch: %s\n  they are kept and sent by the next run\n",
                   r.remote_error.c_str());
      *exit_code = 1;
    }
    if (!r.workers_note.empty()) std::fprintf(stderr, "filesearch: %s\n", r.workers_note.c_str());
    if (r.resumed_after > 0 && !args->json) {
      std::printf("backfill --all: resuming after image id %lld, where the last run stopped\n",
                  static_cast<long long>(r.resumed_after));
    }
    if (args->json) {
      nlohmann::json failures = nlohmann::json::array();
      for (const auto& f : r.failures) failures.push_back({{"path", f.path}, {"reason", f.reason}});
      nlohmann::json j = {{"dryRun", args->dry_run}, {"candidates", r.candidates}, {"processed", r.processed},
                          {"embedded", r.embedded},  {"fromCache", r.from_cache},  {"failed", r.failures.size()},
                          {"failures", failures},    {"remaining", r.candidates - r.embedded}, {"all", args->all},
                          {"resumedAfter", r.resumed_after}, {"workers", r.workers}};
      if (args->dry_run) j["wouldEmbed"] = r.dry_run_uris;
      if (engine_is_remote) {
        j["index"] = {{"candidates", r.index_candidates}, {"embedded", r.index_embedded},
                      {"fromCache", r.index_from_cache}, {"notHere", r.index_not_here}};
      }
      std::printf("%s\n", DumpJson(j, 2).c_str());
    } else if (args->dry_run) {
      for (const auto& uri : r.dry_run_uris) std::printf("  %s\n", uri.c_str());
      if (r.processed > r.dry_run_uris.size()) std::printf("  ... and %llu more\n", static_cast<unsigned long long>(r.processed - r.dry_run_uris.size()));
      std::printf("backfill (dry run): %llu of %llu images without an embedding would be embedded; nothing changed\n",
                  static_cast<unsigned long long>(r.processed), static_cast<unsigned long long>(r.candidates));
    } else {
      std::printf(args->all ? "backfill --all: %llu processed, %llu re-embedded (%llu from the embedding cache), %zu failed; %llu not re-embedded yet\n"
                            : "backfill: %llu processed, %llu embedded (%llu from the embedding cache), %zu failed; %llu still without an embedding\n",
                  static_cast<unsigned long long>(r.processed), static_cast<unsigned long long>(r.embedded),
                  static_cast<unsigned long long>(r.from_cache), r.failures.size(),
                  static_cast<unsigned long long>(r.candidates - r.embedded));
      if (engine_is_remote) {
        std::printf("backfill, the rest of the index: %llu images other machines crawled have no embedding; "
                    "%llu embedded here (%llu from the embedding cache), %llu not readable here (run backfill "
                    "on the machine that holds them)\n",
                    static_cast<unsigned long long>(r.index_candidates), static_cast<unsigned long long>(r.index_embedded),
                    static_cast<unsigned long long>(r.index_from_cache), static_cast<unsigned long long>(r.index_not_here));
      }
      size_t shown = 0;
      for (const auto& f : r.failures) {
        if (shown++ < 50) std::fprintf(stderr, "  failed: %s: %s\n", f.path.c_str(), f.reason.c_str());
      }
      if (r.failures.size() > 50) std::fprintf(stderr, "  ... and %zu more\n", r.failures.size() - 50);
    }
    if (!r.failures.empty()) *exit_code = 3;  // partial success: scripts can tell
  });
}

}  // namespace fs::cli
