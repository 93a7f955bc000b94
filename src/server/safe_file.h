// Internal header of server/: safe access to files named by clients or by stored documents.
// - ResolveImageUrl: turns an /embed `imageUrl` into a real path inside one of the configured
//   storage roots, refusing network schemes (no SSRF), any host (localhost too), `..`, NUL bytes,
//   bad escapes and symlink escapes (the file is realpath'd and must still lie under a root); or,
//   for s3://bucket/key, into a bucket and key when the bucket is one of the configured ones and
//   the key is safe (the host is never taken from the url: the operator configures the endpoint).
// - ReadRegularFileNoFollow: reads a file without following a symlink in any component.
// - SniffImage: recognises image bytes by magic number and reads their pixel size where the
//   header holds it (PNG, GIF, JPEG, BMP, WebP), so limits apply before any decoder runs.
// Pure functions over the file system; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace fs::server {

// Why a url was refused; the handler maps each to a stable HTTP error code.
enum class UrlRefusal { kNone, kScheme, kBadPath, kOutsideRoots, kNotFound, kNoRoots, kBucketNotAllowed };

struct ResolvedUrl {
  UrlRefusal refusal = UrlRefusal::kNone;
  std::string message;  // what was wrong and what to do, when refused
  std::string path;     // the real path, when a file:// url is accepted
  // The percent-decoded path a file:// url asked for, before links were resolved: set once the url
  // parsed, also when it is then refused as missing or outside the roots (the server hides such
  // refusals from users whose path scope does not cover what they asked for).
  std::string requested;
  std::string bucket;   // bucket and key, when an s3:// url is accepted (path stays empty)
  std::string key;
};

// `roots` must already be real paths (see RealRoots); `buckets` are the S3 buckets s3:// urls may
// name. An s3:// key is taken as written (no percent-decoding, as `aws s3` does) and refused when
// empty, over 1024 bytes, not UTF-8, holding a control character, an empty segment ("a//b", a
// leading or trailing '/') or a segment that is or decodes to "." or "..". Never touches the network.
ResolvedUrl ResolveImageUrl(std::string_view url, const std::vector<std::string>& roots,
                            const std::vector<std::string>& buckets = {});
// realpath of each root; InvalidArgument when one is missing or not a directory.
Result<std::vector<std::string>> RealRoots(const std::vector<std::string>& roots);

// An open, read-only regular file; closes itself. Movable, not copyable.
class OpenFile {
 public:
  OpenFile(int fd, uint64_t size) : fd_(fd), size_(size) {}
  ~OpenFile();
  OpenFile(OpenFile&& other) noexcept : fd_(other.fd_), size_(other.size_) { other.fd_ = -1; }
  OpenFile& operator=(OpenFile&&) = delete;
  OpenFile(const OpenFile&) = delete;
  OpenFile& operator=(const OpenFile&) = delete;
  uint64_t size() const { return size_; }  // at open time
  // Reads up to `n` bytes at `offset` into `buf`; returns the count (0 at end or on error).
  size_t ReadAt(uint64_t offset, char* buf, size_t n) const;

 private:
  int fd_;
  uint64_t size_;
};

// Opens `path` if it is a regular file reached without any symbolic link and at most `max_bytes`
// long (ResourceExhausted above). NotFound when missing, linked, or not a plain file.
Result<OpenFile> OpenRegularFileNoFollow(const std::string& path, uint64_t max_bytes);
// The same, reading the whole file.
Result<std::string> ReadRegularFileNoFollow(const std::string& path, uint64_t max_bytes);

struct ImageInfo {
  std::string mime;   // "image/png", ...
  uint64_t width = 0, height = 0;  // 0 when the header does not say (TIFF, HEIC, ...)
};
// nullopt when the bytes are not a recognised raster image.
std::optional<ImageInfo> SniffImage(std::string_view bytes);

}  // namespace fs::server
