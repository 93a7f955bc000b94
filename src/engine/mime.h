// MIME type detection from the first bytes of a file (magic numbers), falling back to the
// extension only where content does not decide (text formats, Office zip containers).
// A lying extension loses: a PNG named report.pdf is image/png. Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace fs {

// `head`: the first bytes of the file (512 or more recommended). `ext`: lower-case, no dot.
std::string DetectMime(std::string_view head, std::string_view ext);
// True for types whose bytes are text we can index directly.
bool IsTextMime(std::string_view mime);
// Lower-cased extension of a file name without the dot ("" if none, or a dot-file like ".bashrc").
std::string ExtensionOf(std::string_view name);

}  // namespace fs
