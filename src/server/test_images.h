// Test helper of server/ (header-only): stand-in image bytes for the API tests.
#pragma once

#include <cstdint>
#include <random>
#include <string>

namespace fs::server::testing {

// A PNG signature and IHDR declaring w x h, then `extra` seeded noise bytes: enough for the
// server's sniffing and pixel limits and for the hash embedder, which does not decode pixels.
inline std::string FakePng(uint32_t w, uint32_t h, uint32_t seed, size_t extra = 64) {
  std::string s = std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16);
  for (uint32_t v : {w, h}) {
    for (int shift = 24; shift >= 0; shift -= 8) s += static_cast<char>((v >> shift) & 0xFF);
  }
  std::mt19937 rng(seed);
  for (size_t i = 0; i < extra; ++i) s += static_cast<char>(rng() & 0xFF);
  return s;
}

}  // namespace fs::server::testing
