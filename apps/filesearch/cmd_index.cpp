// `filesearch index DIR|s3://BUCKET/PREFIX`: crawl a folder or an S3 bucket into the data directory.
#include <algorithm>
#include <cstdio>

#include "apps/filesearch/commands.h"
#include "engine/engine.h"

namespace fs::cli {

Status AttachEmbedder(Engine* engine, const ModelFlags& model, bool test_embedder) {
  if (test_embedder) return engine->SetEmbedder(NewHashEmbedder(64));
  FS_ASSIGN_OR_RETURN(auto clip, LoadModel(model));
  if (clip) return engine->SetEmbedder(std::move(clip));
  return Status::Ok();
}

void AddOcrFlags(CLI::App* cmd, OcrFlags* flags) {
  cmd->add_flag("--ocr", flags->on,
                "Read the text in images with Tesseract, so keyword search finds them by it (off by default: "
                "0.03-0.9 s per image, see docs/benchmarks.md)");
  cmd->add_option("--ocr-languages", flags->options.languages,
                  "Tesseract languages joined by '+' (default: eng+jpn if the Japanese data is installed, else eng)")
      ->type_name("LANGS");
  cmd->add_option("--ocr-data-dir", flags->options.data_dir,
                  "Folder with the .traineddata files (default: $TESSDATA_PREFIX, else Debian's tessdata)")
      ->type_name("DIR");
  cmd->add_option("--ocr-max-ms", flags->options.max_ms, "Give up on an image's OCR after this long (0: no limit)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--ocr-min-confidence", flags->options.min_confidence,
                  "Drop recognised words Tesseract is less sure of (0-100)")
      ->capture_default_str()
      ->check(CLI::Range(0, 100));
  cmd->add_option("--ocr-max-pixels", flags->options.max_pixels, "Larger images are scaled down to this many pixels for OCR")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
}

Result<std::optional<OcrOptions>> ResolveOcrFlags(const OcrFlags& flags) {
  if (!flags.on) return std::optional<OcrOptions>();
  FS_ASSIGN_OR_RETURN(OcrSetup setup, ResolveOcr(flags.options));
  if (!setup.note.empty()) std::fprintf(stderr, "filesearch: %s\n", setup.note.c_str());
  OcrOptions options = flags.options;
  options.data_dir = setup.data_dir;
  options.languages = setup.languages;
  return std::optional<OcrOptions>(std::move(options));
}

void RegisterIndex(CLI::App& app, GlobalFlags& flags, int* exit_code) {
  auto* cmd = app.add_subcommand("index", "Index a folder or an S3 bucket: every file's name, path and text; re-runs are incremental")
                  ->footer("Examples:\n  filesearch index ~/Documents\n  filesearch --data-dir /srv/fs index /srv/share\n"
                           "  AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... filesearch index s3://photos/2024/ --s3-region eu-west-1\n"
                           "  filesearch index s3://bucket --s3-endpoint http://127.0.0.1:9000 --s3-addressing path   (MinIO)\n\n"
                           "Symbolic links are never followed; unreadable files are listed at the end, not fatal.\n"
                           "S3: objects keep their s3://bucket/key uri; unchanged ETag, size and LastModified are skipped,\n"
                           "deleted objects leave the index, objects over --max-object-bytes are indexed by name only.");
  struct Args {
    std::string dir;
    std::string committed_log;
    size_t max_text_bytes = 1 << 20;
    bool test_embedder = false;
    int checkpoint_ms = 30000;
    bool no_cache = false;
    double cache_ttl_days = 30;
    ModelFlags model;
    OcrFlags ocr;
    S3Flags s3;
    uint64_t max_object_bytes = CrawlOptions().max_object_bytes;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("DIR", args->dir, "Folder to index, or s3://BUCKET[/PREFIX]")->required()->type_name("DIR|S3URI");
  cmd->add_option("--max-text-bytes", args->max_text_bytes, "Index at most this much text per file")->capture_default_str();
  cmd->add_option("--log-committed", args->committed_log,
                  "Append each document's uri to FILE once it is durably committed (for audits and tests)")
      ->type_name("FILE");
  cmd->add_flag("--test-embedder", args->test_embedder,
                "Give images deterministic stand-in vectors (model test/hash-64) instead of CLIP; for tests");
  cmd->add_option("--checkpoint-ms", args->checkpoint_ms, "Save the vector index snapshot this often during long runs")
      ->capture_default_str();
  cmd->add_flag("--no-cache", args->no_cache,
                "Embed every image with the model, ignoring the embedding cache (content hash + model)");
  cmd->add_option("--cache-ttl-days", args->cache_ttl_days, "Cached embeddings older than this are recomputed")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-object-bytes", args->max_object_bytes,
                  "s3://: objects larger than this are not downloaded (refused from their size), only indexed by name")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  AddModelFlags(cmd, &args->model);
  AddOcrFlags(cmd, &args->ocr);
  AddS3Flags(cmd, &args->s3);
  cmd->callback([&flags, exit_code, args]() {
    auto ocr = ResolveOcrFlags(args->ocr);
    if (!ocr.ok()) {
      std::fprintf(stderr, "filesearch: --ocr: %s\n", ocr.status().message().c_str());
      *exit_code = 1;
      return;
    }
    EngineOptions o;
    o.use_cache = !args->no_cache;
    o.cache_ttl_seconds = std::max<int64_t>(1, static_cast<int64_t>(args->cache_ttl_days * 86400));
    o.checkpoint_every_ms = args->checkpoint_ms;
    o.data_dir = ResolveDataDir(flags.data_dir);
    o.progress = !flags.no_progress;
    auto s3 = S3OptionsFromFlags(args->s3);
    if (!s3.ok()) {
      std::fprintf(stderr, "filesearch: %s\n", s3.status().message().c_str());
      *exit_code = 2;
      return;
    }
    o.source.s3 = *s3;
    if (Status b = ApplyBackend(flags, &o); !b.ok()) {
      std::fprintf(stderr, "filesearch: %s\n", b.message().c_str());
      *exit_code = 2;
      return;
    }
    auto engine = Engine::Open(o);
    if (!engine.ok()) {
      std::fprintf(stderr, "filesearch: cannot open the index in '%s': %s\n", o.data_dir.c_str(),
                   engine.status().ToString().c_str());
      *exit_code = 1;
      return;
    }
    if (Status s = AttachEmbedder(engine->get(), args->model, args->test_embedder); !s.ok()) {
      std::fprintf(stderr, "filesearch: %s\n", s.ToString().c_str());
      *exit_code = 1;
      return;
    }
    CrawlOptions co;
    co.max_text_bytes = args->max_text_bytes;
    co.max_object_bytes = args->max_object_bytes;
    co.ocr = *ocr;
    FILE* log = nullptr;
    if (!args->committed_log.empty()) {
      log = std::fopen(args->committed_log.c_str(), "a");
      if (!log) {
        std::fprintf(stderr, "filesearch: cannot open '%s' for appending\n", args->committed_log.c_str());
        *exit_code = 1;
        return;
      }
      co.on_commit = [log](const std::vector<std::string>& uris) {
        for (const auto& u : uris) std::fprintf(log, "%s\n", u.c_str());
        std::fflush(log);  // in the kernel's hands: survives a SIGKILL of this process
      };
    }
    auto report = (*engine)->Index(args->dir, co);
    if (log) std::fclose(log);
    if (!report.ok()) {
      std::fprintf(stderr, "filesearch: indexing '%s' failed: %s\n", args->dir.c_str(), report.status().ToString().c_str());
      *exit_code = 1;
      return;
    }
    const CrawlReport& c = report->crawl;
    std::printf("indexed %s: %llu files seen, %llu added, %llu updated, %llu unchanged, %llu removed, %llu skipped",
                args->dir.c_str(), static_cast<unsigned long long>(c.files_seen),
                static_cast<unsigned long long>(c.added), static_cast<unsigned long long>(c.updated),
                static_cast<unsigned long long>(c.unchanged), static_cast<unsigned long long>(c.removed),
                static_cast<unsigned long long>(c.skipped));
    if (report->embedded) std::printf(", %llu images embedded", static_cast<unsigned long long>(report->embedded));
    if (report->from_cache) std::printf(" (%llu from the embedding cache)", static_cast<unsigned long long>(report->from_cache));
    std::printf("\n");
    if (EmbeddingCache* cache = (*engine)->cache(); cache && cache->kind() != "embedded") {
      std::printf("%s\n", CacheCountersLine(*cache).c_str());
    }
    if ((*engine)->backend() == "opensearch") {
      const MirrorReport& m = report->remote;
      std::printf("opensearch %s: %llu documents written, %llu removed in %llu bulk requests",
                  o.remote.index.c_str(), static_cast<unsigned long long>(m.indexed),
                  static_cast<unsigned long long>(m.deleted), static_cast<unsigned long long>(m.requests));
      if (m.retried) std::printf(", %llu items sent again after the node turned them away (429/5xx)", static_cast<unsigned long long>(m.retried));
      if (m.failed) std::printf(", %llu refused (filesearch failures lists them)", static_cast<unsigned long long>(m.failed));
      std::printf("\n");
      if (!report->remote_error.empty()) {
        auto left = (*engine)->store()->MirrorBacklog();
        std::fprintf(stderr, "filesearch: %llu changes wait for OpenSearch: %s\n  they are kept and sent by the next run\n",
                     static_cast<unsigned long long>(left.ok() ? *left : 0), report->remote_error.c_str());
        *exit_code = 1;
      }
    }
    size_t shown = 0;
    for (const auto& p : c.problems) {
      if (shown++ < 50) std::fprintf(stderr, "  problem: %s: %s\n", p.path.c_str(), p.reason.c_str());
    }
    for (const auto& p : report->embed_failures) {
      if (shown++ < 50) std::fprintf(stderr, "  not embedded: %s: %s\n", p.path.c_str(), p.reason.c_str());
    }
    size_t total_problems = c.problems.size() + report->embed_failures.size();
    if (total_problems > 50) std::fprintf(stderr, "  ... and %zu more problems\n", total_problems - 50);
    if (total_problems) std::fprintf(stderr, "%zu files could not be indexed (listed above); the rest were.\n", total_problems);
    if (c.held) {
      std::fprintf(stderr,
                   "%llu files that could not be read before were left for their next retry (unchanged since);\n"
                   "'filesearch failures' lists them, 'filesearch failures --requeue' makes them due now.\n",
                   static_cast<unsigned long long>(c.held));
    }
  });
}

}  // namespace fs::cli
