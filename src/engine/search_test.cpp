#include "engine/search.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "core/base64.h"
#include "engine/engine.h"

namespace fs {
namespace {

namespace stdfs = std::filesystem;

// A folder of text files and "images" (bytes with a PNG signature: the hash embedder only hashes
// them) indexed into a fresh data directory.
class SearchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = stdfs::weakly_canonical(::testing::TempDir()).string() + "/search_test_" + std::to_string(::getpid()) +
            "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    stdfs::remove_all(base_);
    stdfs::create_directories(base_ + "/files/photos");
    for (int i = 0; i < 40; ++i) {
      std::ofstream(base_ + "/files/report" + std::to_string(i) + ".txt")
          << "quarterly report " << std::string(static_cast<size_t>(i % 7 + 1), 'x') << " number" << i;
    }
    for (int i = 0; i < 30; ++i) {
      std::ofstream(base_ + "/files/photos/report_photo" + std::to_string(i) + ".png", std::ios::binary)
          << "\x89PNG\r\n\x1A\n" << "pixels" << i;
    }
    EngineOptions o;
    o.data_dir = base_ + "/data";
    o.progress = false;
    auto e = Engine::Open(o);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(e).value();
    ASSERT_TRUE(engine_->SetEmbedder(NewHashEmbedder(16)).ok());
    auto r = engine_->Index(base_ + "/files");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->embedded, 30u);
  }
  void TearDown() override {
    engine_.reset();
    stdfs::remove_all(base_);
  }
  std::vector<float> VectorOf(const std::string& name) {
    auto d = engine_->store()->GetByUri(FileUri(base_ + "/files/photos/" + name));
    EXPECT_TRUE(d.ok());
    auto v = engine_->store()->GetEmbedding(d->id, "test/hash-16");
    EXPECT_TRUE(v.ok() && v->has_value());
    return **v;
  }

  std::string base_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(SearchTest, TextPagingAndCursorCoverEverythingOnce) {
  SearchRequest r;
  r.query = "report";
  r.size = 7;
  std::set<int64_t> seen;
  auto first = engine_->Search(r);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->total, 70u);  // 40 texts + 30 photos named report_photo*
  EXPECT_TRUE(first->total_exact);
  for (auto& h : first->hits) seen.insert(h.doc.id);
  std::string cursor = first->next_cursor;
  while (!cursor.empty()) {
    r.search_after = cursor;
    auto page = engine_->Search(r);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    for (auto& h : page->hits) EXPECT_TRUE(seen.insert(h.doc.id).second);
    cursor = page->next_cursor;
  }
  EXPECT_EQ(seen.size(), 70u);
  // from/size gives the same second page as the cursor did.
  SearchRequest by_offset;
  by_offset.query = "report";
  by_offset.size = 7;
  by_offset.from = 7;
  SearchRequest by_cursor = by_offset;
  by_cursor.from = 0;
  by_cursor.search_after = first->next_cursor;
  auto a = engine_->Search(by_offset), b = engine_->Search(by_cursor);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->hits.size(), b->hits.size());
  for (size_t i = 0; i < a->hits.size(); ++i) EXPECT_EQ(a->hits[i].doc.id, b->hits[i].doc.id);
  EXPECT_EQ(a->hits[0].text.rank, 8u);
}

TEST_F(SearchTest, DepthLimitPointsToCursor) {
  SearchRequest r;
  r.query = "report";
  r.from = 9995;
  r.size = 10;
  auto res = engine_->Search(r);
  ASSERT_FALSE(res.ok());
  EXPECT_NE(res.status().message().find("searchAfter"), std::string::npos);
  r.search_after = "garbage!";
  r.from = 0;
  EXPECT_EQ(engine_->Search(r).status().code(), StatusCode::kInvalidArgument);
}

// A cursor whose fields were edited (a negative or 65-bit offset, a float, a string) is refused
// as an invalid cursor: never wrapped into a huge offset, never an I/O error.
TEST_F(SearchTest, TamperedCursorIsInvalid) {
  for (bool hybrid : {false, true}) {
    SearchRequest r;
    r.query = "report";
    r.size = 5;
    if (hybrid) {
      r.vector = VectorOf("report_photo3.png");
      r.vector_model = "test/hash-16";
    }
    auto first = engine_->Search(r);
    ASSERT_TRUE(first.ok()) << first.status().ToString();
    ASSERT_FALSE(first->next_cursor.empty());
    auto raw = Base64UrlDecode(first->next_cursor);
    ASSERT_TRUE(raw.ok());
    const nlohmann::json genuine = nlohmann::json::parse(*raw);
    r.search_after = first->next_cursor;
    ASSERT_TRUE(engine_->Search(r).ok()) << "the untouched cursor must work";
    const std::vector<std::string> offsets = {"-5", "-1", "18446744073709551616", "18446744073709551611",
                                              "1e3", "5.5", "\"5\"", "null", "1099511627777"};
    for (const std::string& o : offsets) {
      nlohmann::json tampered = genuine;
      tampered["o"] = nlohmann::json::parse(o);
      r.search_after = Base64UrlEncode(tampered.dump());
      auto res = engine_->Search(r);
      ASSERT_FALSE(res.ok()) << "offset " << o << (hybrid ? " (hybrid)" : " (text)");
      EXPECT_EQ(res.status().code(), StatusCode::kInvalidArgument) << o << ": " << res.status().ToString();
      EXPECT_NE(res.status().message().find("invalid searchAfter cursor"), std::string::npos)
          << o << ": " << res.status().ToString();
    }
    for (const char* key : {"m", "g", "s", "i"}) {
      nlohmann::json tampered = genuine;
      tampered[key] = key == std::string("m") ? nlohmann::json(-1) : nlohmann::json("x");
      r.search_after = Base64UrlEncode(tampered.dump());
      EXPECT_EQ(engine_->Search(r).status().code(), StatusCode::kInvalidArgument) << key;
    }
  }
}

TEST_F(SearchTest, VectorFindsItselfFirstAndRespectsFilters) {
  SearchRequest r;
  r.vector = VectorOf("report_photo3.png");
  r.vector_model = "test/hash-16";
  r.size = 5;
  auto res = engine_->Search(r);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->mode, SearchMode::kVector);
  ASSERT_FALSE(res->hits.empty());
  EXPECT_EQ(res->hits[0].doc.name, "report_photo3.png");
  EXPECT_NEAR(res->hits[0].vector.score, 1.0, 1e-5);
  EXPECT_EQ(res->total, 30u);
  for (size_t i = 1; i < res->hits.size(); ++i) EXPECT_LE(res->hits[i].score, res->hits[i - 1].score);
  // Excluding the query document (find similar).
  r.exclude_id = res->hits[0].doc.id;
  auto sim = engine_->Search(r);
  ASSERT_TRUE(sim.ok());
  for (auto& h : sim->hits) EXPECT_NE(h.doc.name, "report_photo3.png");
  // A text-only filter leaves no vectors.
  r.exclude_id.reset();
  r.filters.extensions = {"txt"};
  EXPECT_TRUE(engine_->Search(r)->hits.empty());
}

TEST_F(SearchTest, ModelAndDimensionMismatchAreRefused) {
  SearchRequest r;
  r.vector = VectorOf("report_photo1.png");
  r.vector_model = "openai/clip-vit-base-patch32";
  auto res = engine_->Search(r);
  ASSERT_FALSE(res.ok());
  EXPECT_NE(res.status().message().find("same model"), std::string::npos);
  r.vector_model = "test/hash-16";
  r.vector.resize(15);
  EXPECT_EQ(engine_->Search(r).status().code(), StatusCode::kInvalidArgument);
  r.vector.assign(16, NAN);
  EXPECT_EQ(engine_->Search(r).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(SearchTest, HybridRrfReportsBothLegs) {
  SearchRequest r;
  r.query = "report_photo7";
  r.vector = VectorOf("report_photo7.png");
  r.vector_model = "test/hash-16";
  r.size = 10;
  auto res = engine_->Search(r);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->mode, SearchMode::kHybrid);
  ASSERT_FALSE(res->hits.empty());
  const SearchHit& top = res->hits[0];
  EXPECT_EQ(top.doc.name, "report_photo7.png");
  ASSERT_TRUE(top.text.present && top.vector.present);
  EXPECT_EQ(top.vector.rank, 1u);
  EXPECT_DOUBLE_EQ(top.score, 1.0 / (60 + top.text.rank) + 1.0 / (60 + top.vector.rank));
  for (auto& h : res->hits) {
    double expect = (h.text.present ? 1.0 / (60 + h.text.rank) : 0) + (h.vector.present ? 1.0 / (60 + h.vector.rank) : 0);
    EXPECT_DOUBLE_EQ(h.score, expect);
  }
  // Weights and k change the fused score as documented.
  r.rrf_k = 10;
  r.text_weight = 0.5;
  auto w = engine_->Search(r);
  ASSERT_TRUE(w.ok());
  const SearchHit& t = w->hits[0];
  EXPECT_DOUBLE_EQ(t.score, (t.text.present ? 0.5 / (10 + t.text.rank) : 0) + (t.vector.present ? 1.0 / (10 + t.vector.rank) : 0));
}

TEST_F(SearchTest, HybridLinearIsMinMaxNormalised) {
  SearchRequest r;
  r.query = "report";
  r.vector = VectorOf("report_photo2.png");
  r.vector_model = "test/hash-16";
  r.fusion = FusionMethod::kLinear;
  r.size = 100;
  auto res = engine_->Search(r);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  for (auto& h : res->hits) {
    EXPECT_GE(h.score, 0.0);
    EXPECT_LE(h.score, 2.0 + 1e-9);
  }
  // The query's own photo has the best vector score (normalised to 1) and a text match on top:
  // first among the photos. ("report" is also part of every reportN.txt name: text-only hits
  // may score as much.)
  const SearchHit* first_photo = nullptr;
  for (auto& h : res->hits) {
    if (h.vector.present && !first_photo) first_photo = &h;
  }
  ASSERT_NE(first_photo, nullptr);
  EXPECT_EQ(first_photo->doc.name, "report_photo2.png");
  EXPECT_GE(first_photo->score, 1.0);
  EXPECT_GE(res->hits[0].score, 1.0);
  for (auto& h : res->hits) {
    if (!h.text.present) EXPECT_LE(h.score, 1.0 + 1e-9);   // one leg contributes at most its weight
    if (!h.vector.present) EXPECT_LE(h.score, 1.0 + 1e-9);
  }
}

TEST(PictureFloorTest, MedianPlusRobustDeviationsAtLeastTheAbsoluteFloor) {
  // Fewer than 8 scores: nothing can be shown to stand out.
  EXPECT_EQ(PictureFloor({0.1f, 0.2f, 0.9f}, 4, 0, 3), INFINITY);
  // 0.10 .. 0.19 (median 0.145, MAD 0.025) and one outlier, which moves neither.
  std::vector<float> s;
  for (int i = 0; i < 10; ++i) s.push_back(0.10f + 0.01f * static_cast<float>(i));
  s.push_back(0.95f);
  const double floor = PictureFloor(s, 4, 0, s.size());
  EXPECT_NEAR(floor, 0.15 + 4 * 1.4826 * 0.03, 1e-6);  // 11 scores: median 0.15, MAD 0.03
  EXPECT_LT(floor, 0.95);
  EXPECT_GT(floor, 0.19);
  EXPECT_DOUBLE_EQ(PictureFloor(s, 4, 0.99, s.size()), 0.99);  // the absolute floor wins when higher
  // A large collection raises the bar to where chance puts its best score.
  EXPECT_NEAR(ChanceMaximumSd(1000), 3.29, 0.01);
  EXPECT_NEAR(ChanceMaximumSd(1000000), 4.89, 0.01);
  EXPECT_EQ(ChanceMaximumSd(1), 0.0);
  EXPECT_NEAR(PictureFloor(s, 4, 0, 1000000), 0.15 + ChanceMaximumSd(1000000) * 1.4826 * 0.03, 1e-6);
  // All equal: only what lies above them stands out.
  EXPECT_NEAR(PictureFloor(std::vector<float>(20, 0.3f), 4, 0, 20), 0.3, 1e-5);
}

TEST_F(SearchTest, HybridTextQueryKeepsOnlyPicturesThatStandOut) {
  // A query vector that is no photo's: what a text tower with random weights gives.
  std::vector<float> random_vector(16);
  for (size_t i = 0; i < random_vector.size(); ++i) random_vector[i] = std::sin(static_cast<float>(i) * 2.3f + 0.7f);
  SearchRequest r;
  r.vector_model = "test/hash-16";
  r.vector_from_text = true;
  r.size = 100;
  r.mode = SearchMode::kHybrid;
  // A nonsense word: no keyword hit and no picture stands out: no results, an exact 0.
  r.query = "zqxjkvw";
  r.vector = random_vector;
  auto none = engine_->Search(r);
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_TRUE(none->hits.empty());
  EXPECT_EQ(none->total, 0u);
  EXPECT_TRUE(none->total_exact);
  // Words that match documents: those documents, all of them, and no photo riding along.
  r.query = "quarterly";
  auto words = engine_->Search(r);
  ASSERT_TRUE(words.ok());
  EXPECT_EQ(words->total, 40u);
  ASSERT_EQ(words->hits.size(), 40u);
  for (const auto& h : words->hits) {
    EXPECT_TRUE(h.text.present) << h.doc.name;
    EXPECT_FALSE(h.vector.present) << h.doc.name;
  }
  // The same vector given explicitly (an embedding, not the query text) is not floored.
  r.vector_from_text = false;
  auto given = engine_->Search(r);
  ASSERT_TRUE(given.ok());
  EXPECT_EQ(given->hits.size(), 70u);
  // A planted vector that clearly stands out (a photo's own) is kept, and says why it matched.
  r.vector_from_text = true;
  r.query = "zqxjkvw";
  r.vector = VectorOf("report_photo7.png");
  r.floor_sd = 3;  // 16-dimensional hash vectors are far noisier than CLIP's: cosines spread +-0.25
  auto planted = engine_->Search(r);
  ASSERT_TRUE(planted.ok());
  ASSERT_EQ(planted->hits.size(), 1u);
  EXPECT_EQ(planted->hits[0].doc.name, "report_photo7.png");
  EXPECT_TRUE(planted->hits[0].vector.present);
  EXPECT_FALSE(planted->hits[0].text.present);
  EXPECT_EQ(planted->total, 1u);
  // ...and an absolute floor above its cosine removes it.
  r.floor_min_score = 1.5;
  auto absolute = engine_->Search(r);
  ASSERT_TRUE(absolute.ok());
  EXPECT_TRUE(absolute->hits.empty());
}

TEST_F(SearchTest, VectorIndexSurvivesReopenAndCorruptSnapshot) {
  auto before = engine_->vectors()->size();
  EXPECT_EQ(before, 30u);
  std::string snap = base_ + "/data/vectors/test_hash-16.hnsw";
  ASSERT_TRUE(stdfs::exists(snap));
  engine_.reset();
  EngineOptions o;
  o.data_dir = base_ + "/data";
  o.progress = false;
  auto e = Engine::Open(o);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ((*e)->vectors()->open_note(), "snapshot");
  EXPECT_EQ((*e)->vectors()->size(), 30u);
  e->reset();
  // Truncate the snapshot: reopening rebuilds it from the database, with a warning.
  stdfs::resize_file(snap, stdfs::file_size(snap) / 2);
  auto again = Engine::Open(o);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ((*again)->vectors()->open_note().rfind("rebuilt", 0), 0u);
  EXPECT_EQ((*again)->vectors()->size(), 30u);
}

}  // namespace
}  // namespace fs
