// filesearch: the command-line entry point. Subcommands live in cmd_*.cpp.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "apps/filesearch/commands.h"
#include "core/log.h"

namespace {

// Levenshtein distance, for "did you mean" on a mistyped command.
size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// CLI11 takes an unknown command for a stray argument, and with --help it prints the main help and
// exits 0, so `filesearch serach --help` looked like success. Before parsing, the first word that
// is not an option must name a command, at each level that has commands. Returns the error to
// print, "" when every command word is known.
std::string CheckCommandWords(CLI::App& app, int argc, char** argv) {
  CLI::App* level = &app;
  std::string invocation = "filesearch";
  auto all = [](CLI::App*) { return true; };
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--") break;
    if (arg.size() > 1 && arg[0] == '-') {
      if (arg.find('=') != std::string::npos) continue;
      for (CLI::App* owner = level; owner != nullptr; owner = owner->get_parent()) {
        if (const CLI::Option* opt = owner->get_option_no_throw(arg)) {
          if (opt->get_expected_min() > 0) ++i;  // its value is not a command word
          break;
        }
      }
      continue;
    }
    const std::vector<CLI::App*> commands = level->get_subcommands(all);
    if (commands.empty()) break;  // a positional argument of a command
    CLI::App* next = nullptr;
    std::string nearest;
    size_t nearest_distance = 3;  // suggest only close names
    for (CLI::App* command : commands) {
      if (command->get_name() == arg) next = command;
      const size_t d = EditDistance(arg, command->get_name());
      if (d < nearest_distance) {
        nearest_distance = d;
        nearest = command->get_name();
      }
    }
    if (next == nullptr) {
      return invocation + ": unknown command '" + arg + "'" +
             (nearest.empty() ? "" : " (did you mean '" + nearest + "'?)") + "; run '" + invocation +
             " --help' for the list of commands";
    }
    level = next;
    invocation += " " + arg;
  }
  return "";
}

}  // namespace

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
  // Flags from a TOML file: global ones at the top (backend = "opensearch"), a command's in its
  // table ([serve] port = 9000). Command-line flags win over the file.
  // (CLI11 reads no environment variable for its config option: $FILESEARCH_CONFIG is the default
  // here, and then it must exist.)
  const char* env_config = std::getenv("FILESEARCH_CONFIG");
  const char* xdg_config = std::getenv("XDG_CONFIG_HOME");
  const char* home = std::getenv("HOME");
  const bool config_from_env = env_config && *env_config;
  const std::string default_config =
      config_from_env              ? std::string(env_config)
      : xdg_config && *xdg_config ? std::string(xdg_config) + "/filesearch/config.toml"
      : home && *home             ? std::string(home) + "/.config/filesearch/config.toml"
                                  : "";
  app.set_config("--config", default_config,
                 "Read flags from this TOML file (default $FILESEARCH_CONFIG, else "
                 "$XDG_CONFIG_HOME/filesearch/config.toml or ~/.config/filesearch/config.toml, when it exists): "
                 "global flags at the top, e.g. backend = \"opensearch\", a command's under [command]",
                 config_from_env)
      ->type_name("FILE");
  fs::cli::AddGlobalBackendFlags(&app, &flags.opensearch);
  fs::cli::AddGlobalCacheFlags(&app, &flags.cache);
  int exit_code = 0;
  fs::cli::RegisterIndex(app, flags, &exit_code);
  fs::cli::RegisterBackfill(app, flags, &exit_code);
  fs::cli::RegisterDuplicates(app, flags, &exit_code);
  fs::cli::RegisterFailures(app, flags, &exit_code);
  fs::cli::RegisterWorker(app, flags, &exit_code);
  fs::cli::RegisterEnqueue(app, flags, &exit_code);
  fs::cli::RegisterSearch(app, flags, &exit_code);
  fs::cli::RegisterStats(app, flags, &exit_code);
  fs::cli::RegisterModel(app, flags, &exit_code);
  fs::cli::RegisterEmbed(app, flags, &exit_code);
  fs::cli::RegisterServe(app, flags, &exit_code);
  fs::cli::RegisterOpenSearch(app, flags, &exit_code);
  fs::cli::RegisterMigrate(app, flags, &exit_code);
  fs::cli::RegisterCache(app, flags, &exit_code);
  fs::cli::RegisterToken(app, flags, &exit_code);
  fs::cli::RegisterEval(app, flags, &exit_code);
  fs::cli::RegisterFeedback(app, flags, &exit_code);
  if (const std::string error = CheckCommandWords(app, argc, argv); !error.empty()) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    if (rc != 0) std::fprintf(stderr, "Run 'filesearch --help' or 'filesearch COMMAND --help' for usage.\n");
    return rc == 0 ? 0 : 2;
  }
  return exit_code;
}
