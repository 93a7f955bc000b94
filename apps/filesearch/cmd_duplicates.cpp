// `filesearch duplicates`: files with the same bytes, and images that look the same.
#include <cstdio>
#include <map>

#include <nlohmann/json.hpp>

#include "apps/filesearch/commands.h"
#include "engine/engine.h"

namespace fs::cli {

void RegisterDuplicates(CLI::App& app, GlobalFlags& flags, int* exit_code) {
  auto* cmd = app.add_subcommand("duplicates", "List exact duplicates (same bytes) and near-duplicate images (same picture)")
                  ->footer("Examples:\n"
                           "  filesearch duplicates\n"
                           "  filesearch duplicates --threshold 0.98 --json\n\n"
                           "Exact duplicates share a SHA-256 of their content (empty files are left out). Near\n"
                           "duplicates are images whose embeddings have at least --threshold cosine similarity:\n"
                           "resized, recompressed or slightly cropped copies. They need embeddings: index with\n"
                           "--model-dir or run `filesearch backfill` first.");
  struct Args {
    float threshold = 0.95f;
    size_t limit = 1000;
    bool json = false;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("--threshold", args->threshold, "Cosine similarity at or above which two images are near duplicates")
      ->capture_default_str()
      ->check(CLI::Range(0.0f, 1.0f));
  cmd->add_option("--limit", args->limit, "Report at most N exact groups and N near pairs")->capture_default_str();
  cmd->add_flag("--json", args->json, "Print as JSON");
  cmd->callback([&flags, exit_code, args]() {
    auto engine = OpenEngine(flags);
    if (!engine.ok()) {
      std::fprintf(stderr, "filesearch: cannot open the index: %s\n", engine.status().ToString().c_str());
      *exit_code = 1;
      return;
    }
    DuplicateOptions d;
    d.min_cosine = args->threshold;
    d.max_groups = args->limit;
    auto report = (*engine)->FindDuplicates(d);
    std::map<int64_t, std::string> path_of;
    if (report.ok()) {
      std::vector<int64_t> ids;
      for (const auto& g : report->exact) ids.insert(ids.end(), g.begin(), g.end());
      for (const auto& n : report->near) {
        ids.push_back(n.a);
        ids.push_back(n.b);
      }
      auto docs = (*engine)->store()->GetMany(ids);
      if (!docs.ok()) report = docs.status();
      if (docs.ok()) {
        for (const Document& doc : *docs) path_of[doc.id] = doc.path;
      }
    }
    if (!report.ok()) {
      std::fprintf(stderr, "filesearch: %s\n", report.status().ToString().c_str());
      *exit_code = 1;
      return;
    }
    if (args->json) {
      nlohmann::json exact = nlohmann::json::array(), near = nlohmann::json::array();
      for (const auto& g : report->exact) {
        nlohmann::json files = nlohmann::json::array();
        for (int64_t id : g) files.push_back({{"id", id}, {"path", path_of[id]}});
        exact.push_back(files);
      }
      for (const auto& n : report->near) {
        near.push_back({{"a", {{"id", n.a}, {"path", path_of[n.a]}}}, {"b", {{"id", n.b}, {"path", path_of[n.b]}}},
                        {"cosine", n.cosine}});
      }
      std::printf("%s\n", nlohmann::json{{"exact", exact}, {"near", near}, {"model", report->model}, {"threshold", args->threshold}}
                              .dump(2)
                              .c_str());
      return;
    }
    std::printf("exact duplicates (same bytes): %zu groups\n", report->exact.size());
    for (const auto& g : report->exact) {
      std::printf("  %zu copies:\n", g.size());
      for (int64_t id : g) std::printf("    %s\n", path_of[id].c_str());
    }
    if (report->model.empty()) {
      std::printf("near duplicates: none looked for (no embeddings; index with --model-dir or run backfill)\n");
      return;
    }
    std::printf("near duplicates (cosine >= %.3f, %s): %zu pairs\n", args->threshold, report->model.c_str(),
                report->near.size());
    for (const auto& n : report->near) {
      std::printf("  %.4f  %s\n          %s\n", n.cosine, path_of[n.a].c_str(), path_of[n.b].c_str());
    }
  });
}

}  // namespace fs::cli
