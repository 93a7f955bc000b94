// S3Client: our own small Amazon S3 client (path-style or virtual-hosted addressing, Signature
// Version 4, libcurl) for one operator-configured endpoint: GetObject with a byte limit, HeadObject, PutObject and
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
//   Unavailable        connection refused, DNS, timeouts, S3 5xx / SlowDown: retry later (each call
//                      has already retried these max_retries times with exponential backoff)
//   IOError            anything else S3 answered
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

namespace fs::storage {

// Where the bucket goes in a request: path-style puts it in the path (https://s3.region.amazonaws.com/
// bucket/key), virtual-hosted in the host name (https://bucket.s3.region.amazonaws.com/key). AWS
// wants virtual-hosted (path-style is deprecated for new buckets); MinIO, s3rver and most other
// S3-compatible servers on a plain host:port want path-style.
enum class S3Addressing {
  kAuto,           // virtual-hosted on *.amazonaws.com endpoints for buckets whose names are valid
                   // host labels (no '.' over https: the wildcard certificate would not match), else path
  kPath,           // always path-style
  kVirtualHosted,  // always virtual-hosted (bucket names with '.' over https still work only with a
                   // certificate that covers them)
};

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
  S3Addressing addressing = S3Addressing::kAuto;
  // "host:port" that every connection goes to instead of the one the url names (curl's
  // --connect-to): the url, Host header and signature stay those of the endpoint. For a private
  // link or gateway, and for tests that send virtual-hosted requests to 127.0.0.1. Empty = none.
  std::string connect_to;
  // Replies S3 asks us to retry (503 SlowDown, 500, 502, 504, 429) and transport failures
  // (refused, timed out, reset) are retried up to this many times, after retry_base_ms, then twice
  // that, ... (capped at 5 s, with jitter). 0 = no retries.
  int max_retries = 3;
  int retry_base_ms = 100;
};

// The url (without query), Host header and canonical (signed) path of one request.
struct S3RequestTarget {
  std::string url;
  std::string host;
  std::string path;
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
  // Removes the object (S3 answers success for a key that does not exist, and so does this).
  Status DeleteObject(const std::string& bucket, const std::string& key) const;
  // One page of keys starting with `prefix` (max_keys 1..1000); give the previous page's
  // next_continuation_token to continue.
  Result<ListPage> ListObjectsV2(const std::string& bucket, const std::string& prefix,
                                 const std::string& continuation_token = "", int max_keys = 1000) const;

  const S3Options& options() const;  // as resolved by Create
  // Where a request for `key` in `bucket` goes under the configured addressing (key "" = the
  // bucket itself, as ListObjectsV2 uses). Pure; exposed so tests can check the construction.
  S3RequestTarget TargetFor(const std::string& bucket, const std::string& key) const;
  // Requests sent since Create, retries included (tests and metrics).
  uint64_t requests_sent() const;

 private:
  struct Impl;
  explicit S3Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// True for names S3 accepts for new buckets and that are safe in a path-style url: 3-63 characters
// of a-z 0-9 . -, starting and ending with a letter or digit, no "..".
bool IsValidBucketName(const std::string& name);

}  // namespace fs::storage
