// Helpers the subcommands share: opening the data directory, flags that are on by default.
#include <sys/stat.h>

#include <cstdlib>

#include "apps/filesearch/commands.h"

namespace fs::cli {

void AddS3Flags(CLI::App* cmd, S3Flags* flags) {
  cmd->add_option("--s3-endpoint", flags->endpoint,
                  "S3 endpoint, http(s)://host[:port] (default https://s3.REGION.amazonaws.com, else $AWS_ENDPOINT_URL_S3);\n"
                  "credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN")
      ->type_name("URL")
      ->envname("FILESEARCH_S3_ENDPOINT");
  cmd->add_option("--s3-region", flags->region, "S3 region the requests are signed for (default $AWS_REGION, else us-east-1)")
      ->type_name("REGION")
      ->envname("FILESEARCH_S3_REGION");
  cmd->add_option("--s3-addressing", flags->addressing,
                  "Where the bucket goes: 'path' (endpoint/bucket/key: MinIO, s3rver, most S3-compatible servers),\n"
                  "'virtual' (bucket.endpoint/key: AWS's preferred form), or 'auto' (virtual on *.amazonaws.com)")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "path", "virtual"}))
      ->envname("FILESEARCH_S3_ADDRESSING");
  cmd->add_option("--s3-connect-to", flags->connect_to,
                  "Connect to HOST:PORT instead of the endpoint's host, keeping its name in the url, Host header and\n"
                  "signature (a private gateway; tests)")
      ->type_name("HOST:PORT");
  cmd->add_option("--s3-retries", flags->retries,
                  "Retry S3 503 SlowDown, 5xx and network failures this many times with exponential backoff")
      ->capture_default_str()
      ->check(CLI::Range(0, 20));
}

Result<storage::S3Options> S3OptionsFromFlags(const S3Flags& flags) {
  storage::S3Options o;
  o.endpoint = FlagOrEnv(flags.endpoint, "AWS_ENDPOINT_URL_S3", "");
  o.region = flags.region;
  if (flags.addressing == "path") o.addressing = storage::S3Addressing::kPath;
  else if (flags.addressing == "virtual") o.addressing = storage::S3Addressing::kVirtualHosted;
  else if (flags.addressing == "auto" || flags.addressing.empty()) o.addressing = storage::S3Addressing::kAuto;
  else return Status::InvalidArgument("--s3-addressing must be auto, path or virtual, not '" + flags.addressing + "'");
  o.connect_to = flags.connect_to;
  o.max_retries = flags.retries;
  return o;
}

std::string FlagOrEnv(const std::string& flag, const char* name, const std::string& fallback) {
  if (!flag.empty()) return flag;
  const char* value = std::getenv(name);
  return value && *value ? value : fallback;
}

std::string OpenSearchIndexName(const OpenSearchFlags& flags) { return FlagOrEnv(flags.index, "OPENSEARCH_INDEX", "cis-files"); }

void AddGlobalBackendFlags(CLI::App* app, OpenSearchFlags* f) {
  const char* group = "Back end (docs/opensearch.md)";
  app->add_option("--backend", f->backend, "Where the index lives: embedded (default; $FILESEARCH_BACKEND) or opensearch")
      ->check(CLI::IsMember({"embedded", "opensearch"}))
      ->group(group);
  app->add_option("--opensearch-url", f->url, "OpenSearch cluster url (default $OPENSEARCH_ENDPOINT)")->type_name("URL")->group(group);
  app->add_option("--opensearch-index", f->index, "OpenSearch index (default $OPENSEARCH_INDEX, else cis-files)")
      ->type_name("NAME")
      ->group(group);
  app->add_option("--opensearch-auth", f->auth,
                  "sigv4 | basic | none (default: sigv4 for *.es.amazonaws.com and *.aoss.amazonaws.com, basic "
                  "with --opensearch-basic-auth-file, else none)")
      ->check(CLI::IsMember({"sigv4", "basic", "none"}))
      ->group(group);
  app->add_option("--opensearch-basic-auth-file", f->basic_auth_file, "File with user:password on its first line")
      ->type_name("FILE")
      ->group(group);
  app->add_option("--opensearch-ca-file", f->ca_file, "PEM CA bundle to verify the cluster's TLS certificate")
      ->type_name("FILE")
      ->group(group);
  app->add_option("--opensearch-timeout-ms", f->timeout_ms, "Per-request timeout")->capture_default_str()->group(group);
  app->add_option("--opensearch-bulk-docs", f->bulk_docs,
                  "Documents per _bulk request when writing to the index (also capped at 8 MiB a request)")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{10000}))
      ->group(group);
  app->add_option("--opensearch-space", f->space, "The k-NN space the index was created with (scores become cosines)")
      ->check(CLI::IsMember({"innerproduct", "cosinesimil"}))
      ->capture_default_str()
      ->group(group);
}

void AddGlobalCacheFlags(CLI::App* app, CacheFlags* f) {
  const char* group = "Embedding cache (docs/cache.md)";
  app->add_option("--cache", f->spec,
                  "Where embeddings are cached by content hash + model: embedded (default; the data directory), "
                  "redis://[:PASSWORD@]HOST:PORT[/DB] or dynamodb://TABLE, shared by workers "
                  "(default $FILESEARCH_CACHE, else dynamodb://$EMBEDDING_CACHE_TABLE)")
      ->type_name("SPEC")
      ->group(group);
  app->add_option("--cache-endpoint", f->endpoint,
                  "DynamoDB endpoint override, e.g. an emulator's http://127.0.0.1:5000 (default "
                  "$AWS_ENDPOINT_URL_DYNAMODB, else AWS's for $AWS_REGION)")
      ->type_name("URL")
      ->group(group);
  app->add_option("--cache-timeout-ms", f->timeout_ms, "Connect and request timeout of a shared cache")
      ->capture_default_str()
      ->group(group);
}

std::string CacheSpecOf(const CacheFlags& flags) {
  std::string spec = FlagOrEnv(flags.spec, "FILESEARCH_CACHE", "");
  if (spec.empty()) {
    const std::string table = FlagOrEnv("", "EMBEDDING_CACHE_TABLE", "");
    spec = table.empty() ? "embedded" : "dynamodb://" + table;
  }
  return spec;
}

EmbeddingCacheSpec CacheSpecFromFlags(const GlobalFlags& flags) {
  EmbeddingCacheSpec spec;
  spec.spec = CacheSpecOf(flags.cache);
  spec.db_path = ResolveDataDir(flags.data_dir) + "/filesearch.db";
  spec.endpoint = flags.cache.endpoint;
  spec.timeout_ms = flags.cache.timeout_ms;
  return spec;
}

std::string CacheCountersLine(const EmbeddingCache& cache) {
  const EmbeddingCacheCounters c = cache.counters();
  char line[256];
  std::snprintf(line, sizeof line, "%llu hits, %llu misses (%.1f%% hits), %llu errors",
                static_cast<unsigned long long>(c.hits), static_cast<unsigned long long>(c.misses),
                100.0 * c.hit_ratio(), static_cast<unsigned long long>(c.errors));
  return "embedding cache (" + cache.kind() + "): " + line;
}

Result<OpenSearchOptions> OpenSearchClientOptions(const OpenSearchFlags& flags, bool dry_run) {
  OpenSearchOptions options;
  std::string url = FlagOrEnv(flags.url, "OPENSEARCH_ENDPOINT", "");
  // A bare host ("search-x.eu-west-1.es.amazonaws.com", as OPENSEARCH_ENDPOINT often holds) is https.
  if (!url.empty() && url.find("://") == std::string::npos) url = "https://" + url;
  options.url = url;
  if (flags.auth.empty()) {
    options.auth = ClassifyOpenSearchEndpoint(options.url).default_auth;
    if (!flags.basic_auth_file.empty()) options.auth = OpenSearchAuth::kBasic;
  } else {
    FS_ASSIGN_OR_RETURN(options.auth, ParseOpenSearchAuth(flags.auth));
  }
  options.basic_auth_file = flags.basic_auth_file;
  options.ca_file = flags.ca_file;
  options.request_timeout_ms = flags.timeout_ms;
  options.dry_run = dry_run;
  return options;
}

Status ApplyBackend(const GlobalFlags& flags, EngineOptions* o) {
  o->cache = CacheSpecOf(flags.cache);
  o->cache_endpoint = flags.cache.endpoint;
  o->cache_timeout_ms = flags.cache.timeout_ms;
  const std::string backend = FlagOrEnv(flags.opensearch.backend, "FILESEARCH_BACKEND", "embedded");
  if (backend == "embedded") return Status::Ok();
  if (backend != "opensearch") {
    return Status::InvalidArgument("unknown back end '" + backend + "' (FILESEARCH_BACKEND): use embedded or opensearch");
  }
  FS_ASSIGN_OR_RETURN(o->remote.client, OpenSearchClientOptions(flags.opensearch));
  if (o->remote.client.url.empty()) {
    return Status::InvalidArgument("--backend opensearch needs the cluster: give --opensearch-url URL or set OPENSEARCH_ENDPOINT");
  }
  o->remote.enabled = true;
  o->remote.index = OpenSearchIndexName(flags.opensearch);
  o->remote.space = flags.opensearch.space;
  o->remote.bulk_docs = flags.opensearch.bulk_docs;
  return Status::Ok();
}

Result<std::unique_ptr<Engine>> OpenEngine(const GlobalFlags& flags, const std::string& model) {
  EngineOptions o;
  o.data_dir = ResolveDataDir(flags.data_dir);
  o.progress = !flags.no_progress;
  o.model_id = model;
  FS_RETURN_IF_ERROR(ApplyBackend(flags, &o));
  return Engine::Open(o);
}

Result<std::string> ExistingIndexDb(const GlobalFlags& flags) {
  const std::string dir = ResolveDataDir(flags.data_dir);
  const std::string db = dir + "/filesearch.db";
  struct stat st{};
  if (::stat(db.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return Status::NotFound("no index at " + dir + ": run 'filesearch index FOLDER' first, or check --data-dir");
  }
  return db;
}

Result<std::unique_ptr<Engine>> OpenExistingEngine(const GlobalFlags& flags, const std::string& model) {
  FS_RETURN_IF_ERROR(ExistingIndexDb(flags).status());
  return OpenEngine(flags, model);
}

std::string OpenError(const Status& status) {
  return status.code() == StatusCode::kNotFound ? status.message() : "cannot open the index: " + status.ToString();
}

void AddOnByDefaultFlag(CLI::App* cmd, const std::string& on_name, const std::string& off_name, bool* value,
                        const std::string& off_help) {
  // Applied as parsed, so the later of the two on the command line wins.
  cmd->add_flag_callback(off_name, [value] { *value = false; }, off_help)->trigger_on_parse();
  cmd->add_flag_callback(on_name, [value] { *value = true; }, "The default; the opposite of " + off_name)
      ->trigger_on_parse()
      ->group("");  // hidden: accepted for scripts that spell the default out
}

}  // namespace fs::cli
