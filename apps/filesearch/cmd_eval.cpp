// `filesearch eval JUDGMENTS` (search quality per mode) and `filesearch feedback export`.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "apps/filesearch/commands.h"
#include "core/json_dump.h"
#include "engine/eval.h"

namespace fs::cli {
namespace {

Result<std::string> ReadText(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(std::string("cannot read the ") + what + " file '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

Status WriteText(const std::string& path, const std::string& text) {
  if (path.empty() || path == "-") {
    std::fwrite(text.data(), 1, text.size(), stdout);
    return Status::Ok();
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return Status::Internal("cannot write '" + path + "': check the folder exists and is writable");
  return Status::Ok();
}

bool AllDigits(const std::string& s) {
  return !s.empty() && s.size() < 19 && s.find_first_not_of("0123456789") == std::string::npos;
}

struct ModeResult {
  EvalMode mode;
  std::vector<QueryMetrics> per_query;  // by query, only the queries with a relevant document
  QueryMetrics mean;
};

std::string Cut(const std::string& s, size_t n) {
  if (s.size() <= n) return s;
  size_t end = n - 1;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;  // UTF-8 boundary
  return s.substr(0, end) + "~";
}

}  // namespace

void RegisterEval(CLI::App& app, GlobalFlags& flags, int* exit_code) {
  auto* cmd =
      app.add_subcommand("eval",
                         "Measure search quality on graded judgments: nDCG@10, recall@10/100, MRR per mode")
          ->footer(
              "Judgments (a grade above 0 is relevant; documents by path or by id):\n"
              "  JSONL, a line each:  {\"query\": \"debian package\", \"doc\": \"/srv/ref/ch02.html\", "
              "\"grade\": 2}\n"
              "  TREC qrels:          q1 0 /srv/ref/ch02.html 2     (with --topics: 'q1<TAB>debian "
              "package')\n"
              "Modes (repeat --mode; default text, plus vector and hybrid when a model is given):\n"
              "  text | vector | hybrid | hybrid:rrf | hybrid:linear | hybrid:linear:0.3\n"
              "  (0.3 = the vector leg's share of the weight: text 0.7, vector 0.3)\n"
              "Examples:\n"
              "  filesearch eval bench/eval/judgments.jsonl --root ../shared/corpus\n"
              "  filesearch eval qrels.txt --topics topics.tsv --mode text --mode hybrid:rrf --model-dir M "
              "--per-query\n"
              "  filesearch feedback export --format jsonl > votes.jsonl && filesearch eval votes.jsonl\n"
              "Each query is searched once per mode (100 results); queries without a relevant document are\n"
              "left out of the means. nDCG uses trec_eval's linear gain. See docs/benchmarks.md.");
  struct Args {
    std::string judgments, topics, root;
    std::vector<std::string> modes;
    bool per_query = false, json = false;
    TuningFlags tuning;
    ModelFlags model_flags;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("JUDGMENTS", a->judgments, "Judgments file: JSONL or TREC qrels")
      ->required()
      ->type_name("FILE");
  cmd->add_option("--topics", a->topics, "Query texts of qrels judgments: lines 'QUERY-ID<TAB>TEXT'")
      ->type_name("FILE");
  cmd->add_option("--root", a->root,
                  "Folder that relative document paths in the judgments are relative to (the index holds "
                  "absolute paths)")
      ->type_name("DIR");
  cmd->add_option("--mode", a->modes,
                  "A way of searching to evaluate (repeatable): text, vector, hybrid[:FUSION[:W]]");
  cmd->add_flag("--per-query", a->per_query, "Also print each query's nDCG@10 and reciprocal rank per mode");
  cmd->add_flag("--json", a->json, "Print the figures as JSON");
  AddTuningFlags(cmd, &a->tuning);
  AddModelFlags(cmd, &a->model_flags);
  cmd->callback([&flags, exit_code, a]() {
    auto fail = [exit_code](const std::string& msg) {
      std::fprintf(stderr, "filesearch eval: %s\n", msg.c_str());
      *exit_code = 1;
    };
    auto tuning = ResolveTuningFlags(a->tuning);
    if (!tuning.ok()) return fail(tuning.status().message());
    auto text = ReadText(a->judgments, "judgments");
    if (!text.ok()) return fail(text.status().message());
    std::optional<std::string> topics;
    if (!a->topics.empty()) {
      auto t = ReadText(a->topics, "topics");
      if (!t.ok()) return fail(t.status().message());
      topics = std::move(t).value();
    }
    auto judgments = ParseJudgments(*text, topics);
    if (!judgments.ok()) return fail(a->judgments + ": " + judgments.status().message());
    if (judgments->queries.empty()) return fail(a->judgments + " holds no judgments");
    // Relative paths are relative to --root, as the index holds the absolute paths it crawled.
    if (!a->root.empty()) {
      std::error_code ec;
      const std::filesystem::path root = std::filesystem::weakly_canonical(a->root, ec);
      if (ec || !std::filesystem::is_directory(root)) return fail("--root '" + a->root + "' is not a folder");
      for (EvalQuery& q : judgments->queries) {
        std::unordered_map<std::string, int> resolved;
        for (auto& [doc, grade] : q.grades) {
          const bool relative = !doc.empty() && doc[0] != '/' && !AllDigits(doc);
          resolved[relative ? (root / doc).lexically_normal().string() : doc] = grade;
        }
        q.grades = std::move(resolved);
      }
    }
    std::vector<EvalMode> modes;
    for (const std::string& spec : a->modes) {
      auto m = ParseEvalMode(spec);
      if (!m.ok()) return fail(m.status().message());
      modes.push_back(*m);
    }
    const bool wants_vectors =
        a->modes.empty() || std::any_of(modes.begin(), modes.end(),
                                        [](const EvalMode& m) { return m.mode != SearchMode::kText; });
    std::unique_ptr<ClipEmbedder> clip;
    std::string model;
    if (wants_vectors) {
      auto loaded = LoadModel(a->model_flags);
      if (!loaded.ok()) return fail(loaded.status().ToString());
      clip = std::move(loaded).value();
      if (clip) model = clip->model_id();
    }
    auto engine = OpenExistingEngine(flags, model);
    if (!engine.ok()) return fail(OpenError(engine.status()));
    (*engine)->SetQueryEmbedder(clip.get());
    if (a->modes.empty()) {
      modes.push_back(*ParseEvalMode("text"));
      if (clip) {
        modes.push_back(*ParseEvalMode("vector"));
        modes.push_back(*ParseEvalMode("hybrid"));
      } else if (!a->json) {
        std::fprintf(stderr,
                     "filesearch eval: text only; vector and hybrid modes need a CLIP model (--model-dir)\n");
      }
    } else if (wants_vectors && !clip) {
      return fail(
          "vector and hybrid modes embed the query text with a CLIP model: give --model-dir (or set "
          "FILESEARCH_MODEL_DIR), or evaluate --mode text only");
    }
    // Judged documents the index does not hold count as relevant and never found: say so.
    size_t missing = 0;
    std::string first_missing;
    for (const EvalQuery& q : judgments->queries) {
      for (const auto& [doc, grade] : q.grades) {
        if (grade <= 0) continue;
        auto found =
            AllDigits(doc) ? (*engine)->GetDocument(std::stoll(doc)) : (*engine)->GetDocumentByPath(doc);
        if (!found.ok()) {
          if (found.status().code() != StatusCode::kNotFound) return fail(found.status().ToString());
          if (missing++ == 0) first_missing = doc;
        }
      }
    }
    if (missing > 0) {
      std::fprintf(
          stderr,
          "filesearch eval: warning: %zu relevant judged documents are not in the index (first: %s); they "
          "count "
          "as not found. Index their folder, or give --root when the judgments name relative paths.\n",
          missing, first_missing.c_str());
    }
    std::vector<size_t> evaluated;  // queries with a relevant document
    for (size_t i = 0; i < judgments->queries.size(); ++i) {
      if (judgments->queries[i].Relevant() > 0) evaluated.push_back(i);
    }
    if (evaluated.empty())
      return fail("no query has a relevant document (grade above 0): nothing to measure");
    std::vector<ModeResult> results;
    for (const EvalMode& mode : modes) {
      ModeResult res{mode, {}, {}};
      for (size_t qi : evaluated) {
        const EvalQuery& q = judgments->queries[qi];
        SearchRequest r;
        tuning->ApplyTo(&r);
        mode.ApplyTo(&r);
        r.query = q.text;
        r.size = 100;
        Status resolved = (*engine)->ResolveQueryVector(QueryVectorSource{}, &r);
        if (!resolved.ok()) return fail("query '" + q.text + "': " + resolved.ToString());
        std::vector<RankedDoc> ranking;
        auto found = (*engine)->Search(r);
        if (found.ok()) {
          for (const SearchHit& h : found->hits) ranking.push_back({h.doc.path, h.doc.id});
        } else if (found.status().code() != StatusCode::kInvalidArgument) {
          return fail("query '" + q.text + "' (" + mode.name + "): " + found.status().ToString());
        }  // a query the mode cannot run (no keywords left) finds nothing
        res.per_query.push_back(ScoreRanking(q, ranking));
      }
      for (const QueryMetrics& m : res.per_query) {
        res.mean.ndcg10 += m.ndcg10;
        res.mean.recall10 += m.recall10;
        res.mean.recall100 += m.recall100;
        res.mean.rr += m.rr;
      }
      const double n = static_cast<double>(res.per_query.size());
      res.mean.ndcg10 /= n;
      res.mean.recall10 /= n;
      res.mean.recall100 /= n;
      res.mean.rr /= n;
      results.push_back(std::move(res));
    }
    const size_t skipped = judgments->queries.size() - evaluated.size();
    if (a->json) {
      nlohmann::json out = {{"judgments", a->judgments},     {"queries", judgments->queries.size()},
                            {"evaluated", evaluated.size()}, {"judged", judgments->judged},
                            {"missingRelevant", missing},    {"modes", nlohmann::json::array()}};
      for (const ModeResult& res : results) {
        nlohmann::json m = {{"mode", res.mode.name},
                            {"ndcg@10", res.mean.ndcg10},
                            {"recall@10", res.mean.recall10},
                            {"recall@100", res.mean.recall100},
                            {"mrr", res.mean.rr}};
        if (a->per_query) {
          m["perQuery"] = nlohmann::json::array();
          for (size_t i = 0; i < evaluated.size(); ++i) {
            const EvalQuery& q = judgments->queries[evaluated[i]];
            const QueryMetrics& pm = res.per_query[i];
            m["perQuery"].push_back({{"id", q.id},
                                     {"query", q.text},
                                     {"ndcg@10", pm.ndcg10},
                                     {"recall@10", pm.recall10},
                                     {"recall@100", pm.recall100},
                                     {"rr", pm.rr}});
          }
        }
        out["modes"].push_back(std::move(m));
      }
      std::printf("%s\n", DumpJson(out).c_str());
      return;
    }
    std::printf("%s: %zu queries, %zu judgments; %zu queries with a relevant document are measured",
                a->judgments.c_str(), judgments->queries.size(), judgments->judged, evaluated.size());
    if (skipped > 0) std::printf(" (%zu without one are left out)", skipped);
    std::printf("\n\n%-28s %8s %10s %11s %8s\n", "mode", "nDCG@10", "recall@10", "recall@100", "MRR");
    for (const ModeResult& res : results) {
      std::printf("%-28s %8.4f %10.4f %11.4f %8.4f\n", Cut(res.mode.name, 28).c_str(), res.mean.ndcg10,
                  res.mean.recall10, res.mean.recall100, res.mean.rr);
    }
    if (a->per_query) {
      std::printf("\nper query: nDCG@10 / reciprocal rank\n%-10s %-32s", "id", "query");
      for (const ModeResult& res : results) std::printf(" %15s", Cut(res.mode.name, 15).c_str());
      std::printf("\n");
      for (size_t i = 0; i < evaluated.size(); ++i) {
        const EvalQuery& q = judgments->queries[evaluated[i]];
        std::printf("%-10s %-32s", Cut(q.id, 10).c_str(), Cut(q.text, 32).c_str());
        for (const ModeResult& res : results) {
          std::printf("     %5.3f/%5.3f", res.per_query[i].ndcg10, res.per_query[i].rr);
        }
        std::printf("\n");
      }
    }
  });
}

void RegisterFeedback(CLI::App& app, GlobalFlags& flags, int* exit_code) {
  auto* fb = app.add_subcommand("feedback", "Users' votes on search results (the UI's thumbs up/down)");
  fb->require_subcommand(1);
  auto* exp =
      fb->add_subcommand("export", "Write the stored votes as judgments that 'filesearch eval' reads")
          ->footer(
              "Grade 1 where a document's up votes outnumber its down votes for that query, else 0.\n"
              "Examples:\n"
              "  filesearch feedback export --format jsonl > votes.jsonl && filesearch eval votes.jsonl\n"
              "  filesearch feedback export --format qrels --topics topics.tsv > qrels.txt\n"
              "  filesearch eval qrels.txt --topics topics.tsv");
  struct Args {
    std::string format = "jsonl", output, topics, user;
  };
  auto a = std::make_shared<Args>();
  exp->add_option("--format", a->format, "qrels or jsonl")
      ->check(CLI::IsMember({"qrels", "jsonl"}))
      ->capture_default_str();
  exp->add_option("--output,-o", a->output, "Write the judgments here (default: standard output)")
      ->type_name("FILE");
  exp->add_option("--topics", a->topics,
                  "qrels: write the query texts here ('ID<TAB>TEXT' lines); required with qrels")
      ->type_name("FILE");
  exp->add_option("--user", a->user, "Only this user's votes (default: everyone's)");
  exp->callback([&flags, exit_code, a]() {
    auto fail = [exit_code](const std::string& msg) {
      std::fprintf(stderr, "filesearch feedback export: %s\n", msg.c_str());
      *exit_code = 1;
    };
    if (a->format == "qrels" && a->topics.empty()) {
      return fail(
          "qrels hold query ids only: give --topics FILE for the query texts (eval reads it with --topics)");
    }
    auto engine = OpenExistingEngine(flags);
    if (!engine.ok()) return fail(OpenError(engine.status()));
    auto votes = (*engine)->store()->ListFeedback(a->user, std::nullopt);
    if (!votes.ok()) return fail(votes.status().ToString());
    auto out = ExportFeedback(*votes, a->format);
    if (!out.ok()) return fail(out.status().message());
    if (Status s = WriteText(a->output, out->judgments); !s.ok()) return fail(s.message());
    if (a->format == "qrels") {
      if (Status s = WriteText(a->topics, out->topics); !s.ok()) return fail(s.message());
    }
    std::fprintf(stderr, "%zu votes exported: %zu queries, %zu judged documents\n", votes->size(),
                 out->queries, out->documents);
  });
}

}  // namespace fs::cli
