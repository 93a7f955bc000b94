// Internal header of extract/: markup to plain text. HTML loses its tags, comments and the contents
// of <script>/<style>; entities (common named ones and all numeric ones) are decoded; block elements
// become line breaks; the <title> is kept in the text and returned apart. Markdown stays text with its
// link targets and emphasis characters removed. Pure functions; thread-safe. Outputs are valid UTF-8.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace fs::extract_internal {

struct HtmlText {
  std::string text;      // visible text, whitespace collapsed, at most max_bytes
  std::string title;     // <title> contents ("" if none)
  std::string encoding;  // what the bytes were decoded from (see DecodeToUtf8)
};

// `raw`: the file's bytes, any encoding; the charset of <meta charset> / <meta http-equiv> or an
// XML declaration is honoured when the bytes agree with it. `truncated`: `raw` is the head of a
// longer file (see DecodeToUtf8).
HtmlText HtmlToText(std::string_view raw, size_t max_bytes, bool truncated = false);
// The charset an HTML or XML document declares in its first 4 KiB ("" if none).
std::string DeclaredCharset(std::string_view raw);
// `utf8`: Markdown source already decoded. "[text](url)" -> "text", "![alt](src)" -> "alt",
// reference definitions dropped, heading/quote markers, '*' and '`' removed.
std::string MarkdownToText(std::string_view utf8);

}  // namespace fs::extract_internal
