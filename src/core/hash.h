// Content hashing: SHA-256 of bytes or of a whole file (streamed, bounded memory), as lower-case hex.
// Thread-safe: every call has its own state.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "core/status.h"

namespace fs {

std::string Sha256Hex(std::string_view data);
// Lower-case hex of n raw bytes (digests, MACs).
std::string ToHex(const unsigned char* bytes, size_t n);

// Incremental SHA-256: Update() any number of times, then Finish() once.
class Sha256Stream {
 public:
  Sha256Stream();
  ~Sha256Stream();
  Sha256Stream(const Sha256Stream&) = delete;
  Sha256Stream& operator=(const Sha256Stream&) = delete;
  void Update(std::string_view data);
  std::string FinishHex();

 private:
  void* ctx_;  // EVP_MD_CTX
};

// Streams the file in 1 MiB blocks.
Result<std::string> Sha256File(const std::string& path);
// 64-bit FNV-1a, for in-memory hashing where collisions are harmless.
uint64_t Fnv1a64(std::string_view data);

}  // namespace fs
