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

Result<std::unique_ptr<OpenSearchClient>> Connect(const OpenSearchFlags& flags, bool dry_run) {
  FS_ASSIGN_OR_RETURN(OpenSearchOptions options, OpenSearchClientOptions(flags, dry_run));
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

void RegisterOpenSearch(CLI::App& app, GlobalFlags& flags, int* exit_code) {
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
  // The connection flags are global (--opensearch-url, --opensearch-index, ...: main.cpp); only
  // --dry-run is this command's.
  auto dry_run = std::make_shared<bool>(false);
  auto add_connection_flags = [dry_run](CLI::App* cmd) {
    cmd->add_flag("--dry-run", *dry_run, "Print every request instead of sending it");
  };
  GlobalFlags* global = &flags;
  auto index_name = [global] { return OpenSearchIndexName(global->opensearch); };
  auto connect = [global, dry_run] { return Connect(global->opensearch, *dry_run); };

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
  setup->callback([exit_code, connect, s, index_name]() {
    s->spec.index = index_name();
    if (!s->model_dir.empty() && !s->dimension_given) {
      Result<int> dimension = ModelDimension(ResolveModelDir(s->model_dir));
      if (!dimension.ok()) {
        *exit_code = Report("setup", dimension.status());
        return;
      }
      s->spec.dimension = *dimension;
    }
    Result<std::unique_ptr<OpenSearchClient>> client = connect();
    *exit_code = Report("setup", client.ok() ? SetupOpenSearchIndex(**client, s->spec, std::cout) : client.status());
  });

  auto* status = os->add_subcommand("status", "Cluster health, the index's document and vector counts, ef_search");
  add_connection_flags(status);
  status->callback([exit_code, connect, index_name]() {
    Result<std::unique_ptr<OpenSearchClient>> client = connect();
    *exit_code = Report("status", client.ok() ? PrintOpenSearchStatus(**client, index_name(), std::cout) : client.status());
  });

  auto* ef = os->add_subcommand("ef-search", "Set the index's k-NN ef_search (search beam; faiss and nmslib engines)");
  add_connection_flags(ef);
  auto ef_value = std::make_shared<int>(512);
  ef->add_option("N", *ef_value, "New ef_search (1..10000)")->required();
  ef->callback([exit_code, connect, index_name, ef_value]() {
    Result<std::unique_ptr<OpenSearchClient>> client = connect();
    *exit_code = Report("ef-search",
                        client.ok() ? SetOpenSearchEfSearch(**client, index_name(), *ef_value, std::cout) : client.status());
  });
}

}  // namespace fs::cli
