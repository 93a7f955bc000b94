#include "extract/pdf.h"

#include <poppler-document.h>
#include <poppler-global.h>
#include <poppler-page.h>

#include <climits>
#include <exception>
#include <memory>
#include <mutex>

#include "core/utf8.h"
#include "extract/encoding.h"

namespace fs::extract_internal {
namespace {

std::mutex& PopplerMutex() {
  static std::mutex mu;
  return mu;
}

void IgnorePopplerMessage(const std::string&, void*) {}

}  // namespace

Result<std::string> PdfToText(std::string_view bytes, size_t max_text_bytes) {
  if (bytes.size() > static_cast<size_t>(INT_MAX)) return Status::ResourceExhausted("PDF too large to parse");
  std::lock_guard<std::mutex> lock(PopplerMutex());
  static std::once_flag quiet;
  std::call_once(quiet, [] { poppler::set_debug_error_function(IgnorePopplerMessage, nullptr); });
  try {
    std::unique_ptr<poppler::document> doc(
        poppler::document::load_from_raw_data(bytes.data(), static_cast<int>(bytes.size())));
    if (!doc) return Status::Corruption("damaged or not a PDF (poppler could not open it)");
    if (doc->is_locked()) return Status::PermissionDenied("encrypted PDF: text needs a password");
    std::string text;
    const int pages = doc->pages();
    for (int i = 0; i < pages && text.size() < max_text_bytes; ++i) {
      std::unique_ptr<poppler::page> page(doc->create_page(i));
      if (!page) continue;
      poppler::byte_array utf8 = page->text().to_utf8();
      if (utf8.empty()) continue;
      if (!text.empty()) text += "\n\n";
      text.append(utf8.data(), utf8.size());
    }
    if (!IsValidUtf8(text)) text = RepairUtf8(text);
    TruncateUtf8(&text, max_text_bytes);
    return text;
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("poppler failed: ") + e.what());
  } catch (...) {
    return Status::Corruption("poppler failed");
  }
}

}  // namespace fs::extract_internal
