// Internal header of model/clip, for tests only: the deterministic corpus on which the CLIP
// tokenizer is compared with the Hugging Face tokenizer (tokenizer_hf_test.cpp) and its three file
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

}  // namespace fs::clip
