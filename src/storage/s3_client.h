// S3Client: our own small Amazon S3 client (path-style addressing, Signature Version 4, libcurl)
// for one operator-configured endpoint: GetObject with a byte limit, HeadObject, PutObject and
// ListObjectsV2. Works with AWS S3 and S3-compatible servers (MinIO, s3rver on 127.0.0.1 in tests).
// Thread-safety: every method may be called from many threads at once; each call takes its own curl
// handle from a pool (kept connections are reused). The client owns its handles; no third-party
// type appears here. Redirects are never followed, so a request only ever reaches the endpoint.
// Errors (Status codes), each with a message naming endpoint, bucket and key and what to do:
//   NotFound           no such key, or no such bucket
//   PermissionDenied   AccessDenied, unknown access key, SignatureDoesNotMatch, expired token, clock skew
//   FailedPrecondition the bucket lives in another region (set the region)
//   ResourceExhausted  GetObject: the object is larger than max_bytes (refused from Content-Length,
//                      before its body is read)
//   Unavailable        connection refused, DNS, timeouts, S3 5xx / SlowDown: retry later
//   IOError            anything else S3 answered
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

namespace fs::storage {

struct S3Options {
  // Base url, scheme and host[:port] only: "https://s3.eu-west-1.amazonaws.com",
  // "http://127.0.0.1:4568". Empty = "https://s3.{region}.amazonaws.com".
  std::string endpoint;
  std::string region;             // empty = $AWS_REGION, then $AWS_DEFAULT_REGION, then "us-east-1"
  std::string access_key_id;      // empty = $AWS_ACCESS_KEY_ID; none at all = unsigned (public buckets)
  std::string secret_access_key;  // empty = $AWS_SECRET_ACCESS_KEY
  std::string session_token;      // empty = $AWS_SESSION_TOKEN (temporary credentials); optional
  int connect_timeout_ms = 5000;  // TCP (+TLS) connect
  int request_timeout_ms = 30000; // whole request, body included
};

struct ObjectInfo {
  std::string key;
  uint64_t size = 0;           // bytes
  std::string etag;            // without quotes
  std::string content_type;    // HeadObject/GetObject only
  std::string last_modified;   // as S3 gives it (ISO 8601 in listings, HTTP date in HEAD)
};

struct ListPage {
  std::vector<ObjectInfo> objects;     // in key order
  bool truncated = false;              // more pages follow
  std::string next_continuation_token; // pass to the next call when truncated
};

class S3Client {
 public:
  // Fills empty options from the environment (see S3Options) and checks the endpoint
  // (InvalidArgument when it is not http(s)://host[:port]). Does not connect.
  static Result<std::unique_ptr<S3Client>> Create(const S3Options& options);
  ~S3Client();
  S3Client(const S3Client&) = delete;
  S3Client& operator=(const S3Client&) = delete;

  // The object's bytes. An object over `max_bytes` is refused with ResourceExhausted as soon as
  // its Content-Length is known (and the transfer is cut should the body run past it anyway).
  Result<std::string> GetObject(const std::string& bucket, const std::string& key, uint64_t max_bytes) const;
  Result<ObjectInfo> HeadObject(const std::string& bucket, const std::string& key) const;
  Status PutObject(const std::string& bucket, const std::string& key, const std::string& bytes,
                   const std::string& content_type = "application/octet-stream") const;
  // One page of keys starting with `prefix` (max_keys 1..1000); give the previous page's
  // next_continuation_token to continue.
  Result<ListPage> ListObjectsV2(const std::string& bucket, const std::string& prefix,
                                 const std::string& continuation_token = "", int max_keys = 1000) const;

  const S3Options& options() const;  // as resolved by Create

 private:
  struct Impl;
  explicit S3Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// True for names S3 accepts for new buckets and that are safe in a path-style url: 3-63 characters
// of a-z 0-9 . -, starting and ending with a letter or digit, no "..".
bool IsValidBucketName(const std::string& name);

}  // namespace fs::storage
