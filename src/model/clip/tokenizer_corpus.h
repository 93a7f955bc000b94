// Internal header of model/clip, for tests only: the deterministic corpora on which the CLIP and
// XLM-R tokenizers are compared with the Hugging Face tokenizer (tokenizer_hf_test.cpp) and its three file
// formats with one another (tokenizer_test.cpp).
// Every string is valid UTF-8. Same strings, same order, on every platform and run (own PRNG
// arithmetic, no std distributions). Thread-safe (no shared state).
#pragma once

#include <string>
#include <vector>

namespace fs::clip {

// ~3,000 strings: English, punctuation and contractions, numbers, emoji (ZWJ, flags, skin tones),
// accents (precomposed and decomposed, Greek final sigma, Turkish dotted I, Hangul jamo), Japanese,
// Chinese, other scripts, random letters, numbers and combining marks of the BMP and SMP, 200-word
// texts (longer than 77 tokens), special-token strings, controls, empty and whitespace-only strings.
// Code points are limited to those assigned by Unicode 15.0, so that the build's tables and the
// reference's (a later Unicode) agree.
std::vector<std::string> TokenizerCorpus();

// ~2,900 further strings for the XLM-R tokenizer (xlmr_tokenizer_hf_test.cpp adds them to
// TokenizerCorpus()): Japanese (kana, kanji, half-width katakana, full-width digits and Latin),
// Chinese, Korean (syllables and jamo), Thai, Arabic (harakat, presentation forms), Hindi,
// Cyrillic, Greek, accents, compatibility characters that NFKC folds, emoji with ZWJ, skin tones,
// flags, tags and keycaps, every short cluster of a base and a combining mark, controls, joiners
// and spaces, XLM-R's special tokens in context, and texts of up to ~1,500 words.
std::vector<std::string> XlmrTokenizerCorpus();

}  // namespace fs::clip
