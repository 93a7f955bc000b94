// The keyword accelerator against FTS5 on the same database: same hits, same order, same
// scores (bit for bit), same totals, through pages and cursors, before and after writes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <random>

#include "index/store.h"

namespace fs {
namespace {

const char* kWords[] = {
    "invoice", "budget", "report", "meeting", "minutes", "contract", "draft", "final", "review", "plan",
    "sales", "tokyo", "osaka", "customer", "supplier", "quarter", "annual", "summary", "notes", "design",
    "café", "Résumé", "NAÏVE", "über", "photo", "beach", "sunset", "team", "offsite", "agenda",
    "請求書", "東京支社", "議事録", "見積書", "会議", "報告", "2024", "2025", "q3", "v2",
    "kodim01", "Kodim23", "MyInvoiceDraft", "elephants", "running", "waterholes"};
constexpr size_t kNumWords = sizeof(kWords) / sizeof(kWords[0]);

class KeywordIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/kwindex_test_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    auto ref = Store::Open(dir_ + "/db.sqlite");
    ASSERT_TRUE(ref.ok()) << ref.status().ToString();
    fts_ = std::move(ref).value();
  }
  void TearDown() override {
    fast_.reset();
    fts_.reset();
    std::filesystem::remove_all(dir_);
  }
  void OpenFast() {
    StoreOptions o;
    o.keyword_index = true;
    auto s = Store::Open(dir_ + "/db.sqlite", o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    fast_ = std::move(s).value();
    ASSERT_TRUE(fast_->BuildKeywordIndex().ok());
    ASSERT_TRUE(fast_->KeywordIndexStatus().ready);
  }

  // Zipf-like: word i drawn with weight 1/(i+1).
  std::string Words(std::mt19937& rng, int n) {
    std::vector<double> w(kNumWords);
    for (size_t i = 0; i < kNumWords; ++i) w[i] = 1.0 / static_cast<double>(i + 1);
    std::discrete_distribution<size_t> pick(w.begin(), w.end());
    std::string out;
    for (int i = 0; i < n; ++i) {
      if (!out.empty()) out += (rng() % 5 == 0) ? "_" : " ";
      out += kWords[pick(rng)];
    }
    return out;
  }
  Document MakeDoc(std::mt19937& rng, int i) {
    Document d;
    // Kind, size and time from their own stream, so the text stays what it was.
    std::mt19937 meta(static_cast<uint32_t>(i) * 7919u + 1u);
    static const char* kKinds[][2] = {{"txt", "text/plain"}, {"pdf", "application/pdf"}, {"jpg", "image/jpeg"},
                                      {"png", "image/png"}};
    const auto& kind = kKinds[meta() % 4];
    std::string name = Words(rng, 1 + static_cast<int>(rng() % 3)) + "_" + std::to_string(i) + "." + kind[0];
    d.path = "/share/" + Words(rng, 1) + "/" + Words(rng, 1) + "/" + name;
    d.uri = "file://" + d.path;
    d.name = name;
    d.ext = kind[0];
    d.mime = kind[1];
    d.size = meta() % 100000;
    d.mtime_ns = static_cast<int64_t>(meta() % 1000);
    if (d.mime.rfind("image/", 0) == 0 && meta() % 3 != 0) d.taken_ns = static_cast<int64_t>(meta() % 1000);
    d.sha256 = std::to_string(rng());
    d.content = Words(rng, static_cast<int>(rng() % 60));
    return d;
  }
  void Ingest(int n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<Document> docs;
    for (int i = 0; i < n; ++i) docs.push_back(MakeDoc(rng, i));
    ASSERT_TRUE(fts_->UpsertBatch(docs).ok());
  }

  // Every query, several page shapes: the accelerated store must agree with FTS5 exactly.
  void ExpectSameAsFts(const std::vector<std::string>& queries, const SearchFilters& f = {}) {
    for (const auto& q : queries) {
      for (auto [offset, limit] : {std::pair<size_t, size_t>{0, 10}, {0, 1}, {7, 25}, {0, 500}}) {
        auto a = fts_->KeywordSearch(q, f, offset, limit);
        auto b = fast_->KeywordSearch(q, f, offset, limit);
        ASSERT_TRUE(a.ok() && b.ok()) << q;
        ASSERT_EQ(a->total, b->total) << "query '" << q << "'";
        ASSERT_EQ(a->hits.size(), b->hits.size()) << "query '" << q << "'";
        for (size_t i = 0; i < a->hits.size(); ++i) {
          ASSERT_EQ(a->hits[i].id, b->hits[i].id) << "query '" << q << "' rank " << i + offset;
          ASSERT_EQ(a->hits[i].score, b->hits[i].score) << "query '" << q << "' rank " << i + offset;
        }
      }
      // Keyset paging: walk the whole result in pages of 13 on the fast path; FTS5 must agree.
      std::optional<KeywordAfter> after_a, after_b;
      for (int page = 0; page < 6; ++page) {
        auto a = fts_->KeywordSearch(q, f, 0, 13, after_a, false);
        auto b = fast_->KeywordSearch(q, f, 0, 13, after_b, false);
        ASSERT_TRUE(a.ok() && b.ok());
        ASSERT_EQ(a->hits.size(), b->hits.size()) << "query '" << q << "' page " << page;
        for (size_t i = 0; i < a->hits.size(); ++i) ASSERT_EQ(a->hits[i].id, b->hits[i].id);
        if (a->hits.empty()) break;
        after_a = KeywordAfter{a->hits.back().score, a->hits.back().id};
        after_b = KeywordAfter{b->hits.back().score, b->hits.back().id};
      }
    }
  }

  std::vector<std::string> Queries() const {
    std::vector<std::string> q;
    for (const char* w : kWords) q.emplace_back(w);
    q.insert(q.end(), {"INVOICE", "cafe", "resume", "naive", "uber", "invoice budget", "budget invoice report",
                       "請求", "東京", "議事", "tokyo 会議", "sales sales", "  meeting   minutes ", "nonexistentword",
                       "invoice nonexistentword", "v2 q3 2024", "final, draft!", "\"quoted\" plan",
                       // stems and parts of words (fts_tokenizer.h)
                       "kodim", "elephant", "Elephants", "invoices", "run", "waterhole", "01", "23", "draft invoice",
                       "myinvoice", "meetings", "reviewed"});
    return q;
  }

  std::string dir_;
  std::unique_ptr<Store> fts_, fast_;
};

TEST_F(KeywordIndexTest, SameHitsScoresAndTotalsAsFts5) {
  Ingest(3000, 1);
  OpenFast();
  auto info = fast_->KeywordIndexStatus();
  EXPECT_EQ(info.documents, 3000u);
  EXPECT_GT(info.postings, 3000u);
  ExpectSameAsFts(Queries());
  // The comparison above ran on the accelerator, not on FTS5 twice.
  info = fast_->KeywordIndexStatus();
  // Only the four CJK words of three or more characters are phrases (pairs of characters).
  EXPECT_EQ(info.passed_to_fts, 4u * 10u);
  EXPECT_GE(info.served, 10 * (Queries().size() - 4) - 100);
}

TEST_F(KeywordIndexTest, FollowsInsertsUpdatesAndDeletesFromAnotherHandle) {
  Ingest(1500, 2);
  OpenFast();
  // Writes go through the other handle, as a worker process would write.
  std::mt19937 rng(99);
  std::vector<Document> more;
  for (int i = 0; i < 300; ++i) more.push_back(MakeDoc(rng, 5000 + i));  // new documents
  ASSERT_TRUE(fts_->UpsertBatch(more).ok());
  std::vector<Document> changed;
  for (int64_t id = 1; id <= 200; id += 3) {  // rewrite some base documents in place
    auto d = fts_->Get(id);
    ASSERT_TRUE(d.ok());
    Document nd = *d;
    nd.content = Words(rng, 30) + " rewritten";
    changed.push_back(nd);
  }
  ASSERT_TRUE(fts_->UpsertBatch(changed).ok());
  std::vector<int64_t> gone;
  for (int64_t id = 400; id < 700; id += 2) gone.push_back(id);  // delete base documents
  gone.push_back(1505);                                            // and a new one
  ASSERT_TRUE(fts_->DeleteIds(gone).ok());
  ASSERT_TRUE(fts_->Delete(more[10].uri).ok());

  auto q = Queries();
  q.push_back("rewritten");
  q.push_back("rewritten invoice");
  ExpectSameAsFts(q);
  auto info = fast_->KeywordIndexStatus();
  EXPECT_GT(info.delta_documents, 300u);
  EXPECT_EQ(info.documents, 1500u + 300u - gone.size() - 1);
  EXPECT_GT(info.served, 400u);
  EXPECT_EQ(info.passed_to_fts, 4u * 10u);
}

TEST_F(KeywordIndexTest, PhrasesPrefixesAndFiltersStillWork) {
  Ingest(800, 3);
  OpenFast();
  // These take the FTS5 path; the answers must be the same as the reference store's.
  for (std::string q : {"東京支社", "invoice-budget", "inv*", "report_2"}) {
    auto a = fts_->KeywordSearch(q, {}, 0, 20);
    auto b = fast_->KeywordSearch(q, {}, 0, 20);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->total, b->total) << q;
    if (q != "report_2") {
      EXPECT_GT(a->total, 0u) << q;
    }
  }
  SearchFilters f;
  f.path_prefix = "/share/invoice/";
  auto a = fts_->KeywordSearch("budget", f, 0, 20);
  auto b = fast_->KeywordSearch("budget", f, 0, 20);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->total, b->total);
  EXPECT_LT(b->total, fast_->KeywordSearch("budget", {}, 0, 1)->total);
  auto info = fast_->KeywordIndexStatus();
  EXPECT_EQ(info.passed_to_fts, 4u);  // the four queries above
  EXPECT_EQ(info.served, 2u);         // "budget", filtered and not
}

TEST_F(KeywordIndexTest, FiltersMatchTheSqlPath) {
  Ingest(2500, 5);
  OpenFast();
  // A few changes after the build, so that delta documents are filtered too.
  std::mt19937 rng(7);
  std::vector<Document> more;
  for (int i = 0; i < 200; ++i) more.push_back(MakeDoc(rng, 9000 + i));
  ASSERT_TRUE(fts_->UpsertBatch(more).ok());
  std::vector<SearchFilters> cases(10);
  cases[0].types = {"image"};
  cases[1].types = {"application/pdf", "text"};
  cases[2].extensions = {".JPG", "png"};
  cases[3].path_prefix = "/share/invoice/";
  cases[4].min_size = 20000;
  cases[4].max_size = 60000;
  cases[5].min_mtime_ns = 100;
  cases[5].max_mtime_ns = 400;
  cases[6].types = {"image"};
  cases[6].path_prefix = "/share/budget/";
  cases[6].max_size = 50000;
  cases[7].extensions = {"docx"};  // no such extension: nothing
  cases[8].path_prefix = "/share/東京支社/";
  cases[9].min_taken_ns = 200;  // date taken: photos without one never match
  cases[9].max_taken_ns = 800;
  const std::vector<std::string> q = {"invoice", "budget report", "tokyo", "東京", "請求", "sales plan", "2024"};
  for (const auto& f : cases) ExpectSameAsFts(q, f);
  // The filters do select: some but not all of the hits pass.
  const uint64_t all = fast_->KeywordSearch("invoice", {}, 0, 1)->total;
  for (size_t c : {0, 1, 2, 3, 4, 5, 6, 8, 9}) {
    const uint64_t n = fast_->KeywordSearch(c == 8 ? "2024" : "invoice", cases[c], 0, 1)->total;
    EXPECT_GT(n, 0u) << "case " << c;
    EXPECT_LT(n, all) << "case " << c;
  }
  EXPECT_EQ(fast_->KeywordSearch("invoice", cases[7], 0, 1)->total, 0u);
  auto info = fast_->KeywordIndexStatus();
  EXPECT_EQ(info.passed_to_fts, 0u);
  EXPECT_GT(info.served, 10u * q.size() * 4u);
}

TEST_F(KeywordIndexTest, EmptyStoreAndBuildingInTheBackground) {
  StoreOptions o;
  o.keyword_index = true;
  auto s = Store::Open(dir_ + "/db.sqlite", o);
  ASSERT_TRUE(s.ok());
  // Whether or not the background build has finished, an empty store answers with nothing.
  auto r = (*s)->KeywordSearch("invoice", {}, 0, 10);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->total, 0u);
  ASSERT_TRUE((*s)->BuildKeywordIndex().ok());
  Ingest(50, 4);
  fast_ = std::move(s).value();
  ExpectSameAsFts({"invoice", "budget report"});
}

}  // namespace
}  // namespace fs
