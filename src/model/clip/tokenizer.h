// CLIP's byte-level BPE tokenizer (ViT-B/32 and every CLIP that shares its 49,408-token vocabulary),
// exact to the Hugging Face tokenizer: NFC, whitespace runs -> one space, full lower-casing, CLIP's
// pre-tokenizer pattern, BPE with per-word caching, <|startoftext|> first and <|endoftext|> last.
// docs/architecture.md ("model/clip tokenizer") lists where it differs from OpenAI's original.
// A Tokenizer is immutable after Load except for its internal word cache, which is locked:
// Encode may be called from many threads at once. Load returns a Tokenizer the caller owns.
// Invalid UTF-8 in a text is not an error: each invalid byte becomes U+FFFD.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "model/clip/text_tokenizer.h"

namespace fs::clip {

inline constexpr int32_t kStartOfTextId = 49406;  // <|startoftext|> in CLIP's vocabulary
inline constexpr int32_t kEndOfTextId = 49407;    // <|endoftext|>

class Tokenizer : public TextTokenizer {
 public:
  // Loads one file, recognised by its content:
  //   a Hugging Face tokenizer.json (model.type "BPE", end_of_word_suffix "</w>");
  //   a vocab.json (token -> id), read with merges.txt from the same folder;
  //   OpenAI's bpe_simple_vocab_16e6.txt.gz (gzip) or the same text uncompressed: the first
  //   48,894 merges after the header line, as OpenAI's clip.tokenize reads it;
  //   a folder: as LoadDir.
  // Errors name the file: kNotFound (missing), kCorruption (unreadable or inconsistent content),
  // kUnsupported (a tokenizer.json of another model type), kResourceExhausted (over 64 MiB).
  static Result<std::unique_ptr<Tokenizer>> Load(const std::string& path);
  // A Hugging Face model folder: tokenizer.json, else vocab.json + merges.txt, else
  // bpe_simple_vocab_16e6.txt.gz.
  static Result<std::unique_ptr<Tokenizer>> LoadDir(const std::string& dir);

  ~Tokenizer() override;
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Token ids of `text`, <|startoftext|> first and <|endoftext|> last. When max_len > 0 and the
  // result is longer, it keeps the first max_len - 1 ids and ends with <|endoftext|> (what CLIP's
  // text tower expects: 77). max_len == 0: no truncation. max_len == 1 is kInvalidArgument.
  // The strings "<|endoftext|>" (anywhere) and "<|startoftext|>" (after normalisation) in the text
  // become their special tokens, as in Hugging Face. Thread-safe.
  Result<std::vector<int32_t>> Encode(std::string_view text, size_t max_len = kContextLength) const override;

  size_t vocab_size() const override;  // 49,408 for CLIP
  int32_t start_id() const override;   // id of <|startoftext|>
  int32_t end_id() const override;     // id of <|endoftext|>

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace fs::clip
