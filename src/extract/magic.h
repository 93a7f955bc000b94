// Internal header of extract/: MIME type from content through libmagic. One libmagic handle per
// thread (libmagic handles are not thread-safe), opened on first use and kept until thread exit.
// If the magic database cannot be loaded, every call answers "" and callers keep their own guess.
#pragma once

#include <string>
#include <string_view>

namespace fs::extract_internal {

// libmagic's MIME type for these leading bytes ("audio/mpeg"), or "" when libmagic is unavailable.
std::string MagicMime(std::string_view head);

}  // namespace fs::extract_internal
