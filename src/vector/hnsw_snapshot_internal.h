// Internal header of vector/: the snapshot checksum, exposed so tests can forge well-formed
// snapshots (e.g. a future format version). Not for use outside src/vector.
#pragma once

#include <cstddef>
#include <cstdint>

namespace fs::vec::internal {

// The 64-bit checksum that ends every snapshot (docs/formats/hnsw-snapshot.md), over `n` bytes.
uint64_t SnapshotChecksum(const char* data, size_t n);

}  // namespace fs::vec::internal
