// Search quality from graded judgments (`filesearch eval`): reading judgment sets and scoring one
// ranked result list against them. Pure functions over strings and numbers; thread-safe.
//
// Judgments: (query, document, grade). A document is named by its path (as the index holds it)
// or by its document id (a string of digits). Grades are integers 0-10; a grade above 0 is
// relevant. Two formats:
//  - JSONL, one object a line: {"query": "red car", "doc": "/srv/a.jpg" | 42, "grade": 2}
//    (optional "id": a query id; else the query text is its id);
//  - TREC qrels, "QUERY-ID ITERATION DOC GRADE" a line, with a topics file of "QUERY-ID<TAB>TEXT"
//    lines (or "QUERY-ID TEXT": the id is the first word).
// Metrics (per query, then the mean over queries with at least one relevant document):
//  - nDCG@k with trec_eval's linear gain: DCG = sum over ranks i <= k of grade_i / log2(i + 1),
//    divided by the DCG of the judged grades in descending order (the ideal ranking);
//  - recall@k = relevant documents in the first k / relevant documents judged;
//  - reciprocal rank = 1 / rank of the first relevant document in the ranking, 0 when none.
// Unjudged documents in a ranking count as grade 0.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "engine/search.h"
#include "index/store.h"

namespace fs {

struct EvalQuery {
  std::string id;                               // query id (qrels) or the query text (JSONL without "id")
  std::string text;                             // what is searched
  std::unordered_map<std::string, int> grades;  // document (path or id) -> grade
  size_t Relevant() const;                      // documents with grade > 0
};

struct Judgments {
  std::vector<EvalQuery> queries;  // in the order they first appear
  size_t judged = 0;               // (query, document) pairs
};

// InvalidArgument naming the line and what is wrong. A repeated (query, document) keeps the
// last grade.
Result<Judgments> ParseJudgmentsJsonl(std::string_view text);
Result<Judgments> ParseQrels(std::string_view qrels, std::string_view topics);
// JSONL when the first non-blank character is '{', else qrels (which then needs `topics`).
Result<Judgments> ParseJudgments(std::string_view text, const std::optional<std::string>& topics);

// One result: the keys it may be judged under (its path, its id as decimal digits).
struct RankedDoc {
  std::string path;
  int64_t id = 0;
};

// The grade of `doc` in `query` (0 when unjudged).
int GradeOf(const EvalQuery& query, const RankedDoc& doc);
// The metrics of one ranking (best first) against `query`'s judgments.
struct QueryMetrics {
  double ndcg10 = 0, recall10 = 0, recall100 = 0, rr = 0;
};
QueryMetrics ScoreRanking(const EvalQuery& query, std::span<const RankedDoc> ranking);
// The parts, for tests and other cut-offs. `grades` are the ranking's grades in rank order.
double NdcgAt(std::span<const int> grades, std::vector<int> ideal, size_t k);
double RecallAt(std::span<const int> grades, size_t relevant, size_t k);
double ReciprocalRank(std::span<const int> grades);

// One way of searching to evaluate: "text", "vector", "hybrid" (the default fusion),
// "hybrid:rrf", "hybrid:linear", "hybrid:FUSION:W" (W in [0, 1], the vector leg's share of the
// weight: text weight 1 - W, vector weight W).
struct EvalMode {
  std::string name;  // as given
  SearchMode mode = SearchMode::kText;
  std::optional<FusionMethod> fusion;  // none: the deployment's default
  std::optional<double> vector_share;  // none: the default weights
  void ApplyTo(SearchRequest* request) const;
};
Result<EvalMode> ParseEvalMode(std::string_view spec);

// Stored feedback votes as judgments (`filesearch feedback export`): one query per distinct query
// text (ids q1, q2, ... in the order of each text's first vote), one judgment per (query,
// document) with grade 1 when the users' up votes outnumber their down votes, else 0. `format`
// "jsonl" (documents by path) or "qrels" (documents by path, or by id where the path holds
// whitespace, which qrels cannot carry; `topics` gets the "ID<TAB>TEXT" lines, tabs and line
// breaks in a query turned into spaces). InvalidArgument for another format.
struct ExportedJudgments {
  std::string judgments;
  std::string topics;  // qrels only
  size_t queries = 0, documents = 0;
};
Result<ExportedJudgments> ExportFeedback(std::span<const FeedbackVote> votes, std::string_view format);

}  // namespace fs
