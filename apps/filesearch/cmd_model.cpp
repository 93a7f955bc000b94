// `filesearch model ...`: model tools (tokenize; info and download arrive with the CLIP engine).
#include <iostream>

#include "apps/filesearch/commands.h"
#include "model/clip/tokenizer.h"

namespace fs::cli {

void RegisterModel(CLI::App& app, GlobalFlags& /*flags*/, int* exit_code) {
  auto* model = app.add_subcommand("model", "CLIP model tools: tokenize text");
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
}

}  // namespace fs::cli
