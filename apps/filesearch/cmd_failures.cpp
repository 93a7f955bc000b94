// `filesearch failures`: the files that could not be read or embedded (the dead-letter list).
#include <chrono>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "apps/filesearch/commands.h"
#include "core/json_dump.h"
#include "engine/search_json.h"
#include "index/store.h"

namespace fs::cli {
void RegisterFailures(CLI::App& app, GlobalFlags& flags, int* exit_code) {
  auto* cmd = app.add_subcommand("failures", "List files that could not be read or embedded, with the reason")
                  ->footer("Examples:\n"
                           "  filesearch failures                 everything on the list\n"
                           "  filesearch failures --dead --json   only the files given up on\n"
                           "  filesearch failures --requeue       try them all again on the next pass\n\n"
                           "A failure that may pass (an I/O error, a model error) is retried with exponential\n"
                           "backoff by the next passes of `filesearch worker` or `filesearch index`; one that cannot\n"
                           "(a corrupt or unsupported file), or one out of attempts, is a dead letter: it stays on\n"
                           "the list and is tried again when the file changes. Fixed the cause (permissions, a\n"
                           "model)? --requeue makes every entry due again.");
  struct Args {
    bool dead = false, json = false, requeue = false;
    size_t limit = 1000;
  };
  auto args = std::make_shared<Args>();
  cmd->add_flag("--dead", args->dead, "Only dead letters (no automatic retry left)");
  cmd->add_option("--limit", args->limit, "List at most N entries, most recent first")->capture_default_str();
  cmd->add_flag("--json", args->json, "Print as JSON");
  cmd->add_flag("--requeue", args->requeue, "Make every entry due for a retry, with a fresh attempt count");
  cmd->callback([&flags, exit_code, args]() {
    auto db = ExistingIndexDb(flags);
    auto store = db.ok() ? Store::Open(*db) : Result<std::unique_ptr<Store>>(db.status());
    if (!store.ok()) {
      std::fprintf(stderr, "filesearch: %s\n", OpenError(store.status()).c_str());
      *exit_code = 1;
      return;
    }
    if (args->requeue) {
      auto n = (*store)->RequeueFailures();
      if (!n.ok()) {
        std::fprintf(stderr, "filesearch: %s\n", n.status().ToString().c_str());
        *exit_code = 1;
        return;
      }
      std::printf("%llu entries due for a retry on the next pass of `filesearch worker` or `filesearch index`\n",
                  static_cast<unsigned long long>(*n));
      return;
    }
    auto list = (*store)->ListFailures(args->dead, args->limit);
    auto counts = (*store)->CountFailures();
    if (!list.ok() || !counts.ok()) {
      std::fprintf(stderr, "filesearch: %s\n", (!list.ok() ? list.status() : counts.status()).ToString().c_str());
      *exit_code = 1;
      return;
    }
    if (args->json) {
      nlohmann::json items = nlohmann::json::array();
      for (const FailureRecord& f : *list) {
        nlohmann::json j{{"path", f.path}, {"uri", f.uri}, {"stage", f.stage}, {"reason", f.reason},
                         {"attempts", f.attempts}, {"firstFailed", FormatTimeSecondsNs(f.first_ns)}, {"lastFailed", FormatTimeSecondsNs(f.last_ns)},
                         {"dead", f.dead()}};
        j["nextRetry"] = f.dead() ? nlohmann::json(nullptr) : nlohmann::json(FormatTimeSecondsNs(f.retry_at_ns));
        items.push_back(std::move(j));
      }
      std::printf("%s\n", DumpJson(nlohmann::json{{"failures", items}, {"retrying", counts->retrying}, {"dead", counts->dead}}, 2).c_str());
      return;
    }
    std::printf("%llu failing files: %llu to be retried, %llu dead letters\n",
                static_cast<unsigned long long>(counts->retrying + counts->dead),
                static_cast<unsigned long long>(counts->retrying), static_cast<unsigned long long>(counts->dead));
    for (const FailureRecord& f : *list) {
      const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                              std::chrono::system_clock::now().time_since_epoch()).count();
      std::string when = f.dead() ? "dead" : f.retry_at_ns <= now ? "retry due" : "retry " + FormatTimeSecondsNs(f.retry_at_ns);
      std::printf("  [%s] %s (%s, %lld attempt%s, %s)\n      %s\n", f.stage.c_str(), f.path.c_str(), when.c_str(),
                  static_cast<long long>(f.attempts), f.attempts == 1 ? "" : "s", FormatTimeSecondsNs(f.last_ns).c_str(),
                  f.reason.c_str());
    }
    if (list->size() < counts->retrying + counts->dead && !args->dead) {
      std::printf("  ... %zu shown; --limit shows more\n", list->size());
    }
  });
}

}  // namespace fs::cli
