// `filesearch cache setup|status`: the embedding cache named by --cache. setup creates what a
// shared cache needs (dynamodb://TABLE: the table with TTL on, as the original create-table did);
// status says which cache is in use, whether it answers, how long one lookup takes and how many
// entries it holds.
#include <chrono>
#include <cstdio>

#include "apps/filesearch/commands.h"
#include "core/hash.h"

namespace fs::cli {

void RegisterCache(CLI::App& app, GlobalFlags& flags, int* exit_code) {
  auto* cmd = app.add_subcommand("cache", "Set up or check the embedding cache (--cache)")
                  ->footer(
                      "Examples:\n"
                      "  filesearch cache setup --cache dynamodb://cis-image-embedding-cache\n"
                      "  filesearch cache status --cache redis://10.0.0.5:6379\n\n"
                      "See docs/cache.md.");
  cmd->require_subcommand(1);
  auto* setup =
      cmd->add_subcommand("setup", "Create the shared cache's table (DynamoDB, TTL on `ttl`); idempotent");
  setup->callback([&flags, exit_code]() {
    auto done = SetupEmbeddingCache(CacheSpecFromFlags(flags));
    if (!done.ok()) {
      std::fprintf(stderr, "filesearch cache setup: %s\n", done.status().ToString().c_str());
      *exit_code = 1;
      return;
    }
    std::printf("%s\n", done->c_str());
  });
  auto* status =
      cmd->add_subcommand("status", "Which cache, whether it answers, one lookup's round trip, entries");
  status->callback([&flags, exit_code]() {
    const EmbeddingCacheSpec spec = CacheSpecFromFlags(flags);
    auto cache = OpenEmbeddingCache(spec);
    if (!cache.ok()) {
      std::fprintf(stderr, "filesearch cache status: %s\n", cache.status().ToString().c_str());
      *exit_code = 1;
      return;
    }
    // A lookup of a hash no file has: a miss when the cache answers, an error when it does not.
    const auto start = std::chrono::steady_clock::now();
    (void)(*cache)->Get(Sha256Hex("filesearch cache status probe"), "filesearch/probe");
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    const bool answers = (*cache)->counters().errors == 0;
    auto size = (*cache)->Size();
    std::printf("cache:      %s (%s)\n", spec.spec.c_str(), (*cache)->kind().c_str());
    std::printf("reachable:  %s, one lookup %.2f ms\n", answers ? "yes" : "no", ms);
    if (size.ok()) {
      std::printf(
          "entries:    %llu%s\n", static_cast<unsigned long long>(*size),
          (*cache)->kind() == "dynamodb" ? " (DynamoDB's ItemCount, refreshed about every 6 hours)" : "");
    } else {
      std::printf("entries:    unknown (%s)\n", size.status().ToString().c_str());
    }
    if (!answers) *exit_code = 1;
  });
}

}  // namespace fs::cli
