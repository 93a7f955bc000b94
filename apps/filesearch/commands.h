// Internal header of apps/filesearch: each subcommand registers itself on the CLI11 app.
// A command's callback stores its exit code in *exit_code; the callbacks never throw.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace fs::cli {

struct GlobalFlags {
  std::string data_dir;     // --data-dir (else FILESEARCH_DATA_DIR, else the per-user default)
  bool no_progress = false; // --no-progress
  bool quiet = false;
};

void RegisterIndex(CLI::App& app, GlobalFlags& flags, int* exit_code);
void RegisterSearch(CLI::App& app, GlobalFlags& flags, int* exit_code);
void RegisterStats(CLI::App& app, GlobalFlags& flags, int* exit_code);
void RegisterModel(CLI::App& app, GlobalFlags& flags, int* exit_code);
void RegisterServe(CLI::App& app, GlobalFlags& flags, int* exit_code);

}  // namespace fs::cli
