#include "core/base64.h"

#include <cstdint>
#include <cstring>

namespace fs {
namespace {

constexpr char kB64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr char kB64Std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int B64Value(char c, const char* alphabet) {
  if (c == '\0') return -1;
  const char* p = std::strchr(alphabet, c);
  return p ? static_cast<int>(p - alphabet) : -1;
}

// Decodes base64 in `alphabet`. Padding is allowed only at the end; leftover bits must be zero.
Result<std::string> DecodeWith(std::string_view in, const char* alphabet, bool skip_space) {
  std::string out;
  out.reserve(in.size() * 3 / 4);
  uint32_t buf = 0;
  int bits = 0;
  size_t pad = 0;
  for (char c : in) {
    if (skip_space && (c == ' ' || c == '\n' || c == '\r' || c == '\t')) continue;
    if (c == '=') {
      ++pad;
      continue;
    }
    if (pad) return Status::InvalidArgument("base64: data after '=' padding");
    int v = B64Value(c, alphabet);
    if (v < 0) return Status::InvalidArgument("base64: invalid character");
    buf = (buf << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buf >> bits) & 0xFF);
    }
  }
  if (bits >= 6 || pad > 2 || (buf & ((1u << bits) - 1)) != 0) return Status::InvalidArgument("base64: truncated data");
  return out;
}

// Encodes in `alphabet`; `pad` appends '=' up to a multiple of four characters.
std::string EncodeWith(std::string_view in, const char* alphabet, bool pad) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  uint32_t buf = 0;
  int bits = 0;
  for (unsigned char c : in) {
    buf = (buf << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += alphabet[(buf >> bits) & 63];
    }
  }
  if (bits > 0) out += alphabet[(buf << (6 - bits)) & 63];
  while (pad && out.size() % 4 != 0) out += '=';
  return out;
}

}  // namespace

std::string Base64UrlEncode(std::string_view in) { return EncodeWith(in, kB64Url, false); }
std::string Base64Encode(std::string_view in) { return EncodeWith(in, kB64Std, true); }

Result<std::string> Base64UrlDecode(std::string_view text) { return DecodeWith(text, kB64Url, false); }
Result<std::string> Base64Decode(std::string_view text) { return DecodeWith(text, kB64Std, true); }

}  // namespace fs
