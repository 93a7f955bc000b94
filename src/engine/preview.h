// Previews: a JPEG a person can look at for a document, larger than the 256 px thumbnail. Images
// are decoded with shrink-on-load (JPEG DCT scaling) under the decoder's limits and reduced to fit
// max_side; a PDF's first page is rendered by poppler to the same size. Other types have no
// picture (Unsupported): their preview is their extracted text. Pure functions of the bytes
// (borrowed for the call); thread-safe (PDF rendering is serialised inside extract/).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace fs {

struct PreviewOptions {
  int max_side = 1600;                     // longest side of the JPEG, pixels (never enlarged)
  uint64_t max_pixels = 40'000'000;        // images: refused above this many pixels (decompression bombs)
  uint64_t max_file_bytes = 64ull << 20;   // larger inputs are refused (ResourceExhausted)
};

// True for the MIME types RenderPreview draws: images (not SVG) and PDF.
bool HasPicturePreview(std::string_view mime);

// JPEG bytes (quality 80, no metadata). Unsupported for types without a picture; Corruption,
// PermissionDenied (encrypted PDF) or ResourceExhausted (a limit) for files that cannot be drawn.
Result<std::string> RenderPreview(std::string_view bytes, std::string_view mime, const PreviewOptions& options = {});

}  // namespace fs
