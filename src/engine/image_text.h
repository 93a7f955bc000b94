// Internal header of engine/: the text in an image file, where image/ and extract/ meet. The bytes
// are decoded under image/'s limits, scaled down to fit OcrOptions::max_pixels, and read by
// extract/'s Tesseract (RecognizeText). Thread-safe (see ocr.h: one Tesseract per thread).
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"
#include "extract/ocr.h"

namespace fs {

// True for the image types image/ decodes (the ones OCR can be asked to read).
bool IsOcrImage(std::string_view mime);

// Largest image file OCR reads (image::DecodeOptions::max_file_bytes): the crawl keeps up to this
// many bytes of an image when OCR is on.
uint64_t OcrMaxFileBytes();

// `bytes`: a whole image file (borrowed). The recognised text ("" for a picture without words);
// a decode or OCR error as a Status whose message says which.
Result<std::string> OcrImageFile(std::string_view bytes, const OcrOptions& options);

}  // namespace fs
