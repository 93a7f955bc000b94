// filesearch: the command-line entry point. Subcommands live in cmd_*.cpp.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "apps/filesearch/commands.h"
#include "core/log.h"

int main(int argc, char** argv) {
  // OpenMP (used by the CLIP GEMMs) reads its wait policy once, when the runtime loads, before
  // main. Spinning idle threads starve their partner on a busy machine (a bf16 image took 301 ms
  // instead of 53 ms under load), so unless the user chose a policy, re-run with "passive".
  if (std::getenv("OMP_WAIT_POLICY") == nullptr) {
    ::setenv("OMP_WAIT_POLICY", "passive", 1);
    ::execv("/proc/self/exe", argv);  // returns only on failure: then carry on as we are
  }
  fs::InitLogFromEnv();
  CLI::App app{
      "filesearch: search a company's files by name, path and content, and images by what they show.\n\n"
      "Quick start:\n"
      "  filesearch index ~/Documents          index a folder (re-run to pick up changes)\n"
      "  filesearch search \"quarterly report\"  keyword search\n"
      "  filesearch stats                      what is indexed\n\n"
      "Data lives in $FILESEARCH_DATA_DIR, else $XDG_DATA_HOME/filesearch, else\n"
      "~/.local/share/filesearch; --data-dir overrides both.",
      "filesearch"};
  app.require_subcommand(1);
  app.fallthrough();  // global flags may follow the subcommand
  fs::cli::GlobalFlags flags;
  app.add_option("--data-dir", flags.data_dir, "Where the index lives (overrides FILESEARCH_DATA_DIR)")
      ->type_name("DIR");
  app.add_flag("--no-progress", flags.no_progress, "No progress bars (plain output for logs and scripts)");
  int exit_code = 0;
  fs::cli::RegisterIndex(app, flags, &exit_code);
  fs::cli::RegisterBackfill(app, flags, &exit_code);
  fs::cli::RegisterDuplicates(app, flags, &exit_code);
  fs::cli::RegisterFailures(app, flags, &exit_code);
  fs::cli::RegisterWorker(app, flags, &exit_code);
  fs::cli::RegisterSearch(app, flags, &exit_code);
  fs::cli::RegisterStats(app, flags, &exit_code);
  fs::cli::RegisterModel(app, flags, &exit_code);
  fs::cli::RegisterEmbed(app, flags, &exit_code);
  fs::cli::RegisterServe(app, flags, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    if (rc != 0) std::fprintf(stderr, "Run 'filesearch --help' or 'filesearch COMMAND --help' for usage.\n");
    return rc == 0 ? 0 : 2;
  }
  return exit_code;
}
