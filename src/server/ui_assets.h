// Internal header of server/: the web UI files (src/server/ui/*) compiled into the binary by
// cmake/embed_files.cmake, so `filesearch serve` needs nothing on disk at run time.
// The table is immutable static data; thread-safe.
#pragma once

#include <cstddef>
#include <span>

namespace fs::server {

struct UiAsset {
  const char* name;  // file name under ui/, e.g. "app.js"
  const unsigned char* data;
  size_t size;
};

std::span<const UiAsset> UiAssets();

}  // namespace fs::server
