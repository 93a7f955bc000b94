// Source: where the files to index live, a local folder or an S3 bucket (prefix), behind one
// interface: list with a prefix, stat, read with a byte limit, and change detection. The S3 crawl,
// the queue worker and the server's /content and /thumbnail routes read documents through it, so a
// document's uri (file:///abs/path or s3://bucket/key) is all they need to find its bytes.
// Thread-safety: every method may be called from many threads at once (the S3 source shares one
// pooled S3Client; the folder source holds no mutable state). The caller owns the Source.
// Errors: NotFound (no such file / key), PermissionDenied, ResourceExhausted (over max_bytes,
// decided from the size before any byte is read), Unavailable (transient; S3 503 SlowDown and 5xx
// are already retried with backoff inside), InvalidArgument (a uri that is not this source's).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "storage/s3_client.h"

namespace fs {

// One file or object, as a listing or Stat sees it.
struct SourceEntry {
  std::string uri;       // "file:///abs/path" (see FileUri) or "s3://bucket/key" (the key verbatim)
  std::string key;       // the path below the source's root ("photos/a.jpg"); an S3 key below the prefix
  uint64_t size = 0;     // bytes
  int64_t mtime_ns = 0;  // modification time, ns since the epoch (S3: LastModified, whole seconds)
  // S3: the ETag without quotes: the MD5 of the bytes for a simple upload, "<hex>-<parts>" for a
  // multipart upload (not an MD5 of anything we can check), opaque with SSE-KMS. Folders: "".
  std::string etag;
  int64_t ctime_ns = 0;  // folders: inode change time (a chmod shows here); S3: 0
};

// Change detection: true when `now` is another version of the object than `known` (size,
// modification time, or the ETag when both have one, differ). An S3 object rewritten within the same
// second with the same size is told apart by its ETag; a multipart ETag is compared as a string.
bool SourceChanged(const SourceEntry& known, const SourceEntry& now);

// Something a listing could not see: entries at or under `uri` may be missing from it, so the
// caller must not take their absence as a deletion.
struct SourceProblem {
  std::string uri;     // the folder (file:///dir/) or the listing (s3://bucket/prefix)
  std::string reason;  // what failed, for the failure list
};

struct SourceOptions {
  // s3:// sources: endpoint, region, credentials, addressing (see storage/s3_client.h); unused
  // for folders. Empty fields come from the environment (AWS_*), as the S3 client documents.
  storage::S3Options s3;
  int list_page_keys = 1000;  // S3 ListObjectsV2 max-keys per page (1..1000; tests use small pages)
};

class Source {
 public:
  virtual ~Source() = default;
  // "file:///abs/dir/" or "s3://bucket/prefix": every uri of this source starts with it.
  virtual const std::string& root_uri() const = 0;
  // Calls `fn` for every file or object whose key starts with `prefix` ("" = all), in key order
  // within a listing page; stops at the first error `fn` returns. Folders: recursive, symbolic
  // links, FIFOs, sockets and devices are not listed (`*skipped` counts them when given), and
  // unreadable folders go to `*problems`. S3: every page of ListObjectsV2 (continuation tokens);
  // a page that cannot be fetched after the retries is the returned error.
  virtual Status List(const std::string& prefix, const std::function<Status(const SourceEntry&)>& fn,
                      std::vector<SourceProblem>* problems = nullptr, uint64_t* skipped = nullptr) const = 0;
  // The entry of one uri of this source (HeadObject / lstat).
  virtual Result<SourceEntry> Stat(const std::string& uri) const = 0;
  // The whole file or object, refused with ResourceExhausted when it is larger than `max_bytes`
  // (from its size or Content-Length, before its bytes are read).
  virtual Result<std::string> Read(const std::string& uri, uint64_t max_bytes) const = 0;
  // Whether `uri` belongs to this source (starts with root_uri()).
  bool Contains(std::string_view uri) const { return uri.substr(0, root_uri().size()) == root_uri(); }
};

// A folder path ("/srv/photos", "./docs", "file:///srv/photos") or "s3://bucket[/prefix]".
// Folders must exist and are resolved to their real path; S3 sources do not contact S3 here.
// InvalidArgument says what a good argument looks like.
Result<std::unique_ptr<Source>> OpenSource(const std::string& uri_or_dir, const SourceOptions& options = {});

// A source that can read any document uri: file:// from the local disk, s3:// through one S3 client
// (for the server, which serves documents of every source it indexed). Same contract as Source,
// with root_uri() "" and List unsupported.
Result<std::unique_ptr<Source>> OpenAnySource(const SourceOptions& options);

// "s3://bucket/key" -> bucket and key (key may be empty); InvalidArgument for other uris or a bad
// bucket name.
struct S3Location {
  std::string bucket;
  std::string key;
};
bool IsS3Uri(std::string_view uri);
Result<S3Location> ParseS3Uri(std::string_view uri);
std::string S3Uri(std::string_view bucket, std::string_view key);

// "file://" + the absolute path, with '%', control bytes and bytes that are not valid UTF-8
// percent-encoded, so every byte string maps to a distinct, printable uri.
std::string FileUri(std::string_view abs_path);
// The inverse of FileUri; InvalidArgument for other schemes or bad escapes.
Result<std::string> PathFromFileUri(std::string_view uri);

}  // namespace fs
