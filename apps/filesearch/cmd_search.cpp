// `filesearch search QUERY` and `filesearch stats`.
#include <cstdio>
#include <optional>

#include <nlohmann/json.hpp>

#include "apps/filesearch/commands.h"
#include "core/json_dump.h"
#include "engine/engine.h"
#include "engine/search_json.h"

namespace fs::cli {
namespace {

std::string HumanSize(uint64_t bytes) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) { v /= 1024; ++u; }
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.1f %s" : "%.0f %s", v, units[u]);
  return buf;
}

}  // namespace

void AddTuningFlags(CLI::App* cmd, TuningFlags* flags) {
  SearchTuning& t = flags->tuning;
  cmd->add_option("--fusion", flags->fusion, "Hybrid fusion: rrf (reciprocal rank) or linear (min-max scores)")
      ->check(CLI::IsMember({"rrf", "linear"}))
      ->capture_default_str();
  cmd->add_option("--rrf-k", t.rrf_k, "RRF constant k: score = sum of weight / (k + rank)")->capture_default_str();
  cmd->add_option("--text-weight", t.text_weight, "Weight of the keyword leg in the fusion")->capture_default_str();
  cmd->add_option("--vector-weight", t.vector_weight, "Weight of the vector leg in the fusion")->capture_default_str();
  cmd->add_option("--floor-sd", t.floor_sd,
                  "Hybrid picture floor: robust SDs above the median cosine an image must reach to join a keyword "
                  "query's results (raised to the chance maximum of the collection's size)")
      ->capture_default_str();
  cmd->add_option("--floor-min-score", t.floor_min_score,
                  "Hybrid picture floor: an absolute cosine an image must reach too (0 = none; ~0.20 for ViT-B/32)")
      ->capture_default_str();
}

Result<SearchTuning> ResolveTuningFlags(const TuningFlags& flags) {
  SearchTuning t = flags.tuning;
  FS_ASSIGN_OR_RETURN(t.fusion, ParseFusionMethod(flags.fusion));
  Status valid = t.Validate();
  if (!valid.ok()) return Status::InvalidArgument(valid.message() + ": check --rrf-k, --text-weight, --vector-weight, --floor-sd and --floor-min-score");
  return t;
}

void RegisterSearch(CLI::App& app, GlobalFlags& flags, int* exit_code) {
  auto* cmd = app.add_subcommand("search", "Search the index: keywords, a query vector, or both (hybrid)")
                  ->footer("Examples:\n"
                           "  filesearch search \"quarterly report\"\n"
                           "  filesearch search invoice --ext pdf --path-prefix /srv/share/finance/ --limit 20\n"
                           "  filesearch search 請求 --json\n"
                           "  filesearch search \"beach\" --mode hybrid --vector '[0.1, ...]' --model openai/clip-vit-base-patch32\n\n"
                           "Words are ANDed; 'repo*' matches a prefix. Latin text ignores case and accents;\n"
                           "Japanese and Chinese match by characters, so 請求 finds 2024年請求書.pdf.\n"
                           "Page with --from (up to 10,000 deep) or --after CURSOR (printed with --json).");
  struct Args {
    std::string query, mode, after, vector_json, model, path_prefix;
    std::vector<std::string> types, exts;
    size_t limit = 10, from = 0;
    TuningFlags tuning;
    std::optional<uint64_t> min_size, max_size;
    bool json = false;
    ModelFlags model_flags;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("QUERY", a->query, "Keywords (may be empty with --vector)");
  cmd->add_option("--mode", a->mode, "text, vector or hybrid (default: hybrid when both keywords and a vector are given)")
      ->check(CLI::IsMember({"text", "keyword", "vector", "hybrid"}));
  cmd->add_option("--limit,-n", a->limit, "Hits per page (1-100)")->capture_default_str();
  cmd->add_option("--from", a->from, "Offset of the first hit")->capture_default_str();
  cmd->add_option("--after", a->after, "Continue after this cursor (nextCursor of a --json reply)");
  cmd->add_option("--vector", a->vector_json, "Query vector as a JSON array")->type_name("JSON");
  cmd->add_option("--model", a->model, "Model id of --vector (must match the index)");
  cmd->add_option("--type", a->types, "Only these MIME types or families (image, text/plain)");
  cmd->add_option("--ext", a->exts, "Only these extensions (pdf, jpg)");
  cmd->add_option("--path-prefix", a->path_prefix, "Only paths starting with this");
  cmd->add_option("--min-size", a->min_size, "Minimum size in bytes");
  cmd->add_option("--max-size", a->max_size, "Maximum size in bytes");
  AddTuningFlags(cmd, &a->tuning);
  cmd->add_flag("--json", a->json, "Print the reply as JSON (same shape as the HTTP API)");
  AddModelFlags(cmd, &a->model_flags);
  cmd->callback([&flags, exit_code, a]() {
    auto fail = [exit_code](const std::string& msg) {
      std::fprintf(stderr, "filesearch: %s\n", msg.c_str());
      *exit_code = 1;
    };
    auto tuning = ResolveTuningFlags(a->tuning);
    if (!tuning.ok()) return fail(tuning.status().message());
    SearchRequest r;
    tuning->ApplyTo(&r);
    r.query = a->query;
    r.size = a->limit;
    r.from = a->from;
    r.search_after = a->after;
    r.filters.types = a->types;
    r.filters.extensions = a->exts;
    r.filters.path_prefix = a->path_prefix;
    r.filters.min_size = a->min_size;
    r.filters.max_size = a->max_size;
    if (!a->mode.empty()) {
      auto m = ParseSearchMode(a->mode);
      if (!m.ok()) return fail(m.status().message());
      r.mode = *m;
    }
    if (!a->vector_json.empty()) {
      auto j = nlohmann::json::parse(a->vector_json, nullptr, false);
      if (!j.is_array() || j.empty()) return fail("--vector must be a JSON array of numbers, e.g. [0.1, 0.2]");
      for (auto& x : j) {
        if (!x.is_number()) return fail("--vector must contain only numbers");
        r.vector.push_back(x.get<float>());
      }
      if (a->model.empty()) return fail("--vector needs --model (the model id that produced it)");
      r.vector_model = a->model;
    }
    // With a CLIP model, the words also reach the vector leg through the text tower: the engine
    // resolves the query vector, as it does for the server.
    std::unique_ptr<ClipEmbedder> clip;
    if (r.vector.empty() && !a->query.empty() && (!r.mode || *r.mode != SearchMode::kText)) {
      auto loaded = LoadModel(a->model_flags);
      if (!loaded.ok()) return fail(loaded.status().ToString());
      clip = std::move(loaded).value();
      if (clip) a->model = clip->model_id();
    }
    auto engine = OpenExistingEngine(flags, a->model);
    if (!engine.ok()) return fail(OpenError(engine.status()));
    (*engine)->SetQueryEmbedder(clip.get());
    Status resolved = (*engine)->ResolveQueryVector(QueryVectorSource{}, &r);
    if (!resolved.ok()) return fail(resolved.ToString());
    auto res = (*engine)->Search(r);
    if (!res.ok()) return fail(res.status().message());
    if (a->json) {
      std::printf("%s\n", SearchResultToJson(*res).c_str());
      return;
    }
    if (res->hits.empty()) {
      std::printf("no results for \"%s\"\n", a->query.c_str());
      return;
    }
    size_t rank = r.from;
    for (const auto& h : res->hits) {
      std::printf("%3zu. %s\n     %s  %s  score %.4g", ++rank, h.doc.path.c_str(), h.doc.mime.c_str(),
                  HumanSize(h.doc.size).c_str(), h.score);
      if (h.text.present && h.vector.present) {
        std::printf(" (words #%zu %.3g, picture #%zu %.3f)", h.text.rank, h.text.score, h.vector.rank, h.vector.score);
      } else if (res->mode == SearchMode::kHybrid) {
        std::printf(h.text.present ? " (words)" : " (picture)");  // why it matched
      }
      std::printf("\n");
      // Document metadata (office files, e-mail, HTML), when the file has it.
      if (!h.doc.title.empty()) std::printf("     title: %s\n", h.doc.title.c_str());
      if (!h.doc.author.empty()) std::printf("     author: %s\n", h.doc.author.c_str());
    }
    std::printf("%s%llu results in %.1f ms", res->total_exact ? "" : "about ",
                static_cast<unsigned long long>(res->total), res->took_ms);
    if (!res->next_cursor.empty()) std::printf("; next page: --from %zu", r.from + r.size);
    std::printf("\n");
  });
}

void RegisterStats(CLI::App& app, GlobalFlags& flags, int* exit_code) {
  auto* cmd = app.add_subcommand("stats", "What is indexed: documents, embeddings per model, sizes");
  auto json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *json, "Print as JSON");
  cmd->callback([&flags, exit_code, json]() {
    auto engine = OpenExistingEngine(flags);
    if (!engine.ok()) {
      std::fprintf(stderr, "filesearch: %s\n", OpenError(engine.status()).c_str());
      *exit_code = 1;
      return;
    }
    auto st = (*engine)->store()->Stats();
    if (!st.ok()) {
      std::fprintf(stderr, "filesearch: %s\n", st.status().ToString().c_str());
      *exit_code = 1;
      return;
    }
    VectorIndex* v = (*engine)->vectors();
    uint64_t cached = 0;
    EmbeddingCacheCounters counters;
    std::string cache_kind = "off";
    if (EmbeddingCache* cache = (*engine)->cache()) {
      auto n = cache->Size();
      if (n.ok()) cached = *n;
      counters = cache->counters();
      cache_kind = cache->kind();
    }
    nlohmann::json models = nlohmann::json::object();
    for (auto& [m, n] : st->embeddings_by_model) models[m] = n;
    // With the opensearch back end, what the whole index holds (every machine's writes) besides
    // this data directory's journal.
    const bool remote = (*engine)->backend() == "opensearch";
    std::optional<IndexCounts> index;
    if (remote) {
      auto counts = (*engine)->CountIndex();
      if (!counts.ok()) {
        std::fprintf(stderr, "filesearch: %s\n", counts.status().ToString().c_str());
        *exit_code = 1;
        return;
      }
      index = std::move(*counts);
    }
    if (*json) {
      nlohmann::json j = {{"dataDir", (*engine)->data_dir()}, {"documents", st->documents},
                          {"embeddings", models},          {"databaseBytes", st->db_bytes},
                          {"vectorModel", v ? v->model() : ""}, {"vectorIndexSize", v ? v->size() : 0},
                          {"vectorIndexBytes", v ? v->memory_bytes() : 0}, {"embeddingCacheEntries", cached},
                          {"embeddingCache", {{"kind", cache_kind}, {"entries", cached}, {"hits", counters.hits},
                                              {"misses", counters.misses}, {"errors", counters.errors},
                                              {"hitRatio", counters.hit_ratio()}}},
                          {"backend", (*engine)->backend()}};
      if (index) {
        nlohmann::json vectors = nlohmann::json::object();
        for (auto& [m, n] : index->vectors_by_model) vectors[m] = n;
        j["index"] = {{"url", (*engine)->remote().client.url}, {"name", (*engine)->remote().index},
                      {"documents", index->documents}, {"embeddings", vectors}};
      }
      std::printf("%s\n", DumpJson(j, 2).c_str());
      return;
    }
    if (index) {
      std::printf("index:          opensearch %s, index %s\n", (*engine)->remote().client.url.c_str(),
                  (*engine)->remote().index.c_str());
      std::printf("  documents:    %llu\n", static_cast<unsigned long long>(index->documents));
      for (auto& [m, n] : index->vectors_by_model) {
        std::printf("  embeddings:   %llu (%s)\n", static_cast<unsigned long long>(n), m.c_str());
      }
      std::printf("this machine's journal (what it crawled; failures and cache are local):\n");
    }
    std::printf("data directory: %s\n", (*engine)->data_dir().c_str());
    std::printf("documents:      %llu\n", static_cast<unsigned long long>(st->documents));
    std::printf("database:       %s\n", HumanSize(st->db_bytes).c_str());
    for (auto& [m, n] : st->embeddings_by_model) {
      std::printf("embeddings:     %llu (%s)\n", static_cast<unsigned long long>(n), m.c_str());
    }
    // Hits and misses are this process's (a server's are in /metrics): stats itself looks nothing up.
    std::printf("embedding cache: %s, %llu entries; this process %llu hits, %llu misses (%.1f%% hits), %llu errors\n",
                cache_kind.c_str(), static_cast<unsigned long long>(cached),
                static_cast<unsigned long long>(counters.hits), static_cast<unsigned long long>(counters.misses),
                100.0 * counters.hit_ratio(), static_cast<unsigned long long>(counters.errors));
    if (v) std::printf("vector index:   %zu vectors, %s in memory\n", v->size(), HumanSize(v->memory_bytes()).c_str());
  });
}

}  // namespace fs::cli
