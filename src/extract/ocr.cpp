#include "extract/ocr.h"

#include <leptonica/allheaders.h>
#include <tesseract/baseapi.h>
#include <tesseract/ocrclass.h>
#include <tesseract/resultiterator.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <memory>
#include <mutex>
#include <new>
#include <vector>

#include "core/utf8.h"

namespace fs {
namespace {

namespace stdfs = std::filesystem;

constexpr int kMinSide = 8;  // Tesseract finds nothing (and may complain) below this

bool HasData(const std::string& dir, const std::string& lang) {
  std::error_code ec;
  return stdfs::is_regular_file(stdfs::path(dir) / (lang + ".traineddata"), ec);
}

std::vector<std::string> SplitLanguages(const std::string& list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = list.find('+', start);
    if (end == std::string::npos) end = list.size();
    out.push_back(list.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

bool ValidLanguageCode(const std::string& code) {
  if (code.empty() || code.size() > 32) return false;
  return std::all_of(code.begin(), code.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

// The installed languages of `dir`, for error messages ("eng, jpn").
std::string InstalledLanguages(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (stdfs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() == ".traineddata") names.push_back(it->path().stem().string());
  }
  std::sort(names.begin(), names.end());
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out.empty() ? "none" : out;
}

Result<std::string> FindDataDir(const OcrOptions& options) {
  if (!options.data_dir.empty()) {
    std::error_code ec;
    if (!stdfs::is_directory(options.data_dir, ec)) {
      return Status::NotFound("Tesseract data folder '" + options.data_dir +
                              "' does not exist: give the folder that holds eng.traineddata");
    }
    return options.data_dir;
  }
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("TESSDATA_PREFIX"); env != nullptr && *env != '\0')
    candidates.emplace_back(env);
  for (const char* dir : {"/usr/share/tesseract-ocr/5/tessdata", "/usr/share/tesseract-ocr/4.00/tessdata",
                          "/usr/share/tessdata", "/usr/local/share/tessdata"}) {
    candidates.emplace_back(dir);
  }
  for (const auto& dir : candidates) {
    if (HasData(dir, "eng")) return dir;
  }
  std::string looked;
  for (const auto& dir : candidates) looked += (looked.empty() ? "" : ", ") + dir;
  return Status::NotFound("no Tesseract language data found (looked for eng.traineddata in " + looked +
                          "): install tesseract-ocr-eng (and tesseract-ocr-jpn), or set TESSDATA_PREFIX");
}

// Characters written without spaces between words: Tesseract's Japanese model reports each
// character or short run as its own "word", and a space between them would split the text into
// one-character words for the keyword index.
bool IsCjk(uint32_t cp) {
  return (cp >= 0x3000 && cp <= 0x30FF) ||  // CJK punctuation, hiragana, katakana
         (cp >= 0x31F0 && cp <= 0x31FF) ||  // katakana phonetic extensions
         (cp >= 0x3400 && cp <= 0x4DBF) ||  // CJK extension A
         (cp >= 0x4E00 && cp <= 0x9FFF) ||  // CJK unified ideographs
         (cp >= 0xF900 && cp <= 0xFAFF) ||  // compatibility ideographs
         (cp >= 0xFF00 && cp <= 0xFFEF);    // full-width forms, half-width katakana
}

uint32_t FirstCodePoint(std::string_view s) {
  size_t pos = 0;
  return s.empty() ? 0 : NextCodePoint(s, &pos);
}

uint32_t LastCodePoint(std::string_view s) {
  if (s.empty()) return 0;
  size_t start = s.size() - 1;
  while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
  return FirstCodePoint(s.substr(start));
}

void SilenceTesseract(tesseract::TessBaseAPI* api) {
  // Both are process-wide settings: set once, before any thread recognises. Tesseract's tprintf
  // goes to debug_file; Leptonica (its image library) prints "Error in ..." lines for boxes
  // outside the page that Tesseract handles itself.
  static std::once_flag once;
  std::call_once(once, [api] {
    api->SetVariable("debug_file", "/dev/null");
    setMsgSeverity(L_SEVERITY_NONE);
  });
}

// One initialised Tesseract per thread, for the (data folder, languages) it was last asked for.
struct ThreadTesseract {
  std::unique_ptr<tesseract::TessBaseAPI> api;
  std::string key;
};

Result<tesseract::TessBaseAPI*> TesseractFor(const OcrSetup& setup) {
  thread_local ThreadTesseract slot;
  const std::string key = setup.data_dir + '\n' + setup.languages;
  if (slot.api && slot.key == key) return slot.api.get();
  slot.api.reset();
  slot.key.clear();
  auto api = std::make_unique<tesseract::TessBaseAPI>();
  SilenceTesseract(api.get());
  if (api->Init(setup.data_dir.c_str(), setup.languages.c_str(), tesseract::OEM_LSTM_ONLY) != 0) {
    return Status::Internal("Tesseract could not load '" + setup.languages + "' from " + setup.data_dir +
                            " (damaged or incompatible .traineddata?)");
  }
  api->SetPageSegMode(tesseract::PSM_AUTO);
  slot.api = std::move(api);
  slot.key = key;
  return slot.api.get();
}

// Reads the recognised words of `api`, keeping those at or above min_confidence.
OcrText CollectWords(tesseract::TessBaseAPI* api, int min_confidence) {
  OcrText out;
  std::unique_ptr<tesseract::ResultIterator> it(api->GetIterator());
  if (!it) return out;
  constexpr auto kWord = tesseract::RIL_WORD;
  bool new_line = false;
  do {
    if (it->Empty(kWord)) continue;
    if (it->IsAtBeginningOf(tesseract::RIL_TEXTLINE)) new_line = true;
    std::unique_ptr<char[]> raw(it->GetUTF8Text(kWord));
    if (!raw) continue;
    std::string word = RepairUtf8(raw.get());
    // Tesseract may return a word of spaces; it is not a word.
    if (word.find_first_not_of(" \t\r\n") == std::string::npos) continue;
    if (it->Confidence(kWord) < static_cast<float>(min_confidence)) {
      ++out.words_dropped;
      continue;
    }
    ++out.words_kept;
    if (!out.text.empty()) {
      if (new_line) {
        out.text += '\n';
      } else if (!(IsCjk(LastCodePoint(out.text)) && IsCjk(FirstCodePoint(word)))) {
        out.text += ' ';
      }
    }
    new_line = false;
    out.text += word;
  } while (it->Next(kWord));
  return out;
}

}  // namespace

Result<OcrSetup> ResolveOcr(const OcrOptions& options) {
  OcrSetup setup;
  FS_ASSIGN_OR_RETURN(setup.data_dir, FindDataDir(options));
  if (options.languages.empty()) {
    if (!HasData(setup.data_dir, "eng")) {
      return Status::NotFound("no English OCR data (eng.traineddata) in " + setup.data_dir +
                              ": install tesseract-ocr-eng or give the languages to use");
    }
    if (HasData(setup.data_dir, "jpn")) {
      setup.languages = "eng+jpn";
    } else {
      setup.languages = "eng";
      setup.note = "OCR reads English only: no Japanese data (jpn.traineddata) in " + setup.data_dir +
                   " (install tesseract-ocr-jpn for Japanese)";
    }
    return setup;
  }
  for (const std::string& lang : SplitLanguages(options.languages)) {
    if (!ValidLanguageCode(lang)) {
      return Status::InvalidArgument("bad OCR language list '" + options.languages +
                                     "': give Tesseract codes joined by '+', e.g. eng+jpn");
    }
    if (!HasData(setup.data_dir, lang)) {
      return Status::NotFound("no OCR data for '" + lang + "' in " + setup.data_dir + " (installed: " +
                              InstalledLanguages(setup.data_dir) + "): install tesseract-ocr-" + lang);
    }
  }
  setup.languages = options.languages;
  return setup;
}

int OcrMaxSide(int width, int height, uint64_t max_pixels) {
  const int longest = std::max(width, height);
  const double pixels = static_cast<double>(width) * static_cast<double>(height);
  if (longest <= 0 || pixels <= static_cast<double>(max_pixels)) return longest;
  const double scale = std::sqrt(static_cast<double>(max_pixels) / pixels);
  // One pixel less: the decoder rounds the other side to nearest, which may round it up.
  return std::max(1, static_cast<int>(std::floor(longest * scale)) - 1);
}

Result<OcrText> RecognizeText(const OcrPixels& image, const OcrOptions& options) {
  if (image.width < 0 || image.height < 0 || (image.channels != 1 && image.channels != 3) ||
      image.pixels.size() != static_cast<uint64_t>(image.width) * static_cast<uint64_t>(image.height) *
                                 static_cast<uint64_t>(image.channels)) {
    return Status::InvalidArgument("OCR input is not a " + std::to_string(image.width) + "x" +
                                   std::to_string(image.height) + " image of 1 or 3 channels");
  }
  const uint64_t pixels = static_cast<uint64_t>(image.width) * static_cast<uint64_t>(image.height);
  if (pixels > options.max_pixels) {
    return Status::ResourceExhausted("image of " + std::to_string(pixels) +
                                     " pixels is over the OCR limit of " +
                                     std::to_string(options.max_pixels));
  }
  FS_ASSIGN_OR_RETURN(OcrSetup setup, ResolveOcr(options));
  if (image.width < kMinSide || image.height < kMinSide) return OcrText{};
  try {
    FS_ASSIGN_OR_RETURN(tesseract::TessBaseAPI * api, TesseractFor(setup));
    api->SetImage(image.pixels.data(), image.width, image.height, image.channels,
                  image.width * image.channels);
    tesseract::ETEXT_DESC monitor;
    if (options.max_ms > 0) monitor.set_deadline_msecs(options.max_ms);
    const auto start = std::chrono::steady_clock::now();
    int rc = -1;
    // Tesseract's OpenMP loops ask for 4 threads each (num_threads clauses, which neither
    // omp_set_num_threads nor OMP_NUM_THREADS override); on a busy or 2-core machine the spinning
    // team made a page 7x slower (docs/benchmarks.md, "OCR"). A one-team region with a thread
    // limit of 1 caps them for this call only, leaving other OpenMP users (oneDNN) alone.
    // An exception must not leave the OpenMP region: it is carried out and rethrown after it.
    std::exception_ptr thrown;
#pragma omp teams num_teams(1) thread_limit(1)
    {
      try {
        rc = api->Recognize(&monitor);
      } catch (...) {
        thrown = std::current_exception();
      }
    }
    if (thrown) std::rethrow_exception(thrown);
    const auto elapsed_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start)
            .count();
    // The monitor stops recognition at the deadline; layout analysis before it runs to its end.
    if (options.max_ms > 0 && (monitor.deadline_exceeded() || elapsed_ms > options.max_ms)) {
      api->Clear();
      return Status::ResourceExhausted("OCR gave up after " + std::to_string(elapsed_ms) + " ms (limit " +
                                       std::to_string(options.max_ms) + " ms)");
    }
    if (rc != 0) {
      api->Clear();
      return Status::Internal("Tesseract could not recognise the image");
    }
    OcrText out = CollectWords(api, options.min_confidence);
    api->Clear();  // frees the page's results and the copy of the pixels; the models stay loaded
    return out;
  } catch (const std::bad_alloc&) {
    return Status::ResourceExhausted("out of memory during OCR");
  } catch (const std::exception& e) {
    return Status::Internal(std::string("Tesseract failed: ") + e.what());
  }
}

}  // namespace fs
