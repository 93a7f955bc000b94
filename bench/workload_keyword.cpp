// Workload `keyword`: ingest N synthetic documents into a fresh Store (our CJK-aware tokenizer),
// then time 1-3 word BM25 queries (top 10 + exact total) three ways in the same run: our Store with
// its keyword accelerator (filesearch), our Store on FTS5 alone (filesearch-fts5), and the peer: the
// same text and queries on SQLite FTS5's stock unicode61 tokenizer (what a plain FTS5 design gets).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>

#include <sqlite3.h>

#include "bench/bench.h"
#include "bench/synthetic_docs.h"
#include "index/store.h"

namespace fs::bench {
namespace {

constexpr const char* kUsage =
    "Keyword search at scale: ingest rate (docs/s) and p50/p95 latency of 1-3 word BM25 queries,\n"
    "             filesearch's Store beside plain SQLite FTS5 (unicode61) in the same run.\n"
    "             --n 1000000  --queries 2000  --batch 5000  --dir /tmp/fs_bench_keyword  --seed 7\n"
    "             --keep (reuse an existing store in --dir: skips ingest)";

struct PlainFts {
  sqlite3* db = nullptr;
  ~PlainFts() { sqlite3_close(db); }
};

int RunKeyword(const Args& args) {
  const size_t n = static_cast<size_t>(args.Int("n", 1000000));
  const size_t nq = static_cast<size_t>(args.Int("queries", 2000));
  const size_t batch = static_cast<size_t>(args.Int("batch", 5000));
  const std::string dir = args.Str("dir", "/tmp/fs_bench_keyword");
  const bool keep = args.Has("keep");
  const auto seed = static_cast<uint64_t>(args.Int("seed", 7));
  if (!keep) std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::printf("# workload keyword: n=%zu queries=%zu batch=%zu dir=%s\n# cpu: %s\n", n, nq, batch, dir.c_str(),
              CpuDescription().c_str());

  auto store = Store::Open(dir + "/filesearch.db");
  if (!store.ok()) {
    std::fprintf(stderr, "keyword: %s\n", store.status().ToString().c_str());
    return 1;
  }
  PlainFts plain;
  sqlite3_open((dir + "/plain.db").c_str(), &plain.db);
  sqlite3_exec(plain.db,
               "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
               "CREATE TABLE IF NOT EXISTS docs(id INTEGER PRIMARY KEY, name, path, content); "
               "CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(name, path, content, content='docs', "
               "content_rowid='id', tokenize='unicode61 remove_diacritics 2');",
               nullptr, nullptr, nullptr);

  if (!keep || (*store)->Stats()->documents == 0) {
    DocGenerator gen(seed);
    std::vector<Document> docs;
    double ours_s = 0, plain_s = 0;
    sqlite3_stmt* ins = nullptr;
    sqlite3_prepare_v2(plain.db, "INSERT INTO docs(id, name, path, content) VALUES (?,?,?,?)", -1, &ins, nullptr);
    sqlite3_stmt* ins_fts = nullptr;
    sqlite3_prepare_v2(plain.db, "INSERT INTO fts(rowid, name, path, content) VALUES (?,?,?,?)", -1, &ins_fts, nullptr);
    for (size_t start = 0; start < n; start += batch) {
      docs.clear();
      for (size_t i = start; i < std::min(n, start + batch); ++i) docs.push_back(gen.Next(i));
      auto t0 = std::chrono::steady_clock::now();
      auto ids = (*store)->UpsertBatch(docs);
      ours_s += Seconds(t0);
      if (!ids.ok()) {
        std::fprintf(stderr, "keyword: ingest failed: %s\n", ids.status().ToString().c_str());
        return 1;
      }
      t0 = std::chrono::steady_clock::now();
      sqlite3_exec(plain.db, "BEGIN", nullptr, nullptr, nullptr);
      for (size_t i = 0; i < docs.size(); ++i) {
        for (sqlite3_stmt* s : {ins, ins_fts}) {
          sqlite3_bind_int64(s, 1, static_cast<sqlite3_int64>(start + i + 1));
          sqlite3_bind_text(s, 2, docs[i].name.c_str(), -1, SQLITE_STATIC);
          sqlite3_bind_text(s, 3, docs[i].path.c_str(), -1, SQLITE_STATIC);
          sqlite3_bind_text(s, 4, docs[i].content.c_str(), -1, SQLITE_STATIC);
          sqlite3_step(s);
          sqlite3_reset(s);
        }
      }
      sqlite3_exec(plain.db, "COMMIT", nullptr, nullptr, nullptr);
      plain_s += Seconds(t0);
      if ((start / batch) % 20 == 0) {
        std::fprintf(stderr, "\r  ingested %zu / %zu", std::min(n, start + batch), n);
      }
    }
    std::fprintf(stderr, "\n");
    sqlite3_finalize(ins);
    sqlite3_finalize(ins_fts);
    std::printf("\n%-12s %12s %12s\n", "ingest", "seconds", "docs/s");
    std::printf("%-12s %12.1f %12.0f\n", "filesearch", ours_s, static_cast<double>(n) / ours_s);
    std::printf("%-12s %12.1f %12.0f\n", "plain-fts5", plain_s, static_cast<double>(n) / plain_s);
    std::printf("(filesearch also maintains metadata indexes, uri uniqueness, hashes and the CJK tokenizer)\n");
  }

  // The same database opened a second time with the keyword accelerator (what `serve` runs).
  StoreOptions fast_opts;
  fast_opts.keyword_index = true;
  const size_t rss_before = ResidentBytes();
  auto fast = Store::Open(dir + "/filesearch.db", fast_opts);
  if (!fast.ok()) {
    std::fprintf(stderr, "keyword: %s\n", fast.status().ToString().c_str());
    return 1;
  }
  auto t_build = std::chrono::steady_clock::now();
  if (Status st = (*fast)->BuildKeywordIndex(); !st.ok()) {
    std::fprintf(stderr, "keyword: accelerator: %s\n", st.ToString().c_str());
    return 1;
  }
  const double build_s = Seconds(t_build);
  const KeywordIndexInfo info = (*fast)->KeywordIndexStatus();
  const size_t rss_delta = ResidentBytes() - rss_before;
  std::printf("\n# accelerator: %llu documents, %llu terms, %llu postings; built in %.1f s (a background build\n"
              "# at open may run beside this one); own accounting %.0f MiB (%.2f bytes/posting), RSS delta %.0f MiB\n",
              static_cast<unsigned long long>(info.documents), static_cast<unsigned long long>(info.terms),
              static_cast<unsigned long long>(info.postings), build_s, static_cast<double>(info.memory_bytes) / (1 << 20),
              static_cast<double>(info.memory_bytes) / static_cast<double>(std::max<uint64_t>(1, info.postings)),
              static_cast<double>(rss_delta) / (1 << 20));

  DocGenerator qgen(seed + 1000);
  std::vector<std::string> queries;
  for (size_t i = 0; i < nq; ++i) queries.push_back(qgen.Query());
  std::vector<double> fast_ms, ours_ms, plain_ms;
  uint64_t fast_hits = 0, ours_hits = 0, plain_hits = 0, same_top = 0;
  sqlite3_stmt* q = nullptr;
  sqlite3_prepare_v2(plain.db,
                     "SELECT rowid, bm25(fts, 10.0, 4.0, 1.0) AS r FROM fts WHERE fts MATCH ? ORDER BY r LIMIT 10",
                     -1, &q, nullptr);
  sqlite3_stmt* qc = nullptr;
  sqlite3_prepare_v2(plain.db, "SELECT count(*) FROM fts WHERE fts MATCH ?", -1, &qc, nullptr);
  for (int pass = 0; pass < 2; ++pass) {  // pass 0 warms the page cache
    for (const std::string& text : queries) {
      auto t0 = std::chrono::steady_clock::now();
      auto fpage = (*fast)->KeywordSearch(text, {}, 0, 10);
      double ms = Seconds(t0) * 1000;
      if (pass == 1) {
        fast_ms.push_back(ms);
        fast_hits += fpage.ok() ? fpage->total : 0;
      }
      t0 = std::chrono::steady_clock::now();
      auto page = (*store)->KeywordSearch(text, {}, 0, 10);
      ms = Seconds(t0) * 1000;
      if (pass == 1) {
        ours_ms.push_back(ms);
        ours_hits += page.ok() ? page->total : 0;
        bool same = page.ok() && fpage.ok() && page->hits.size() == fpage->hits.size();
        for (size_t i = 0; same && i < page->hits.size(); ++i) same = page->hits[i].id == fpage->hits[i].id;
        same_top += same;
      }
      std::string fts = BuildFtsQuery(text);
      t0 = std::chrono::steady_clock::now();
      for (sqlite3_stmt* s : {q, qc}) {
        sqlite3_bind_text(s, 1, fts.c_str(), -1, SQLITE_STATIC);
        while (sqlite3_step(s) == SQLITE_ROW) {
          if (s == qc && pass == 1) plain_hits += static_cast<uint64_t>(sqlite3_column_int64(s, 0));
        }
        sqlite3_reset(s);
      }
      if (pass == 1) plain_ms.push_back(Seconds(t0) * 1000);
    }
  }
  sqlite3_finalize(q);
  sqlite3_finalize(qc);
  auto f = Summarise(fast_ms), o = Summarise(ours_ms), p = Summarise(plain_ms);
  const KeywordIndexInfo after = (*fast)->KeywordIndexStatus();
  std::printf("\n%-18s %9s %9s %9s %9s %14s\n", "queries", "p50_ms", "p95_ms", "p99_ms", "mean_ms", "mean_total");
  auto row = [&](const char* name, const LatencyStats& x, uint64_t hits) {
    std::printf("%-18s %9.3f %9.3f %9.3f %9.3f %14.0f\n", name, x.p50_ms, x.p95_ms, x.p99_ms, x.mean_ms,
                static_cast<double>(hits) / static_cast<double>(nq));
  };
  row("filesearch", f, fast_hits);
  row("filesearch-fts5", o, ours_hits);
  row("plain-fts5", p, plain_hits);
  std::printf("p95 ratio filesearch/plain-fts5: %.3f; filesearch-fts5/plain-fts5: %.2f\n", f.p95_ms / p.p95_ms,
              o.p95_ms / p.p95_ms);
  std::printf("accelerator answered %llu queries, passed %llu to FTS5 (phrases, prefixes); identical top 10 with\n"
              "the FTS5 path on %.1f%% of queries\n",
              static_cast<unsigned long long>(after.served), static_cast<unsigned long long>(after.passed_to_fts),
              100.0 * static_cast<double>(same_top) / static_cast<double>(nq));
  return 0;
}

}  // namespace

FS_BENCH_WORKLOAD(keyword, "keyword", kUsage, RunKeyword);

}  // namespace fs::bench
