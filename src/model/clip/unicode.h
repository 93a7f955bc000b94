// Internal header of model/clip (the tokenizer's Unicode support); not for other layers.
// The Unicode operations the tokenizers need, as the Hugging Face tokenizer performs them: general
// categories for CLIP's pre-tokenizer (\p{L}, \p{N}, White_Space), NFC normalisation and full
// lower-casing (String.prototype.toLowerCase: SpecialCasing's unconditional mappings and the
// Final_Sigma rule); extended grapheme clusters for XLM-R's Precompiled normaliser (UAX #29, as
// Rust's unicode-segmentation finds them). Tables come from the Unicode Character Database at build
// time (gen_unicode_tables.py over Debian's unicode-data, Unicode 15.0).
// Pure functions over immutable tables: thread-safe. Inputs are code points (char32_t); any value,
// including surrogates and values above U+10FFFF, is accepted and treated as unassigned.
#pragma once

#include <string>
#include <string_view>

namespace fs::clip::unicode {

bool IsLetter(char32_t cp);      // General_Category L* (Lu, Ll, Lt, Lm, Lo)
bool IsNumber(char32_t cp);      // General_Category N* (Nd, Nl, No)
bool IsWhiteSpace(char32_t cp);  // White_Space property (what Oniguruma's and Rust's \s match)

// Canonical combining class (0 for starters and unassigned code points).
int CombiningClass(char32_t cp);

// Unicode Normalization Form C of `text`.
std::u32string Nfc(std::u32string_view text);

// Full, locale-independent lower-casing of `text` (one code point may become up to three);
// U+03A3 becomes final sigma U+03C2 where the Final_Sigma condition holds.
std::u32string Lowercase(std::u32string_view text);

// End (exclusive) of the extended grapheme cluster that starts at text[start]: UAX #29 rules GB3
// to GB13 with GB9c (Indic conjuncts) and the property values of Unicode 17 for every character
// that Unicode 15.0 assigns (gen_unicode_tables.py). start < text.size().
size_t GraphemeClusterEnd(std::u32string_view text, size_t start);

}  // namespace fs::clip::unicode
