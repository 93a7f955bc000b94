// Downloading a model folder from the Hugging Face hub (or a mirror with the same URL layout):
// {endpoint}/{repo}/resolve/{revision}/{file}. Each file goes to "<file>.part" first, resumes
// with an HTTP Range request when a .part is already there, is checked against the checksum
// the hub publishes (X-Linked-Etag: SHA-256 for LFS files such as model.safetensors; ETag: the
// git blob SHA-1 for small files), and only then renamed into place. A file already present
// with the right checksum is not downloaded again.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace fs::hub {

struct HubFile {
  std::string name;
  bool required = true;  // false: a 404 skips it (e.g. vocab.json when tokenizer.json is there)
};

struct DownloadOptions {
  std::string endpoint = "https://huggingface.co";
  std::string repo = "openai/clip-vit-base-patch32";
  std::string revision = "main";
  std::string dest_dir;  // the model folder to fill (created if missing)
  std::vector<HubFile> files = {{"config.json", true},
                                {"model.safetensors", true},
                                {"tokenizer.json", false},
                                {"vocab.json", false},
                                {"merges.txt", false},
                                {"tokenizer_config.json", false},
                                {"special_tokens_map.json", false},
                                {"preprocessor_config.json", false}};
  bool progress = true;
  int timeout_s = 60;  // connect/read timeout per request
  // Proxy as curl reads it from the environment: https_proxy / HTTPS_PROXY for an https://
  // endpoint, http_proxy / HTTP_PROXY for http://, except for the hosts in no_proxy / NO_PROXY.
  // false: connect directly whatever the environment says.
  bool proxy_from_env = true;
};

struct FileResult {
  std::string name;
  uint64_t bytes = 0;
  uint64_t downloaded = 0;  // bytes transferred in this run (less than bytes when resumed)
  bool skipped_missing = false;   // optional file the hub does not have
  bool already_complete = false;  // present with the right checksum: nothing transferred
  bool resumed = false;
  std::string checksum;           // "sha256:<hex>" or "git-sha1:<hex>" (verified), "" if none published
};

// Fills options.dest_dir. On failure the folders this call created are removed again when they
// are empty (one holding a partial download stays, so the next run resumes it).
Result<std::vector<FileResult>> Download(const DownloadOptions& options);

// A forward proxy: requests go to host:port (plain HTTP; CONNECT tunnels for https:// URLs).
struct Proxy {
  std::string host;
  int port = 0;
  std::string user, password;  // Basic auth from "http://user:password@host:port", if given
};
// The proxy to use for `url` ("https://host[:port]/...") from the variables `getenv` returns
// (std::getenv in Download): nullopt when none is set or the host is in no_proxy / NO_PROXY
// ("*", host names, ".domain" or "domain" for a domain and its subdomains, ports ignored);
// InvalidArgument for a proxy URL we cannot use. Exposed for tests.
Result<std::optional<Proxy>> ProxyFor(const std::string& url, const std::function<const char*(const char*)>& getenv);

// Models whose published files need more than a plain download to make a folder filesearch loads,
// known by name. The multilingual OpenCLIP model xlm-roberta-base-ViT-B-32 (laion5b_s13b_b90k):
// its weights, tokenizer and configs live in the hub repository
// laion/CLIP-ViT-B-32-xlm-roberta-base-laion5B-s13B-b90k (open_clip's pretrained table names it).
struct CatalogueModel {
  std::vector<std::string> names;  // what `filesearch model download` accepts: OpenCLIP's name, the repo
  std::string repo;                // the hub repository
  std::string folder;              // the folder under the models dir ("owner/name")
  std::vector<HubFile> files;
  std::string weights;             // the safetensors file the loader reads
  std::string pickle;              // the PyTorch pickle the repo may publish instead (never read)
  std::string config_name;         // written from `config` when the repo has none
  std::string config;
};
const std::vector<CatalogueModel>& Catalogue();
// The catalogue entry `name` is one of the names of, or null.
const CatalogueModel* FindCatalogueModel(const std::string& name);
// Downloads `model` into options.dest_dir with Download's checksum and resume logic (options.repo
// and options.files are replaced by the model's), writes its config when the hub has none, and
// fails with kNotFound, saying how to convert it, when the hub has only the pickle.
Result<std::vector<FileResult>> DownloadCatalogueModel(const CatalogueModel& model, DownloadOptions options);

// The git blob id of `data` (SHA-1 of "blob <size>\0" + data), hex. Exposed for tests.
std::string GitBlobSha1Hex(const std::string& data);

}  // namespace fs::hub
