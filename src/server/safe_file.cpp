#include "server/safe_file.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "core/utf8.h"
#include "engine/crawl.h"
#include "engine/mime.h"

namespace fs::server {
namespace {

ResolvedUrl Refuse(UrlRefusal why, std::string message) {
  ResolvedUrl out;
  out.refusal = why;
  out.message = std::move(message);
  return out;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

uint32_t Be16(std::string_view b, size_t at) {
  return (static_cast<uint32_t>(static_cast<unsigned char>(b[at])) << 8) | static_cast<unsigned char>(b[at + 1]);
}
uint32_t Be32(std::string_view b, size_t at) { return (Be16(b, at) << 16) | Be16(b, at + 2); }
uint32_t Le16(std::string_view b, size_t at) {
  return static_cast<unsigned char>(b[at]) | (static_cast<uint32_t>(static_cast<unsigned char>(b[at + 1])) << 8);
}
uint32_t Le24(std::string_view b, size_t at) { return Le16(b, at) | (static_cast<uint32_t>(static_cast<unsigned char>(b[at + 2])) << 16); }
uint32_t Le32(std::string_view b, size_t at) { return Le16(b, at) | (Le16(b, at + 2) << 16); }

// Scans JPEG markers up to the first start-of-frame, which holds height and width.
void JpegSize(std::string_view b, ImageInfo* info) {
  size_t i = 2;
  while (i + 9 < b.size()) {
    if (static_cast<unsigned char>(b[i]) != 0xFF) return;
    unsigned char marker = static_cast<unsigned char>(b[i + 1]);
    if (marker == 0xFF) { ++i; continue; }
    if (marker == 0xD8 || (marker >= 0xD0 && marker <= 0xD7) || marker == 0x01) { i += 2; continue; }
    uint32_t len = Be16(b, i + 2);
    bool sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (sof) {
      info->height = Be16(b, i + 5);
      info->width = Be16(b, i + 7);
      return;
    }
    if (len < 2) return;
    i += 2 + len;
  }
}

void WebpSize(std::string_view b, ImageInfo* info) {
  if (b.size() < 30) return;
  std::string_view chunk = b.substr(12, 4);
  if (chunk == "VP8 " && b.size() >= 30) {
    info->width = Le16(b, 26) & 0x3FFF;
    info->height = Le16(b, 28) & 0x3FFF;
  } else if (chunk == "VP8L" && b.size() >= 25) {
    uint32_t bits = Le32(b, 21);
    info->width = (bits & 0x3FFF) + 1;
    info->height = ((bits >> 14) & 0x3FFF) + 1;
  } else if (chunk == "VP8X") {
    info->width = Le24(b, 24) + 1;
    info->height = Le24(b, 27) + 1;
  }
}

// s3://bucket/key: the bucket must be configured, the key must not look like a path trick.
ResolvedUrl ResolveS3Url(std::string_view rest, const std::vector<std::string>& buckets) {
  const size_t slash = rest.find('/');
  const std::string bucket(rest.substr(0, slash));
  if (buckets.empty()) {
    return Refuse(UrlRefusal::kBucketNotAllowed,
                  "this server reads no S3 buckets: start it with --s3-bucket NAME, or use a file:// url under a "
                  "storage root");
  }
  if (std::find(buckets.begin(), buckets.end(), bucket) == buckets.end()) {
    std::string list;
    for (const auto& b : buckets) list += (list.empty() ? "" : ", ") + b;
    return Refuse(UrlRefusal::kBucketNotAllowed,
                  "s3:// url names bucket '" + bucket.substr(0, 64) + "', which this server does not read; allowed: " + list);
  }
  const std::string_view key = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  if (key.empty()) return Refuse(UrlRefusal::kBadPath, "s3:// url names no object: give s3://" + bucket + "/KEY");
  if (key.size() > 1024) return Refuse(UrlRefusal::kBadPath, "s3:// key is longer than 1024 bytes");
  for (char c : key) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F) return Refuse(UrlRefusal::kBadPath, "s3:// key contains a control character");
  }
  if (!IsValidUtf8(key)) return Refuse(UrlRefusal::kBadPath, "s3:// key is not valid UTF-8");
  size_t start = 0;
  while (start <= key.size()) {
    size_t end = key.find('/', start);
    if (end == std::string_view::npos) end = key.size();
    std::string segment = Lower(key.substr(start, end - start));
    if (segment.empty()) {
      return Refuse(UrlRefusal::kBadPath, "s3:// key has an empty segment (a leading, trailing or double '/')");
    }
    for (size_t at; (at = segment.find("%2e")) != std::string::npos;) segment.replace(at, 3, ".");
    if (segment == "." || segment == "..") {
      return Refuse(UrlRefusal::kBadPath, "s3:// key may not contain '.' or '..' segments");
    }
    start = end + 1;
  }
  ResolvedUrl out;
  out.bucket = bucket;
  out.key = std::string(key);
  return out;
}

}  // namespace

Result<std::vector<std::string>> RealRoots(const std::vector<std::string>& roots) {
  std::vector<std::string> out;
  for (const auto& r : roots) {
    char buf[PATH_MAX];
    struct stat st{};
    if (!::realpath(r.c_str(), buf) || ::stat(buf, &st) != 0 || !S_ISDIR(st.st_mode)) {
      return Status::InvalidArgument("storage root '" + r + "' is not an existing directory");
    }
    std::string real = buf;
    if (real != "/" && real.back() != '/') real += '/';
    out.push_back(real);
  }
  return out;
}

ResolvedUrl ResolveImageUrl(std::string_view url, const std::vector<std::string>& roots,
                            const std::vector<std::string>& buckets) {
  if (url.find('\0') != std::string_view::npos) return Refuse(UrlRefusal::kBadPath, "imageUrl contains a NUL byte");
  size_t colon = url.find("://");
  std::string scheme = colon == std::string_view::npos ? "" : Lower(url.substr(0, colon));
  if (scheme == "http" || scheme == "https") {
    return Refuse(UrlRefusal::kScheme,
                  "imageUrl may not be an http(s) address: this server never fetches from the network. Send the "
                  "image bytes (imageBase64 or a multipart upload), a file:// url under a storage root or an "
                  "s3:// url of a configured bucket");
  }
  if (scheme == "s3") return ResolveS3Url(url.substr(colon + 3), buckets);
  if (scheme != "file") {
    return Refuse(UrlRefusal::kScheme,
                  "imageUrl must be a file:// url naming a file under a storage root, or s3://bucket/key of a "
                  "configured bucket");
  }
  if (roots.empty()) {
    return Refuse(UrlRefusal::kNoRoots, "no storage roots are configured: start the server with --storage-root DIR");
  }
  std::string_view rest = url.substr(colon + 3);
  // No host at all, not even localhost: the url names a path on this machine, file:///srv/...
  if (rest.empty() || rest[0] != '/') {
    return Refuse(UrlRefusal::kBadPath,
                  "file:// url may not name a host: write file:///srv/... (three slashes) for a path on this machine");
  }
  auto decoded = PathFromFileUri("file://" + std::string(rest));
  if (!decoded.ok()) return Refuse(UrlRefusal::kBadPath, "imageUrl has a bad percent-escape");
  const std::string& path = *decoded;
  if (path.find('\0') != std::string::npos) return Refuse(UrlRefusal::kBadPath, "imageUrl contains a NUL byte");
  auto refuse_asked = [&path](UrlRefusal why, std::string message) {
    ResolvedUrl out = Refuse(why, std::move(message));
    out.requested = path;
    return out;
  };
  // Refuse any '..' component outright, even when it would resolve inside a root.
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    if (path.compare(start, end - start, "..") == 0 && end - start == 2) {
      return Refuse(UrlRefusal::kBadPath, "imageUrl may not contain '..' path components");
    }
    start = end + 1;
  }
  char buf[PATH_MAX];
  if (!::realpath(path.c_str(), buf)) {
    // Do not say whether the file exists outside the roots: check the roots textually first.
    for (const auto& root : roots) {
      if (path.rfind(root, 0) == 0) return refuse_asked(UrlRefusal::kNotFound, "no such file under the storage roots");
    }
    return refuse_asked(UrlRefusal::kOutsideRoots, "imageUrl is outside the configured storage roots");
  }
  std::string real = buf;
  for (const auto& root : roots) {
    if (real.rfind(root, 0) == 0) {
      ResolvedUrl out;
      out.path = real;
      out.requested = path;
      return out;
    }
  }
  return refuse_asked(UrlRefusal::kOutsideRoots,
                      "imageUrl is outside the configured storage roots (symbolic links are resolved)");
}

OpenFile::~OpenFile() {
  if (fd_ >= 0) ::close(fd_);
}

size_t OpenFile::ReadAt(uint64_t offset, char* buf, size_t n) const {
  while (true) {
    ssize_t got = ::pread(fd_, buf, n, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    return got < 0 ? 0 : static_cast<size_t>(got);
  }
}

Result<OpenFile> OpenRegularFileNoFollow(const std::string& path, uint64_t max_bytes) {
  // O_NOFOLLOW guards the last component; realpath equality guards every directory above it.
  char buf[PATH_MAX];
  if (!::realpath(path.c_str(), buf) || path != buf) return Status::NotFound("file is missing or reached through a link");
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return Status::NotFound(std::string("cannot open file: ") + std::strerror(errno));
  // A directory swapped for a link between realpath() and open() would go unnoticed: ask the
  // kernel which file the descriptor really is.
  char linked[PATH_MAX];
  const std::string proc = "/proc/self/fd/" + std::to_string(fd);
  ssize_t len = ::readlink(proc.c_str(), linked, sizeof linked - 1);
  if (len <= 0 || path != std::string_view(linked, static_cast<size_t>(len))) {
    ::close(fd);
    return Status::NotFound("file changed while it was opened");
  }
  struct stat st{};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::NotFound("not a regular file");
  }
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    ::close(fd);
    return Status::ResourceExhausted("file is " + std::to_string(st.st_size) + " bytes; the limit is " +
                                     std::to_string(max_bytes));
  }
  return OpenFile(fd, static_cast<uint64_t>(st.st_size));
}

Result<std::string> ReadRegularFileNoFollow(const std::string& path, uint64_t max_bytes) {
  FS_ASSIGN_OR_RETURN(OpenFile file, OpenRegularFileNoFollow(path, max_bytes));
  std::string out(static_cast<size_t>(file.size()), '\0');
  size_t got = 0;
  while (got < out.size()) {
    size_t n = file.ReadAt(got, out.data() + got, out.size() - got);
    if (n == 0) break;
    got += n;
  }
  out.resize(got);  // a file that shrank while we read: serve what is there
  return out;
}

std::optional<ImageInfo> SniffImage(std::string_view b) {
  ImageInfo info;
  info.mime = DetectMime(b.substr(0, 512), "");
  if (info.mime.rfind("image/", 0) != 0 || info.mime == "image/svg+xml") return std::nullopt;
  if (info.mime == "image/png" && b.size() >= 24 && b.substr(12, 4) == "IHDR") {
    info.width = Be32(b, 16);
    info.height = Be32(b, 20);
  } else if (info.mime == "image/gif" && b.size() >= 10) {
    info.width = Le16(b, 6);
    info.height = Le16(b, 8);
  } else if (info.mime == "image/bmp" && b.size() >= 26) {
    info.width = Le32(b, 18);
    auto h = static_cast<int32_t>(Le32(b, 22));
    info.height = static_cast<uint64_t>(h < 0 ? -static_cast<int64_t>(h) : h);
  } else if (info.mime == "image/jpeg") {
    JpegSize(b, &info);
  } else if (info.mime == "image/webp") {
    WebpSize(b, &info);
  }
  return info;
}

}  // namespace fs::server
