// `filesearch model ...`: model tools: tokenize, info, download.
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "apps/filesearch/commands.h"
#include "engine/clip_embedder.h"
#include "model/clip/clip_model.h"
#include "model/clip/tokenizer.h"
#include "model/hub/hub_download.h"

namespace fs::cli {

void RegisterModel(CLI::App& app, GlobalFlags& flags, int* exit_code) {
  auto* model = app.add_subcommand("model", "CLIP model tools: download a model, check a model folder, tokenize text");
  model->require_subcommand(1);
  auto* tok = model->add_subcommand("tokenize", "Print the token ids of texts (CLIP or XLM-R), one JSON array per line")
                  ->footer("Examples:\n"
                           "  filesearch model tokenize --tokenizer tokenizer.json \"a photo of a cat\"\n"
                           "  filesearch model tokenize --tokenizer vocab.json --lines queries.txt\n\n"
                           "The tokenizer is a Hugging Face tokenizer.json, a vocab.json with merges.txt beside it,\n"
                           "or OpenAI's bpe_simple_vocab_16e6.txt.gz. Its type is read from the file: CLIP's BPE,\n"
                           "or a SentencePiece Unigram tokenizer.json such as XLM-R's (multilingual CLIP). Ids include\n"
                           "the start and end tokens (CLIP: 49406, 49407; XLM-R: <s> 0, </s> 2); texts are truncated\n"
                           "to 77 tokens unless --no-truncate.");
  struct Args {
    std::string tokenizer, lines;
    std::vector<std::string> texts;
    bool no_truncate = false;
  };
  auto a = std::make_shared<Args>();
  tok->add_option("--tokenizer", a->tokenizer, "tokenizer.json (CLIP BPE or Unigram), vocab.json or bpe_simple_vocab_16e6.txt.gz")
      ->required()
      ->type_name("FILE");
  tok->add_option("--lines", a->lines, "Tokenize each line of FILE")->type_name("FILE");
  tok->add_flag("--no-truncate", a->no_truncate, "Do not cut texts at 77 tokens");
  tok->add_option("TEXT", a->texts, "Texts to tokenize");
  tok->callback([exit_code, a]() {
    *exit_code = clip::TokenizeCommand(a->tokenizer, a->texts, a->lines, std::cout, std::cerr,
                                       a->no_truncate ? 0 : clip::kContextLength);
  });

  auto* info = model->add_subcommand("info", "Load and check a CLIP model folder, then describe it")
                   ->footer("Every tensor's name, shape and dtype is validated and the weights are checked for\n"
                            "NaN/Inf, so this is also the way to test a downloaded model before indexing.\n\n"
                            "Example:\n  filesearch model info --model-dir ~/models/clip-vit-base-patch32");
  auto model_dir = std::make_shared<std::string>();
  info->add_option("--model-dir", *model_dir, "Model folder (default $FILESEARCH_MODEL_DIR)")->type_name("DIR");
  info->callback([exit_code, model_dir]() {
    std::string dir = ResolveModelDir(*model_dir);
    if (dir.empty()) {
      std::cerr << "filesearch model info: give --model-dir DIR or set FILESEARCH_MODEL_DIR\n";
      *exit_code = 2;
      return;
    }
    auto m = clip::ClipModel::Load(dir, {});
    if (!m.ok()) {
      std::cerr << "filesearch model info: " << m.status().ToString() << "\n";
      *exit_code = 1;
      return;
    }
    // A multilingual (XLM-R) folder's tokenizer is tokenizer.json, which CLIP's BPE tokenizer does not read.
    const bool multilingual = (*m)->multilingual();
    auto tok = multilingual ? Result<std::unique_ptr<clip::Tokenizer>>(Status::Unsupported(""))
                            : clip::Tokenizer::LoadDir(dir);
    std::cout << "model:      " << (*m)->model_id() << "\n"
              << "family:     " << (*m)->family() << "\n"
              << "folder:     " << dir << "\n"
              << "embedding:  " << (*m)->embed_dim() << " dimensions\n"
              << "image size: "
              << ((*m)->image_size() > 0 ? std::to_string((*m)->image_size()) + " px"
                                         : "none (text tower only)")
              << "\n"
              << "preprocess: "
              << ((*m)->image_size() > 0 ? (*m)->image_reference_name() : std::string("none (text tower only)"))
              << "\n"
              << "context:    " << (*m)->context_length() << " tokens, vocabulary " << (*m)->vocab_size()
              << "\n"
              << "tokenizer:  "
              << (multilingual ? (std::filesystem::exists(dir + "/tokenizer.json")
                                      ? std::string("XLM-R tokenizer.json present")
                                      : std::string("no tokenizer.json (XLM-R needs it)"))
                  : tok.ok()   ? "ok (" + std::to_string((*tok)->vocab_size()) + " tokens)"
                               : tok.status().ToString())
              << "\n"
              << (*m)->Describe() << "\n";
    if (!multilingual && !tok.ok()) *exit_code = 1;
  });

  auto* dl = model->add_subcommand("download", "Download a CLIP model folder from the Hugging Face hub (resumable, checksummed)")
                 ->footer("Examples:\n"
                          "  filesearch model download                                   openai/clip-vit-base-patch32\n"
                          "  filesearch model download openai/clip-vit-base-patch16 --models-dir /srv/models\n"
                          "  filesearch model download --endpoint https://hub.example.com  a mirror with the hub's layout\n"
                          "  filesearch model download xlm-roberta-base-ViT-B-32            multilingual (50+ languages),\n"
                          "      OpenCLIP laion5b_s13b_b90k from laion/CLIP-ViT-B-32-xlm-roberta-base-laion5B-s13B-b90k\n\n"
                          "Files go to MODELS_DIR/<owner>/<name>/ (default $XDG_DATA_HOME/filesearch/models). Each\n"
                          "file is checked against the hub's published checksum (SHA-256 for model.safetensors) before\n"
                          "it is put in place; an interrupted download resumes where it stopped when run again.\n"
                          "Then: filesearch index DIR --model-dir <that folder>.");
  struct DownloadArgs {
    std::string name = "openai/clip-vit-base-patch32";
    std::string models_dir, endpoint = "https://huggingface.co", revision = "main";
  };
  auto d = std::make_shared<DownloadArgs>();
  dl->add_option("NAME", d->name, "Hub model name, owner/name, or xlm-roberta-base-ViT-B-32 (multilingual)")->capture_default_str();
  dl->add_option("--models-dir", d->models_dir, "Folder that holds downloaded models")->type_name("DIR");
  dl->add_option("--endpoint", d->endpoint, "Hub URL (or a mirror with the same layout)")->capture_default_str();
  dl->add_option("--revision", d->revision, "Branch, tag or commit")->capture_default_str();
  dl->callback([&flags, exit_code, d]() {
    hub::DownloadOptions o;
    o.endpoint = d->endpoint;
    o.repo = d->name;
    o.revision = d->revision;
    std::string root = d->models_dir;
    if (root.empty()) {
      const char* xdg = std::getenv("XDG_DATA_HOME");
      const char* home = std::getenv("HOME");
      root = xdg && *xdg ? std::string(xdg) + "/filesearch/models"
                         : std::string(home && *home ? home : ".") + "/.local/share/filesearch/models";
    }
    // A catalogued model (the multilingual OpenCLIP one) is fetched from where it is published.
    const hub::CatalogueModel* known = hub::FindCatalogueModel(d->name);
    o.dest_dir = root + "/" + (known != nullptr ? known->folder : d->name);
    o.progress = !flags.no_progress;
    auto r = known != nullptr ? hub::DownloadCatalogueModel(*known, o) : hub::Download(o);
    if (!r.ok()) {
      std::cerr << "filesearch model download: " << r.status().ToString() << "\n";
      *exit_code = 1;
      return;
    }
    uint64_t bytes = 0, transferred = 0;
    for (const auto& f : *r) {
      if (f.skipped_missing) continue;
      bytes += f.bytes;
      transferred += f.downloaded;
      std::cout << "  " << f.name << ": " << f.bytes << " bytes"
                << (f.already_complete ? ", already complete" : f.resumed ? ", resumed" : "")
                << (f.checksum.empty() ? ", no checksum published" : ", verified " + f.checksum.substr(0, f.checksum.find(':')))
                << "\n";
    }
    std::cout << "model " << d->name << " in " << o.dest_dir << " (" << bytes << " bytes, " << transferred
              << " transferred now)\nnext: filesearch model info --model-dir " << o.dest_dir << "\n";
  });
}

}  // namespace fs::cli
