// Internal header of extract/: PDF text through poppler-cpp. Poppler's own error output is routed
// away from stderr (into nothing) once per process. Thread-safe: calls are serialised by a mutex,
// because poppler's global parameters are shared. The caller owns the bytes; nothing is kept.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "core/status.h"

namespace fs::extract_internal {

// Text of every page in order, pages separated by a blank line, cut to `max_text_bytes` (valid
// UTF-8). Corruption for damaged files, PermissionDenied for encrypted ones that need a password.
Result<std::string> PdfToText(std::string_view bytes, size_t max_text_bytes);

}  // namespace fs::extract_internal
