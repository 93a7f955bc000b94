// Internal header of apps/filesearch: each subcommand registers itself on the CLI11 app.
// A command's callback stores its exit code in *exit_code; the callbacks never throw.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>
#include <string>

#include "core/status.h"
#include "engine/clip_embedder.h"
#include "engine/engine.h"
#include "queue/job_queue.h"
#include "storage/s3_client.h"

namespace fs::cli {

// --backend and the OpenSearch connection, global so every command that opens an index (and
// `filesearch opensearch`) takes them the same way.
struct OpenSearchFlags {
  std::string backend;    // --backend, else $FILESEARCH_BACKEND, else embedded
  std::string url;        // --opensearch-url, else $OPENSEARCH_ENDPOINT
  std::string index;      // --opensearch-index, else $OPENSEARCH_INDEX, else cis-files
  std::string auth;       // --opensearch-auth, else by host name
  std::string basic_auth_file, ca_file;
  std::string space = "innerproduct";  // --opensearch-space: the k-NN space the index was made with
  int timeout_ms = 30000;
  size_t bulk_docs = 500;  // --opensearch-bulk-docs: documents per _bulk request
  std::string fusion;      // --opensearch-fusion, else $FILESEARCH_OPENSEARCH_FUSION, else filesearch
};

// --cache and its connection, global so every command that embeds shares one cache the same way.
struct CacheFlags {
  std::string spec;      // --cache, else $FILESEARCH_CACHE, else dynamodb://$EMBEDDING_CACHE_TABLE, else embedded
  std::string endpoint;  // --cache-endpoint (DynamoDB emulators), else $AWS_ENDPOINT_URL_DYNAMODB
  int timeout_ms = 2000; // --cache-timeout-ms
};

struct GlobalFlags {
  std::string data_dir;     // --data-dir (else FILESEARCH_DATA_DIR, else the per-user default)
  bool no_progress = false; // --no-progress
  bool quiet = false;
  OpenSearchFlags opensearch;
  CacheFlags cache;
};
void AddGlobalBackendFlags(CLI::App* app, OpenSearchFlags* flags);
void AddGlobalCacheFlags(CLI::App* app, CacheFlags* flags);
// The cache the flags name (see CacheFlags::spec for the order of precedence).
std::string CacheSpecOf(const CacheFlags& flags);
// The cache the flags name, with its connection settings; embedded = the data directory's database.
EmbeddingCacheSpec CacheSpecFromFlags(const GlobalFlags& flags);
// One line: "cache redis://h:6379: 12 hits, 3 misses (80.0% hits), 0 errors" for this process.
std::string CacheCountersLine(const EmbeddingCache& cache);
// The HS256 secret in `path` (serve --auth-secret-file, token --auth-secret-file), trailing line
// breaks dropped; the error names the file.
Result<std::string> ReadSecretFile(const std::string& path);
// The flag's value, else the environment variable's, else `fallback`.
std::string FlagOrEnv(const std::string& flag, const char* name, const std::string& fallback);
// The index name: --opensearch-index, $OPENSEARCH_INDEX, cis-files.
std::string OpenSearchIndexName(const OpenSearchFlags& flags);
// The client options of the flags (url scheme added to a bare host, auth from the host name unless
// given); `dry_run` prints requests instead of sending them.
Result<OpenSearchOptions> OpenSearchClientOptions(const OpenSearchFlags& flags, bool dry_run = false);
// --backend opensearch: fills options->remote from the flags; embedded: leaves it off. Also sets
// the embedding cache of the --cache flags.
// InvalidArgument for another name, or opensearch without a url.
Status ApplyBackend(const GlobalFlags& flags, EngineOptions* options);

// S3 connection flags, shared by `index s3://...`, `serve` (documents and /embed imageUrl read
// from S3) and the worker: --s3-endpoint, --s3-region, --s3-addressing, --s3-connect-to,
// --s3-retries. Credentials come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN.
struct S3Flags {
  std::string endpoint;            // else $FILESEARCH_S3_ENDPOINT, else $AWS_ENDPOINT_URL_S3
  std::string region;              // else $FILESEARCH_S3_REGION, else $AWS_REGION ...
  std::string addressing = "auto"; // auto | path | virtual
  std::string connect_to;          // host:port
  int retries = 3;
};
void AddS3Flags(CLI::App* cmd, S3Flags* flags);
Result<storage::S3Options> S3OptionsFromFlags(const S3Flags& flags);

// --model-dir / --precision / --threads, shared by every command that runs CLIP.
struct ModelFlags {
  std::string model_dir;  // else $FILESEARCH_MODEL_DIR
  std::string precision = "fp32";
  int threads = 0;
  size_t query_cache = 0;  // recent text-query embeddings kept (serve: --query-cache)
  std::string packed_dir;  // --packed-dir: "" = next to the model, "off" = none
  bool exact_decode = false;  // --exact-decode: no JPEG shrink-on-load for CLIP
};
void AddModelFlags(CLI::App* cmd, ModelFlags* flags);
// nullptr (and OK) when no model folder is configured.
Result<std::unique_ptr<ClipEmbedder>> LoadModel(const ModelFlags& flags);

// --fusion, --rrf-k, --text-weight, --vector-weight, --floor-sd, --floor-min-score: the fusion and
// picture-floor defaults, shared by search, serve and eval.
struct TuningFlags {
  std::string fusion = "rrf";
  SearchTuning tuning;
};
void AddTuningFlags(CLI::App* cmd, TuningFlags* flags);
// The tuning the flags give, checked (InvalidArgument saying which flag and its range).
Result<SearchTuning> ResolveTuningFlags(const TuningFlags& flags);

// --ocr and its settings, shared by index, worker and serve (for --watch).
struct OcrFlags {
  bool on = false;
  OcrOptions options;  // --ocr-languages, --ocr-data-dir, --ocr-max-ms, --ocr-min-confidence, --ocr-max-pixels
};
void AddOcrFlags(CLI::App* cmd, OcrFlags* flags);
// nullopt when --ocr is off; else the options, checked against the installed Tesseract data
// (NotFound saying what to install) with any note (e.g. "English only") printed to stderr.
Result<std::optional<OcrOptions>> ResolveOcrFlags(const OcrFlags& flags);

// Opens the data directory of --data-dir / FILESEARCH_DATA_DIR (creating it: for commands that
// write an index); `model` "" = the model that has embeddings.
Result<std::unique_ptr<Engine>> OpenEngine(const GlobalFlags& flags, const std::string& model = "");
// The database of the data directory, "<DIR>/filesearch.db", when an index was made there; else
// NotFound "no index at DIR: run 'filesearch index FOLDER' first, or check --data-dir". Creates nothing.
Result<std::string> ExistingIndexDb(const GlobalFlags& flags);
// OpenEngine for commands that only read (search, stats, duplicates): ExistingIndexDb's NotFound
// when there is no index, so a mistyped --data-dir is reported instead of becoming an empty index
// (on the embedded back end; on opensearch the index is the cluster's, and any machine reads it).
Result<std::unique_ptr<Engine>> OpenExistingEngine(const GlobalFlags& flags, const std::string& model = "");
// What to print when opening the index failed: "cannot open the index: <status>", or only the
// message of ExistingIndexDb's NotFound (which already says what to do).
std::string OpenError(const Status& status);

// A flag that is on unless turned off. Help shows only "OFF_NAME  OFF_HELP" (CLI11's own pair,
// "--x,!--no-x", printed "--x,--no-x{false}", which reads as off by default); ON_NAME is still
// accepted, hidden. The later of the two on the command line wins.
void AddOnByDefaultFlag(CLI::App* cmd, const std::string& on_name, const std::string& off_name, bool* value,
                        const std::string& off_help);

// Gives the engine its image embedder: the stand-in hash model with --test-embedder, else the
// CLIP model named by the model flags, else none (OK: text-only indexing).
Status AttachEmbedder(Engine* engine, const ModelFlags& model, bool test_embedder);

// --queue and its settings (worker --queue, enqueue, backfill --enqueue).
struct QueueFlags {
  std::string url;            // --queue, else $FILESEARCH_QUEUE
  std::string endpoint;       // --queue-endpoint (SQS emulators)
  int visibility_timeout_s = 60;
  int max_deliveries = 5;
  bool create = false;        // --create-queue
};
void AddQueueFlags(CLI::App* cmd, QueueFlags* flags, bool required);
// Opens the queue (and creates it with --create-queue, saying what it did on stderr).
Result<std::unique_ptr<queue::JobQueue>> OpenQueueFromFlags(const QueueFlags& flags);
// Enqueues a plain job per target (s3://... or an absolute path) with a progress bar; stops early
// on SIGINT/SIGTERM when the caller installed enqueue's handler. Returns how many were sent.
Result<uint64_t> EnqueueTargets(queue::JobQueue* queue, const std::vector<std::string>& targets, bool use_cache,
                                bool remove, bool progress);

void RegisterEnqueue(CLI::App& app, GlobalFlags& flags, int* exit_code);
void RegisterBackfill(CLI::App& app, GlobalFlags& flags, int* exit_code);
void RegisterDuplicates(CLI::App& app, GlobalFlags& flags, int* exit_code);
void RegisterFailures(CLI::App& app, GlobalFlags& flags, int* exit_code);
void RegisterWorker(CLI::App& app, GlobalFlags& flags, int* exit_code);
void RegisterIndex(CLI::App& app, GlobalFlags& flags, int* exit_code);
void RegisterSearch(CLI::App& app, GlobalFlags& flags, int* exit_code);
void RegisterStats(CLI::App& app, GlobalFlags& flags, int* exit_code);
void RegisterModel(CLI::App& app, GlobalFlags& flags, int* exit_code);
void RegisterEmbed(CLI::App& app, GlobalFlags& flags, int* exit_code);
void RegisterServe(CLI::App& app, GlobalFlags& flags, int* exit_code);
void RegisterOpenSearch(CLI::App& app, GlobalFlags& flags, int* exit_code);
void RegisterMigrate(CLI::App& app, GlobalFlags& flags, int* exit_code);
void RegisterCache(CLI::App& app, GlobalFlags& flags, int* exit_code);
void RegisterToken(CLI::App& app, GlobalFlags& flags, int* exit_code);
void RegisterEval(CLI::App& app, GlobalFlags& flags, int* exit_code);
void RegisterFeedback(CLI::App& app, GlobalFlags& flags, int* exit_code);

}  // namespace fs::cli
