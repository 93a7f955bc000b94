// `filesearch worker DIR`: keep the index of a folder current as files change.
#include <csignal>
#include <cstdio>

#include "apps/filesearch/commands.h"
#include "engine/watch.h"

namespace fs::cli {
namespace {

std::atomic<bool> g_stop{false};
extern "C" void OnStopSignal(int) { g_stop.store(true); }

}  // namespace

void RegisterWorker(CLI::App& app, GlobalFlags& flags, int* exit_code) {
  auto* cmd = app.add_subcommand("worker", "Watch a folder and keep its index current (new, changed, moved, deleted files)")
                  ->footer("Examples:\n"
                           "  filesearch worker ~/Documents\n"
                           "  filesearch worker /srv/share --model-dir ~/models/clip-vit-base-patch32\n\n"
                           "It first reconciles the folder with the index (changes made while no worker ran are\n"
                           "picked up), then follows changes with inotify, waiting until a burst of writes is quiet.\n"
                           "New images are embedded when a model is given. SIGTERM or Ctrl-C finishes the current\n"
                           "pass, saves the vector index and exits 0.");
  struct Args {
    std::string dir;
    bool test_embedder = false;
    int quiet_ms = 300;
    int max_delay_ms = 2000;
    ModelFlags model;
    OcrFlags ocr;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("DIR", args->dir, "Folder to keep indexed")->required()->type_name("DIR");
  cmd->add_option("--quiet-ms", args->quiet_ms, "Index once the folder has had no change for this long")->capture_default_str();
  cmd->add_option("--max-delay-ms", args->max_delay_ms, "...but at most this long after the first change of a burst")
      ->capture_default_str();
  cmd->add_flag("--test-embedder", args->test_embedder,
                "Give images deterministic stand-in vectors (model test/hash-64) instead of CLIP; for tests");
  AddModelFlags(cmd, &args->model);
  AddOcrFlags(cmd, &args->ocr);
  cmd->callback([&flags, exit_code, args]() {
    auto ocr = ResolveOcrFlags(args->ocr);
    if (!ocr.ok()) {
      std::fprintf(stderr, "filesearch: --ocr: %s\n", ocr.status().message().c_str());
      *exit_code = 1;
      return;
    }
    auto engine = OpenEngine(flags);
    Status s = engine.ok() ? AttachEmbedder(engine->get(), args->model, args->test_embedder) : engine.status();
    if (!s.ok()) {
      std::fprintf(stderr, "filesearch: %s\n", s.ToString().c_str());
      *exit_code = 1;
      return;
    }
    std::signal(SIGTERM, OnStopSignal);
    std::signal(SIGINT, OnStopSignal);
    WatchOptions o;
    o.quiet_ms = args->quiet_ms;
    o.max_delay_ms = args->max_delay_ms;
    o.crawl.progress = !flags.no_progress;
    o.crawl.ocr = *ocr;
    o.on_pass = [](const IndexReport& r, double seconds) {
      const CrawlReport& c = r.crawl;
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
