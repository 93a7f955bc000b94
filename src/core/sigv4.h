// AWS Signature Version 4 for one request (S3, DynamoDB, Amazon OpenSearch Service: core/ so that storage/,
// cache/ and index/ share it).
// Pure functions over their arguments (HMAC-SHA256 and SHA-256 through OpenSSL); thread-safe.
// The caller builds the request (method, host, path, query, the headers it will send) and gets
// back the `Authorization` header value; it must send exactly the headers it had signed, with the
// same values, and the path as given here (already URI-encoded, see UriEncodePath).
// Format reference: AWS "Signature Version 4 signing process" / "Authenticating Requests: Using the
// Authorization Header" (S3 variant: the canonical path is encoded once, not twice).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fs {

// SHA-256 of the empty payload (GET, HEAD), lower-case hex.
inline constexpr std::string_view kEmptyPayloadSha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

struct SigV4Request {
  std::string method;   // "GET", "PUT", "HEAD"
  std::string path;     // canonical URI, already encoded: "/bucket/my%20key.png"
  std::vector<std::pair<std::string, std::string>> query;  // raw (unencoded) names and values
  // Every header that is sent and must be signed, names in any case (host and x-amz-date
  // included). Values are trimmed and inner runs of spaces collapsed for signing.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string payload_sha256;  // hex SHA-256 of the body, or "UNSIGNED-PAYLOAD"
};

struct SigV4Credentials {
  std::string access_key_id;
  std::string secret_access_key;
};

struct SigV4Scope {
  std::string amz_date;  // "20130524T000000Z" (UTC); the scope date is its first 8 characters
  std::string region;    // "us-east-1"
  std::string service;   // "s3"
};

// RFC 3986 percent-encoding as SigV4 wants it: A-Z a-z 0-9 - . _ ~ kept, every other byte %XX
// (upper-case hex); '/' kept only when `keep_slash`.
std::string UriEncode(std::string_view s, bool keep_slash);
// "/" + each '/'-separated segment of `raw_path` encoded: "b/a b$c" -> "/b/a%20b%24c".
std::string UriEncodePath(std::string_view raw_path);

// The canonical request, its hash, the string to sign and the signature: exposed so tests can
// compare each step with AWS's published examples.
std::string CanonicalQuery(const std::vector<std::pair<std::string, std::string>>& query);
std::string CanonicalRequest(const SigV4Request& request, std::string* signed_headers);
std::string StringToSign(const SigV4Request& request, const SigV4Scope& scope);
std::string SignatureHex(const SigV4Request& request, const SigV4Scope& scope, const SigV4Credentials& credentials);
// "AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request, SignedHeaders=..., Signature=..."
std::string AuthorizationHeader(const SigV4Request& request, const SigV4Scope& scope,
                                const SigV4Credentials& credentials);
// The derived signing key HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service),
// "aws4_request") as lower-case hex (AWS publishes examples of it).
std::string SigningKeyHex(std::string_view secret, std::string_view date, std::string_view region,
                          std::string_view service);

// "20130524T000000Z" for a Unix time (seconds, UTC).
std::string AmzDate(long long unix_seconds);

}  // namespace fs
