// Downloading a model folder from the Hugging Face hub (or a mirror with the same URL layout):
// {endpoint}/{repo}/resolve/{revision}/{file}. Each file goes to "<file>.part" first, resumes
// with an HTTP Range request when a .part is already there, is checked against the checksum
// the hub publishes (X-Linked-Etag: SHA-256 for LFS files such as model.safetensors; ETag: the
// git blob SHA-1 for small files), and only then renamed into place. A file already present
// with the right checksum is not downloaded again.
#pragma once

#include <cstdint>
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

Result<std::vector<FileResult>> Download(const DownloadOptions& options);

// The git blob id of `data` (SHA-1 of "blob <size>\0" + data), hex. Exposed for tests.
std::string GitBlobSha1Hex(const std::string& data);

}  // namespace fs::hub
