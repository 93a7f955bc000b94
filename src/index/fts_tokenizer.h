// Internal header of index/: the "filesearch" FTS5 tokenizer.
// Latin and other space-separated scripts go through SQLite's unicode61 tokenizer with
// diacritics removed (case- and accent-insensitive: "Café" == "cafe"). Runs of CJK characters
// (Han, Hiragana, Katakana, Hangul) are indexed as every single character plus every adjacent
// pair at the same position, so a one- or two-character query finds the word it is part of
// (`請求` finds `2024年請求書.pdf`). Queries of two or more CJK characters become a phrase of
// overlapping pairs. Registration is per connection and thread-safe by SQLite's rules.
//
// Matching parts of words and English word forms: each Latin token of a document is also indexed,
// at the same position (colocated, not counted in the document's size), as its Snowball English
// stem (Porter2, libstemmer): "elephants" -> "eleph".
// Parts of words go to columns of their own (name_parts, path_parts, weighted below the whole-word
// columns, so a part-of-name match ranks below a whole-word one): a document text that starts
// with kPartsMarker is tokenized into only the parts of its tokens, split where letters meet
// digits or a lower-case letter meets an upper-case one, parts of two characters or more, and
// their stems: "kodim01" -> "kodim", "01"; "MyInvoice2024" -> "my", "invoic", "2024"; a token
// without parts gives nothing.
// A query token becomes its stem ("elephant" -> "eleph"), so every form of a word finds every
// other; a prefix query ("eleph*") keeps the token as typed and matches the indexed tokens.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

struct sqlite3;
struct sb_stemmer;

namespace fs::index_internal {

// Registers tokenizer "filesearch" on `db`. Returns an SQLite result code.
int RegisterFtsTokenizer(sqlite3* db);
// True for code points that the tokenizer treats as CJK (indexed by characters, not words).
bool IsCjk(unsigned cp);

// The Snowball English stem of a folded (lower-case, accent-free) token; the token itself when it
// is not a plain ASCII word of three or more characters. Points into `stemmer`'s buffer (valid
// until its next call) or into `folded`.
std::string_view StemToken(sb_stemmer* stemmer, std::string_view folded);
// The extra forms a document token is indexed under, distinct and different from `folded`:
// `parts` false, its stem; `parts` true, its parts and their stems (less the token's own stem).
// `original` is the token as written. Returns how many went to `out`.
constexpr size_t kMaxTokenExtras = 8;
size_t TokenForms(sb_stemmer* stemmer, std::string_view folded, std::string_view original, bool parts,
                  std::string (&out)[kMaxTokenExtras]);
// First byte of a parts column's text (the store writes char(1) || name and char(1) || path).
constexpr char kPartsMarker = '\x01';

}  // namespace fs::index_internal
