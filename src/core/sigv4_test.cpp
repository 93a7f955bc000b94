// The signer against AWS's published Signature Version 4 examples (facts: the documented inputs
// and their expected outputs). S3 examples: "Signature Calculations for the Authorization Header:
// Transferring Payload in a Single Chunk" (bucket examplebucket, 24 May 2013); signing key:
// "Examples of how to derive a signing key for Signature Version 4".
#include "core/sigv4.h"

#include <gtest/gtest.h>

#include "core/hash.h"

namespace fs {
namespace {

const SigV4Credentials kAwsExample{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"};
const SigV4Scope kScope{"20130524T000000Z", "us-east-1", "s3"};
constexpr const char* kHost = "examplebucket.s3.amazonaws.com";

SigV4Request GetObjectExample() {
  SigV4Request r;
  r.method = "GET";
  r.path = UriEncodePath("test.txt");
  r.headers = {{"Host", kHost},
               {"Range", "bytes=0-9"},
               {"x-amz-content-sha256", std::string(kEmptyPayloadSha256)},
               {"x-amz-date", "20130524T000000Z"}};
  r.payload_sha256 = std::string(kEmptyPayloadSha256);
  return r;
}

TEST(SigV4, DerivesTheDocumentedSigningKey) {
  EXPECT_EQ(SigningKeyHex("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam"),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
}

TEST(SigV4, GetObjectExample) {
  const SigV4Request r = GetObjectExample();
  std::string signed_headers;
  const std::string canonical = CanonicalRequest(r, &signed_headers);
  EXPECT_EQ(canonical,
            "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
            "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
            "x-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex(canonical), "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
  EXPECT_EQ(StringToSign(r, kScope),
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
  EXPECT_EQ(AuthorizationHeader(r, kScope, kAwsExample),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(SigV4, PutObjectExampleEncodesTheKey) {
  const std::string body = "Welcome to Amazon S3.";
  SigV4Request r;
  r.method = "PUT";
  r.path = UriEncodePath("test$file.text");
  EXPECT_EQ(r.path, "/test%24file.text");
  r.payload_sha256 = Sha256Hex(body);
  EXPECT_EQ(r.payload_sha256, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  r.headers = {{"Date", "Fri, 24 May 2013 00:00:00 GMT"},
               {"Host", kHost},
               {"x-amz-date", "20130524T000000Z"},
               {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
               {"x-amz-content-sha256", r.payload_sha256}};
  EXPECT_EQ(Sha256Hex(CanonicalRequest(r, nullptr)), "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d");
  EXPECT_EQ(SignatureHex(r, kScope, kAwsExample), "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

TEST(SigV4, GetBucketLifecycleSignsAValuelessParameter) {
  SigV4Request r;
  r.method = "GET";
  r.path = "/";
  r.query = {{"lifecycle", ""}};
  r.payload_sha256 = std::string(kEmptyPayloadSha256);
  r.headers = {{"Host", kHost}, {"x-amz-date", "20130524T000000Z"}, {"x-amz-content-sha256", r.payload_sha256}};
  EXPECT_EQ(CanonicalQuery(r.query), "lifecycle=");
  EXPECT_EQ(SignatureHex(r, kScope, kAwsExample), "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

TEST(SigV4, ListObjectsExampleSortsTheQuery) {
  SigV4Request r;
  r.method = "GET";
  r.path = "/";
  r.query = {{"prefix", "J"}, {"max-keys", "2"}};  // out of order on purpose
  r.payload_sha256 = std::string(kEmptyPayloadSha256);
  r.headers = {{"Host", kHost}, {"x-amz-date", "20130524T000000Z"}, {"x-amz-content-sha256", r.payload_sha256}};
  EXPECT_EQ(CanonicalQuery(r.query), "max-keys=2&prefix=J");
  EXPECT_EQ(SignatureHex(r, kScope, kAwsExample), "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

TEST(SigV4, AnyChangeChangesTheSignature) {
  const std::string good = SignatureHex(GetObjectExample(), kScope, kAwsExample);
  SigV4Request other = GetObjectExample();
  other.headers[1].second = "bytes=0-10";
  EXPECT_NE(SignatureHex(other, kScope, kAwsExample), good);
  EXPECT_NE(SignatureHex(GetObjectExample(), {"20130524T000000Z", "eu-west-1", "s3"}, kAwsExample), good);
  EXPECT_NE(SignatureHex(GetObjectExample(), kScope, {"AKIAIOSFODNN7EXAMPLE", "another secret"}), good);
}

TEST(SigV4, EncodingAndHeaderNormalisation) {
  EXPECT_EQ(UriEncode("a b/c~d._-*+=&%", false), "a%20b%2Fc~d._-%2A%2B%3D%26%25");
  EXPECT_EQ(UriEncodePath("photos/2024/a b+c.png"), "/photos/2024/a%20b%2Bc.png");
  EXPECT_EQ(UriEncodePath("caf\xC3\xA9.jpg"), "/caf%C3%A9.jpg");
  EXPECT_EQ(CanonicalQuery({{"continuation-token", "1/a+b="}, {"list-type", "2"}, {"prefix", ""}}),
            "continuation-token=1%2Fa%2Bb%3D&list-type=2&prefix=");
  SigV4Request r;
  r.method = "GET";
  r.path = "/";
  r.headers = {{"X-Amz-Meta-Note", "  two   spaces\tand a tab  "}, {"Host", "h"}};
  r.payload_sha256 = "UNSIGNED-PAYLOAD";
  std::string names;
  EXPECT_EQ(CanonicalRequest(r, &names), "GET\n/\n\nhost:h\nx-amz-meta-note:two spaces and a tab\n\nhost;x-amz-meta-note\nUNSIGNED-PAYLOAD");
  EXPECT_EQ(names, "host;x-amz-meta-note");
  EXPECT_EQ(AmzDate(1369353600), "20130524T000000Z");
}

}  // namespace
}  // namespace fs
