// Internal header of index/: the "filesearch" FTS5 tokenizer.
// Latin and other space-separated scripts go through SQLite's unicode61 tokenizer with
// diacritics removed (case- and accent-insensitive: "Café" == "cafe"). Runs of CJK characters
// (Han, Hiragana, Katakana, Hangul) are indexed as every single character plus every adjacent
// pair at the same position, so a one- or two-character query finds the word it is part of
// (`請求` finds `2024年請求書.pdf`). Queries of two or more CJK characters become a phrase of
// overlapping pairs. Registration is per connection and thread-safe by SQLite's rules.
#pragma once

struct sqlite3;

namespace fs::index_internal {

// Registers tokenizer "filesearch" on `db`. Returns an SQLite result code.
int RegisterFtsTokenizer(sqlite3* db);
// True for code points that the tokenizer treats as CJK (indexed by characters, not words).
bool IsCjk(unsigned cp);

}  // namespace fs::index_internal
