// DumpJson: the text of an nlohmann::json value, without ever throwing. A string that is not
// UTF-8 (a file name in another encoding, a decoder's raw message) has its bad bytes written as
// U+FFFD instead of making dump() throw type_error 316 and abort the program.
// A template so that core needs no JSON library; as thread-safe as reading the value.
#pragma once

#include <string>

namespace fs {

// indent -1: one line; >= 0: pretty-printed with that many spaces per level.
template <typename JsonValue>
std::string DumpJson(const JsonValue& value, int indent = -1) {
  return value.dump(indent, ' ', /*ensure_ascii=*/false, JsonValue::error_handler_t::replace);
}

}  // namespace fs
