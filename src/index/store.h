// Store: the source of truth. One SQLite database (WAL) holds documents, their text (FTS5 with
// BM25 and the CJK-aware "filesearch" tokenizer), embeddings with their model id, and a change log
// from which the derived vector index is brought up to date.
//
// Thread-safety: a Store is safe for concurrent use. Writes are serialised on one connection;
// reads use a pool of read-only connections and run in parallel with writes (WAL).
// Durability: a write that returned OK survives a process crash (SIGKILL). With the default
// synchronous=NORMAL a power loss may drop the last transactions; set `sync_full` to prevent that.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace fs {

struct Document {
  int64_t id = 0;        // assigned by the store; stable for the life of the document
  std::string uri;       // "file:///abs/path" (bytes that are not UTF-8, and '%', percent-encoded)
  std::string path;      // display path, always valid UTF-8
  std::string name;      // file name
  std::string ext;       // lower-case extension without the dot ("" if none)
  std::string mime;      // MIME type ("image/jpeg")
  uint64_t size = 0;     // bytes
  int64_t mtime_ns = 0;  // modification time, ns since the epoch
  std::string sha256;    // hex digest of the content
  std::string content;   // extracted text, may be empty
  // Photo metadata (EXIF), when the file has it.
  std::optional<int64_t> taken_ns;  // date taken, ns since the epoch
  std::string camera;               // "Canon EOS 350D DIGITAL" (make and model)
  std::optional<double> gps_lat, gps_lon;
  // Document metadata (office files, e-mail, HTML), when the file has it. Title and author are also
  // at the head of `content`, which is what makes them searchable.
  std::string title;                  // document title, e-mail subject
  std::string author;                 // author, e-mail sender
  std::optional<int64_t> created_ns;  // created (e-mail: sent), per the document itself
  std::optional<int64_t> saved_ns;    // last saved, per the document itself
  // The source's version tag: the S3 ETag (without quotes) of an s3:// document, "" for files.
  // With size and mtime it tells a changed object from an unchanged one (storage/source.h).
  std::string etag;
};

// Filters apply to keyword and vector search alike. Empty fields do not filter.
struct SearchFilters {
  std::vector<std::string> types;       // MIME top-level types or full types: "image", "text/plain"
  std::vector<std::string> extensions;  // lower-case, no dot: "pdf", "jpg"
  std::string path_prefix;              // display-path prefix: "/srv/share/finance/"
  std::optional<uint64_t> min_size, max_size;             // bytes, inclusive
  std::optional<int64_t> min_mtime_ns, max_mtime_ns;      // inclusive
  std::optional<int64_t> min_taken_ns, max_taken_ns;      // date taken (EXIF), inclusive; no date: no match
  bool empty() const {
    return types.empty() && extensions.empty() && path_prefix.empty() && !min_size && !max_size &&
           !min_mtime_ns && !max_mtime_ns && !min_taken_ns && !max_taken_ns;
  }
};

struct KeywordHit {
  int64_t id;
  double score;  // BM25, higher is better (SQLite's bm25() negated)
};

struct KeywordPage {
  std::vector<KeywordHit> hits;
  uint64_t total = 0;  // exact number of matching documents
};

// Keyset position for deep paging: continue after (score, id) in (score desc, id asc) order.
struct KeywordAfter {
  double score;
  int64_t id;
};

struct FileState {
  int64_t id;
  uint64_t size;
  int64_t mtime_ns;
  std::string mime;
  std::string etag;  // Document::etag
};

struct EmbeddingRow {
  int64_t doc_id;
  std::vector<float> vector;
};

struct PerceptualHashRow {
  int64_t doc_id;  // the lowest id of the documents with this content
  std::string sha256;
  uint64_t phash;
};

// One entry of the vector change log: the embedding of `doc_id` for `model` was set (upsert) or
// removed. Sequence numbers grow strictly.
struct VectorChange {
  uint64_t seq;
  int64_t doc_id;
  bool upsert;
};

// One entry of the mirror outbox: the document at `uri` changed (written, deleted or embedded).
struct MirrorChange {
  uint64_t seq;
  std::string uri;
};

struct StoreStats {
  uint64_t documents = 0;
  uint64_t embeddings = 0;
  uint64_t db_bytes = 0;
  std::vector<std::pair<std::string, uint64_t>> embeddings_by_model;
};

// A file that could not be read or embedded, as the ingest reports it.
struct FailureInput {
  std::string uri;
  std::string path;
  std::string stage;       // "read", "embed", "extract"
  std::string reason;
  bool permanent = false;  // corrupt or unsupported content: retrying cannot help
};

// Retries with exponential backoff: base, 2 base, 4 base ... capped; dead after max_attempts.
struct RetryPolicy {
  int64_t max_attempts = 5;
  int64_t base_backoff_ms = 2000;
  int64_t max_backoff_ms = 10 * 60 * 1000;
};

// One entry of the failure list. retry_at_ns == 0: a dead letter (given up on; it is tried again
// when the file changes, or after RequeueFailures).
struct FailureRecord {
  std::string uri, path, stage, reason;
  int64_t attempts = 0;
  int64_t first_ns = 0, last_ns = 0, retry_at_ns = 0;
  bool dead() const { return retry_at_ns == 0; }
};

struct FailureCounts {
  uint64_t retrying = 0;
  uint64_t dead = 0;
};

struct StoreOptions {
  bool sync_full = false;  // synchronous=FULL: survive power loss too, at some write cost
  int read_connections = 4;
  // BM25 field weights: name, path, content.
  double weight_name = 10.0;
  double weight_path = 4.0;
  double weight_content = 1.0;
  // Keep an in-memory keyword index (impact-bounded posting blocks) beside FTS5 for fast top-k
  // BM25 on large stores. Built in the background at open (FTS5 answers until it is ready) and
  // kept current from the document log. For long-running readers (the server); costs memory
  // (about 6 bytes per distinct word per document) and a build pass over all text.
  bool keyword_index = false;
};

// State of the keyword accelerator.
struct KeywordIndexInfo {
  bool enabled = false, ready = false, building = false;
  std::string error;  // why the last build failed, if it did
  uint64_t documents = 0, terms = 0, postings = 0, delta_documents = 0, memory_bytes = 0;
  double build_seconds = 0;
  uint64_t served = 0;         // searches answered by the accelerator
  uint64_t passed_to_fts = 0;  // searches it passed to FTS5 (phrases, prefixes, not ready)
};

class Store {
 public:
  static Result<std::unique_ptr<Store>> Open(const std::string& db_path, const StoreOptions& options = {});
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Inserts or replaces the document with the same uri; returns its id (unchanged on replace).
  // When the content hash changes, the document's embeddings are dropped (they describe old bytes).
  Result<int64_t> Upsert(const Document& doc);
  // Several documents in one transaction (much faster for bulk ingest). ids[i] is doc i's id.
  Result<std::vector<int64_t>> UpsertBatch(std::span<const Document> docs);
  // Removes the document, its text and its embeddings. NotFound if no such uri.
  Status Delete(const std::string& uri);
  Status DeleteIds(std::span<const int64_t> ids);

  Result<Document> Get(int64_t id) const;
  Result<Document> GetByUri(const std::string& uri) const;
  // Metadata only (content left empty) for many ids, in the order given; missing ids are skipped.
  Result<std::vector<Document>> GetMany(std::span<const int64_t> ids) const;
  // Every document whose uri starts with `uri_prefix`: uri -> (id, size, mtime). For incremental crawls.
  Status ForEachUnder(const std::string& uri_prefix,
                      const std::function<void(const std::string& uri, const FileState&)>& fn) const;

  // Embeddings: one per (document, model). Writes a change-log entry in the same transaction.
  Status PutEmbedding(int64_t doc_id, const std::string& model, std::span<const float> vector);
  Status PutEmbeddings(const std::string& model, std::span<const int64_t> doc_ids,
                       std::span<const float> vectors, size_t dim);
  Result<std::optional<std::vector<float>>> GetEmbedding(int64_t doc_id, const std::string& model) const;
  // Streams all embeddings of `model` (for rebuilding the vector index).
  Status ForEachEmbedding(const std::string& model, const std::function<void(const EmbeddingRow&)>& fn) const;
  // Change-log entries of `model` with seq > after_seq, in order.
  Result<std::vector<VectorChange>> ChangesSince(const std::string& model, uint64_t after_seq) const;
  Result<uint64_t> LastChangeSeq(const std::string& model) const;
  // Drops log entries <= seq (after a snapshot that holds them was written).
  Status TrimChanges(const std::string& model, uint64_t up_to_seq);
  // The highest seq TrimChanges dropped for `model` (0: never trimmed).
  Result<uint64_t> TrimmedThrough(const std::string& model) const;
  Result<std::vector<std::string>> EmbeddingModels() const;
  // Image documents (MIME image/*) that have no embedding for `model`, lowest id first, after
  // `after_id`; at most `limit`. Drives backfill and the catch-up after an interrupted ingest.
  Result<std::vector<std::pair<int64_t, std::string>>> ImagesMissingEmbedding(const std::string& model,
                                                                             int64_t after_id, size_t limit) const;
  // Documents with identical, non-empty content: groups of ids (lowest first) sharing a SHA-256,
  // largest groups first; at most `limit` groups.
  Result<std::vector<std::vector<int64_t>>> ExactDuplicateGroups(size_t limit) const;
  // 64-bit perceptual hashes of image content, keyed by SHA-256 (model-independent, shared by
  // exact copies); entries with an empty hash or a zero hash are skipped.
  Status PutPerceptualHashes(std::span<const std::pair<std::string, uint64_t>> hashes);
  // One row per distinct stored content that has a perceptual hash: the lowest document id with
  // that content and the hash; lowest id first.
  Result<std::vector<PerceptualHashRow>> PerceptualHashes() const;
  // The perceptual hash of one content, if it has one.
  Result<std::optional<uint64_t>> PerceptualHashOf(const std::string& sha256) const;
  // Image contents that have no perceptual hash yet (embedded before hashes existed, or served by
  // a shared embedding cache), one (sha256, uri) per content, leaving out files on the failure list.
  Result<std::vector<std::pair<std::string, std::string>>> ImagesWithoutPerceptualHash(size_t limit) const;
  // Every image document after `after_id`, lowest id first (backfill --all), and how many there are.
  Result<std::vector<std::pair<int64_t, std::string>>> ImagesAfter(int64_t after_id, size_t limit) const;
  Result<uint64_t> CountImagesAfter(int64_t after_id) const;
  // How many image documents have no embedding for `model` (the backfill's total).
  Result<uint64_t> CountImagesMissingEmbedding(const std::string& model) const;

  // BM25 keyword search. `query` is user text: words are ANDed, each word matched as a phrase
  // of its tokens (so punctuation or FTS syntax in the query is harmless).
  Result<KeywordPage> KeywordSearch(std::string_view query, const SearchFilters& filters, size_t offset,
                                    size_t limit, const std::optional<KeywordAfter>& after = {},
                                    bool count_total = true) const;
  // The failure list (dead letters). A failure is resolved, and its entry removed, when the file
  // is stored again after a change, gets its embedding, or is deleted (triggers, same transaction).
  Status RecordFailures(std::span<const FailureInput> failures, const RetryPolicy& policy, int64_t now_ns);
  Result<std::vector<FailureRecord>> ListFailures(bool dead_only, size_t limit) const;
  Result<FailureCounts> CountFailures() const;
  // Uris failed at `stage` whose next attempt is not due at `now_ns` (backing off, or dead): work
  // to skip for now.
  Result<std::vector<std::string>> FailuresNotDue(const std::string& stage, int64_t now_ns) const;
  // The same, with the time (ns) of each one's last failed attempt.
  Result<std::vector<std::pair<std::string, int64_t>>> FailuresBackingOff(const std::string& stage,
                                                                          int64_t now_ns) const;
  // Uris failed at `stage` whose retry is due at `now_ns` (backoff run out, or requeued). The
  // crawl reads them again even when the file looks unchanged: an extract failure leaves the
  // document stored (by name), so nothing else would try its text again.
  Result<std::vector<std::string>> FailuresDue(const std::string& stage, int64_t now_ns) const;
  // Removes the entries of `uris` failed at `stage`: they were retried and passed.
  Status ResolveFailures(std::span<const std::string> uris, const std::string& stage);
  // When the earliest pending retry is due (ns since the epoch); 0 if none is pending.
  Result<int64_t> NextRetryAt() const;
  // Makes every failure due again with a fresh attempt count (after fixing the cause). Returns how many.
  Result<uint64_t> RequeueFailures();

  // Waits until the keyword accelerator is ready: joins the build started at open, or builds now
  // if that failed. Needs keyword_index.
  Status BuildKeywordIndex();
  KeywordIndexInfo KeywordIndexStatus() const;
  // Ids of all documents passing `filters` (for filtered vector search). Unbounded: the caller
  // decides whether to use it.
  Result<std::vector<int64_t>> FilterIds(const SearchFilters& filters) const;
  Result<uint64_t> CountFiltered(const SearchFilters& filters) const;
  Result<int64_t> MaxDocId() const;

  Result<StoreStats> Stats() const;
  // A number that changes whenever any write commits (for cursor stability checks).
  Result<uint64_t> Generation() const;

  // Key/value metadata (schema version, settings).
  // Mirror outbox for a remote index (OpenSearch). EnableMirror(name) turns it on for good (a
  // second name is refused) and queues every stored document; from then on every document write,
  // delete and embedding change queues its uri, in the same transaction, until TrimMirrorLog
  // drops what the mirror has acknowledged. Off (the default), nothing is logged.
  Status EnableMirror(const std::string& name);
  Result<std::optional<std::string>> MirrorName() const;
  Result<std::vector<MirrorChange>> MirrorChangesSince(uint64_t after_seq, size_t limit) const;
  Result<uint64_t> MirrorBacklog() const;  // entries not trimmed yet
  Status QueueMirror(std::span<const std::string> uris);  // send these again (retries)
  Status TrimMirrorLog(uint64_t up_to_seq);
  Status SetMeta(const std::string& key, const std::string& value);
  Result<std::optional<std::string>> GetMeta(const std::string& key) const;

  const std::string& path() const { return path_; }

 private:
  struct Impl;
  explicit Store(std::unique_ptr<Impl> impl, std::string path);
  std::unique_ptr<Impl> impl_;
  std::string path_;
};

// Converts a user query to an FTS5 MATCH expression (exposed for tests). Empty if no words.
std::string BuildFtsQuery(std::string_view user_query);

}  // namespace fs
