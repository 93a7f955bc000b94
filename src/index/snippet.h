// Snippets: the passage of a document's stored text that best shows why it matched a keyword query,
// with the matched words marked. Words match as the keyword search matches them (index/'s "filesearch"
// tokenizer): case-insensitively, in any English form (Snowball stems: "elephant" marks "Elephants"),
// by parts of names ("kodim" marks "kodim01"), `word*` as a prefix, and runs of CJK characters as
// substrings. Accents are not folded here (a match found through folding is simply not marked).
// Pure functions of their inputs; thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace fs {

// One piece of a snippet: text to show as it is, marked (`match`) or not. Valid UTF-8; runs of
// white space (line breaks included) are shown as one space; "…" starts or ends a snippet that was cut.
struct SnippetPart {
  std::string text;
  bool match = false;
};

struct SnippetOptions {
  size_t max_chars = 240;         // characters (code points) shown, ellipses not counted
  size_t max_scan_bytes = 1 << 20;  // bytes of the text searched for matches (stored text is cut at 1 MiB)
};

// The window of at most max_chars characters of `text` holding the most distinct query words
// (first such window), cut at word boundaries; the start of the text when no word matches or the
// query has none. Empty when `text` holds nothing but white space.
std::vector<SnippetPart> MakeSnippet(std::string_view text, std::string_view query, const SnippetOptions& options = {});

}  // namespace fs
