#include "engine/preview.h"

#include "extract/extract.h"
#include "image/image.h"

namespace fs {

bool HasPicturePreview(std::string_view mime) {
  return (mime.rfind("image/", 0) == 0 && mime != "image/svg+xml") || mime == "application/pdf";
}

Result<std::string> RenderPreview(std::string_view bytes, std::string_view mime, const PreviewOptions& options) {
  if (!HasPicturePreview(mime)) return Status::Unsupported("no picture preview for " + std::string(mime) + " files");
  if (bytes.size() > options.max_file_bytes) {
    return Status::ResourceExhausted("the file is larger than the preview limit (" +
                                     std::to_string(options.max_file_bytes) + " bytes)");
  }
  image::RgbImage picture;
  if (mime == "application/pdf") {
    // The longer side is max_side, so the page holds at most max_side^2 pixels whatever it declares.
    const auto side = static_cast<uint64_t>(options.max_side);
    FS_ASSIGN_OR_RETURN(RenderedPage page, RenderPdfFirstPage(bytes, options.max_side, side * side));
    picture.width = page.width;
    picture.height = page.height;
    picture.pixels = std::move(page.rgb);
  } else {
    image::DecodeOptions d;
    d.max_side = options.max_side;
    d.min_short_side = options.max_side;  // shrink-on-load only as far as the preview still needs
    d.max_pixels = options.max_pixels;
    d.max_file_bytes = options.max_file_bytes;
    d.allow_truncated = true;
    FS_ASSIGN_OR_RETURN(picture, image::DecodeMemory(bytes, d));
  }
  return image::MakeThumbnail(picture, options.max_side);
}

}  // namespace fs
