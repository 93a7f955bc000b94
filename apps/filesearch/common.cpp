// Helpers the subcommands share: opening the data directory, flags that are on by default.
#include <sys/stat.h>

#include "apps/filesearch/commands.h"

namespace fs::cli {

Result<std::unique_ptr<Engine>> OpenEngine(const GlobalFlags& flags, const std::string& model) {
  EngineOptions o;
  o.data_dir = ResolveDataDir(flags.data_dir);
  o.progress = !flags.no_progress;
  o.model_id = model;
  return Engine::Open(o);
}

Result<std::string> ExistingIndexDb(const GlobalFlags& flags) {
  const std::string dir = ResolveDataDir(flags.data_dir);
  const std::string db = dir + "/filesearch.db";
  struct stat st{};
  if (::stat(db.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return Status::NotFound("no index at " + dir + ": run 'filesearch index FOLDER' first, or check --data-dir");
  }
  return db;
}

Result<std::unique_ptr<Engine>> OpenExistingEngine(const GlobalFlags& flags, const std::string& model) {
  FS_RETURN_IF_ERROR(ExistingIndexDb(flags).status());
  return OpenEngine(flags, model);
}

std::string OpenError(const Status& status) {
  return status.code() == StatusCode::kNotFound ? status.message() : "cannot open the index: " + status.ToString();
}

void AddOnByDefaultFlag(CLI::App* cmd, const std::string& on_name, const std::string& off_name, bool* value,
                        const std::string& off_help) {
  // Applied as parsed, so the later of the two on the command line wins.
  cmd->add_flag_callback(off_name, [value] { *value = false; }, off_help)->trigger_on_parse();
  cmd->add_flag_callback(on_name, [value] { *value = true; }, "The default; the opposite of " + off_name)
      ->trigger_on_parse()
      ->group("");  // hidden: accepted for scripts that spell the default out
}

}  // namespace fs::cli
