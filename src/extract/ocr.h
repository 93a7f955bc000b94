// OCR: the words in a picture, through Tesseract (libtesseract 5, LSTM models; English and Japanese
// by default). Input is a borrowed view of decoded 8-bit pixels (image/'s RgbImage, or grey), so
// this layer never decodes files itself: the caller (engine/) decodes under image/'s limits.
// Thread-safe: each thread keeps its own TessBaseAPI, initialised on its first call for a
// (data folder, languages) pair and reused after (Init reads the models, 4 MB for eng and 2.5 MB
// for jpn with Debian's data, in 0.1-0.3 s); a thread that asks for other languages re-initialises.
// Recognition runs on the calling thread only (Tesseract's OpenMP loops are capped to one thread
// per call), so call it from ordinary threads, not from inside an OpenMP parallel region.
// Nothing throws; Tesseract's and Leptonica's own diagnostics are routed away from stderr.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "core/status.h"

namespace fs {

struct OcrOptions {
  // Tesseract language codes joined by '+', e.g. "eng", "eng+jpn". "" = "eng+jpn" when the jpn
  // data is installed, else "eng" (ResolveOcr says so in its note).
  std::string languages;
  // Folder holding <lang>.traineddata. "" = $TESSDATA_PREFIX, else the first of the usual Debian
  // locations (/usr/share/tesseract-ocr/5/tessdata, .../4.00/tessdata, /usr/share/tessdata) that
  // holds eng.traineddata.
  std::string data_dir;
  // Images with more pixels are refused (kResourceExhausted) before Tesseract sees them; callers
  // that decode should scale larger images down to fit (OcrMaxSide).
  uint64_t max_pixels = 8'000'000;
  // Give up on one image after this long (Tesseract's deadline monitor, checked between words;
  // layout analysis before recognition is not interrupted): kResourceExhausted. <= 0: no limit.
  int max_ms = 10000;
  // Words Tesseract is less sure of (its confidence, 0..100) are dropped: photos without text
  // otherwise yield a few garbage "words" from textures and edges.
  int min_confidence = 60;
};

// An 8-bit image borrowed for the duration of a call: `channels` 1 (grey) or 3 (RGB), rows of
// width * channels bytes without padding, so pixels.size() == width * height * channels.
struct OcrPixels {
  int width = 0;
  int height = 0;
  int channels = 3;
  std::span<const uint8_t> pixels;
};

struct OcrSetup {
  std::string data_dir;   // the tessdata folder that will be used
  std::string languages;  // what Tesseract will load, e.g. "eng+jpn"
  std::string note;       // "" or a message for the user (e.g. "Japanese data not installed: ...")
};

// Which data folder and languages `options` mean on this machine, checked without loading any
// model: NotFound with what to install or set when a language's data (or any data) is missing,
// InvalidArgument for a malformed language list.
Result<OcrSetup> ResolveOcr(const OcrOptions& options);

struct OcrText {
  std::string text;       // valid UTF-8: kept words joined by spaces, lines by '\n' ("" if none)
  int words_kept = 0;     // words at or above min_confidence
  int words_dropped = 0;  // words below it
};

// Recognises the text of `image`. Blank, tiny (under 8 pixels a side) or textless images give an
// empty text, not an error. Errors: InvalidArgument (the view does not match its size),
// ResourceExhausted (max_pixels, max_ms), NotFound (language data missing, see ResolveOcr),
// Internal (Tesseract failed to initialise or to recognise).
Result<OcrText> RecognizeText(const OcrPixels& image, const OcrOptions& options);

// The longest side to decode an image of width x height to so that it fits in max_pixels
// (its own longest side when it already fits). For callers that decode before RecognizeText.
int OcrMaxSide(int width, int height, uint64_t max_pixels);

}  // namespace fs
