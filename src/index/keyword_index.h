// Internal header of index/: the in-memory keyword accelerator.
//
// SQLite's FTS5 finds the documents of a query quickly but scores every one of them with bm25()
// before ORDER BY ... LIMIT can keep ten: a frequent word at 1M documents means 100,000+ calls,
// each reading the row's size from a B-tree. This index holds, beside FTS5 and derived from the
// same rows, per-term posting lists in document order cut into blocks of 128 with the block's
// best possible BM25 term score (from its largest term frequency and shortest document).
//
// - One-word queries visit blocks in order of that bound and stop as soon as the bound falls
//   below the tenth score found ("block-max" top-k); the total is the term's document count.
// - Several words (AND) intersect the lists, shortest first, skipping whole blocks by their last
//   document id, and score the common documents; the total is the size of the intersection.
// - Scores are FTS5's bm25() formula with the same field weights and statistics (row count,
//   token totals, document sizes counted as FTS5 counts them), so hits, order and scores match
//   the FTS5 path, which stays the reference and the fallback: queries with phrases (a word of
//   several tokens) or prefixes go to FTS5.
// - Filters (type, extension, path prefix, size, modified time) are checked on fields held per
//   document, with the SQL path's semantics; with a filter every posting of the words is visited,
//   since the total counts the documents that pass.
//
// Freshness: the store logs every document insert, update and delete in `doc_log` (a trigger, in
// the writing transaction). Before each search the index applies the entries newer than the last
// it holds: changed documents are masked out of the immutable base and held in a small delta that
// is searched beside it. When the delta grows past max(20,000, base/8) documents, or the log was
// trimmed past the index, the store rebuilds the base in the background and swaps it in.
//
// Thread-safety: Search and CatchUp may be called from many threads; CatchUp serialises writers.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "index/sqlite_util.h"
#include "index/store.h"

namespace fs::index_internal {

// The words of a user query: split at whitespace, a trailing '*' marks a prefix, words without a
// letter or digit dropped, invalid UTF-8 repaired. Both query paths (FTS5, this index) use it.
struct QueryWord {
  std::string text;
  bool prefix = false;
};
std::vector<QueryWord> SplitQueryWords(std::string_view query);

struct KeywordWeights {
  double name = 10.0, path = 4.0, content = 1.0, name_parts = 5.0, path_parts = 2.0;
};

struct KeywordIndexStats {
  uint64_t documents = 0;      // live documents (base + delta)
  uint64_t terms = 0;
  uint64_t postings = 0;       // base postings
  uint64_t delta_documents = 0;
  uint64_t memory_bytes = 0;
  uint64_t applied_seq = 0;    // last doc_log entry applied
  double build_seconds = 0;
};

class KeywordIndex {
 public:
  // Reads every document of the store (one read transaction of `db`) and builds the index.
  // `cancel` (may be null) aborts a long build.
  static Result<std::unique_ptr<KeywordIndex>> Build(Db* db, const KeywordWeights& weights,
                                                     const std::atomic<bool>* cancel = nullptr);
  ~KeywordIndex();
  KeywordIndex(const KeywordIndex&) = delete;
  KeywordIndex& operator=(const KeywordIndex&) = delete;

  // Applies doc_log entries newer than the index. FailedPrecondition if the log no longer holds
  // them (trimmed): the index must be rebuilt.
  Status CatchUp(Db* db);
  // True when the delta has grown enough that a rebuild pays off.
  bool WantsRebuild() const;

  // The page in (score desc, id asc) order, as Store::KeywordSearch defines it; nullopt when the
  // query needs FTS5 (a word of several tokens, a prefix).
  Result<std::optional<KeywordPage>> Search(std::string_view query, size_t offset, size_t limit,
                                            const std::optional<KeywordAfter>& after, const SearchFilters& filters,
                                            bool count_total) const;

  KeywordIndexStats Stats() const;

 private:
  struct Impl;
  explicit KeywordIndex(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace fs::index_internal
