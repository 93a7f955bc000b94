// Internal header of extract/: plain-text encoding detection and conversion to UTF-8.
// Order of evidence: a byte-order mark, then a declared charset (HTML <meta>), then BOM-less UTF-16
// (NUL bytes on one parity), then strict UTF-8, then Shift_JIS (CP932) / EUC-JP by trial conversion
// with glibc iconv and a plausibility score, and finally CP1252 (a superset of printable Latin-1).
// Never fails: invalid bytes become U+FFFD and the output is always valid UTF-8. With `truncated`
// (the input is the head of a longer file) a multi-byte sequence cut at the end is dropped silently.
// Pure functions; thread-safe (each call opens its own iconv descriptors).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace fs::extract_internal {

struct DecodedText {
  std::string text;      // valid UTF-8, no BOM
  std::string encoding;  // what was detected: "utf-8", "utf-16le", "utf-16be", "cp932", "euc-jp", "cp1252"
};

// `declared`: a charset name from the document itself ("" if none); honoured when the bytes convert
// cleanly. `max_bytes`: the UTF-8 output is cut (at a code point boundary) to at most this size.
DecodedText DecodeToUtf8(std::string_view raw, std::string_view declared, size_t max_bytes,
                         bool truncated = false);

// Canonical iconv name for a charset label from a document ("shift_jis" -> "CP932", "latin1" ->
// "CP1252", "utf8" -> "UTF-8"); "" for labels we do not accept.
std::string CanonicalCharset(std::string_view label);

// UTF-16 without a BOM to UTF-8, at most `max_bytes`; unpaired surrogates become U+FFFD.
std::string Utf16ToUtf8(std::string_view raw, bool little_endian, size_t max_bytes);

// ASCII lower-case copy (other bytes unchanged, so byte offsets stay valid).
std::string AsciiLower(std::string_view s);

// Cuts `s` (valid UTF-8) to at most `max_bytes` without splitting a code point.
void TruncateUtf8(std::string* s, size_t max_bytes);

}  // namespace fs::extract_internal
