#include "index/keyword_index.h"

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cmath>
#include <mutex>
#include <queue>
#include <unordered_set>

#include "core/utf8.h"
#include "index/fts_tokenizer.h"

namespace fs::index_internal {
namespace {

constexpr size_t kBlock = 128;
constexpr double kK1 = 1.2;  // FTS5 bm25() constants
constexpr double kB = 0.75;

// The store's "filesearch" FTS5 tokenizer, called directly. One instance is not thread-safe
// (unicode61 folds into a buffer it owns): callers serialise.
class Tokenizer {
 public:
  static Result<std::unique_ptr<Tokenizer>> Open(sqlite3* db) {
    fts5_api* api = nullptr;
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &stmt, nullptr) != SQLITE_OK) {
      return Status::Internal("FTS5 is not available in this SQLite");
    }
    sqlite3_bind_pointer(stmt, 1, static_cast<void*>(&api), "fts5_api_ptr", nullptr);
    sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    if (!api) return Status::Internal("FTS5 API pointer unavailable");
    auto t = std::unique_ptr<Tokenizer>(new Tokenizer());
    void* user = nullptr;
    if (api->xFindTokenizer(api, "filesearch", &user, &t->api_) != SQLITE_OK ||
        t->api_.xCreate(user, nullptr, 0, &t->inst_) != SQLITE_OK) {
      return Status::Internal("the 'filesearch' tokenizer is not registered on this connection");
    }
    return t;
  }
  ~Tokenizer() {
    if (inst_) api_.xDelete(inst_);
  }
  // fn(token, colocated) for each token of `text`.
  template <class Fn>
  Status Run(std::string_view text, bool query, Fn&& fn) {
    struct Ctx {
      Fn* fn;
    } ctx{&fn};
    auto cb = [](void* p, int tflags, const char* tok, int n, int, int) -> int {
      (*static_cast<Ctx*>(p)->fn)(std::string_view(tok, static_cast<size_t>(n)), (tflags & FTS5_TOKEN_COLOCATED) != 0);
      return SQLITE_OK;
    };
    int rc = api_.xTokenize(inst_, &ctx, query ? FTS5_TOKENIZE_QUERY : FTS5_TOKENIZE_DOCUMENT, text.data(),
                            static_cast<int>(text.size()), cb);
    return rc == SQLITE_OK ? Status::Ok() : Status::Internal("tokenizer failed with SQLite code " + std::to_string(rc));
  }

 private:
  Tokenizer() = default;
  fts5_tokenizer api_{};
  Fts5Tokenizer* inst_ = nullptr;
};

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
};

// Term frequencies of one term in one document, per column (name, path, content, name_parts,
// path_parts: the order of doc_fts's columns).
constexpr int kColumns = 5;
struct Tf {
  std::array<uint32_t, kColumns> col{};
  bool operator==(const Tf& o) const { return col == o.col; }
};
struct TfHash {
  size_t operator()(const Tf& tf) const {
    uint64_t h = 1469598103934665603ull;
    for (uint32_t v : tf.col) h = (h ^ v) * 1099511628211ull;
    return static_cast<size_t>(h);
  }
};

// A tokenized document: its FTS5 size and its terms with frequencies.
struct TokenizedDoc {
  uint32_t id = 0;
  uint32_t len = 0;
  std::vector<std::pair<std::string, Tf>> terms;
  // What filters look at.
  std::string path, mime, ext;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  std::optional<int64_t> taken_ns;
};

// `name`, `path`, `content` as the documents table holds them; the parts columns are derived as
// the store's doc_fts_source view derives them.
Status TokenizeDoc(Tokenizer* tok, uint32_t id, std::string_view name, std::string_view path, std::string_view content,
                   TokenizedDoc* out, std::vector<std::pair<std::string, int>>* scratch) {
  out->id = id;
  out->len = 0;
  out->terms.clear();
  scratch->clear();
  const std::string name_parts = kPartsMarker + std::string(name), path_parts = kPartsMarker + std::string(path);
  const std::string_view cols[kColumns] = {name, path, content, name_parts, path_parts};
  for (int c = 0; c < kColumns; ++c) {
    uint32_t size = 0;
    // Copy each token at once: unicode61 folds Latin tokens into a buffer the next one reuses.
    FS_RETURN_IF_ERROR(tok->Run(cols[c], false, [&](std::string_view t, bool colocated) {
      if (!colocated || size == 0) ++size;  // FTS5's own count (fts5StorageInsertCallback)
      scratch->emplace_back(std::string(t), c);
    }));
    out->len += size;
  }
  auto& owned = *scratch;
  std::sort(owned.begin(), owned.end());
  for (size_t i = 0; i < owned.size();) {
    size_t j = i;
    Tf tf;
    while (j < owned.size() && owned[j].first == owned[i].first) {
      ++tf.col[static_cast<size_t>(owned[j].second)];
      ++j;
    }
    out->terms.emplace_back(std::move(owned[i].first), tf);
    i = j;
  }
  return Status::Ok();
}

}  // namespace

std::vector<QueryWord> SplitQueryWords(std::string_view query) {
  std::vector<QueryWord> out;
  size_t pos = 0;
  while (pos < query.size()) {
    while (pos < query.size() && std::isspace(static_cast<unsigned char>(query[pos]))) ++pos;
    size_t start = pos;
    while (pos < query.size() && !std::isspace(static_cast<unsigned char>(query[pos]))) ++pos;
    std::string_view word = query.substr(start, pos - start);
    if (word.empty()) continue;
    bool prefix = word.size() > 1 && word.back() == '*';
    if (prefix) word.remove_suffix(1);
    // A word made only of ASCII punctuation has no tokens: skip it rather than match nothing.
    bool has_token_char = false;
    for (unsigned char c : word) {
      if (c >= 0x80 || std::isalnum(c)) {
        has_token_char = true;
        break;
      }
    }
    if (!has_token_char) continue;
    out.push_back({IsValidUtf8(word) ? std::string(word) : RepairUtf8(word), prefix});
  }
  return out;
}

struct KeywordIndex::Impl {
  KeywordWeights weights;
  std::unique_ptr<Tokenizer> tokenizer;
  std::mutex tok_mu;      // guards tokenizer
  std::mutex catchup_mu;  // one CatchUp at a time

  mutable std::shared_mutex mu;  // guards everything below
  std::unordered_map<std::string, uint32_t, StringHash, std::equal_to<>> vocab;
  // Distinct (name, path, content) frequency triples; postings store an index into these.
  std::unordered_map<Tf, uint16_t, TfHash> code_of;
  std::vector<double> code_freq;  // weighted frequency, as bm25() sums it

  struct Block {
    uint32_t last_doc;
    uint32_t min_len;
    double max_freq;
  };
  struct List {
    std::vector<uint32_t> docs;
    std::vector<uint16_t> codes;
    std::vector<Block> blocks;
  };
  std::vector<List> lists;          // by term id (terms new since the build have empty lists)
  std::vector<uint32_t> doc_len;    // by doc id, base documents
  // Filter fields of base documents, by doc id; paths in one arena.
  struct Meta {
    uint16_t mime = 0, ext = 0;
    uint32_t path_len = 0;
    uint64_t path_off = 0;
    uint64_t size = 0;
    int64_t mtime_ns = 0;
    int64_t taken_ns = 0;
    bool has_taken = false;
  };
  std::vector<Meta> meta;
  std::string path_arena;
  // Dictionaries of MIME types and extensions (filters compare ids).
  std::vector<std::string> mimes, exts;
  std::unordered_map<std::string, uint16_t, StringHash, std::equal_to<>> mime_id, ext_id;
  std::vector<uint8_t> live;        // by doc id: 1 = in the base and current
  uint64_t base_live = 0, base_tokens = 0, base_masked = 0, postings = 0;

  struct DeltaDoc {
    uint32_t len;
    std::vector<std::pair<uint32_t, uint16_t>> terms;  // (term, code), sorted by term
    Meta meta;         // path_off/path_len unused: the path is kept here
    std::string path;
  };
  std::unordered_map<uint32_t, DeltaDoc> delta;
  std::unordered_map<uint32_t, std::vector<uint32_t>> delta_postings;  // term -> delta docs
  uint64_t delta_tokens = 0;

  uint64_t applied_seq = 0;
  double build_seconds = 0;

  Result<uint16_t> Code(const Tf& tf) {
    auto [it, inserted] = code_of.try_emplace(tf, static_cast<uint16_t>(code_freq.size()));
    if (inserted) {
      if (code_freq.size() >= 65535) return Status::ResourceExhausted("too many distinct term frequencies");
      code_freq.push_back(tf.col[0] * weights.name + tf.col[1] * weights.path + tf.col[2] * weights.content +
                          tf.col[3] * weights.name_parts + tf.col[4] * weights.path_parts);
    }
    return it->second;
  }
  Result<uint16_t> DictId(std::string_view v, std::vector<std::string>* names,
                          std::unordered_map<std::string, uint16_t, StringHash, std::equal_to<>>* ids) {
    auto it = ids->find(v);
    if (it != ids->end()) return it->second;
    if (names->size() >= 65535) return Status::ResourceExhausted("too many distinct MIME types or extensions");
    auto id = static_cast<uint16_t>(names->size());
    names->emplace_back(v);
    ids->emplace(std::string(v), id);
    return id;
  }
  Result<Meta> MetaOf(const TokenizedDoc& d) {
    Meta mt;
    FS_ASSIGN_OR_RETURN(mt.mime, DictId(d.mime, &mimes, &mime_id));
    FS_ASSIGN_OR_RETURN(mt.ext, DictId(d.ext, &exts, &ext_id));
    mt.size = d.size;
    mt.mtime_ns = d.mtime_ns;
    mt.has_taken = d.taken_ns.has_value();
    mt.taken_ns = d.taken_ns.value_or(0);
    return mt;
  }
  uint32_t Intern(std::string_view term) {
    auto it = vocab.find(term);
    if (it != vocab.end()) return it->second;
    uint32_t id = static_cast<uint32_t>(vocab.size());
    vocab.emplace(std::string(term), id);
    lists.emplace_back();
    return id;
  }

  void RemoveDelta(uint32_t id) {
    auto it = delta.find(id);
    if (it == delta.end()) return;
    for (auto [term, code] : it->second.terms) {
      auto& v = delta_postings[term];
      v.erase(std::remove(v.begin(), v.end(), id), v.end());
      if (v.empty()) delta_postings.erase(term);
    }
    delta_tokens -= it->second.len;
    delta.erase(it);
  }
  void MaskBase(uint32_t id) {
    if (id < live.size() && live[id]) {
      live[id] = 0;
      --base_live;
      base_tokens -= doc_len[id];
      ++base_masked;
    }
  }
  Status ApplyUpsert(const TokenizedDoc& d) {
    MaskBase(d.id);
    RemoveDelta(d.id);
    FS_ASSIGN_OR_RETURN(Meta mt, MetaOf(d));
    DeltaDoc dd{d.len, {}, mt, d.path};
    for (const auto& [t, tf] : d.terms) {
      FS_ASSIGN_OR_RETURN(uint16_t code, Code(tf));
      uint32_t term = Intern(t);
      dd.terms.emplace_back(term, code);
      delta_postings[term].push_back(d.id);
    }
    std::sort(dd.terms.begin(), dd.terms.end());
    delta_tokens += d.len;
    delta.emplace(d.id, std::move(dd));
    return Status::Ok();
  }
  void ApplyDelete(uint32_t id) {
    MaskBase(id);
    RemoveDelta(id);
  }

  uint64_t LiveDocs() const { return base_live + delta.size(); }

  // Documents currently holding `term` (base minus masked, plus delta).
  uint64_t LiveDf(uint32_t term) const {
    uint64_t n = 0;
    if (term < lists.size()) {
      const List& l = lists[term];
      if (base_masked == 0) {
        n = l.docs.size();
      } else {
        for (uint32_t d : l.docs) n += live[d];
      }
    }
    auto it = delta_postings.find(term);
    if (it != delta_postings.end()) n += it->second.size();
    return n;
  }

  void FinishBlocks() {
    for (List& l : lists) {
      l.docs.shrink_to_fit();
      l.codes.shrink_to_fit();
      l.blocks.clear();
      for (size_t s = 0; s < l.docs.size(); s += kBlock) {
        size_t e = std::min(l.docs.size(), s + kBlock);
        Block b{l.docs[e - 1], UINT32_MAX, 0};
        for (size_t i = s; i < e; ++i) {
          b.min_len = std::min(b.min_len, doc_len[l.docs[i]]);
          b.max_freq = std::max(b.max_freq, code_freq[l.codes[i]]);
        }
        l.blocks.push_back(b);
      }
      postings += l.docs.size();
    }
  }
};

KeywordIndex::KeywordIndex(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KeywordIndex::~KeywordIndex() = default;

namespace {

// BEGIN ... COMMIT of a read transaction, so that the log position and the rows agree.
class ReadTxn {
 public:
  explicit ReadTxn(Db* db) : db_(db) {}
  ~ReadTxn() {
    if (open_) (void)db_->Exec("COMMIT");
  }
  Status Begin() {
    FS_RETURN_IF_ERROR(db_->Exec("BEGIN"));
    open_ = true;
    return Status::Ok();
  }

 private:
  Db* db_;
  bool open_ = false;
};

// The columns both the build and the catch-up read: text to tokenize, then what filters need.
constexpr const char* kDocFields = "id, name, path, content, mime, ext, size, mtime_ns, taken_ns";
void ReadFilterFields(const Stmt& s, TokenizedDoc* d) {
  d->path = s.Text(2);
  d->mime = s.Text(4);
  d->ext = s.Text(5);
  d->size = static_cast<uint64_t>(s.Int(6));
  d->mtime_ns = s.Int(7);
  d->taken_ns.reset();
  if (sqlite3_column_type(s.get(), 8) != SQLITE_NULL) d->taken_ns = s.Int(8);
}

Result<uint64_t> QueryU64(Db* db, const char* sql) {
  FS_ASSIGN_OR_RETURN(Stmt s, db->Prepare(sql));
  FS_ASSIGN_OR_RETURN(bool row, s.Step());
  return row ? static_cast<uint64_t>(s.Int(0)) : 0;
}

}  // namespace

Result<std::unique_ptr<KeywordIndex>> KeywordIndex::Build(Db* db, const KeywordWeights& weights,
                                                          const std::atomic<bool>* cancel) {
  const auto t0 = std::chrono::steady_clock::now();
  auto impl = std::make_unique<Impl>();
  impl->weights = weights;
  FS_ASSIGN_OR_RETURN(impl->tokenizer, Tokenizer::Open(db->get()));
  ReadTxn txn(db);
  FS_RETURN_IF_ERROR(txn.Begin());
  FS_ASSIGN_OR_RETURN(impl->applied_seq, QueryU64(db, "SELECT coalesce(max(seq), 0) FROM doc_log"));
  FS_ASSIGN_OR_RETURN(uint64_t max_id, QueryU64(db, "SELECT coalesce(max(id), 0) FROM documents"));
  if (max_id >= UINT32_MAX) return Status::Unsupported("document ids beyond 2^32: keyword index not built");
  impl->doc_len.assign(max_id + 1, 0);
  impl->live.assign(max_id + 1, 0);
  impl->meta.assign(max_id + 1, Impl::Meta{});
  FS_ASSIGN_OR_RETURN(Stmt s, db->Prepare(std::string("SELECT ") + kDocFields + " FROM documents ORDER BY id"));
  TokenizedDoc doc;
  std::vector<std::pair<std::string, int>> scratch;
  uint64_t n = 0;
  while (true) {
    FS_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    if (cancel && (++n % 1024) == 0 && cancel->load(std::memory_order_relaxed)) return Status::Unavailable("keyword index build cancelled");
    auto col = [&](int i) {
      auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s.get(), i));
      return std::string_view(p ? p : "", static_cast<size_t>(sqlite3_column_bytes(s.get(), i)));
    };
    const uint32_t id = static_cast<uint32_t>(s.Int(0));
    const std::string_view path = col(2);
    FS_RETURN_IF_ERROR(TokenizeDoc(impl->tokenizer.get(), id, col(1), path, col(3), &doc, &scratch));
    ReadFilterFields(s, &doc);
    FS_ASSIGN_OR_RETURN(Impl::Meta mt, impl->MetaOf(doc));
    mt.path_off = impl->path_arena.size();
    mt.path_len = static_cast<uint32_t>(path.size());
    impl->path_arena.append(path);
    impl->meta[id] = mt;
    impl->doc_len[id] = doc.len;
    impl->live[id] = 1;
    ++impl->base_live;
    impl->base_tokens += doc.len;
    for (const auto& [t, tf] : doc.terms) {
      FS_ASSIGN_OR_RETURN(uint16_t code, impl->Code(tf));
      Impl::List& l = impl->lists[impl->Intern(t)];
      l.docs.push_back(id);
      l.codes.push_back(code);
    }
  }
  impl->FinishBlocks();
  impl->path_arena.shrink_to_fit();
  impl->build_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return std::unique_ptr<KeywordIndex>(new KeywordIndex(std::move(impl)));
}

Status KeywordIndex::CatchUp(Db* db) {
  Impl& m = *impl_;
  FS_ASSIGN_OR_RETURN(uint64_t last, QueryU64(db, "SELECT coalesce(max(seq), 0) FROM doc_log"));
  {
    std::shared_lock lock(m.mu);
    if (last == m.applied_seq) return Status::Ok();
  }
  std::lock_guard one(m.catchup_mu);
  uint64_t from;
  {
    std::shared_lock lock(m.mu);
    from = m.applied_seq;
  }
  ReadTxn txn(db);
  FS_RETURN_IF_ERROR(txn.Begin());
  FS_ASSIGN_OR_RETURN(uint64_t min_seq, QueryU64(db, "SELECT coalesce(min(seq), 0) FROM doc_log"));
  if (min_seq > from + 1) {
    return Status::FailedPrecondition("the document log was trimmed past the keyword index: rebuild it");
  }
  FS_ASSIGN_OR_RETURN(Stmt s, db->Prepare("SELECT seq, doc_id FROM doc_log WHERE seq > ? ORDER BY seq"));
  s.Bind(1, static_cast<int64_t>(from));
  std::vector<uint32_t> ids;
  std::unordered_set<uint32_t> seen;
  uint64_t to = from;
  while (true) {
    FS_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    to = static_cast<uint64_t>(s.Int(0));
    auto id = static_cast<uint32_t>(s.Int(1));
    if (seen.insert(id).second) ids.push_back(id);
  }
  FS_ASSIGN_OR_RETURN(Stmt get, db->Prepare(std::string("SELECT ") + kDocFields + " FROM documents WHERE id = ?"));
  std::vector<TokenizedDoc> upserts;
  std::vector<uint32_t> deletes;
  {
    std::lock_guard tl(m.tok_mu);
    std::vector<std::pair<std::string, int>> scratch;
    for (uint32_t id : ids) {
      get.Reset();
      get.Bind(1, static_cast<int64_t>(id));
      FS_ASSIGN_OR_RETURN(bool row, get.Step());
      if (!row) {
        deletes.push_back(id);
        continue;
      }
      std::string a = get.Text(1), b = get.Text(2), c = get.Text(3);
      upserts.emplace_back();
      FS_RETURN_IF_ERROR(TokenizeDoc(m.tokenizer.get(), id, a, b, c, &upserts.back(), &scratch));
      ReadFilterFields(get, &upserts.back());
    }
  }
  std::unique_lock lock(m.mu);
  for (uint32_t id : deletes) m.ApplyDelete(id);
  for (const TokenizedDoc& d : upserts) FS_RETURN_IF_ERROR(m.ApplyUpsert(d));
  m.applied_seq = to;
  return Status::Ok();
}

bool KeywordIndex::WantsRebuild() const {
  std::shared_lock lock(impl_->mu);
  const uint64_t limit = std::max<uint64_t>(20000, impl_->base_live / 8);
  return impl_->delta.size() > limit || impl_->base_masked > limit;
}

namespace {

struct Hit {
  double score;
  uint32_t id;
};
// Heap order: the worst hit (lowest score, then highest id) on top.
struct WorseFirst {
  bool operator()(const Hit& a, const Hit& b) const {
    return a.score != b.score ? a.score > b.score : a.id < b.id;
  }
};

class TopK {
 public:
  TopK(size_t k, const std::optional<KeywordAfter>& after) : k_(k), after_(after) {}
  void Offer(double score, uint32_t id) {
    if (after_ && !(score < after_->score || (score == after_->score && id > after_->id))) return;
    if (heap_.size() < k_) {
      heap_.push({score, id});
    } else if (k_ > 0 && WorseFirst()({score, id}, heap_.top())) {
      heap_.pop();
      heap_.push({score, id});
    }
  }
  bool Full() const { return heap_.size() >= k_; }
  // Lowest score that still enters (valid when Full()).
  double Threshold() const { return heap_.top().score; }
  std::vector<Hit> Sorted() {
    std::vector<Hit> out;
    while (!heap_.empty()) {
      out.push_back(heap_.top());
      heap_.pop();
    }
    std::reverse(out.begin(), out.end());
    return out;
  }

 private:
  size_t k_;
  std::optional<KeywordAfter> after_;
  std::priority_queue<Hit, std::vector<Hit>, WorseFirst> heap_;
};

}  // namespace

Result<std::optional<KeywordPage>> KeywordIndex::Search(std::string_view query, size_t offset, size_t limit,
                                                        const std::optional<KeywordAfter>& after,
                                                        const SearchFilters& filters, bool count_total) const {
  Impl& m = *impl_;
  // 1. Words, exactly as BuildFtsQuery splits them; each must be a single token.
  std::vector<std::string> terms;
  {
    std::lock_guard tl(m.tok_mu);
    for (const auto& word : SplitQueryWords(query)) {
      if (word.prefix) return std::optional<KeywordPage>();  // prefix: FTS5
      const std::string& w = word.text;
      std::vector<std::string> toks;
      FS_RETURN_IF_ERROR(m.tokenizer->Run(w, true, [&](std::string_view t, bool) { toks.emplace_back(t); }));
      if (toks.size() != 1) return std::optional<KeywordPage>();  // a phrase: FTS5
      terms.push_back(std::move(toks[0]));
    }
  }
  KeywordPage page;
  if (terms.empty()) return std::optional<KeywordPage>(std::move(page));

  std::shared_lock lock(m.mu);
  // Filters, compiled against the dictionaries: the same semantics as the SQL of the FTS5 path.
  const bool filtered = !filters.empty();
  std::vector<uint8_t> mime_ok, ext_ok;
  if (!filters.types.empty()) {
    mime_ok.assign(m.mimes.size(), 0);
    for (size_t i = 0; i < m.mimes.size(); ++i) {
      for (const std::string& t : filters.types) {
        const bool family = t.find('/') == std::string::npos;
        if (family ? m.mimes[i].rfind(t + "/", 0) == 0 : m.mimes[i] == t) mime_ok[i] = 1;
      }
    }
  }
  if (!filters.extensions.empty()) {
    ext_ok.assign(m.exts.size(), 0);
    for (std::string e : filters.extensions) {
      if (!e.empty() && e[0] == '.') e.erase(0, 1);
      for (auto& c : e) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      auto it = m.ext_id.find(e);
      if (it != m.ext_id.end()) ext_ok[it->second] = 1;
    }
  }
  auto passes = [&](const Impl::Meta& mt, std::string_view path) {
    if (!mime_ok.empty() && !mime_ok[mt.mime]) return false;
    if (!ext_ok.empty() && !ext_ok[mt.ext]) return false;
    if (filters.min_size && mt.size < *filters.min_size) return false;
    if (filters.max_size && mt.size > *filters.max_size) return false;
    if (filters.min_mtime_ns && mt.mtime_ns < *filters.min_mtime_ns) return false;
    if (filters.max_mtime_ns && mt.mtime_ns > *filters.max_mtime_ns) return false;
    if ((filters.min_taken_ns || filters.max_taken_ns) && !mt.has_taken) return false;
    if (filters.min_taken_ns && mt.taken_ns < *filters.min_taken_ns) return false;
    if (filters.max_taken_ns && mt.taken_ns > *filters.max_taken_ns) return false;
    return filters.path_prefix.empty() || path.substr(0, filters.path_prefix.size()) == filters.path_prefix;
  };
  auto base_passes = [&](uint32_t d) {
    const Impl::Meta& mt = m.meta[d];
    return !filtered || passes(mt, std::string_view(m.path_arena).substr(mt.path_off, mt.path_len));
  };
  auto delta_passes = [&](const Impl::DeltaDoc& dd) { return !filtered || passes(dd.meta, dd.path); };
  const uint64_t n_rows = m.LiveDocs();
  std::vector<uint32_t> ids;
  for (const auto& t : terms) {
    auto it = m.vocab.find(t);
    if (it == m.vocab.end()) return std::optional<KeywordPage>(std::move(page));  // AND with an unknown word
    ids.push_back(it->second);
  }
  // 2. BM25 statistics, as fts5Bm25GetData computes them.
  const double avgdl = static_cast<double>(m.base_tokens + m.delta_tokens) / static_cast<double>(n_rows);
  const size_t np = ids.size();
  std::vector<double> idf(np);
  std::vector<uint64_t> df(np);
  for (size_t i = 0; i < np; ++i) {
    df[i] = m.LiveDf(ids[i]);
    if (df[i] == 0) return std::optional<KeywordPage>(std::move(page));
    double v = std::log((static_cast<double>(n_rows) - static_cast<double>(df[i]) + 0.5) /
                        (static_cast<double>(df[i]) + 0.5));
    if (v <= 0.0) v = 1e-6;
    idf[i] = v;
  }
  // One phrase's term of the score, written as fts5Bm25Function writes it.
  auto term_score = [&](double freq, double D) {
    return (freq * (kK1 + 1.0)) / (freq + kK1 * (1 - kB + kB * D / avgdl));
  };
  std::vector<double> freq(np);
  auto score_of = [&](double D) {
    double score = 0.0;
    for (size_t i = 0; i < np; ++i) score += idf[i] * term_score(freq[i], D);
    return score;
  };
  TopK top(offset + limit, after);
  const Impl::List kEmpty;
  auto list_of = [&](uint32_t term) -> const Impl::List& { return term < m.lists.size() ? m.lists[term] : kEmpty; };
  auto delta_of = [&](uint32_t term) -> const std::vector<uint32_t>* {
    auto it = m.delta_postings.find(term);
    return it == m.delta_postings.end() ? nullptr : &it->second;
  };
  auto delta_code = [&](const Impl::DeltaDoc& dd, uint32_t term) -> int {
    auto it = std::lower_bound(dd.terms.begin(), dd.terms.end(), std::make_pair(term, uint16_t{0}));
    return it != dd.terms.end() && it->first == term ? it->second : -1;
  };
  uint64_t total = 0;

  if (np == 1) {
    // 3a. One word: blocks by their score bound, best first, until no block can enter the top.
    const Impl::List& l = list_of(ids[0]);
    std::vector<std::pair<double, uint32_t>> order;
    order.reserve(l.blocks.size());
    for (uint32_t b = 0; b < l.blocks.size(); ++b) {
      double ub = idf[0] * term_score(l.blocks[b].max_freq, l.blocks[b].min_len);
      order.emplace_back(ub * (1 + 1e-9), b);  // margin for rounding: the bound must not undercut
    }
    std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    // With filters the total is the number of documents that pass: every block is visited.
    for (const auto& [ub, b] : order) {
      if (!filtered && top.Full() && ub < top.Threshold()) break;
      const size_t s = size_t{b} * kBlock, e = std::min(l.docs.size(), s + kBlock);
      for (size_t i = s; i < e; ++i) {
        const uint32_t d = l.docs[i];
        if (!m.live[d] || !base_passes(d)) continue;
        ++total;
        freq[0] = m.code_freq[l.codes[i]];
        top.Offer(score_of(m.doc_len[d]), d);
      }
    }
    if (const auto* dl = delta_of(ids[0])) {
      for (uint32_t d : *dl) {
        const auto& dd = m.delta.at(d);
        if (!delta_passes(dd)) continue;
        ++total;
        freq[0] = m.code_freq[static_cast<size_t>(delta_code(dd, ids[0]))];
        top.Offer(score_of(dd.len), d);
      }
    }
    if (!filtered) total = df[0];
  } else {
    // 3b. Several words: intersect the base lists, the shortest leading, skipping blocks.
    size_t shortest = 0;
    for (size_t i = 1; i < np; ++i) {
      if (list_of(ids[i]).docs.size() < list_of(ids[shortest]).docs.size()) shortest = i;
    }
    const Impl::List& lead = list_of(ids[shortest]);
    std::vector<size_t> pos(np, 0), blk(np, 0);
    for (size_t li = 0; li < lead.docs.size(); ++li) {
      const uint32_t d = lead.docs[li];
      if (!m.live[d]) continue;
      freq[shortest] = m.code_freq[lead.codes[li]];
      bool all = true;
      for (size_t p = 0; p < np && all; ++p) {
        if (p == shortest) continue;
        const Impl::List& l = list_of(ids[p]);
        while (blk[p] < l.blocks.size() && l.blocks[blk[p]].last_doc < d) ++blk[p];
        if (blk[p] == l.blocks.size()) { all = false; break; }
        pos[p] = std::max(pos[p], blk[p] * kBlock);
        while (l.docs[pos[p]] < d) ++pos[p];
        if (l.docs[pos[p]] != d) { all = false; break; }
        freq[p] = m.code_freq[l.codes[pos[p]]];
      }
      if (!all || !base_passes(d)) continue;
      ++total;
      top.Offer(score_of(m.doc_len[d]), d);
    }
    // Delta documents: the word with the fewest delta documents leads, the others are looked up.
    const std::vector<uint32_t>* dlead = nullptr;
    size_t dlead_i = 0;
    for (size_t i = 0; i < np; ++i) {
      const auto* dl = delta_of(ids[i]);
      if (!dl) { dlead = nullptr; dlead_i = np; break; }
      if (!dlead || dl->size() < dlead->size()) { dlead = dl; dlead_i = i; }
    }
    if (dlead_i < np && dlead) {
      for (uint32_t d : *dlead) {
        const auto& dd = m.delta.at(d);
        bool all = true;
        for (size_t i = 0; i < np && all; ++i) {
          int code = delta_code(dd, ids[i]);
          if (code < 0) all = false;
          else freq[i] = m.code_freq[static_cast<size_t>(code)];
        }
        if (!all || !delta_passes(dd)) continue;
        ++total;
        top.Offer(score_of(dd.len), d);
      }
    }
  }
  (void)count_total;  // the total falls out of the work above at no extra cost
  std::vector<Hit> hits = top.Sorted();
  for (size_t i = offset; i < hits.size() && page.hits.size() < limit; ++i) page.hits.push_back({hits[i].id, hits[i].score});
  page.total = total;
  return std::optional<KeywordPage>(std::move(page));
}

KeywordIndexStats KeywordIndex::Stats() const {
  std::shared_lock lock(impl_->mu);
  const Impl& m = *impl_;
  KeywordIndexStats st;
  st.documents = m.LiveDocs();
  st.terms = m.vocab.size();
  st.postings = m.postings;
  st.delta_documents = m.delta.size();
  st.applied_seq = m.applied_seq;
  st.build_seconds = m.build_seconds;
  uint64_t bytes = m.doc_len.capacity() * 4 + m.live.capacity() + m.code_freq.capacity() * 8 +
                   m.meta.capacity() * sizeof(Impl::Meta) + m.path_arena.capacity();
  for (const auto& l : m.lists) {
    bytes += sizeof(l) + l.docs.capacity() * 4 + l.codes.capacity() * 2 + l.blocks.capacity() * sizeof(Impl::Block);
  }
  for (const auto& [t, id] : m.vocab) bytes += t.capacity() + 48;
  for (const auto& [id, dd] : m.delta) bytes += 96 + dd.terms.capacity() * 8 + dd.path.capacity();
  st.memory_bytes = bytes;
  return st;
}

}  // namespace fs::index_internal
