// `filesearch model ...`: model tools (tokenize; info and download arrive with the CLIP engine).
#include <iostream>

#include "apps/filesearch/commands.h"
#include "engine/clip_embedder.h"
#include "model/clip/clip_model.h"
#include "model/clip/tokenizer.h"

namespace fs::cli {

void RegisterModel(CLI::App& app, GlobalFlags& /*flags*/, int* exit_code) {
  auto* model = app.add_subcommand("model", "CLIP model tools: check a model folder, tokenize text");
  model->require_subcommand(1);
  auto* tok = model->add_subcommand("tokenize", "Print CLIP token ids of texts, one JSON array per line")
                  ->footer("Examples:\n"
                           "  filesearch model tokenize --tokenizer tokenizer.json \"a photo of a cat\"\n"
                           "  filesearch model tokenize --tokenizer vocab.json --lines queries.txt\n\n"
                           "The tokenizer is a Hugging Face tokenizer.json, a vocab.json with merges.txt beside it,\n"
                           "or OpenAI's bpe_simple_vocab_16e6.txt.gz. Ids include <|startoftext|> (49406) and\n"
                           "<|endoftext|> (49407); texts are truncated to 77 tokens unless --no-truncate.");
  struct Args {
    std::string tokenizer, lines;
    std::vector<std::string> texts;
    bool no_truncate = false;
  };
  auto a = std::make_shared<Args>();
  tok->add_option("--tokenizer", a->tokenizer, "tokenizer.json, vocab.json or bpe_simple_vocab_16e6.txt.gz")
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
    auto tok = clip::Tokenizer::LoadDir(dir);
    std::cout << "model:      " << (*m)->model_id() << "\n"
              << "folder:     " << dir << "\n"
              << "embedding:  " << (*m)->embed_dim() << " dimensions\n"
              << "image size: " << (*m)->image_size() << " px\n"
              << "context:    " << (*m)->context_length() << " tokens, vocabulary " << (*m)->vocab_size() << "\n"
              << "tokenizer:  " << (tok.ok() ? "ok (" + std::to_string((*tok)->vocab_size()) + " tokens)" : tok.status().ToString())
              << "\n"
              << (*m)->Describe() << "\n";
    if (!tok.ok()) *exit_code = 1;
  });
}

}  // namespace fs::cli
