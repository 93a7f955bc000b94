#include "engine/eval.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <nlohmann/json.hpp>

#include "core/utf8.h"

namespace fs {
namespace {

constexpr int kMaxGrade = 10;
constexpr size_t kMaxLine = 1 << 20;

// Calls fn(line_number, line) for each line that is not blank; stops at the first error.
Status ForEachLine(std::string_view text, const std::function<Status(size_t, std::string_view)>& fn) {
  size_t number = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    if (line.size() > kMaxLine)
      return Status::InvalidArgument("line " + std::to_string(number) + " is longer than 1 MiB");
    FS_RETURN_IF_ERROR(fn(number, line));
  }
  return Status::Ok();
}

std::vector<std::string_view> Fields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < line.size()) {
    while (pos < line.size() && (line[pos] == ' ' || line[pos] == '\t')) ++pos;
    size_t start = pos;
    while (pos < line.size() && line[pos] != ' ' && line[pos] != '\t') ++pos;
    if (pos > start) out.push_back(line.substr(start, pos - start));
  }
  return out;
}

// Adds a judgment, keeping queries in first-seen order.
class Builder {
 public:
  EvalQuery& Query(const std::string& id, const std::string& text) {
    auto it = index_.find(id);
    if (it != index_.end()) return out_.queries[it->second];
    index_[id] = out_.queries.size();
    out_.queries.push_back({id, text, {}});
    return out_.queries.back();
  }
  void Add(EvalQuery& q, std::string doc, int grade) {
    if (q.grades.insert_or_assign(std::move(doc), grade).second) ++out_.judged;
  }
  Judgments Take() { return std::move(out_); }

 private:
  Judgments out_;
  std::unordered_map<std::string, size_t> index_;
};

Status CheckGrade(int64_t grade, size_t line) {
  if (grade < 0 || grade > kMaxGrade) {
    return Status::InvalidArgument("line " + std::to_string(line) + ": grade " + std::to_string(grade) +
                                   " is out of range: grades are integers 0 (not relevant) to " +
                                   std::to_string(kMaxGrade));
  }
  return Status::Ok();
}

bool AllDigits(std::string_view s) {
  return !s.empty() && s.size() < 19 &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

size_t EvalQuery::Relevant() const {
  size_t n = 0;
  for (const auto& [doc, grade] : grades) n += grade > 0 ? 1 : 0;
  return n;
}

Result<Judgments> ParseJudgmentsJsonl(std::string_view text) {
  Builder b;
  FS_RETURN_IF_ERROR(ForEachLine(text, [&](size_t number, std::string_view line) -> Status {
    const std::string where = "line " + std::to_string(number) + ": ";
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) {
      return Status::InvalidArgument(
          where + "not a JSON object; write {\"query\": \"...\", \"doc\": \"path\", \"grade\": 1}");
    }
    for (const auto& [key, value] : j.items()) {
      if (key != "query" && key != "doc" && key != "grade" && key != "id") {
        return Status::InvalidArgument(where + "unknown field '" + key.substr(0, 40) +
                                       "' (fields: query, doc, grade, id)");
      }
    }
    if (!j.contains("query") || !j["query"].is_string() || j["query"].get<std::string>().empty()) {
      return Status::InvalidArgument(where + "\"query\" must be a non-empty string");
    }
    const std::string query = j["query"].get<std::string>();
    if (!IsValidUtf8(query)) return Status::InvalidArgument(where + "\"query\" is not valid UTF-8");
    std::string doc;
    if (j.contains("doc") && j["doc"].is_string() && !j["doc"].get<std::string>().empty()) {
      doc = j["doc"].get<std::string>();
    } else if (j.contains("doc") && j["doc"].is_number_unsigned()) {
      doc = std::to_string(j["doc"].get<uint64_t>());
    } else {
      return Status::InvalidArgument(where + "\"doc\" must be a path (string) or a document id (number)");
    }
    if (!j.contains("grade") || !j["grade"].is_number_integer()) {
      return Status::InvalidArgument(where + "\"grade\" must be an integer (0 = not relevant)");
    }
    const int64_t grade = j["grade"].get<int64_t>();
    FS_RETURN_IF_ERROR(CheckGrade(grade, number));
    std::string id = query;
    if (j.contains("id")) {
      if (j["id"].is_string())
        id = j["id"].get<std::string>();
      else if (j["id"].is_number_integer())
        id = std::to_string(j["id"].get<int64_t>());
      else
        return Status::InvalidArgument(where + "\"id\" must be a string or an integer");
    }
    EvalQuery& q = b.Query(id, query);
    if (q.text != query) {
      return Status::InvalidArgument(where + "query id '" + id + "' was given before with another text ('" +
                                     q.text + "')");
    }
    b.Add(q, std::move(doc), static_cast<int>(grade));
    return Status::Ok();
  }));
  return b.Take();
}

Result<Judgments> ParseQrels(std::string_view qrels, std::string_view topics) {
  std::unordered_map<std::string, std::string> text_of;
  FS_RETURN_IF_ERROR(ForEachLine(topics, [&](size_t number, std::string_view line) -> Status {
    size_t cut = line.find('\t');
    if (cut == std::string_view::npos) cut = line.find(' ');
    std::string_view id = line.substr(0, cut);
    std::string_view text = cut == std::string_view::npos ? std::string_view() : line.substr(cut + 1);
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    if (id.empty() || text.empty()) {
      return Status::InvalidArgument("topics line " + std::to_string(number) +
                                     ": write QUERY-ID<TAB>QUERY TEXT");
    }
    if (!IsValidUtf8(text))
      return Status::InvalidArgument("topics line " + std::to_string(number) + ": not valid UTF-8");
    text_of[std::string(id)] = std::string(text);
    return Status::Ok();
  }));
  Builder b;
  FS_RETURN_IF_ERROR(ForEachLine(qrels, [&](size_t number, std::string_view line) -> Status {
    const std::string where = "qrels line " + std::to_string(number) + ": ";
    auto f = Fields(line);
    if (f.size() != 4)
      return Status::InvalidArgument(where + "write QUERY-ID 0 DOC GRADE (4 fields, got " +
                                     std::to_string(f.size()) + ")");
    int64_t grade = 0;
    bool negative = !f[3].empty() && f[3][0] == '-';
    std::string_view digits = negative ? f[3].substr(1) : f[3];
    if (!AllDigits(digits))
      return Status::InvalidArgument(where + "the grade '" + std::string(f[3].substr(0, 20)) +
                                     "' is not an integer");
    grade = std::stoll(std::string(digits)) * (negative ? -1 : 1);
    FS_RETURN_IF_ERROR(CheckGrade(grade, number));
    auto it = text_of.find(std::string(f[0]));
    if (it == text_of.end()) {
      return Status::InvalidArgument(where + "query id '" + std::string(f[0].substr(0, 40)) +
                                     "' is not in the topics file: add a line 'ID<TAB>QUERY TEXT' there");
    }
    b.Add(b.Query(it->first, it->second), std::string(f[2]), static_cast<int>(grade));
    return Status::Ok();
  }));
  return b.Take();
}

Result<Judgments> ParseJudgments(std::string_view text, const std::optional<std::string>& topics) {
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && text[first] == '{') return ParseJudgmentsJsonl(text);
  if (!topics) {
    return Status::InvalidArgument(
        "these judgments are not JSONL, so they are read as TREC qrels, which need the query texts: give "
        "--topics FILE "
        "(lines 'QUERY-ID<TAB>QUERY TEXT')");
  }
  return ParseQrels(text, *topics);
}

int GradeOf(const EvalQuery& query, const RankedDoc& doc) {
  auto it = query.grades.find(doc.path);
  if (it != query.grades.end()) return it->second;
  it = query.grades.find(std::to_string(doc.id));
  return it != query.grades.end() ? it->second : 0;
}

double NdcgAt(std::span<const int> grades, std::vector<int> ideal, size_t k) {
  auto dcg = [k](auto begin, auto end) {
    double sum = 0;
    size_t rank = 1;
    for (auto it = begin; it != end && rank <= k; ++it, ++rank)
      sum += *it / std::log2(static_cast<double>(rank) + 1);
    return sum;
  };
  std::sort(ideal.begin(), ideal.end(), std::greater<>());
  const double best = dcg(ideal.begin(), ideal.end());
  return best > 0 ? dcg(grades.begin(), grades.end()) / best : 0;
}

double RecallAt(std::span<const int> grades, size_t relevant, size_t k) {
  if (relevant == 0) return 0;
  size_t found = 0;
  for (size_t i = 0; i < grades.size() && i < k; ++i) found += grades[i] > 0 ? 1 : 0;
  return static_cast<double>(found) / static_cast<double>(relevant);
}

double ReciprocalRank(std::span<const int> grades) {
  for (size_t i = 0; i < grades.size(); ++i) {
    if (grades[i] > 0) return 1.0 / static_cast<double>(i + 1);
  }
  return 0;
}

QueryMetrics ScoreRanking(const EvalQuery& query, std::span<const RankedDoc> ranking) {
  std::vector<int> grades;
  grades.reserve(ranking.size());
  for (const auto& d : ranking) grades.push_back(GradeOf(query, d));
  std::vector<int> ideal;
  for (const auto& [doc, grade] : query.grades) ideal.push_back(grade);
  const size_t relevant = query.Relevant();
  QueryMetrics m;
  m.ndcg10 = NdcgAt(grades, std::move(ideal), 10);
  m.recall10 = RecallAt(grades, relevant, 10);
  m.recall100 = RecallAt(grades, relevant, 100);
  m.rr = ReciprocalRank(grades);
  return m;
}

void EvalMode::ApplyTo(SearchRequest* r) const {
  r->mode = mode;
  if (fusion) r->fusion = *fusion;
  if (vector_share) {
    r->text_weight = 1 - *vector_share;
    r->vector_weight = *vector_share;
  }
}

Result<EvalMode> ParseEvalMode(std::string_view spec) {
  EvalMode m;
  m.name = std::string(spec);
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument(
        "--mode '" + std::string(spec.substr(0, 40)) + "': " + why +
        "; write text, vector, hybrid, hybrid:rrf, hybrid:linear or hybrid:linear:0.3 "
        "(0.3 = the vector leg's share of the weight)");
  };
  std::vector<std::string_view> parts;
  size_t pos = 0;
  while (true) {
    size_t cut = spec.find(':', pos);
    parts.push_back(spec.substr(pos, cut == std::string_view::npos ? std::string_view::npos : cut - pos));
    if (cut == std::string_view::npos) break;
    pos = cut + 1;
  }
  auto mode = ParseSearchMode(parts[0]);
  if (!mode.ok()) return bad("unknown mode '" + std::string(parts[0].substr(0, 20)) + "'");
  m.mode = *mode;
  if (parts.size() > 1 && m.mode != SearchMode::kHybrid)
    return bad("only hybrid takes a fusion and a weight");
  if (parts.size() > 3) return bad("too many parts");
  if (parts.size() >= 2) {
    auto f = ParseFusionMethod(parts[1]);
    if (!f.ok()) return bad("unknown fusion '" + std::string(parts[1].substr(0, 20)) + "'");
    m.fusion = *f;
  }
  if (parts.size() == 3) {
    const std::string w(parts[2]);
    char* end = nullptr;
    const double v = std::strtod(w.c_str(), &end);
    if (w.empty() || end != w.c_str() + w.size() || !(v >= 0 && v <= 1))
      return bad("the weight must be a number from 0 to 1");
    m.vector_share = v;
  }
  return m;
}

Result<ExportedJudgments> ExportFeedback(std::span<const FeedbackVote> votes, std::string_view format) {
  if (format != "jsonl" && format != "qrels") {
    return Status::InvalidArgument("unknown format '" + std::string(format.substr(0, 20)) +
                                   "': use qrels or jsonl");
  }
  // Per query text (first-vote order), per document path (first-vote order): the vote balance.
  struct Doc {
    std::string path;
    int64_t id;
    int balance;
  };
  struct Query {
    std::string text;
    std::vector<Doc> docs;
    std::unordered_map<std::string, size_t> where;
  };
  std::vector<Query> queries;
  std::unordered_map<std::string, size_t> query_index;
  for (const FeedbackVote& v : votes) {
    auto [qit, new_query] = query_index.try_emplace(v.query, queries.size());
    if (new_query) queries.push_back({v.query, {}, {}});
    Query& q = queries[qit->second];
    auto [dit, new_doc] = q.where.try_emplace(v.path, q.docs.size());
    if (new_doc) q.docs.push_back({v.path, v.doc_id, 0});
    q.docs[dit->second].balance += v.vote > 0 ? 1 : v.vote < 0 ? -1 : 0;
  }
  ExportedJudgments out;
  out.queries = queries.size();
  for (size_t i = 0; i < queries.size(); ++i) {
    const Query& q = queries[i];
    const std::string id = "q" + std::to_string(i + 1);
    if (format == "qrels") {
      std::string text = q.text;
      for (char& c : text) {
        if (c == '\t' || c == '\n' || c == '\r') c = ' ';
      }
      out.topics += id + "\t" + text + "\n";
    }
    for (const Doc& d : q.docs) {
      ++out.documents;
      const int grade = d.balance > 0 ? 1 : 0;
      if (format == "jsonl") {
        nlohmann::json j = {{"id", id}, {"query", q.text}, {"doc", d.path}, {"grade", grade}};
        out.judgments += j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
      } else {
        const bool plain = !d.path.empty() && d.path.find_first_of(" \t\r\n") == std::string::npos;
        out.judgments +=
            id + " 0 " + (plain ? d.path : std::to_string(d.id)) + " " + std::to_string(grade) + "\n";
      }
    }
  }
  return out;
}

}  // namespace fs
