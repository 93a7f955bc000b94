// Base64 (RFC 4648): url-safe without padding (JWTs, search cursors) and standard with padding
// (image bytes in JSON). Decoding is strict: bad characters, data after padding or non-zero
// leftover bits are errors. Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace fs {

std::string Base64UrlEncode(std::string_view data);
// Also accepts trailing '=' padding.
Result<std::string> Base64UrlDecode(std::string_view text);
// Standard alphabet with padding (HTTP basic auth).
std::string Base64Encode(std::string_view data);
// Standard alphabet with padding; whitespace is ignored.
Result<std::string> Base64Decode(std::string_view text);

}  // namespace fs
