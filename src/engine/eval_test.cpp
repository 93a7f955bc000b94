// The metrics of `filesearch eval` against values computed by hand (and checked with a separate
// Python one-liner, below each case), and the judgment readers on good and bad input.
#include "engine/eval.h"

#include <gtest/gtest.h>

#include <cmath>

namespace fs {
namespace {

TEST(EvalMetricsTest, NdcgRecallAndReciprocalRankByHand) {
  // Ranking grades 2, 0, 1, 0, 0; judged grades {2, 1, 1, 0} (one relevant document not found).
  // DCG  = 2/log2(2) + 1/log2(4)               = 2.5
  // IDCG = 2/log2(2) + 1/log2(3) + 1/log2(4)   = 3.1309297535714575
  // nDCG@10 = 0.7984848580994974
  // python3 -c "import math; d=lambda g: sum(x/math.log2(i+2) for i,x in enumerate(g[:10]));
  //             print(d([2,0,1,0,0])/d([2,1,1,0]))"
  const std::vector<int> ranking = {2, 0, 1, 0, 0};
  EXPECT_NEAR(NdcgAt(ranking, {2, 1, 1, 0}, 10), 0.7984848580994974, 1e-12);
  EXPECT_NEAR(RecallAt(ranking, 3, 10), 2.0 / 3.0, 1e-12);
  EXPECT_DOUBLE_EQ(ReciprocalRank(ranking), 1.0);
  // A perfect ranking scores 1; nothing relevant judged scores 0 (and such queries are left out
  // of the means by the caller).
  EXPECT_NEAR(NdcgAt(std::vector<int>{2, 1, 1}, {1, 2, 1}, 10), 1.0, 1e-12);
  EXPECT_EQ(NdcgAt(std::vector<int>{0, 0}, {0, 0}, 10), 0.0);
  EXPECT_EQ(RecallAt(std::vector<int>{1}, 0, 10), 0.0);
}

TEST(EvalMetricsTest, CutOffsCountOnlyTheFirstKRanks) {
  // Grade 3 at rank 2, grade 1 at rank 12; judged {3, 2, 1}.
  // nDCG@10 = (3/log2(3)) / (3 + 2/log2(3) + 1/log2(4)) = 0.39748952229168844
  // nDCG@12 adds 1/log2(13) above: 0.45424007405029354
  std::vector<int> ranking(12, 0);
  ranking[1] = 3;
  ranking[11] = 1;
  EXPECT_NEAR(NdcgAt(ranking, {3, 2, 1}, 10), 0.39748952229168844, 1e-12);
  EXPECT_NEAR(NdcgAt(ranking, {3, 2, 1}, 12), 0.45424007405029354, 1e-12);
  EXPECT_NEAR(RecallAt(ranking, 3, 10), 1.0 / 3.0, 1e-12);
  EXPECT_NEAR(RecallAt(ranking, 3, 100), 2.0 / 3.0, 1e-12);
  EXPECT_DOUBLE_EQ(ReciprocalRank(ranking), 0.5);
  EXPECT_DOUBLE_EQ(ReciprocalRank(std::vector<int>{0, 0, 0}), 0.0);
  std::vector<int> late(11, 0);
  late[10] = 1;
  EXPECT_NEAR(ReciprocalRank(late), 1.0 / 11.0, 1e-12);
}

TEST(EvalMetricsTest, ScoreRankingLooksDocumentsUpByPathOrId) {
  auto j = ParseJudgmentsJsonl(
      "{\"query\": \"fox\", \"doc\": \"/c/a.txt\", \"grade\": 2}\n"
      "{\"query\": \"fox\", \"doc\": 7, \"grade\": 1}\n"
      "{\"query\": \"fox\", \"doc\": \"/c/z.txt\", \"grade\": 0}\n");
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  ASSERT_EQ(j->queries.size(), 1u);
  const EvalQuery& q = j->queries[0];
  EXPECT_EQ(q.Relevant(), 2u);
  // Ranking: unjudged, the document with id 7, /c/z.txt (grade 0), /c/a.txt.
  std::vector<RankedDoc> ranking = {{"/c/x.txt", 1}, {"/c/b.txt", 7}, {"/c/z.txt", 3}, {"/c/a.txt", 4}};
  QueryMetrics m = ScoreRanking(q, ranking);
  // DCG = 1/log2(3) + 2/log2(5); IDCG = 2 + 1/log2(3)
  const double expected = (1 / std::log2(3.0) + 2 / std::log2(5.0)) / (2 + 1 / std::log2(3.0));
  EXPECT_NEAR(m.ndcg10, expected, 1e-12);
  EXPECT_NEAR(expected, 0.5672074169568709, 1e-12);  // python3: (1/log2(3)+2/log2(5))/(2+1/log2(3))
  EXPECT_DOUBLE_EQ(m.recall10, 1.0);
  EXPECT_DOUBLE_EQ(m.recall100, 1.0);
  EXPECT_DOUBLE_EQ(m.rr, 0.5);
}

TEST(EvalJudgmentsTest, QrelsWithTopicsAndJsonlAgree) {
  auto qrels = ParseJudgments("q1 0 /c/a.txt 2\nq1 0 /c/b.txt 0\r\n\nq2 0 15 1\n",
                              std::string("q1\tquick brown fox\nq2 lazy dog\n"));
  ASSERT_TRUE(qrels.ok()) << qrels.status().ToString();
  ASSERT_EQ(qrels->queries.size(), 2u);
  EXPECT_EQ(qrels->queries[0].id, "q1");
  EXPECT_EQ(qrels->queries[0].text, "quick brown fox");
  EXPECT_EQ(qrels->queries[0].grades.at("/c/a.txt"), 2);
  EXPECT_EQ(qrels->queries[0].grades.at("/c/b.txt"), 0);
  EXPECT_EQ(qrels->queries[1].text, "lazy dog");
  EXPECT_EQ(qrels->queries[1].grades.at("15"), 1);
  EXPECT_EQ(qrels->judged, 3u);
  // The same query text twice with ids in JSONL groups into one query; a later grade replaces.
  auto jsonl = ParseJudgments(
      "{\"id\": \"q1\", \"query\": \"quick brown fox\", \"doc\": \"/c/a.txt\", \"grade\": 1}\n"
      "{\"id\": \"q1\", \"query\": \"quick brown fox\", \"doc\": \"/c/a.txt\", \"grade\": 2}\n",
      std::nullopt);
  ASSERT_TRUE(jsonl.ok()) << jsonl.status().ToString();
  ASSERT_EQ(jsonl->queries.size(), 1u);
  EXPECT_EQ(jsonl->queries[0].grades.at("/c/a.txt"), 2);
  EXPECT_EQ(jsonl->judged, 1u);
}

TEST(EvalJudgmentsTest, BadInputSaysWhichLineAndWhatToWrite) {
  auto err = [](const std::string& text, std::optional<std::string> topics = std::nullopt) {
    auto r = ParseJudgments(text, topics);
    EXPECT_FALSE(r.ok()) << text;
    return r.ok() ? std::string() : r.status().message();
  };
  EXPECT_NE(err("q1 0 /a 1\n").find("--topics"), std::string::npos);
  EXPECT_NE(err("q1 0 /a 1\n", std::string("q2\tother\n")).find("not in the topics file"), std::string::npos);
  EXPECT_NE(err("q1 0 /a\n", std::string("q1\tx\n")).find("4 fields"), std::string::npos);
  EXPECT_NE(err("q1 0 /a x\n", std::string("q1\tx\n")).find("not an integer"), std::string::npos);
  EXPECT_NE(err("q1 0 /a 11\n", std::string("q1\tx\n")).find("out of range"), std::string::npos);
  EXPECT_NE(err("{\"query\": \"a\", \"doc\": \"/a\", \"grade\": -1}\n").find("out of range"),
            std::string::npos);
  EXPECT_NE(err("{\"query\": \"a\", \"doc\": \"/a\"}\n").find("grade"), std::string::npos);
  EXPECT_NE(err("{\"query\": \"a\", \"doc\": \"/a\", \"grade\": 1}\n{oops\n").find("line 2"),
            std::string::npos);
  EXPECT_NE(err("{\"query\": \"\", \"doc\": \"/a\", \"grade\": 1}\n").find("query"), std::string::npos);
  EXPECT_NE(err("{\"query\": \"a\", \"doc\": true, \"grade\": 1}\n").find("doc"), std::string::npos);
  EXPECT_NE(err("{\"query\": \"a\", \"doc\": \"/a\", \"grade\": 1, \"x\": 1}\n").find("unknown field"),
            std::string::npos);
  EXPECT_NE(err("{\"query\": \"a\\u00ff\", \"id\": \"1\", \"doc\": \"/a\", \"grade\": 1}\n"
                "{\"query\": \"b\", \"id\": \"1\", \"doc\": \"/b\", \"grade\": 1}\n")
                .find("another text"),
            std::string::npos);
}

TEST(EvalModeTest, ModesFusionsAndWeights) {
  auto text = ParseEvalMode("text");
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(text->mode, SearchMode::kText);
  auto lin = ParseEvalMode("hybrid:linear:0.3");
  ASSERT_TRUE(lin.ok()) << lin.status().ToString();
  SearchRequest r;
  lin->ApplyTo(&r);
  EXPECT_EQ(*r.mode, SearchMode::kHybrid);
  EXPECT_EQ(r.fusion, FusionMethod::kLinear);
  EXPECT_NEAR(r.text_weight, 0.7, 1e-12);
  EXPECT_NEAR(r.vector_weight, 0.3, 1e-12);
  auto rrf = ParseEvalMode("hybrid:rrf");
  ASSERT_TRUE(rrf.ok());
  SearchRequest d;
  d.text_weight = 2;
  rrf->ApplyTo(&d);
  EXPECT_EQ(d.fusion, FusionMethod::kRrf);
  EXPECT_EQ(d.text_weight, 2);  // no weight given: the default stays
  for (const char* bad :
       {"", "texts", "text:rrf", "hybrid:max", "hybrid:linear:1.5", "hybrid:linear:x", "hybrid:rrf:0.5:1"}) {
    EXPECT_FALSE(ParseEvalMode(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace fs

namespace fs {
namespace {

TEST(FeedbackExportTest, VotesBecomeJudgmentsThatEvalReads) {
  auto vote = [](std::string user, std::string query, std::string path, int64_t id, int v) {
    FeedbackVote f;
    f.user = std::move(user);
    f.query = std::move(query);
    f.path = std::move(path);
    f.doc_id = id;
    f.mode = "hybrid";
    f.vote = v;
    return f;
  };
  // Two users agree on a.txt; they disagree on b.txt (a tie is not relevant); c.txt is down.
  // The second query has a tab in its text and a path with a space (qrels: by id).
  const std::vector<FeedbackVote> votes = {
      vote("alice", "fox", "/c/a.txt", 1, 1),  vote("bob", "fox", "/c/a.txt", 1, 1),
      vote("alice", "fox", "/c/b.txt", 2, 1),  vote("bob", "fox", "/c/b.txt", 2, -1),
      vote("alice", "fox", "/c/c.txt", 3, -1), vote("alice", "lazy\tdog", "/c/my dog.txt", 4, 1)};
  for (const char* format : {"jsonl", "qrels"}) {
    auto out = ExportFeedback(votes, format);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_EQ(out->queries, 2u);
    EXPECT_EQ(out->documents, 4u);
    auto back = ParseJudgments(out->judgments, std::string(format) == "qrels"
                                                   ? std::optional<std::string>(out->topics)
                                                   : std::nullopt);
    ASSERT_TRUE(back.ok()) << format << ": " << back.status().ToString() << "\n" << out->judgments;
    ASSERT_EQ(back->queries.size(), 2u);
    const EvalQuery& fox = back->queries[0];
    EXPECT_EQ(fox.text, "fox");
    EXPECT_EQ(fox.grades.at("/c/a.txt"), 1);
    EXPECT_EQ(fox.grades.at("/c/b.txt"), 0);
    EXPECT_EQ(fox.grades.at("/c/c.txt"), 0);
    EXPECT_EQ(fox.Relevant(), 1u);
    const EvalQuery& dog = back->queries[1];
    if (std::string(format) == "qrels") {
      EXPECT_EQ(dog.text, "lazy dog");
      EXPECT_EQ(dog.grades.at("4"), 1);
      EXPECT_EQ(GradeOf(dog, RankedDoc{"/c/my dog.txt", 4}), 1);
    } else {
      EXPECT_EQ(dog.text, "lazy\tdog");
      EXPECT_EQ(dog.grades.at("/c/my dog.txt"), 1);
    }
  }
  EXPECT_FALSE(ExportFeedback(votes, "csv").ok());
  auto none = ExportFeedback({}, "jsonl");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->judgments.empty());
}

}  // namespace
}  // namespace fs
