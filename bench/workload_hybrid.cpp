// Workload `hybrid`: the full hybrid path at scale. N synthetic documents (names, paths, text)
// each with a 512-d embedding, stored in a Store; the Engine's VectorIndex is built from it; then
// hybrid queries (1-3 keywords + a query vector, RRF, top 10) go through RunSearch end to end
// (BM25 leg, HNSW leg, fusion, metadata fetch). Peer in the same run: plain SQLite FTS5 + hnswlib,
// fused with the same RRF in the workload (the components a hand-built design would use).
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <unordered_map>

#include <sqlite3.h>

#include "bench/bench.h"
#include "bench/synthetic_docs.h"
#include "bench/vector_peer.h"
#include "engine/engine.h"
#include "vector/synthetic.h"

namespace fs::bench {
namespace {

constexpr const char* kUsage =
    "Hybrid search at scale: p50/p95 of keyword + vector queries (RRF, top 10) end to end through\n"
    "             the Engine, beside plain FTS5 + hnswlib fused the same way, in one run.\n"
    "             --n 1000000  --queries 1000  --dim 512  --ef 64  --dir /tmp/fs_bench_hybrid  --seed 11\n"
    "             --vectors M (default n: every document has an embedding; M < n: every (n/M)-th has one,\n"
    "             as when images are a fraction of the files)";

int RunHybrid(const Args& args) {
  const size_t n = static_cast<size_t>(args.Int("n", 1000000));
  const size_t nq = static_cast<size_t>(args.Int("queries", 1000));
  const auto dim = static_cast<uint32_t>(args.Int("dim", 512));
  const auto ef = static_cast<size_t>(args.Int("ef", 64));
  const std::string dir = args.Str("dir", "/tmp/fs_bench_hybrid");
  const auto seed = static_cast<uint64_t>(args.Int("seed", 11));
  const size_t stride = std::max<size_t>(1, n / std::max<size_t>(1, static_cast<size_t>(args.Int("vectors", static_cast<int64_t>(n)))));
  const size_t m = (n + stride - 1) / stride;  // documents with an embedding: i % stride == 0
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::printf("# workload hybrid: n=%zu vectors=%zu queries=%zu dim=%u ef=%zu\n# cpu: %s\n", n, m, nq, dim, ef,
              CpuDescription().c_str());

  vec::testing::SyntheticSpec spec{m, dim, std::max<size_t>(n / 1000, 10), 0.6f, seed};
  std::vector<float> vectors = vec::testing::MakeEmbeddings(spec, seed);
  vec::testing::SyntheticSpec qspec{nq, dim, spec.clusters, 0.6f, seed + 1};
  std::vector<float> qvecs = vec::testing::MakeEmbeddings(qspec, seed);

  EngineOptions eo;
  eo.data_dir = dir + "/data";
  eo.progress = false;
  eo.vectors.ef_search = static_cast<uint32_t>(ef);
  const std::string model = "bench/synthetic-512";
  auto t0 = std::chrono::steady_clock::now();
  {
    auto engine = Engine::Open(eo);
    if (!engine.ok()) { std::fprintf(stderr, "hybrid: %s\n", engine.status().ToString().c_str()); return 1; }
    DocGenerator gen(seed);
    std::vector<Document> docs;
    const size_t batch = 5000;
    for (size_t start = 0; start < n; start += batch) {
      docs.clear();
      for (size_t i = start; i < std::min(n, start + batch); ++i) docs.push_back(gen.Next(i));
      auto ids = (*engine)->store()->UpsertBatch(docs);
      if (!ids.ok()) { std::fprintf(stderr, "hybrid: %s\n", ids.status().ToString().c_str()); return 1; }
      std::vector<int64_t> with;
      std::vector<float> vecs;
      for (size_t k = 0; k < ids->size(); ++k) {
        if ((start + k) % stride) continue;
        with.push_back((*ids)[k]);
        const float* v = vectors.data() + (start + k) / stride * dim;
        vecs.insert(vecs.end(), v, v + dim);
      }
      Status s = with.empty() ? Status::Ok() : (*engine)->store()->PutEmbeddings(model, with, vecs, dim);
      if (!s.ok()) { std::fprintf(stderr, "hybrid: %s\n", s.ToString().c_str()); return 1; }
      std::fprintf(stderr, "\r  stored %zu / %zu", std::min(n, start + batch), n);
    }
    std::fprintf(stderr, "\n");
  }
  std::printf("# documents + embeddings stored in %.1f s\n", Seconds(t0));
  t0 = std::chrono::steady_clock::now();
  eo.model_id = model;
  eo.progress = true;
  eo.store.keyword_index = true;   // as `filesearch serve` runs
  auto engine = Engine::Open(eo);  // builds the HNSW index from the store
  if (!engine.ok()) { std::fprintf(stderr, "hybrid: %s\n", engine.status().ToString().c_str()); return 1; }
  if (Status st = (*engine)->store()->BuildKeywordIndex(); !st.ok()) {
    std::fprintf(stderr, "hybrid: keyword index: %s\n", st.ToString().c_str());
    return 1;
  }
  const KeywordIndexInfo kwi = (*engine)->store()->KeywordIndexStatus();
  std::printf("# filesearch vector index built from the store (%zu vectors) and keyword index ready (built in\n"
              "# %.1f s in the background, beside the vector build; %.0f MiB) after %.1f s\n",
              (*engine)->vectors()->size(), kwi.build_seconds, static_cast<double>(kwi.memory_bytes) / (1 << 20), Seconds(t0));

  // Peer: plain FTS5 over the same text, hnswlib over the same vectors.
  sqlite3* plain = nullptr;
  sqlite3_open((dir + "/plain.db").c_str(), &plain);
  sqlite3_exec(plain, "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF; CREATE VIRTUAL TABLE fts USING fts5(name, path, content, tokenize='unicode61 remove_diacritics 2');", nullptr, nullptr, nullptr);
  {
    DocGenerator gen(seed);
    sqlite3_stmt* ins = nullptr;
    sqlite3_prepare_v2(plain, "INSERT INTO fts(rowid, name, path, content) VALUES (?,?,?,?)", -1, &ins, nullptr);
    sqlite3_exec(plain, "BEGIN", nullptr, nullptr, nullptr);
    for (size_t i = 0; i < n; ++i) {
      Document d = gen.Next(i);
      sqlite3_bind_int64(ins, 1, static_cast<sqlite3_int64>(i + 1));
      sqlite3_bind_text(ins, 2, d.name.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(ins, 3, d.path.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(ins, 4, d.content.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_step(ins);
      sqlite3_reset(ins);
    }
    sqlite3_exec(plain, "COMMIT", nullptr, nullptr, nullptr);
    sqlite3_finalize(ins);
  }
  PeerConfig pc;
  pc.dim = dim;
  auto hnswlib = MakeHnswlibPeer(pc);
  t0 = std::chrono::steady_clock::now();
  hnswlib->Build(vectors.data(), m, 1);
  std::printf("# peer: hnswlib built in %.1f s\n", Seconds(t0));

  DocGenerator qgen(seed + 1000);
  std::vector<std::string> queries;
  for (size_t i = 0; i < nq; ++i) queries.push_back(qgen.Query());
  sqlite3_stmt* q = nullptr;
  sqlite3_prepare_v2(plain, "SELECT rowid FROM fts WHERE fts MATCH ? ORDER BY bm25(fts, 10.0, 4.0, 1.0) LIMIT 100", -1, &q, nullptr);
  sqlite3_stmt* qc = nullptr;
  sqlite3_prepare_v2(plain, "SELECT count(*) FROM fts WHERE fts MATCH ?", -1, &qc, nullptr);
  std::vector<double> ours_ms, peer_ms;
  size_t overlap = 0;
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < nq; ++i) {
      SearchRequest r;
      r.query = queries[i];
      r.vector.assign(qvecs.begin() + static_cast<ptrdiff_t>(i * dim), qvecs.begin() + static_cast<ptrdiff_t>((i + 1) * dim));
      r.vector_model = model;
      r.size = 10;
      auto t = std::chrono::steady_clock::now();
      auto res = (*engine)->Search(r);
      double ms = Seconds(t) * 1000;
      if (!res.ok()) { std::fprintf(stderr, "hybrid: %s\n", res.status().ToString().c_str()); return 1; }
      // Peer: FTS5 top 100 + count, hnswlib top 100, RRF k=60, top 10.
      t = std::chrono::steady_clock::now();
      std::unordered_map<int64_t, double> fused;
      std::string fts = BuildFtsQuery(queries[i]);
      sqlite3_bind_text(q, 1, fts.c_str(), -1, SQLITE_STATIC);
      size_t rank = 0;
      while (sqlite3_step(q) == SQLITE_ROW) fused[sqlite3_column_int64(q, 0)] += 1.0 / (60.0 + static_cast<double>(++rank));
      sqlite3_reset(q);
      sqlite3_bind_text(qc, 1, fts.c_str(), -1, SQLITE_STATIC);
      while (sqlite3_step(qc) == SQLITE_ROW) {}
      sqlite3_reset(qc);
      std::vector<uint64_t> labels(100);
      hnswlib->Search(r.vector.data(), 1, 100, std::max<size_t>(ef, 100), 1, labels.data());
      rank = 0;
      for (uint64_t l : labels) {
        if (l != UINT64_MAX) fused[static_cast<int64_t>(l * stride) + 1] += 1.0 / (60.0 + static_cast<double>(++rank));
      }
      std::vector<std::pair<double, int64_t>> top;
      for (auto& [id, s] : fused) top.push_back({-s, id});
      std::partial_sort(top.begin(), top.begin() + static_cast<ptrdiff_t>(std::min<size_t>(10, top.size())), top.end());
      double pms = Seconds(t) * 1000;
      if (pass == 1) {
        ours_ms.push_back(ms);
        peer_ms.push_back(pms);
        for (size_t h = 0; h < res->hits.size() && h < top.size(); ++h) {
          for (size_t g = 0; g < std::min<size_t>(10, top.size()); ++g) {
            if (top[g].second == res->hits[h].doc.id) { ++overlap; break; }
          }
        }
      }
    }
  }
  sqlite3_finalize(q);
  sqlite3_finalize(qc);
  sqlite3_close(plain);
  auto o = Summarise(ours_ms), p = Summarise(peer_ms);
  std::printf("\n%-22s %9s %9s %9s %9s\n", "hybrid (1 thread)", "p50_ms", "p95_ms", "p99_ms", "mean_ms");
  std::printf("%-22s %9.2f %9.2f %9.2f %9.2f\n", "filesearch", o.p50_ms, o.p95_ms, o.p99_ms, o.mean_ms);
  std::printf("%-22s %9.2f %9.2f %9.2f %9.2f\n", "plain-fts5 + hnswlib", p.p50_ms, p.p95_ms, p.p99_ms, p.mean_ms);
  std::printf("p95 ratio filesearch/peer: %.2f; top-10 agreement with the peer: %.1f%%\n", o.p95_ms / p.p95_ms,
              100.0 * static_cast<double>(overlap) / static_cast<double>(nq * 10));
  std::printf("(filesearch's time includes exact totals, fusion bookkeeping and fetching each hit's metadata)\n");
  const KeywordIndexInfo kwa = (*engine)->store()->KeywordIndexStatus();
  std::printf("keyword leg: %llu searches on the accelerator, %llu on FTS5\n", static_cast<unsigned long long>(kwa.served),
              static_cast<unsigned long long>(kwa.passed_to_fts));
  return 0;
}

}  // namespace

FS_BENCH_WORKLOAD(hybrid, "hybrid", kUsage, RunHybrid);

}  // namespace fs::bench
