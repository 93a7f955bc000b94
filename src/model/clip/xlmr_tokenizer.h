// XLM-RoBERTa's SentencePiece Unigram tokenizer (the text tokenizer of the multilingual CLIP
// towers: OpenCLIP xlm-roberta-base-ViT-B-32, Immich's XLM-R CLIP models), exact to the Hugging Face
// tokenizer (Rust `tokenizers`) on that model's tokenizer.json: added tokens cut out of the raw
// text, the Precompiled normaliser (sentencepiece's charsmap, per grapheme cluster as Hugging Face
// applies it), WhitespaceSplit, Metaspace ("▁" prefix), Viterbi over the piece scores with
// consecutive unknown characters fused into one <unk>, then the post-processor's template
// (<s> ... </s>). docs/tokenizer.md lists the pipeline and what was tested.
// Immutable after Load: Encode may be called from many threads at once. Load returns an
// XlmrTokenizer the caller owns.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "model/clip/text_tokenizer.h"

namespace fs::clip {

class XlmrTokenizer : public TextTokenizer {
 public:
  // A Hugging Face tokenizer.json with model.type "Unigram" (byte_fallback false). Its normaliser,
  // pre-tokenizer and post-processor are read from the file; a component this class does not
  // implement is kUnsupported, naming it. Other errors name the file: kNotFound (missing),
  // kCorruption (bad JSON, bad charsmap, inconsistent vocabulary), kResourceExhausted (over 64 MiB).
  static Result<std::unique_ptr<XlmrTokenizer>> Load(const std::string& path);

  ~XlmrTokenizer() override;
  XlmrTokenizer(const XlmrTokenizer&) = delete;
  XlmrTokenizer& operator=(const XlmrTokenizer&) = delete;

  // Ids as Hugging Face's encode(text, add_special_tokens=True). With max_len > 0 the text's ids
  // are cut to max_len minus the template's special tokens, so that the result is at most max_len
  // long and still ends with </s> (Hugging Face's truncation with max_length; 77 for CLIP). Not
  // padded: pad with pad_id() where a fixed length is needed (OpenCLIP pads to 77 with <pad> = 1).
  // max_len > 0 but not above the number of special tokens (2) is kInvalidArgument.
  Result<std::vector<int32_t>> Encode(std::string_view text, size_t max_len = kContextLength) const override;

  size_t vocab_size() const override;  // 250,002 for XLM-R
  int32_t start_id() const override;   // <s>: 0
  int32_t end_id() const override;     // </s>: 2
  int32_t pad_id() const;              // <pad>: 1 (-1 when the file has no <pad>)
  int32_t unk_id() const;              // <unk>: 3

  struct Impl;  // opaque: defined in xlmr_tokenizer.cpp

 private:
  friend Result<std::unique_ptr<TextTokenizer>> LoadTextTokenizer(const std::string& path);
  explicit XlmrTokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace fs::clip
