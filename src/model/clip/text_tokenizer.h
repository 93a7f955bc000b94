// The text tokenizer of a CLIP text tower, whatever its model: CLIP's byte-level BPE (tokenizer.h)
// or XLM-R's SentencePiece Unigram (xlmr_tokenizer.h, the multilingual CLIP towers).
// LoadTextTokenizer reads a file and picks the implementation from its content (a
// tokenizer.json's model.type). Implementations are immutable after loading (any cache inside is
// locked): Encode may be called from many threads at once. The caller owns what Load returns.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace fs::clip {

inline constexpr size_t kContextLength = 77;  // CLIP text context, start and end tokens included

class TextTokenizer {
 public:
  virtual ~TextTokenizer() = default;

  // Token ids of `text`, the model's start token first and its end token last. When max_len > 0
  // and the result would be longer, the text's ids are cut so that the result, end token
  // included, is max_len long. max_len == 0: no truncation. A max_len too small to hold the
  // special tokens is kInvalidArgument. Invalid UTF-8 is not an error: each invalid byte becomes
  // U+FFFD. Thread-safe.
  virtual Result<std::vector<int32_t>> Encode(std::string_view text,
                                              size_t max_len = kContextLength) const = 0;

  virtual size_t vocab_size() const = 0;
  virtual int32_t start_id() const = 0;  // <|startoftext|> (CLIP), <s> (XLM-R)
  virtual int32_t end_id() const = 0;    // <|endoftext|> (CLIP), </s> (XLM-R)
};

// Loads a tokenizer file or folder:
//   a tokenizer.json whose model.type is "Unigram": XlmrTokenizer;
//   any other file, or a folder without a Unigram tokenizer.json: Tokenizer::Load (CLIP's BPE).
// Errors as the chosen implementation's Load.
Result<std::unique_ptr<TextTokenizer>> LoadTextTokenizer(const std::string& path);

// The body of `filesearch model tokenize --tokenizer FILE [--lines FILE] [TEXT...]`: loads the
// tokenizer (LoadTextTokenizer), encodes each of `texts`, then each line of `lines_file` (when not
// empty; '\n' separated, a trailing '\r' dropped, no text after a final newline), and writes one
// JSON array of ids per text to `out`, e.g. [49406,320,2368,49407]. Truncates to max_len as Encode
// does (0: never). Returns 0 on success, 2 on a usage error (no tokenizer, nothing to tokenize), 1
// on any other failure, with a one-line message on `err`.
int TokenizeCommand(const std::string& tokenizer_path, const std::vector<std::string>& texts,
                    const std::string& lines_file, std::ostream& out, std::ostream& err,
                    size_t max_len = kContextLength);

}  // namespace fs::clip
