// `filesearch serve`: the HTTP API and web UI over the data directory.
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "apps/filesearch/commands.h"
#include "core/env.h"
#include "core/log.h"
#include "engine/engine.h"
#include "engine/watch.h"
#include "server/indexing_metrics.h"
#include "server/server.h"

namespace fs::cli {
namespace {

Result<server::VectorSearchSwitch> ReadRuntimeConfig(const std::string& path) {
  auto text = Env::Default()->ReadFile(path, 1 << 16);
  if (!text.ok()) return text.status().WithContext("cannot read --runtime-config " + path);
  auto state = server::ParseRuntimeConfig(*text);
  if (!state.ok()) return state.status().WithContext("--runtime-config " + path);
  return state;
}

}  // namespace

void RegisterServe(CLI::App& app, GlobalFlags& flags, int* exit_code) {
  auto* cmd = app.add_subcommand("serve", "Serve the search API and web UI over HTTP")
                  ->footer("Examples:\n"
                           "  filesearch serve --auth-secret-file /etc/filesearch/hs256.key\n"
                           "  filesearch serve --jwks /etc/filesearch/jwks.json --jwt-issuer https://login.example.com --jwt-audience filesearch\n"
                           "  filesearch serve --no-auth --port 9000          # local use only; warns at start\n"
                           "  filesearch serve --watch /srv/share --auth-secret-file ...   serve and keep /srv/share indexed\n"
                           "  AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... filesearch serve --s3-bucket photos --s3-region eu-west-1 ...\n"
                           "                                                  /embed may then read s3://photos/KEY\n\n"
                           "Then open http://127.0.0.1:8080/ . The API is described in docs/api.md.");
  struct Args {
    std::string host = "127.0.0.1";
    int port = 8080;
    std::string auth_secret, auth_secret_file, jwks, issuer, audience, paths_claim = "paths";
    bool no_auth = false;
    bool admin_without_auth = false;
    std::string runtime_config;
    bool vector_search = true;
    bool keyword_index = true;
    std::string watch;
    OcrFlags ocr;  // for --watch
    bool test_embedder = false;
    ModelFlags model;
    bool metrics_auth = false;
    bool json_logs = true;
    std::vector<std::string> roots;
    std::vector<std::string> s3_buckets;
    std::string s3_endpoint, s3_region;
    int threads = 32;
    server::ServerLimits limits;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--host", a->host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", a->port, "Port to listen on (0 = any free port)")->capture_default_str()->check(CLI::Range(0, 65535));
  cmd->add_option("--auth-secret", a->auth_secret, "HS256 shared secret (32+ bytes); prefer --auth-secret-file")
      ->envname("FILESEARCH_AUTH_SECRET");
  cmd->add_option("--auth-secret-file", a->auth_secret_file, "File holding the HS256 shared secret")->type_name("FILE");
  cmd->add_option("--jwks", a->jwks, "JWKS file with the RS256/ES256 public keys tokens are signed with")->type_name("FILE");
  cmd->add_option("--jwt-issuer", a->issuer, "Required token issuer (iss)");
  cmd->add_option("--jwt-audience", a->audience, "Required token audience (aud)");
  cmd->add_option("--jwt-paths-claim", a->paths_claim, "Claim listing the path prefixes a user may see")->capture_default_str();
  cmd->add_flag("--no-auth", a->no_auth, "Turn authentication off (anyone who can connect may search); warns at start");
  cmd->add_flag("--metrics-auth", a->metrics_auth, "Require a token for /metrics too");
  cmd->add_flag("--admin-without-auth", a->admin_without_auth,
                "With --no-auth: let anyone use the /admin/ requests (refused otherwise; with auth they need an\n"
                "admin token, a JWT with \"admin\": true)");
  cmd->add_option("--runtime-config", a->runtime_config,
                  "JSON file read at start and again on SIGHUP: {\"vector_search\": {\"enabled\": false, \"reason\": \"...\"}}\n"
                  "turns vector search off or on without a restart (it wins over --no-vector-search)")
      ->type_name("FILE");
  cmd->add_option("--watch", a->watch,
                  "Keep DIR's index current while serving, as `filesearch worker DIR` would (inotify, a\n"
                  "reconciling pass at start, debounced passes, images embedded with the served model)")
      ->type_name("DIR");
  AddOcrFlags(cmd, &a->ocr);  // --ocr: what --watch indexes has the text of its images read
  AddOnByDefaultFlag(cmd, "--keyword-index", "--no-keyword-index", &a->keyword_index,
                     "Answer keyword queries from SQLite FTS5 alone, without the in-memory keyword index kept\n"
                     "beside it by default for fast top-k BM25 (built in the background at start, FTS5 answers\n"
                     "until it is ready; about 6 bytes per word per document)");
  AddOnByDefaultFlag(cmd, "--vector-search", "--no-vector-search", &a->vector_search,
                     "Turn vector search off (image upload, similar, imageEmbedding); on by default");
  cmd->add_option("--storage-root", a->roots, "Folder that /embed imageUrl may name (repeatable)")->type_name("DIR");
  cmd->add_option("--s3-bucket", a->s3_buckets,
                  "S3 bucket that /embed imageUrl may name as s3://NAME/KEY (repeatable, or comma-separated);\n"
                  "credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN")
      ->type_name("NAME")
      ->delimiter(',')
      ->envname("FILESEARCH_S3_BUCKETS");
  cmd->add_option("--s3-endpoint", a->s3_endpoint,
                  "S3 endpoint, http(s)://host[:port] (default https://s3.REGION.amazonaws.com; path-style requests)")
      ->type_name("URL")
      ->envname("FILESEARCH_S3_ENDPOINT");
  cmd->add_option("--s3-region", a->s3_region, "S3 region the requests are signed for (default $AWS_REGION, else us-east-1)")
      ->type_name("REGION")
      ->envname("FILESEARCH_S3_REGION");
  cmd->add_flag("--test-embedder", a->test_embedder,
                "Use the deterministic stand-in embedder (model test/hash-64) instead of CLIP; for tests");
  AddOnByDefaultFlag(cmd, "--json-logs", "--text-logs", &a->json_logs,
                     "Plain-text log lines instead of one JSON object per line (the default)");
  cmd->add_option("--threads", a->threads, "Worker threads (concurrent requests)")->capture_default_str()->check(CLI::Range(1, 1024));
  cmd->add_option("--max-body-bytes", a->limits.max_body_bytes, "Largest request body")->capture_default_str();
  cmd->add_option("--max-image-bytes", a->limits.max_image_bytes, "Largest image to embed")->capture_default_str();
  cmd->add_option("--max-image-pixels", a->limits.max_image_pixels, "Largest image to embed, in pixels")->capture_default_str();
  cmd->add_option("--max-query-bytes", a->limits.max_query_bytes, "Longest keyword query")->capture_default_str();
  cmd->add_option("--request-timeout", a->limits.request_timeout_s,
                  "Seconds a request body may take to arrive (plus 1 s per 64 KiB) and a reply to be read")
      ->capture_default_str()->check(CLI::Range(1, 3600));
  cmd->add_option("--header-timeout", a->limits.header_timeout_s,
                  "Seconds a request's headers may take to arrive whole (slow clients get 408)")
      ->capture_default_str()->check(CLI::Range(1, 3600));
  cmd->add_option("--idle-timeout", a->limits.idle_timeout_s, "Seconds a keep-alive connection may sit idle")
      ->capture_default_str()->check(CLI::Range(1, 86400));
  cmd->add_option("--max-connections", a->limits.max_connections,
                  "Open connections in all (idle ones cost a socket, not a thread); more get 503")
      ->capture_default_str()->check(CLI::Range(size_t{1}, size_t{1} << 20));
  cmd->add_option("--max-connections-per-client", a->limits.max_connections_per_client,
                  "Open connections from one client address (0 = no limit); more get 429")
      ->capture_default_str();
  cmd->add_option("--rate-limit", a->limits.requests_per_second_per_client,
                  "Requests per second from one client address, averaged (0 = no limit); more get 429")
      ->capture_default_str()->check(CLI::Range(0.0, 1e6));
  cmd->add_option("--rate-burst", a->limits.request_burst_per_client,
                  "Requests one client may send at once above --rate-limit (0 = twice the rate, at least 10)")
      ->capture_default_str()->check(CLI::Range(0.0, 1e6));
  cmd->add_option("--max-header-bytes", a->limits.max_header_bytes, "All request headers together; more get 431")
      ->capture_default_str()->check(CLI::Range(size_t{4096}, size_t{1} << 20));
  AddModelFlags(cmd, &a->model);
  a->model.query_cache = 4096;
  cmd->add_option("--query-cache", a->model.query_cache,
                  "Recent text queries whose CLIP embeddings are kept in memory (2 KB each; 0 = off)")
      ->capture_default_str();
  cmd->callback([&flags, exit_code, a]() {
    auto fail = [exit_code](const std::string& msg) {
      LogError("filesearch serve: " + msg);
      *exit_code = 1;
    };
    SetLogJson(a->json_logs);
    server::ServerOptions so;
    so.host = a->host;
    so.port = a->port;
    so.vector_search = a->vector_search;
    if (!a->runtime_config.empty()) {
      auto state = ReadRuntimeConfig(a->runtime_config);
      if (!state.ok()) return fail(state.status().ToString());
      so.vector_search = state->enabled;
      so.vector_search_reason = state->reason;
    }
    so.admin_without_auth = a->admin_without_auth;
    if (a->admin_without_auth && !a->no_auth) {
      return fail("--admin-without-auth is for --no-auth servers: with auth, admin requests need a token with \"admin\": true");
    }
    so.storage_roots = a->roots;
    so.s3_buckets = a->s3_buckets;
    so.s3.endpoint = a->s3_endpoint;
    so.s3.region = a->s3_region;
    if (so.s3_buckets.empty() && (!a->s3_endpoint.empty() || !a->s3_region.empty())) {
      return fail("--s3-endpoint and --s3-region need --s3-bucket NAME: name the buckets /embed may read");
    }
    so.threads = a->threads;
    so.limits = a->limits;
    so.metrics_open = !a->metrics_auth;
    so.auth.disabled = a->no_auth;
    so.auth.issuer = a->issuer;
    so.auth.audience = a->audience;
    so.auth.paths_claim = a->paths_claim;
    so.auth.hs256_secret = a->auth_secret;
    if (!a->auth_secret_file.empty()) {
      auto s = Env::Default()->ReadFile(a->auth_secret_file, 1 << 16);
      if (!s.ok()) return fail("cannot read --auth-secret-file: " + s.status().ToString());
      so.auth.hs256_secret = *s;
      while (!so.auth.hs256_secret.empty() && (so.auth.hs256_secret.back() == '\n' || so.auth.hs256_secret.back() == '\r')) {
        so.auth.hs256_secret.pop_back();
      }
    }
    if (!a->jwks.empty()) {
      auto s = Env::Default()->ReadFile(a->jwks, 1 << 20);
      if (!s.ok()) return fail("cannot read --jwks: " + s.status().ToString());
      so.auth.jwks_json = *s;
    }
    if (a->no_auth && (!so.auth.hs256_secret.empty() || !so.auth.jwks_json.empty())) {
      return fail("--no-auth contradicts --auth-secret/--jwks: choose one");
    }
    if (a->ocr.on && a->watch.empty()) return fail("--ocr reads the images --watch indexes: give --watch DIR too");

    EngineOptions eo;
    eo.data_dir = ResolveDataDir(flags.data_dir);
    eo.progress = !flags.no_progress;
    eo.store.keyword_index = a->keyword_index;
    if (Status b = ApplyBackend(flags, &eo); !b.ok()) return fail(b.message());
    std::unique_ptr<QueryEmbedder> embedder;
    std::unique_ptr<ClipEmbedder> clip;
    if (a->test_embedder) {
      embedder = NewHashQueryEmbedder(64);
      eo.model_id = embedder->model_id();
    } else {
      auto loaded = LoadModel(a->model);
      if (!loaded.ok()) return fail(loaded.status().ToString());
      clip = std::move(loaded).value();
      if (clip) eo.model_id = clip->model_id();
    }
    auto engine = Engine::Open(eo);
    if (!engine.ok()) return fail("cannot open the index in '" + eo.data_dir + "': " + engine.status().ToString());
    if (a->test_embedder) {
      Status s = (*engine)->SetEmbedder(NewHashEmbedder(64));
      if (!s.ok()) return fail(s.ToString());
    }
    if (clip) {
      Status s = (*engine)->SetBorrowedEmbedder(clip.get());
      if (!s.ok()) return fail(s.ToString());
    }
    QueryEmbedder* query_embedder = clip ? static_cast<QueryEmbedder*>(clip.get()) : embedder.get();
    so.engine = engine->get();
    so.embedder = query_embedder;  // also with vector search off: an admin may turn it on at run time
    if (!query_embedder) {
      so.model_note = "Image search is off: no CLIP model loaded (start with --model-dir DIR or FILESEARCH_MODEL_DIR).";
    }

    auto srv = server::Server::Create(so);
    if (!srv.ok()) return fail(srv.status().ToString());
    // Signals are taken synchronously by this thread; the server's threads inherit the mask.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    Status started = (*srv)->Start();
    if (!started.ok()) return fail(started.ToString());
    if (a->no_auth) {
      LogWarn("authentication is OFF (--no-auth): anyone who can reach " + a->host + ":" + std::to_string((*srv)->port()) +
              " can search and read every indexed file");
    }
    LogInfo("listening on http://" + a->host + ":" + std::to_string((*srv)->port()) + "/ (data " + eo.data_dir +
            ", vector search " + (so.vector_search ? "on" : "off") + ", model " +
            (query_embedder ? query_embedder->model_id() : std::string("none")) + ")");
    // --watch: the worker's loop on its own Engine (own store handle and vector index) in this
    // process, sharing the model; the serving engine sees its writes through the store's logs.
    std::atomic<bool> stop_watch{false};
    std::unique_ptr<Engine> watch_engine;
    std::thread watcher;
    if (!a->watch.empty()) {
      std::error_code ec;
      if (!std::filesystem::is_directory(a->watch, ec)) {
        (*srv)->Stop();
        return fail("--watch: '" + a->watch + "' is not a folder: give the folder to keep indexed");
      }
      auto ocr = ResolveOcrFlags(a->ocr);
      if (!ocr.ok()) {
        (*srv)->Stop();
        return fail("--ocr: " + ocr.status().message());
      }
      EngineOptions we = eo;
      we.store.keyword_index = false;
      we.progress = false;
      we.shared_cache = (*engine)->cache();  // one set of cache counters for /metrics
      auto w = Engine::Open(we);
      if (!w.ok()) {
        (*srv)->Stop();
        return fail("--watch: " + w.status().ToString());
      }
      watch_engine = std::move(w).value();
      Status attached = a->test_embedder ? watch_engine->SetEmbedder(NewHashEmbedder(64))
                        : clip           ? watch_engine->SetBorrowedEmbedder(clip.get())
                                         : Status::Ok();
      if (!attached.ok()) {
        (*srv)->Stop();
        return fail("--watch: " + attached.ToString());
      }
      watch_engine->SetEmbedObserver(server::EmbeddingObserver((*srv)->metrics()));
      const std::string dir = a->watch;
      WatchOptions wo;
      wo.crawl.ocr = *ocr;
      watcher = std::thread([&stop_watch, &watch_engine, dir, wo] {
        LogInfo("watching " + dir + " (changes become searchable as they happen" +
                (wo.crawl.ocr ? "; OCR " + wo.crawl.ocr->languages : std::string()) + ")");
        auto st = WatchFolder(watch_engine.get(), dir, wo, stop_watch);
        if (!st.ok()) LogError("--watch stopped: " + st.status().ToString() + " (the server keeps serving)");
      });
    }
    int sig = 0;
    while (sigwait(&set, &sig) == 0 && sig == SIGHUP) {
      if (a->runtime_config.empty()) {
        LogWarn("SIGHUP ignored: there is no --runtime-config FILE to re-read");
        continue;
      }
      auto state = ReadRuntimeConfig(a->runtime_config);
      if (!state.ok()) {
        LogError("SIGHUP: " + state.status().ToString() + " (vector search stays as it was; fix the file and send SIGHUP again)");
        continue;
      }
      (*srv)->SetVectorSearch(*state, "SIGHUP reload of " + a->runtime_config);
    }
    LogInfo(std::string("stopping on ") + (sig == SIGINT ? "SIGINT" : "SIGTERM"));
    stop_watch = true;
    if (watcher.joinable()) watcher.join();  // finishes the current pass, saves the snapshot
    (*srv)->Stop();
  });
}

}  // namespace fs::cli
