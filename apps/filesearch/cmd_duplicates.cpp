// `filesearch duplicates`: files with the same bytes, and images that look the same.
#include <cmath>
#include <cstdio>
#include <string>
#include <map>

#include <nlohmann/json.hpp>

#include "apps/filesearch/commands.h"
#include "core/json_dump.h"
#include "engine/engine.h"

namespace fs::cli {

void RegisterDuplicates(CLI::App& app, GlobalFlags& flags, int* exit_code) {
  auto* cmd = app.add_subcommand("duplicates", "List exact duplicates (same bytes) and near-duplicate images (same picture)")
                  ->footer("Examples:\n"
                           "  filesearch duplicates\n"
                           "  filesearch duplicates --threshold 0.98 --max-distance 4 --json\n\n"
                           "Exact duplicates share a SHA-256 of their content (empty files are left out). Near\n"
                           "duplicates are images that look the same: resized, recompressed or slightly cropped\n"
                           "copies. Two measures find them, and a pair is listed when either passes:\n"
                           "  - perceptual hash (64-bit DCT hash, model-independent): at most --max-distance\n"
                           "    differing bits (0-64; -1 turns it off);\n"
                           "  - embedding similarity: cosine at least --threshold.\n"
                           "Both are computed when images are embedded: index with --model-dir (or run\n"
                           "`filesearch backfill`) first. Pairs found by both measures are listed first.");
  struct Args {
    float threshold = 0.95f;
    int max_distance = 8;
    size_t limit = 1000;
    bool json = false;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("--threshold", args->threshold, "Cosine similarity at or above which two images are near duplicates")
      ->capture_default_str()
      ->check(CLI::Range(0.0f, 1.0f));
  cmd->add_option("--max-distance", args->max_distance,
                  "Perceptual-hash distance (differing bits of 64) at or below which two images are near duplicates; -1 = off")
      ->capture_default_str()
      ->check(CLI::Range(-1, 64));
  cmd->add_option("--limit", args->limit, "Report at most N exact groups and N near pairs")->capture_default_str();
  cmd->add_flag("--json", args->json, "Print as JSON");
  cmd->callback([&flags, exit_code, args]() {
    auto engine = OpenExistingEngine(flags);
    if (!engine.ok()) {
      std::fprintf(stderr, "filesearch: %s\n", OpenError(engine.status()).c_str());
      *exit_code = 1;
      return;
    }
    DuplicateOptions d;
    d.min_cosine = args->threshold;
    d.max_hamming = args->max_distance;
    d.max_groups = args->limit;
    d.progress = !flags.no_progress;
    auto report = (*engine)->FindDuplicates(d);
    std::map<int64_t, std::string> path_of;
    if (report.ok()) {
      std::vector<int64_t> ids;
      for (const auto& g : report->exact) ids.insert(ids.end(), g.begin(), g.end());
      for (const auto& n : report->near) {
        ids.push_back(n.a);
        ids.push_back(n.b);
      }
      auto docs = (*engine)->GetDocuments(ids);
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
        nlohmann::json pair = {{"a", {{"id", n.a}, {"path", path_of[n.a]}}}, {"b", {{"id", n.b}, {"path", path_of[n.b]}}}};
        pair["cosine"] = std::isnan(n.cosine) ? nlohmann::json(nullptr) : nlohmann::json(n.cosine);
        pair["hashDistance"] = n.hamming < 0 ? nlohmann::json(nullptr) : nlohmann::json(n.hamming);
        pair["byEmbedding"] = n.by_embedding;
        pair["byHash"] = n.by_hash;
        near.push_back(std::move(pair));
      }
      std::printf("%s\n", DumpJson(nlohmann::json{{"exact", exact},
                                         {"near", near},
                                         {"model", report->model},
                                         {"threshold", args->threshold},
                                         {"maxDistance", args->max_distance},
                                         {"hashedImages", report->hashed},
                                         {"hashedNow", report->hashed_now},
                                         {"unhashable", report->unhashable},
                                         {"hashPairsTruncated", report->hash_pairs_truncated}}, 2).c_str());
      return;
    }
    if (report->hashed_now > 0 || report->unhashable > 0) {
      std::printf("perceptual hashes: %zu images had none and were hashed now", report->hashed_now);
      if (report->unhashable > 0) std::printf(", %zu could not be decoded", report->unhashable);
      std::printf("\n");
    }
    std::printf("exact duplicates (same bytes): %zu groups\n", report->exact.size());
    for (const auto& g : report->exact) {
      std::printf("  %zu copies:\n", g.size());
      for (int64_t id : g) std::printf("    %s\n", path_of[id].c_str());
    }
    if (report->model.empty() && report->hashed == 0) {
      std::printf("near duplicates: none looked for (no embeddings or perceptual hashes; index with --model-dir or run backfill)\n");
      return;
    }
    std::string how;
    if (args->max_distance >= 0) how += "hash distance <= " + std::to_string(args->max_distance) + " bits over " +
                                        std::to_string(report->hashed) + " hashed images";
    if (!report->model.empty()) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "cosine >= %.3f", args->threshold);
      how += (how.empty() ? "" : ", or ") + std::string(buf) + " (" + report->model + ")";
    }
    std::printf("near duplicates (%s): %zu pairs\n", how.c_str(), report->near.size());
    if (report->hash_pairs_truncated) {
      std::printf("  (stopped comparing hashes after %zu pairs: many images share hash blocks; lower --max-distance)\n",
                  DuplicateOptions{}.max_hash_pairs);
    }
    for (const auto& n : report->near) {
      std::string cos = std::isnan(n.cosine) ? "   -  " : "";
      if (cos.empty()) {
        char buf[16];
        std::snprintf(buf, sizeof buf, "%.4f", n.cosine);
        cos = buf;
      }
      const std::string dist = n.hamming < 0 ? " -" : std::to_string(n.hamming);
      std::printf("  cosine %s  bits %2s  %s\n                          %s\n", cos.c_str(), dist.c_str(),
                  path_of[n.a].c_str(), path_of[n.b].c_str());
    }
  });
}

}  // namespace fs::cli
