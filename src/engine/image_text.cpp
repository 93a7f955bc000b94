#include "engine/image_text.h"

#include "image/image.h"

namespace fs {

bool IsOcrImage(std::string_view mime) {
  return mime == "image/jpeg" || mime == "image/png" || mime == "image/webp" || mime == "image/gif" ||
         mime == "image/bmp" || mime == "image/tiff" || mime == "image/heic" || mime == "image/avif";
}

uint64_t OcrMaxFileBytes() {
  return image::DecodeOptions{}.max_file_bytes;
}

Result<std::string> OcrImageFile(std::string_view bytes, const OcrOptions& options) {
  auto info = image::Probe(bytes);
  if (!info.ok()) return info.status().WithContext("OCR: cannot decode the image");
  // Decoded no larger than OCR accepts: a 24-megapixel photo is read at max_pixels, not refused.
  image::DecodeOptions decode;
  decode.max_side = OcrMaxSide(info->width, info->height, options.max_pixels);
  auto pixels = image::DecodeMemory(bytes, decode);
  if (!pixels.ok()) return pixels.status().WithContext("OCR: cannot decode the image");
  auto text = RecognizeText({pixels->width, pixels->height, 3, pixels->pixels}, options);
  if (!text.ok()) return text.status().WithContext("OCR");
  return std::move(text->text);
}

}  // namespace fs
