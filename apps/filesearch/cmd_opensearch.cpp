// `filesearch opensearch setup|status|ef-search N`: the OpenSearch index for the `opensearch` back end
// (the original design's setup-opensearch-knn.sh as one idempotent command).
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "apps/filesearch/commands.h"
#include "engine/clip_embedder.h"
#include "index/opensearch_setup.h"

namespace fs::cli {
namespace {

struct ConnectionFlags {
  std::string url;        // --opensearch-url, else $OPENSEARCH_ENDPOINT
  std::string index;      // --opensearch-index, else $OPENSEARCH_INDEX, else cis-files
  std::string auth;       // --opensearch-auth, else by host name
  std::string basic_auth_file, ca_file;
  int timeout_ms = 30000;
  bool dry_run = false;
};

std::string EnvOr(const std::string& flag, const char* name, const std::string& fallback) {
  if (!flag.empty()) return flag;
  const char* value = std::getenv(name);
  return value && *value ? value : fallback;
}

// A bare host ("search-x.eu-west-1.es.amazonaws.com", as OPENSEARCH_ENDPOINT often holds) is https.
std::string WithScheme(const std::string& url) {
  if (url.empty() || url.find("://") != std::string::npos) return url;
  return "https://" + url;
}

Result<std::unique_ptr<OpenSearchClient>> Connect(const ConnectionFlags& flags) {
  OpenSearchOptions options;
  options.url = WithScheme(EnvOr(flags.url, "OPENSEARCH_ENDPOINT", ""));
  if (flags.auth.empty()) {
    options.auth = ClassifyOpenSearchEndpoint(options.url).default_auth;
    if (!flags.basic_auth_file.empty()) options.auth = OpenSearchAuth::kBasic;
  } else {
    FS_ASSIGN_OR_RETURN(options.auth, ParseOpenSearchAuth(flags.auth));
  }
  options.basic_auth_file = flags.basic_auth_file;
  options.ca_file = flags.ca_file;
  options.request_timeout_ms = flags.timeout_ms;
  options.dry_run = flags.dry_run;
  options.dry_run_sink = [](const std::string& request) { std::cout << "  would send: " << request << "\n"; };
  return OpenSearchClient::Create(std::move(options));
}

// The embedding width of a model folder: projection_dim of a Hugging Face config.json, or
// model_cfg.embed_dim of an OpenCLIP open_clip_config.json.
Result<int> ModelDimension(const std::string& dir) {
  for (const auto& [file, pointer] : {std::pair{"config.json", "/projection_dim"},
                                      std::pair{"open_clip_config.json", "/model_cfg/embed_dim"}}) {
    std::ifstream in(dir + "/" + file);
    if (!in) continue;
    std::stringstream text;
    text << in.rdbuf();
    const nlohmann::json config = nlohmann::json::parse(text.str(), nullptr, false);
    const nlohmann::json::json_pointer at(pointer);
    if (config.is_object() && config.contains(at) && config[at].is_number_integer()) return config[at].get<int>();
    if (std::string(file) == "config.json" && config.is_object()) return 512;  // HF's CLIPConfig default
  }
  return Status::NotFound("no config.json or open_clip_config.json with the embedding width in " + dir +
                          ": give --dimension");
}

int Report(const char* command, const Status& status) {
  if (status.ok()) return 0;
  std::cerr << "filesearch opensearch " << command << ": " << status.message() << "\n";
  return status.code() == StatusCode::kInvalidArgument ? 2 : 1;
}

}  // namespace

void RegisterOpenSearch(CLI::App& app, GlobalFlags& /*flags*/, int* exit_code) {
  auto* os = app.add_subcommand("opensearch", "Set up and inspect the OpenSearch index of the opensearch back end")
                 ->footer("Examples:\n"
                          "  filesearch opensearch setup --opensearch-url http://127.0.0.1:9200 --opensearch-auth none\n"
                          "  OPENSEARCH_ENDPOINT=https://search-x.eu-west-1.es.amazonaws.com filesearch opensearch status\n"
                          "  filesearch opensearch ef-search 256\n\n"
                          "Amazon OpenSearch Service hosts (*.es.amazonaws.com) are signed with SigV4 (service es),\n"
                          "Serverless (*.aoss.amazonaws.com) with service aoss, using AWS_ACCESS_KEY_ID,\n"
                          "AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN and the region in the host name (else AWS_REGION).\n"
                          "See docs/opensearch.md.");
  os->require_subcommand(1);
  auto connection = std::make_shared<ConnectionFlags>();
  auto add_connection_flags = [connection](CLI::App* cmd) {
    cmd->add_option("--opensearch-url", connection->url, "Cluster url (default $OPENSEARCH_ENDPOINT)")->type_name("URL");
    cmd->add_option("--opensearch-index", connection->index, "Index name (default $OPENSEARCH_INDEX, else cis-files)")
        ->type_name("NAME");
    cmd->add_option("--opensearch-auth", connection->auth,
                    "sigv4 | basic | none (default: sigv4 for *.es.amazonaws.com and *.aoss.amazonaws.com, basic "
                    "with --opensearch-basic-auth-file, else none)")
        ->check(CLI::IsMember({"sigv4", "basic", "none"}));
    cmd->add_option("--opensearch-basic-auth-file", connection->basic_auth_file, "File with user:password on its first line")
        ->type_name("FILE");
    cmd->add_option("--opensearch-ca-file", connection->ca_file, "PEM CA bundle to verify the cluster's TLS certificate")
        ->type_name("FILE");
    cmd->add_option("--opensearch-timeout-ms", connection->timeout_ms, "Per-request timeout")->capture_default_str();
    cmd->add_flag("--dry-run", connection->dry_run, "Print every request instead of sending it");
  };
  auto index_name = [connection] { return EnvOr(connection->index, "OPENSEARCH_INDEX", "cis-files"); };

  auto* setup = os->add_subcommand("setup", "Create or check the k-NN index in five steps (idempotent)")
                    ->footer("Steps: [1/5] the k-NN plugin is installed, [2/5] does the index exist, [3/5] create it\n"
                             "with the k-NN mapping, [4/5] check its settings (index.knn, ef_search), [5/5] check the\n"
                             "mapping (image_embedding's dimension, space and engine; document fields). Re-running\n"
                             "changes nothing; an index with another k-NN mapping is refused with what differs.");
  add_connection_flags(setup);
  struct SetupArgs {
    OpenSearchIndexSpec spec;
    std::string model_dir;
    bool dimension_given = false;
  };
  auto s = std::make_shared<SetupArgs>();
  setup->add_option("--dimension", s->spec.dimension, "Vector width (default 512, or the model's with --model-dir)")
      ->each([s](const std::string&) { s->dimension_given = true; });
  setup->add_option("--model-dir", s->model_dir, "Take --dimension from this CLIP model folder")->type_name("DIR");
  setup->add_option("--engine", s->spec.engine, "k-NN engine")->check(CLI::IsMember({"faiss", "lucene"}))->capture_default_str();
  setup->add_option("--space", s->spec.space, "Vector space (innerproduct: CLIP vectors are normalised)")
      ->check(CLI::IsMember({"innerproduct", "cosinesimil", "l2"}))
      ->capture_default_str();
  setup->add_option("--m", s->spec.m, "HNSW links per node")->capture_default_str();
  setup->add_option("--ef-construction", s->spec.ef_construction, "HNSW build beam width")->capture_default_str();
  setup->add_option("--ef-search", s->spec.ef_search, "index.knn.algo_param.ef_search")->capture_default_str();
  setup->callback([exit_code, connection, s, index_name]() {
    s->spec.index = index_name();
    if (!s->model_dir.empty() && !s->dimension_given) {
      Result<int> dimension = ModelDimension(ResolveModelDir(s->model_dir));
      if (!dimension.ok()) {
        *exit_code = Report("setup", dimension.status());
        return;
      }
      s->spec.dimension = *dimension;
    }
    Result<std::unique_ptr<OpenSearchClient>> client = Connect(*connection);
    *exit_code = Report("setup", client.ok() ? SetupOpenSearchIndex(**client, s->spec, std::cout) : client.status());
  });

  auto* status = os->add_subcommand("status", "Cluster health, the index's document and vector counts, ef_search");
  add_connection_flags(status);
  status->callback([exit_code, connection, index_name]() {
    Result<std::unique_ptr<OpenSearchClient>> client = Connect(*connection);
    *exit_code = Report("status", client.ok() ? PrintOpenSearchStatus(**client, index_name(), std::cout) : client.status());
  });

  auto* ef = os->add_subcommand("ef-search", "Set the index's k-NN ef_search (search beam; faiss and nmslib engines)");
  add_connection_flags(ef);
  auto ef_value = std::make_shared<int>(512);
  ef->add_option("N", *ef_value, "New ef_search (1..10000)")->required();
  ef->callback([exit_code, connection, index_name, ef_value]() {
    Result<std::unique_ptr<OpenSearchClient>> client = Connect(*connection);
    *exit_code = Report("ef-search",
                        client.ok() ? SetOpenSearchEfSearch(**client, index_name(), *ef_value, std::cout) : client.status());
  });
}

}  // namespace fs::cli
