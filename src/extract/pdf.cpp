#include "extract/pdf.h"

#include "extract/extract.h"

#include <poppler-document.h>
#include <poppler-global.h>
#include <poppler-image.h>
#include <poppler-page-renderer.h>
#include <poppler-page.h>

#include <algorithm>
#include <climits>
#include <cstring>
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

void QuietPoppler() {
  static std::once_flag quiet;
  std::call_once(quiet, [] { poppler::set_debug_error_function(IgnorePopplerMessage, nullptr); });
}

}  // namespace

Result<std::string> PdfToText(std::string_view bytes, size_t max_text_bytes) {
  if (bytes.size() > static_cast<size_t>(INT_MAX)) return Status::ResourceExhausted("PDF too large to parse");
  std::lock_guard<std::mutex> lock(PopplerMutex());
  QuietPoppler();
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

namespace fs {

Result<RenderedPage> RenderPdfFirstPage(std::string_view bytes, int max_side, uint64_t max_pixels) {
  if (bytes.size() > static_cast<size_t>(INT_MAX)) return Status::ResourceExhausted("PDF too large to parse");
  if (max_side <= 0) return Status::InvalidArgument("max_side must be positive");
  std::lock_guard<std::mutex> lock(extract_internal::PopplerMutex());
  extract_internal::QuietPoppler();
  try {
    std::unique_ptr<poppler::document> doc(
        poppler::document::load_from_raw_data(bytes.data(), static_cast<int>(bytes.size())));
    if (!doc) return Status::Corruption("damaged or not a PDF (poppler could not open it)");
    if (doc->is_locked()) return Status::PermissionDenied("encrypted PDF: its pages need a password");
    if (doc->pages() < 1) return Status::Corruption("the PDF has no pages");
    std::unique_ptr<poppler::page> page(doc->create_page(0));
    if (!page) return Status::Corruption("the PDF's first page cannot be read");
    // Points (1/72 inch) to pixels: the longer side becomes max_side. A page that declares an
    // absurd size (zero, or miles wide) is refused rather than rendered.
    const poppler::rectf box = page->page_rect(poppler::media_box);
    const double longer = std::max(box.width(), box.height());
    const double shorter = std::min(box.width(), box.height());
    if (!(shorter >= 1) || !(longer <= 200000)) return Status::Corruption("the PDF's first page has no usable size");
    const double dpi = 72.0 * max_side / longer;
    const double pixels = (box.width() * dpi / 72.0) * (box.height() * dpi / 72.0);
    if (pixels > static_cast<double>(max_pixels)) {
      return Status::ResourceExhausted("the PDF's first page would render larger than the pixel limit");
    }
    poppler::page_renderer renderer;
    renderer.set_render_hints(poppler::page_renderer::antialiasing | poppler::page_renderer::text_antialiasing);
    renderer.set_image_format(poppler::image::format_rgb24);
    renderer.set_paper_color(0xffffffff);
    poppler::image image = renderer.render_page(page.get(), dpi, dpi);
    if (!image.is_valid() || image.width() <= 0 || image.height() <= 0) {
      return Status::Corruption("poppler could not render the PDF's first page");
    }
    RenderedPage out;
    out.width = image.width();
    out.height = image.height();
    out.rgb.resize(static_cast<size_t>(out.width) * static_cast<size_t>(out.height) * 3);
    // format_rgb24 rows hold R, G, B bytes per pixel (Splash's RGB8), padded to bytes_per_row.
    const size_t row_bytes = static_cast<size_t>(out.width) * 3;
    if (image.bytes_per_row() < static_cast<int>(row_bytes)) return Status::Internal("poppler returned short rows");
    for (int row = 0; row < out.height; ++row) {
      const char* src = image.const_data() + static_cast<size_t>(row) * static_cast<size_t>(image.bytes_per_row());
      std::memcpy(out.rgb.data() + static_cast<size_t>(row) * row_bytes, src, row_bytes);
    }
    return out;
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("poppler failed: ") + e.what());
  } catch (...) {
    return Status::Corruption("poppler failed");
  }
}

}  // namespace fs
