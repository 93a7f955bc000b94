#include "index/store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <set>
#include <thread>
#include <vector>

#include "core/env.h"
#include "index/fts_tokenizer.h"

namespace fs {
namespace {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/store_test_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    auto s = Store::Open(dir_ + "/db.sqlite");
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  static Document Doc(const std::string& path, const std::string& content = "", const std::string& mime = "text/plain") {
    Document d;
    d.uri = "file://" + path;
    d.path = path;
    d.name = path.substr(path.find_last_of('/') + 1);
    auto dot = d.name.find_last_of('.');
    d.ext = dot == std::string::npos ? "" : d.name.substr(dot + 1);
    d.mime = mime;
    d.size = content.size();
    d.mtime_ns = 1000;
    d.sha256 = std::to_string(std::hash<std::string>()(content));
    d.content = content;
    return d;
  }

  std::vector<int64_t> Ids(std::string_view q, const SearchFilters& f = {}) {
    auto page = store_->KeywordSearch(q, f, 0, 100);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    std::vector<int64_t> ids;
    if (page.ok()) for (auto& h : page->hits) ids.push_back(h.id);
    return ids;
  }

  // Closes the store, runs `sql` on its file with a bare connection (an older version's state),
  // and opens it again: the migration under test runs at that open.
  void ReopenAfter(const std::string& sql) {
    store_.reset();
    const std::string path = dir_ + "/db.sqlite";
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
    ASSERT_EQ(index_internal::RegisterFtsTokenizer(raw), SQLITE_OK);
    char* err = nullptr;
    const int rc = sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, &err);
    const std::string message = err ? err : "";
    sqlite3_free(err);
    sqlite3_close(raw);
    ASSERT_EQ(rc, SQLITE_OK) << message;
    auto s = Store::Open(path);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }

  std::string dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreTest, UpsertIsIdempotentByUri) {
  auto a = store_->Upsert(Doc("/s/a.txt", "hello world"));
  ASSERT_TRUE(a.ok());
  auto b = store_->Upsert(Doc("/s/a.txt", "hello again"));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(store_->Stats()->documents, 1u);
  EXPECT_EQ(store_->Get(*a)->content, "hello again");
  EXPECT_TRUE(Ids("world").empty());
  EXPECT_EQ(Ids("again"), std::vector<int64_t>{*a});
}

TEST_F(StoreTest, DeleteRemovesTextAndEmbeddings) {
  auto id = *store_->Upsert(Doc("/s/a.txt", "alpha"));
  std::vector<float> v(4, 0.5f);
  ASSERT_TRUE(store_->PutEmbedding(id, "m1", v).ok());
  ASSERT_TRUE(store_->Delete("file:///s/a.txt").ok());
  EXPECT_EQ(store_->Get(id).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Ids("alpha").empty());
  EXPECT_FALSE(store_->GetEmbedding(id, "m1")->has_value());
  auto changes = *store_->ChangesSince("m1", 0);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_TRUE(changes[0].upsert);
  EXPECT_FALSE(changes[1].upsert);
  EXPECT_EQ(store_->Delete("file:///s/a.txt").code(), StatusCode::kNotFound);
}

TEST_F(StoreTest, ContentChangeDropsEmbedding) {
  auto id = *store_->Upsert(Doc("/s/p.jpg", "v1", "image/jpeg"));
  ASSERT_TRUE(store_->PutEmbedding(id, "m", std::vector<float>{1, 0}).ok());
  ASSERT_TRUE(store_->Upsert(Doc("/s/p.jpg", "v1", "image/jpeg")).ok());  // same bytes
  EXPECT_TRUE(store_->GetEmbedding(id, "m")->has_value());
  ASSERT_TRUE(store_->Upsert(Doc("/s/p.jpg", "v2", "image/jpeg")).ok());  // new bytes
  EXPECT_FALSE(store_->GetEmbedding(id, "m")->has_value());
}

TEST_F(StoreTest, CaseAndAccentInsensitive) {
  auto id = *store_->Upsert(Doc("/s/Café Über Résumé.txt", "Naïve façade"));
  EXPECT_EQ(Ids("cafe"), std::vector<int64_t>{id});
  EXPECT_EQ(Ids("UBER resume"), std::vector<int64_t>{id});
  EXPECT_EQ(Ids("NAIVE"), std::vector<int64_t>{id});
  EXPECT_EQ(Ids("facade"), std::vector<int64_t>{id});
  EXPECT_EQ(Ids("cafes"), std::vector<int64_t>{id});  // English stems: "cafes" -> "cafe"
  EXPECT_TRUE(Ids("cafeteria").empty());
}

TEST_F(StoreTest, PartsOfNamesAndEnglishWordFormsMatch) {
  std::vector<int64_t> kodim;
  for (const char* n : {"kodim01.png", "kodim02.png", "kodim24.png"}) kodim.push_back(*store_->Upsert(Doc(std::string("/img/") + n)));
  auto invoice = *store_->Upsert(Doc("/acct/Invoice_2024-03.pdf", "", "application/pdf"));
  auto camel = *store_->Upsert(Doc("/acct/MyInvoiceDraft.docx", "", "application/msword"));
  auto sales = *store_->Upsert(Doc("/acct/q3-sales.xlsx", "", "application/vnd.ms-excel"));
  auto animals = *store_->Upsert(Doc("/notes/safari.txt", "Elephants at the waterholes, running"));
  auto plain = *store_->Upsert(Doc("/notes/zoo.txt", "one elephant"));
  auto sorted = [](std::vector<int64_t> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  EXPECT_EQ(sorted(Ids("kodim")), kodim);
  EXPECT_EQ(Ids("kodim01"), std::vector<int64_t>{kodim[0]});
  EXPECT_EQ(Ids("KODIM24"), std::vector<int64_t>{kodim[2]});
  EXPECT_EQ(Ids("24"), std::vector<int64_t>{kodim[2]});
  EXPECT_EQ(sorted(Ids("invoice")), (std::vector<int64_t>{invoice, camel}));
  EXPECT_EQ(sorted(Ids("invoices")), (std::vector<int64_t>{invoice, camel}));
  EXPECT_EQ(Ids("draft"), std::vector<int64_t>{camel});
  EXPECT_EQ(Ids("myinvoicedraft"), std::vector<int64_t>{camel});
  EXPECT_EQ(Ids("q3"), std::vector<int64_t>{sales});
  EXPECT_EQ(Ids("q3 sales"), std::vector<int64_t>{sales});
  EXPECT_EQ(sorted(Ids("elephant")), (std::vector<int64_t>{animals, plain}));
  EXPECT_EQ(sorted(Ids("Elephants")), (std::vector<int64_t>{animals, plain}));
  EXPECT_EQ(Ids("waterhole run"), std::vector<int64_t>{animals});
  EXPECT_EQ(Ids("\"elephants at the waterhole\""), std::vector<int64_t>{animals});
  EXPECT_EQ(sorted(Ids("eleph*")), (std::vector<int64_t>{animals, plain}));  // prefixes as typed
  EXPECT_EQ(Ids("elephantine"), std::vector<int64_t>{});
  EXPECT_TRUE(Ids("kodim3").empty());
}

TEST_F(StoreTest, PartOfNameMatchesRankBelowWholeWordMatches) {
  // Inserted parts first, so that an id tie-break would put them on top.
  auto kodim01 = *store_->Upsert(Doc("/img/kodim01.png"));
  auto kodim24 = *store_->Upsert(Doc("/img/kodim24.png"));
  auto camel = *store_->Upsert(Doc("/acct/MyInvoiceDraft.docx"));
  auto q3camel = *store_->Upsert(Doc("/acct/Q3Sales.xlsx"));
  auto kodim = *store_->Upsert(Doc("/img/kodim.png"));
  auto invoice = *store_->Upsert(Doc("/acct/Invoice_2024-03.pdf"));
  auto q3 = *store_->Upsert(Doc("/acct/q3-sales.xlsx"));
  auto ids = Ids("kodim");
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[0], kodim);
  EXPECT_EQ(std::set<int64_t>(ids.begin() + 1, ids.end()), (std::set<int64_t>{kodim01, kodim24}));
  EXPECT_EQ(Ids("invoice"), (std::vector<int64_t>{invoice, camel}));
  EXPECT_EQ(Ids("sales"), (std::vector<int64_t>{q3, q3camel}));
  EXPECT_EQ(Ids("q3"), std::vector<int64_t>{q3});  // "Q3Sales" splits into q, 3, sales
  // A part is still a match of its own, and the whole word still finds only itself.
  EXPECT_EQ(Ids("draft"), std::vector<int64_t>{camel});
  EXPECT_EQ(Ids("kodim01"), std::vector<int64_t>{kodim01});
}

TEST_F(StoreTest, VersionTwoIndexGainsPartsColumnsAtOpen) {
  auto id = *store_->Upsert(Doc("/img/kodim07.png", "Elephants"));
  // A version-2 database: a three-column index over the documents table, parts in the name column.
  ReopenAfter(
      "DROP TRIGGER documents_ai; DROP TRIGGER documents_ad; DROP TRIGGER documents_au; "
      "DROP TABLE doc_fts; CREATE VIRTUAL TABLE doc_fts USING fts5(name, path, content, "
      "content='documents', content_rowid='id', tokenize='filesearch'); "
      "CREATE TRIGGER documents_ai AFTER INSERT ON documents BEGIN INSERT INTO doc_fts(rowid, "
      "name, path, content) VALUES (new.id, new.name, new.path, new.content); END; "
      "INSERT INTO doc_fts(doc_fts) VALUES('rebuild'); "
      "UPDATE meta SET value='2' WHERE key='schema_version'");
  if (HasFatalFailure()) return;
  EXPECT_EQ(Ids("kodim"), std::vector<int64_t>{id});
  EXPECT_EQ(Ids("elephant"), std::vector<int64_t>{id});
  // The triggers are the new ones: a later insert and delete keep the index whole.
  auto whole = *store_->Upsert(Doc("/img/kodim.png"));
  EXPECT_EQ(Ids("kodim"), (std::vector<int64_t>{whole, id}));
  ASSERT_TRUE(store_->Delete("file:///img/kodim07.png").ok());
  EXPECT_EQ(Ids("kodim"), std::vector<int64_t>{whole});
}

TEST_F(StoreTest, VersionOneIndexIsRebuiltForStemsAtOpen) {
  auto id = *store_->Upsert(Doc("/img/kodim07.png", "Elephants"));
  // A version-1 database: its index has no stems or parts (emptied here: it has no tokens at all).
  ReopenAfter("INSERT INTO doc_fts(doc_fts) VALUES('delete-all'); "
              "UPDATE meta SET value='1' WHERE key='schema_version'");
  if (HasFatalFailure()) return;
  const std::string path = dir_ + "/db.sqlite";
  EXPECT_EQ(Ids("kodim"), std::vector<int64_t>{id});
  EXPECT_EQ(Ids("elephant"), std::vector<int64_t>{id});
  store_.reset();
  auto again = Store::Open(path);  // rebuilt once: the version is current now
  ASSERT_TRUE(again.ok());
  store_ = std::move(again).value();
  EXPECT_EQ(Ids("kodim07"), std::vector<int64_t>{id});
}

TEST_F(StoreTest, JapaneseAndChineseShortQueries) {
  auto inv = *store_->Upsert(Doc("/s/経理/2024年請求書.pdf", "", "application/pdf"));
  auto min = *store_->Upsert(Doc("/s/東京支社/議事録.docx", "", "application/msword"));
  auto zh = *store_->Upsert(Doc("/s/报告.txt", "北京市的年度财务报告"));
  EXPECT_EQ(Ids("請求"), std::vector<int64_t>{inv});
  EXPECT_EQ(Ids("請"), std::vector<int64_t>{inv});
  EXPECT_EQ(Ids("請求書"), std::vector<int64_t>{inv});
  EXPECT_EQ(Ids("2024年請求書"), std::vector<int64_t>{inv});
  EXPECT_EQ(Ids("東京"), std::vector<int64_t>{min});
  EXPECT_EQ(Ids("議事録"), std::vector<int64_t>{min});
  EXPECT_EQ(Ids("北京"), std::vector<int64_t>{zh});
  EXPECT_EQ(Ids("财务"), std::vector<int64_t>{zh});
  EXPECT_TRUE(Ids("東北").empty());  // both characters exist, but not adjacent
}

TEST_F(StoreTest, FieldWeightsRankNameAbovePathAboveContent) {
  auto in_content = *store_->Upsert(Doc("/s/a/notes.txt", "budget budget figures for next year"));
  auto in_path = *store_->Upsert(Doc("/s/budget/notes2.txt", "misc"));
  auto in_name = *store_->Upsert(Doc("/s/x/budget.txt", "misc"));
  EXPECT_EQ(Ids("budget"), (std::vector<int64_t>{in_name, in_path, in_content}));
}

TEST_F(StoreTest, HostileQueriesAreHarmless) {
  auto id = *store_->Upsert(Doc("/s/report.txt", "quarterly report"));
  for (const char* q : {"\"", "report\"", "AND", "NOT report", "report OR", "(", "*", "^", "NEAR(a b)",
                        "col:report", "\xFF\xFE", "", "   ", "---", "report*"}) {
    auto page = store_->KeywordSearch(q, {}, 0, 10);
    EXPECT_TRUE(page.ok()) << q << ": " << page.status().ToString();
  }
  EXPECT_EQ(Ids("report\""), std::vector<int64_t>{id});
  EXPECT_EQ(Ids("repo*"), std::vector<int64_t>{id});
}

TEST_F(StoreTest, FiltersAndTotals) {
  std::vector<Document> docs;
  for (int i = 0; i < 30; ++i) {
    Document d = Doc("/s/" + std::string(i % 2 ? "img/" : "doc/") + "file" + std::to_string(i) +
                         (i % 2 ? ".jpg" : ".txt"),
                     "shared word", i % 2 ? "image/jpeg" : "text/plain");
    d.size = static_cast<uint64_t>(i * 100);
    d.mtime_ns = i;
    docs.push_back(d);
  }
  ASSERT_TRUE(store_->UpsertBatch(docs).ok());
  auto all = store_->KeywordSearch("shared", {}, 0, 5);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->total, 30u);
  EXPECT_EQ(all->hits.size(), 5u);
  SearchFilters f;
  f.types = {"image"};
  EXPECT_EQ(store_->KeywordSearch("shared", f, 0, 100)->total, 15u);
  f = {};
  f.extensions = {".TXT"};
  EXPECT_EQ(store_->KeywordSearch("shared", f, 0, 100)->total, 15u);
  f = {};
  f.path_prefix = "/s/img/";
  EXPECT_EQ(store_->KeywordSearch("shared", f, 0, 100)->total, 15u);
  f = {};
  f.min_size = 1000;
  f.max_size = 1900;
  EXPECT_EQ(store_->KeywordSearch("shared", f, 0, 100)->total, 10u);
  f = {};
  f.min_mtime_ns = 25;
  EXPECT_EQ(store_->KeywordSearch("shared", f, 0, 100)->total, 5u);
  EXPECT_EQ(store_->FilterIds(f)->size(), 5u);
}

TEST_F(StoreTest, KeysetPagingVisitsEveryHitOnce) {
  std::vector<Document> docs;
  for (int i = 0; i < 57; ++i) docs.push_back(Doc("/s/f" + std::to_string(i) + ".txt", std::string(static_cast<size_t>(i % 5 + 1), 'a') + " zeta"));
  ASSERT_TRUE(store_->UpsertBatch(docs).ok());
  std::set<int64_t> seen;
  std::optional<KeywordAfter> after;
  double last = 1e300;
  while (true) {
    auto page = store_->KeywordSearch("zeta", {}, 0, 10, after, false);
    ASSERT_TRUE(page.ok());
    if (page->hits.empty()) break;
    for (auto& h : page->hits) {
      EXPECT_TRUE(seen.insert(h.id).second);
      EXPECT_LE(h.score, last + 1e-12);
      last = h.score;
    }
    after = KeywordAfter{page->hits.back().score, page->hits.back().id};
  }
  EXPECT_EQ(seen.size(), 57u);
}

TEST_F(StoreTest, NonUtf8NamesAreStoredRepaired) {
  Document d = Doc("/s/bad\xFFname.txt", "x");
  d.uri = "file:///s/bad%FFname.txt";
  auto id = store_->Upsert(d);
  ASSERT_TRUE(id.ok());
  auto got = *store_->Get(*id);
  EXPECT_EQ(got.path, "/s/bad\xEF\xBF\xBDname.txt");
  EXPECT_EQ(Ids("bad"), std::vector<int64_t>{*id});
}

TEST_F(StoreTest, OlderDatabaseGainsPhotoAndDocumentColumnsAndKeepsItsRows) {
  store_.reset();
  const std::string path = dir_ + "/old.sqlite";
  {
    // One row, then the table taken back to the first schema's columns.
    auto db = Store::Open(path);
    ASSERT_TRUE(db.ok());
    Document d = Doc("/old.txt", "ancient words");
    ASSERT_TRUE((*db)->Upsert(d).ok());
  }
  {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
    ASSERT_EQ(index_internal::RegisterFtsTokenizer(raw), SQLITE_OK);  // the triggers name it
    const char* downgrade =
        "DROP INDEX documents_taken; ALTER TABLE documents DROP COLUMN taken_ns; ALTER TABLE documents DROP COLUMN camera; "
        "ALTER TABLE documents DROP COLUMN gps_lat; ALTER TABLE documents DROP COLUMN gps_lon; "
        "ALTER TABLE documents DROP COLUMN title; ALTER TABLE documents DROP COLUMN author; "
        "ALTER TABLE documents DROP COLUMN created_ns; ALTER TABLE documents DROP COLUMN saved_ns;";
    char* err = nullptr;
    ASSERT_EQ(sqlite3_exec(raw, downgrade, nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
    sqlite3_close(raw);
  }
  auto s = Store::Open(path);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto old = (*s)->GetByUri("file:///old.txt");
  ASSERT_TRUE(old.ok());
  EXPECT_FALSE(old->taken_ns.has_value());
  EXPECT_EQ((*s)->KeywordSearch("ancient", {}, 0, 10)->total, 1u);
  Document photo = Doc("/photos/beach.jpg", "", "image/jpeg");
  photo.taken_ns = 1700000000LL * 1000000000;
  photo.camera = "Canon EOS 350D DIGITAL";
  photo.gps_lat = 35.68;
  photo.gps_lon = 139.76;
  ASSERT_TRUE((*s)->Upsert(photo).ok());
  auto back = (*s)->GetByUri(photo.uri);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->taken_ns, photo.taken_ns);
  EXPECT_EQ(back->camera, photo.camera);
  EXPECT_DOUBLE_EQ(*back->gps_lat, 35.68);
  EXPECT_DOUBLE_EQ(*back->gps_lon, 139.76);
  SearchFilters f;
  f.max_taken_ns = 1800000000LL * 1000000000;
  EXPECT_EQ((*s)->FilterIds(f)->size(), 1u);
  EXPECT_EQ(old->title, "");
  EXPECT_FALSE(old->created_ns.has_value());
  Document report = Doc("/docs/report.docx", "Budget 2026\nAlice\n\nquarterly numbers");
  report.title = "Budget 2026";
  report.author = "Alice";
  report.created_ns = 1600000000LL * 1000000000;
  report.saved_ns = 1600000600LL * 1000000000;
  ASSERT_TRUE((*s)->Upsert(report).ok());
  auto doc = (*s)->GetByUri(report.uri);
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ(doc->title, "Budget 2026");
  EXPECT_EQ(doc->author, "Alice");
  EXPECT_EQ(doc->created_ns, report.created_ns);
  EXPECT_EQ(doc->saved_ns, report.saved_ns);
  EXPECT_EQ((*s)->KeywordSearch("alice", {}, 0, 10)->total, 1u);
}

TEST_F(StoreTest, NotADatabaseIsAClearError) {
  std::string path = dir_ + "/garbage.db";
  ASSERT_TRUE(Env::Default()->WriteFileAtomic(path, std::string(8192, 'g')).ok());
  auto s = Store::Open(path);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kCorruption) << s.status().ToString();
}

// A fleet's workers started together open one new index at once (each a process of its own; here
// threads, each with its own connections, which SQLite locks the same way). Every open succeeds:
// none fails with "database is locked" while another sets the database up.
TEST_F(StoreTest, OpenersOfOneNewDatabaseAtOnceAllSucceed) {
  for (int round = 0; round < 30; ++round) {
    const std::string path = dir_ + "/new" + std::to_string(round) + ".db";
    std::vector<Status> results(6);
    std::atomic<int> ready{0};
    std::vector<std::thread> openers;
    for (size_t i = 0; i < results.size(); ++i) {
      openers.emplace_back([&, i] {
        ready.fetch_add(1);
        while (ready.load() < static_cast<int>(results.size())) std::this_thread::yield();
        auto s = Store::Open(path);
        results[i] = s.ok() ? Status::Ok() : s.status();
      });
    }
    for (auto& t : openers) t.join();
    for (const Status& r : results) EXPECT_TRUE(r.ok()) << "round " << round << ": " << r.ToString();
  }
}

}  // namespace
}  // namespace fs
