// UTF-8 helpers: validation, repair (invalid bytes become U+FFFD) and code point iteration.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace fs {

bool IsValidUtf8(std::string_view s);
// Copies `s`, replacing each maximal invalid sequence with U+FFFD.
std::string RepairUtf8(std::string_view s);
// Decodes the code point at s[*pos] and advances *pos; invalid bytes yield 0xFFFD and advance by 1.
uint32_t NextCodePoint(std::string_view s, size_t* pos);
void AppendUtf8(uint32_t cp, std::string* out);

}  // namespace fs
