// `filesearch migrate --to opensearch`: copies an embedded index (documents, text, vectors with
// their model ids) into the OpenSearch index of the opensearch back end, without re-embedding.
// Resumable: what OpenSearch acknowledged leaves the store's outbox, so a run that was stopped or
// lost the node carries on where it stopped.
#include <cstdio>

#include "apps/filesearch/commands.h"

namespace fs::cli {

void RegisterMigrate(CLI::App& app, GlobalFlags& flags, int* exit_code) {
  auto* cmd = app.add_subcommand("migrate", "Copy this data directory's index into OpenSearch (resumable, no re-embedding)")
                  ->footer("Examples:\n"
                           "  filesearch opensearch setup --opensearch-url http://127.0.0.1:9200\n"
                           "  filesearch migrate --to opensearch --opensearch-url http://127.0.0.1:9200\n\n"
                           "Every document, its text and its embedding of the index's model are written through _bulk\n"
                           "under stable ids. Interrupted (Ctrl-C, the node went away), run it again: it resumes. After\n"
                           "it, run the other commands with --backend opensearch (docs/opensearch.md).");
  auto to = std::make_shared<std::string>();
  cmd->add_option("--to", *to, "Where to: opensearch")->required()->check(CLI::IsMember({"opensearch"}));
  cmd->callback([&flags, exit_code, to]() {
    GlobalFlags with_backend = flags;
    with_backend.opensearch.backend = *to;
    // What is copied is this machine's embedded index: it must exist.
    auto db = ExistingIndexDb(flags);
    auto engine = db.ok() ? OpenExistingEngine(with_backend) : Result<std::unique_ptr<Engine>>(db.status());
    if (!engine.ok()) {
      std::fprintf(stderr, "filesearch migrate: %s\n", OpenError(engine.status()).c_str());
      *exit_code = 1;
      return;
    }
    auto sent = (*engine)->SyncRemote();
    if (!sent.ok()) {
      auto left = (*engine)->store()->MirrorBacklog();
      std::fprintf(stderr, "filesearch migrate: stopped with %llu documents still to send: %s\n  run it again to resume\n",
                   static_cast<unsigned long long>(left.ok() ? *left : 0), sent.status().message().c_str());
      *exit_code = 1;
      return;
    }
    std::printf("migrated: %llu documents written, %llu removed, %llu refused (filesearch failures lists them), "
                "%llu bulk requests\n",
                static_cast<unsigned long long>(sent->indexed), static_cast<unsigned long long>(sent->deleted),
                static_cast<unsigned long long>(sent->failed), static_cast<unsigned long long>(sent->requests));
    if (sent->failed) *exit_code = 1;
  });
}

}  // namespace fs::cli
