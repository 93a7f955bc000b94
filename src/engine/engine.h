// Engine: one data directory opened for use. Owns the Store (source of truth) and the vector
// index of the active embedding model, and offers the operations the CLI and server need:
// index a folder, search, stats, checkpoint. Layout of a data directory:
//   filesearch.db (+ -wal, -shm)   SQLite: documents, text, embeddings, change log
//   vectors/<model>.hnsw           HNSW snapshot of one model (derived; rebuilt if lost)
// Thread-safety: Search and Stats may run concurrently; Index runs one at a time.
#pragma once

#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "cache/embedding_cache.h"
#include "core/status.h"
#include "engine/crawl.h"
#include "engine/embedder.h"
#include "engine/search.h"
#include "engine/mirror.h"
#include "index/opensearch_client.h"
#include "index/search_backend.h"
#include "index/store.h"
#include "index/vector_index.h"

namespace fs {

// The opensearch back end: searches run on the OpenSearch index; the store stays the local crawl
// journal (documents, failure list, embedding cache) and every change it commits reaches the index
// through the mirror outbox (engine/mirror.h) at the end of each index, backfill or watch pass.
struct RemoteIndexOptions {
  bool enabled = false;            // --backend opensearch
  OpenSearchOptions client;        // url, auth, CA file, timeouts (index/opensearch_client.h)
  std::string index = "cis-files";
  std::string space = "innerproduct";  // the k-NN space the index was created with
  size_t bulk_docs = 500;              // documents per _bulk request (MirrorOptions::max_items)
  // Hybrid searches fused by OpenSearch (its `hybrid` query with a search pipeline, which needs the
  // neural-search plugin) instead of by the planner (--opensearch-fusion opensearch).
  bool server_fusion = false;
};

struct EngineOptions {
  std::string data_dir;          // required; see ResolveDataDir
  std::string model_id;          // active vector model; "" = the model that has embeddings, if any
  StoreOptions store;
  VectorIndexOptions vectors;
  SearchLimits limits;
  bool progress = true;          // progress bars on stderr
  size_t embed_batch = 16;       // images per embedding call
  int checkpoint_every_ms = 30000;  // during long ingests, save the vector snapshot this often
  // Embedding cache keyed by (content SHA-256, model): identical bytes are embedded once, across
  // paths, renames and re-indexing. Off: every image is embedded (and nothing is cached).
  bool use_cache = true;
  int64_t cache_ttl_seconds = 30LL * 24 * 3600;
  // Where the cache lives: "embedded" (the data directory's SQLite database), or a cache shared by
  // workers, "redis://HOST:PORT" or "dynamodb://TABLE" (see cache/embedding_cache.h). A shared
  // cache that is down is bypassed (logged, counted), never an error.
  std::string cache = "embedded";
  std::string cache_endpoint;  // dynamodb: endpoint override (an emulator); "" = AWS's for the region
  int cache_timeout_ms = 2000;  // shared caches: connect and request timeout
  // Borrowed, null by default: with use_cache, this engine looks up and counts through that cache
  // (another engine's over the same data directory, which must outlive this one) instead of
  // opening its own, so one process reports one set of hit/miss counters (`serve --watch`).
  EmbeddingCache* shared_cache = nullptr;
  RemoteIndexOptions remote;
  // s3:// sources (`index s3://bucket/prefix`): endpoint, region, addressing, credentials (empty
  // fields from AWS_*), retries. See storage/s3_client.h.
  SourceOptions source;
  // Files that fail to read or embed go on the failure list; transient failures are retried with
  // this backoff by later passes (the worker's), permanent ones (corrupt content) are dead at once.
  RetryPolicy retry;
};

// --data-dir flag, else $FILESEARCH_DATA_DIR, else $XDG_DATA_HOME/filesearch, else
// ~/.local/share/filesearch.
std::string ResolveDataDir(const std::string& flag_value);

struct IndexReport {
  CrawlReport crawl;
  // opensearch back end: what this run sent, and why the rest waits in the outbox (empty: all sent).
  MirrorReport remote;
  std::string remote_error;
  uint64_t embedded = 0;      // images that got an embedding in this run (from the model or the cache)
  uint64_t from_cache = 0;    // of those, served by the embedding cache (no model call)
  std::vector<CrawlProblem> embed_failures;
};

// One file for IngestFiles.
struct IngestInput {
  std::string uri, display_path, local_path;
  int64_t mtime_ns = 0;
  bool use_cache = true;
};

// What IngestFiles did with one file.
struct IngestReport {
  int64_t id = 0;            // the document
  bool unchanged = false;    // same bytes already indexed (and embedded): nothing done
  bool image = false;
  bool embedded = false;     // got its embedding now
  std::vector<CrawlProblem> problems;  // "extract" (still indexed) and "embed" (no vector) failures
};

// One model call while indexing (index, backfill, worker, serve --watch): the distinct image
// contents it embedded and failed on (unreadable, corrupt, an unusable vector), and its wall time.
// Cache hits make no model call and are not counted here (the cache counts them).
struct EmbedBatchStats {
  uint64_t ok = 0;
  uint64_t failed = 0;
  double seconds = 0;
};
using EmbedObserver = std::function<void(const EmbedBatchStats&)>;

struct BackfillOptions {
  uint64_t limit = 0;     // at most this many images (0: all)
  bool dry_run = false;   // count and list what would be embedded; embed nothing
  bool progress = true;   // a progress bar with rate and ETA on stderr
  // Re-embed every image, not only those missing an embedding (new weights or precision under the
  // same model id). Each image keeps its old vector, searchable, until its new one replaces it in
  // one transaction; the cache is not read (it holds the old vectors), only refreshed. Resumable:
  // a killed run continues after the last committed image when run again with `all`.
  bool all = false;
  // Batches embedded at once, each by its own copy of the model (ImageEmbedder::Clone) with
  // cores / workers threads, while this thread reads the next batches and commits finished ones in
  // order (so the resume point stays exact). 1 = the engine's embedder, no copies. Pays off on
  // machines with more cores than one batch-1 forward pass can use; on 2 cores it only overlaps
  // the store's reads and writes with the model (docs/benchmarks.md).
  int workers = 1;
};

struct BackfillReport {
  MirrorReport remote;       // opensearch back end, as in IndexReport
  std::string remote_error;
  uint64_t candidates = 0;  // images without an embedding for the model when the run started (all: every image left)
  int64_t resumed_after = 0;  // all: an earlier run had committed every image up to this id
  uint64_t processed = 0;   // images looked at (embedded + failed; in a dry run, listed)
  uint64_t embedded = 0;    // images that got an embedding (from the model or the cache)
  uint64_t from_cache = 0;  // of those, served by the embedding cache
  std::vector<CrawlProblem> failures;
  std::vector<std::string> dry_run_uris;  // the first 100 a dry run would embed
  int workers = 1;          // workers that ran (fewer than asked when the embedder cannot be copied)
  std::string workers_note;  // why, then
  // opensearch back end: images in the index (crawled by any machine) without a vector of the
  // model, found by a scan of the index after this machine's own ones.
  uint64_t index_candidates = 0;  // such images this machine did not crawl
  uint64_t index_embedded = 0;    // of those, embedded here and updated in the index
  uint64_t index_from_cache = 0;  // of those, served by the embedding cache
  uint64_t index_not_here = 0;    // of those, whose file this machine cannot read (another's)
};

struct DuplicateOptions {
  float min_cosine = 0.95f;   // near duplicates: embeddings at least this similar
  int max_hamming = 8;        // ... or perceptual hashes at most this many bits apart (-1: not used)
  size_t neighbours = 8;      // candidates looked at per image
  size_t max_groups = 1000;   // exact groups / near pairs reported at most
  size_t max_hash_pairs = 1'000'000;  // perceptual-hash candidate pairs examined at most
  // Image contents without a perceptual hash (embedded before hashes were kept, or served from a
  // shared embedding cache) are decoded and hashed first, at most this many per run (0: none).
  size_t hash_missing = 100'000;
  bool progress = true;  // a progress bar while hashing them
};

struct NearDuplicate {
  int64_t a, b;        // document ids, a < b, different content
  float cosine = NAN;  // embedding similarity (NaN: not found by, or not known to, the embeddings)
  int hamming = -1;    // perceptual-hash distance in bits (-1: a hash is missing)
  bool by_embedding = false, by_hash = false;  // which measure(s) passed its threshold
};

struct DuplicateReport {
  std::vector<std::vector<int64_t>> exact;  // same bytes (SHA-256), empty files left out
  std::vector<NearDuplicate> near;          // found by both measures first, then by cosine, then by distance
  std::string model;                        // whose embeddings "near" used ("" : none)
  size_t hashed = 0;                        // distinct image contents with a perceptual hash
  size_t hashed_now = 0;                    // of those, hashed by this run (DuplicateOptions::hash_missing)
  size_t unhashable = 0;                    // contents this run could not decode to hash
  bool hash_pairs_truncated = false;        // max_hash_pairs was reached: some hash pairs were not examined
};

// Where the vector leg of a search gets its vector: the engine resolves it, so the server and the
// CLI parse requests but never pick the vector, read embeddings or run the cache themselves.
struct QueryVectorSource {
  std::vector<float> embedding;        // numbers given with the request; empty = none
  std::string embedding_model;         // their model; "" = the vector index's model
  std::optional<int64_t> similar_to;   // an indexed document's own embedding (it is left out of the hits)
  const std::string* image = nullptr;  // image bytes (an upload): embedded through the embedding cache
  // With no other source, keywords also reach the vector leg through the query embedder's text
  // tower (unless the request's mode is text, or there is no query embedder or vector index).
  bool text_to_vector = true;
};

// An image embedded for a query or /embed: the vector, the bytes' SHA-256, and whether the
// embedding cache answered (no model call).
struct ImageEmbedding {
  std::vector<float> vector;
  std::string sha256;
  bool cached = false;
};

class Engine {
 public:
  static Result<std::unique_ptr<Engine>> Open(const EngineOptions& options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Crawls `dir` into the store; images get embeddings when an embedder is set. Saves the vector
  // snapshot at the end. `dir` may be "s3://bucket[/prefix]": the bucket is listed and read
  // through options.source (CrawlSource), its images spooled under the data directory's spool/
  // for the embedder, and documents keep their s3:// uris.
  Result<IndexReport> Index(const std::string& dir, CrawlOptions crawl_options = {});
  // Sets the image embedder (not owned... owned: the engine keeps it). Its model becomes the
  // active model; the vector index of that model is opened (built from the store if needed).
  Status SetEmbedder(std::unique_ptr<ImageEmbedder> embedder);
  // The same, for an embedder the caller keeps (e.g. one CLIP instance shared with the server's
  // query path); it must outlive the engine.
  Status SetBorrowedEmbedder(ImageEmbedder* embedder);
  // Called after every model call of indexing (on the thread that commits the batch) with what it
  // cost; the metrics of `serve --watch` and `worker --metrics-port` count embeddings by it.
  // Set before indexing starts; the callback must be thread-safe if several engines share it.
  void SetEmbedObserver(EmbedObserver observer) { embed_observer_ = std::move(observer); }
  Result<SearchResult> Search(const SearchRequest& request);
  // A document by id, from the back end searches run on (content left empty). NotFound if none.
  Result<Document> GetDocument(int64_t id);
  // A document by display path (the local crawl record), with its id as the back end searches
  // run on knows it. NotFound if none.
  Result<Document> GetDocumentByPath(const std::string& path);
  // Documents by id from the same back end, in no particular order; missing ids are skipped.
  Result<std::vector<Document>> GetDocuments(std::span<const int64_t> ids) const;
  // The stored (extracted) text of `doc`, from this data directory's store (found by uri): NotFound
  // when the store has no such file (an opensearch index written from another machine).
  Result<std::string> DocumentText(const Document& doc) const;
  // Fills each hit's snippet from its stored text: the passage that shows `query`'s words (the
  // start of the text without a query). Hits without stored text keep an empty snippet.
  void AddSnippets(std::string_view query, SearchResult* result, const SnippetOptions& options = {}) const;
  // Documents and vectors per model in the index searches run on (the whole OpenSearch index with
  // the opensearch back end, this data directory's store otherwise).
  Result<IndexCounts> CountIndex() const;
  // "embedded" or "opensearch".
  std::string_view backend() const { return remote_client_ ? "opensearch" : "embedded"; }
  // opensearch back end: where the index lives (url, index name); `enabled` false otherwise.
  const RemoteIndexOptions& remote() const { return options_.remote; }
  // opensearch back end: sends what the outbox holds (Index and Backfill call it at their end).
  // Embedded: nothing to do.
  Result<MirrorReport> SyncRemote();
  // The query embedder (borrowed; must outlive the engine) that turns query text and images into
  // vectors of the active model. Null: vector queries need given numbers or similar_to.
  void SetQueryEmbedder(QueryEmbedder* embedder) { query_embedder_ = embedder; }
  QueryEmbedder* query_embedder() const { return query_embedder_; }
  // Fills request->vector, vector_model and (similar_to) exclude_id from `source`. NotFound for a
  // similar_to document that does not exist; FailedPrecondition when it has no embedding of the
  // index's model or a source needs a query embedder or vector index that is not there.
  Status ResolveQueryVector(const QueryVectorSource& source, SearchRequest* request);
  // Image bytes to a vector of the query embedder's model, through the embedding cache (content
  // SHA-256 + model) unless `use_cache` is false or the cache is off. The caller checks sizes and
  // formats first; decoding happens in the embedder.
  Result<ImageEmbedding> EmbedImageBytes(const std::string& bytes, bool use_cache = true);
  Result<std::vector<float>> EmbedQueryText(std::string_view text);
  // Embeds image documents that have no embedding for the embedder's model (a model change, a
  // run without a model, or an interrupted index). Every batch is committed before the next, so
  // a killed backfill resumes where it stopped when run again. Failed files are reported and
  // left without an embedding (the next run retries them). Needs an embedder.
  Result<BackfillReport> Backfill(const BackfillOptions& options);
  // Exact duplicates by content hash, and near duplicates (resized, recompressed or cropped
  // copies) by embedding similarity in the active model's vector index.
  Result<DuplicateReport> FindDuplicates(const DuplicateOptions& options);
  // Indexes the files of queue jobs (engine/ingest.cpp), in order: each `local_path` (the file
  // itself, or a downloaded copy of an S3 object) is read as the crawl reads files and stored
  // under `uri` with `display_path` and `mtime_ns`; then the images among them are embedded as one
  // batch (through the cache where `use_cache`), so every document and vector is committed when
  // this returns. One result per file: a read or store error is its Status; extraction and
  // embedding failures are in its report (and the failure list). Idempotent: a document already
  // stored with the same bytes (SHA-256) and, for an image, an embedding of the model is left as
  // it is. The batch's totals of embedded images and cache hits are added to *embedded and
  // *from_cache.
  std::vector<Result<IngestReport>> IngestFiles(const std::vector<IngestInput>& files, const CrawlOptions& crawl,
                                                uint64_t* embedded, uint64_t* from_cache);
  // Writes the vector snapshot and trims the change log.
  Status Checkpoint();

  Store* store() { return store_.get(); }
  VectorIndex* vectors() { return vectors_.get(); }
  EmbeddingCache* cache() { return cache_; }  // null when options.use_cache is false
  const std::string& data_dir() const { return options_.data_dir; }

 private:
  explicit Engine(EngineOptions options) : options_(std::move(options)) {}
  Status OpenVectors(const std::string& model);
  Status EmbedImages(const std::vector<std::pair<int64_t, std::string>>& images, IndexReport* report,
                     bool read_cache = true);
  // EmbedImages in three steps, so backfill workers can run the model while this thread reads and
  // commits: Prepare (store + cache reads, this thread), Compute (the embedder only, any thread),
  // Commit (store + cache writes, this thread).
  struct EmbedJob;
  Status PrepareEmbed(const std::vector<std::pair<int64_t, std::string>>& images, bool read_cache, EmbedJob* job);
  static void ComputeEmbed(ImageEmbedder* embedder, EmbedJob* job);
  Status CommitEmbed(EmbedJob* job, IndexReport* report);
  FailureInput FailureOf(const EmbedJob& job, size_t i, std::string reason, bool permanent) const;
  // FindDuplicates' first step: decodes and hashes the image contents that have no perceptual hash.
  // `hashed_uris`: one document uri per content hashed now.
  Status HashMissingImages(const DuplicateOptions& options, DuplicateReport* report,
                           std::vector<std::string>* hashed_uris);
  // opensearch back end: FindDuplicates' inputs from scans of the whole index.
  Status DuplicateInputsFromIndex(const DuplicateOptions& options, DuplicateReport* report,
                                  std::vector<PerceptualHashRow>* hashes, std::vector<NearDuplicate>* candidates,
                                  std::map<int64_t, std::string>* sha_of);
  // Embeds image documents that have no embedding for the embedder's model yet: local files, and
  // with `source`, that source's objects (read into `spool_dir`).
  Status EmbedMissing(IndexReport* report, const Source* source = nullptr, const std::string& spool_dir = "");

  // The back end searches run on: the OpenSearch index, or the store and vector index.
  std::unique_ptr<SearchBackend> Backend() const;
  Result<IndexReport> IndexFolder(const std::string& dir, CrawlOptions crawl_options);
  Result<IndexReport> IndexS3(const std::string& uri, CrawlOptions crawl_options);
  // The failure list's uri and display path of a file the embedder read: a spooled object's
  // s3:// uri, or the local file's.
  std::pair<std::string, std::string> SourceOfPath(const std::string& path) const;
  // Reads an s3:// object through *objects (opened with options.source on first use) into a new
  // file under *spool_dir (made on first use); the file maps back to `uri` in failures.
  Result<std::string> SpoolObject(const std::string& uri, std::unique_ptr<Source>* objects, std::string* spool_dir);
  // Embeds `pending` (spooled objects among them) and deletes their spool files.
  Status EmbedSpooled(std::vector<std::pair<int64_t, std::string>>* pending, IndexReport* report);
  Result<BackfillReport> BackfillLocal(const BackfillOptions& options);
  // opensearch back end: embeds images of the whole index that have no vector of the model and
  // whose file this machine can read (Backfill's second step).
  Status BackfillIndex(const BackfillOptions& options, BackfillReport* report);

  EngineOptions options_;
  std::unique_ptr<OpenSearchClient> remote_client_;
  std::unique_ptr<BulkSink> remote_sink_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<VectorIndex> vectors_;
  std::unique_ptr<EmbeddingCache> owned_cache_;
  EmbeddingCache* cache_ = nullptr;  // owned_cache_, or EngineOptions::shared_cache
  std::unique_ptr<ImageEmbedder> owned_embedder_;
  ImageEmbedder* embedder_ = nullptr;
  QueryEmbedder* query_embedder_ = nullptr;
  std::set<int64_t> failed_this_run_;  // images whose embedding failed during the current Index
  std::map<std::string, std::string> spooled_uri_;  // spool file -> s3:// uri, during an s3:// Index
  EmbedObserver embed_observer_;
};

}  // namespace fs
