// S3Client's error mapping and limits against canned replies from a local httplib server (no S3
// needed), plus the XML helpers, endpoint checks and network failures (refused, timed out).
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <thread>

#include "core/sigv4.h"
#include "storage/s3_client.h"
#include "storage/s3_xml.h"
#include "storage/source.h"

namespace fs::storage {
namespace {

TEST(S3Xml, FindsElementsAndDecodesEntities) {
  const std::string doc =
      "<?xml version=\"1.0\"?><ListBucketResult xmlns=\"x\"><KeyCount>2</KeyCount><Prefix/>"
      "<Contents><Key>a&amp;b &lt;1&gt; &#233;&#x732B;</Key><Size>5</Size><ETag>&quot;abc&quot;</ETag></Contents>"
      "<Contents><Key>c</Key><Size>7</Size></Contents></ListBucketResult>";
  auto contents = XmlElements(doc, "Contents");
  ASSERT_EQ(contents.size(), 2u);
  EXPECT_EQ(XmlText(contents[0], "Key"), "a&b <1> \xC3\xA9\xE7\x8C\xAB");
  EXPECT_EQ(XmlText(contents[0], "ETag"), "\"abc\"");
  EXPECT_EQ(XmlText(contents[1], "Size"), "7");
  EXPECT_EQ(XmlText(doc, "Key"), "a&b <1> \xC3\xA9\xE7\x8C\xAB");  // <KeyCount> is not <Key>
  EXPECT_EQ(XmlText(doc, "KeyCount"), "2");
  EXPECT_EQ(XmlElements(doc, "Prefix").size(), 1u);
  EXPECT_EQ(XmlText(doc, "Missing"), "");
  EXPECT_EQ(XmlUnescape("&bogus; & &#0; &#xZZ;"), "&bogus; & &#0; &#xZZ;");
}

TEST(S3Names, Buckets) {
  for (const char* ok : {"photos", "my.bucket-1", "abc", "a1b"}) EXPECT_TRUE(IsValidBucketName(ok)) << ok;
  const std::string too_long(64, 'a');  // kept alive for the loop (a temporary's c_str() would dangle)
  for (const std::string bad : {"", "ab", "Photos", "-photos", "photos-", "a..b", "a_b", "a/b", "127.0.0.1:80",
                                "user@host", too_long.c_str()}) {
    EXPECT_FALSE(IsValidBucketName(bad)) << bad;
  }
}

TEST(S3Create, ChecksTheEndpointAndCredentials) {
  S3Options o;
  o.access_key_id = "AKID";
  o.secret_access_key = "secret";
  o.region = "eu-west-1";
  for (const char* bad : {"ftp://host", "127.0.0.1:9000", "http://", "http://host/path", "http://user@host",
                          "http://host?x=1", "http://ho st"}) {
    o.endpoint = bad;
    EXPECT_EQ(S3Client::Create(o).status().code(), StatusCode::kInvalidArgument) << bad;
  }
  o.endpoint = "";
  auto aws = S3Client::Create(o);
  ASSERT_TRUE(aws.ok());
  EXPECT_EQ((*aws)->options().endpoint, "https://s3.eu-west-1.amazonaws.com");
  o.secret_access_key = "";
  ::unsetenv("AWS_SECRET_ACCESS_KEY");
  EXPECT_EQ(S3Client::Create(o).status().code(), StatusCode::kInvalidArgument);
  o.region = "us-east-1; rm";
  o.secret_access_key = "secret";
  EXPECT_EQ(S3Client::Create(o).status().code(), StatusCode::kInvalidArgument);
}

TEST(S3Create, ReadsTheEnvironment) {
  ::setenv("AWS_ACCESS_KEY_ID", "ENVKEY", 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
  ::setenv("AWS_SESSION_TOKEN", "envtoken", 1);
  ::setenv("AWS_REGION", "ap-south-1", 1);
  S3Options o;
  o.endpoint = "http://127.0.0.1:1";
  auto c = S3Client::Create(o);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)->options().access_key_id, "ENVKEY");
  EXPECT_EQ((*c)->options().secret_access_key, "envsecret");
  EXPECT_EQ((*c)->options().session_token, "envtoken");
  EXPECT_EQ((*c)->options().region, "ap-south-1");
  o.region = "eu-north-1";  // options win over the environment
  EXPECT_EQ((*S3Client::Create(o))->options().region, "eu-north-1");
  for (const char* v : {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION"}) ::unsetenv(v);
}

// A local server answering every request with one canned reply; records what it was sent.
class Canned {
 public:
  Canned() {
    server_.Get(".*", [this](const httplib::Request& req, httplib::Response& res) { Answer(req, res); });
    server_.Put(".*", [this](const httplib::Request& req, httplib::Response& res) { Answer(req, res); });
    server_.Delete(".*", [this](const httplib::Request& req, httplib::Response& res) { Answer(req, res); });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~Canned() {
    server_.stop();
    thread_.join();
  }
  void Set(int status, std::string body, httplib::Headers headers = {}) {
    std::lock_guard lock(mu_);
    status_ = status;
    body_ = std::move(body);
    headers_ = std::move(headers);
  }
  // The next `n` requests get `status` and `body` instead of the canned reply.
  void FailNext(int n, int status, std::string body) {
    std::lock_guard lock(mu_);
    fail_left_ = n;
    fail_status_ = status;
    fail_body_ = std::move(body);
  }
  int port() const { return port_; }
  httplib::Request last() {
    std::lock_guard lock(mu_);
    return last_;
  }
  std::unique_ptr<S3Client> Client() {
    S3Options o;
    o.endpoint = "http://127.0.0.1:" + std::to_string(port_) + "/";
    o.access_key_id = "AKIDEXAMPLE";
    o.secret_access_key = "secret";
    o.session_token = "session-token";
    o.region = "us-east-1";
    o.request_timeout_ms = 5000;
    o.retry_base_ms = 1;
    return std::move(S3Client::Create(o)).value();
  }

 private:
  void Answer(const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(mu_);
    last_ = req;
    if (fail_left_ > 0) {
      --fail_left_;
      res.status = fail_status_;
      res.set_content(fail_body_, "application/xml");
      return;
    }
    res.status = status_;
    for (const auto& [k, v] : headers_) res.set_header(k, v);
    res.set_content(body_, "application/xml");
  }
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  int status_ = 200;
  std::string body_;
  httplib::Headers headers_;
  httplib::Request last_;
  int fail_left_ = 0;
  int fail_status_ = 0;
  std::string fail_body_;
};

std::string S3Error(const std::string& code, const std::string& message) {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>" + code + "</Code><Message>" + message +
         "</Message><RequestId>1</RequestId></Error>";
}

TEST(S3Errors, MapsS3CodesToStatusesThatSayWhatToDo) {
  Canned canned;
  auto client = canned.Client();
  struct Case {
    int http;
    const char* code;
    StatusCode want;
    const char* hint;
  };
  for (const Case& c : {Case{404, "NoSuchKey", StatusCode::kNotFound, "no object 'k.png' in bucket 'photos'"},
                        Case{404, "NoSuchBucket", StatusCode::kNotFound, "bucket 'photos' does not exist"},
                        Case{403, "AccessDenied", StatusCode::kPermissionDenied, "grant these credentials s3:GetObject"},
                        Case{403, "SignatureDoesNotMatch", StatusCode::kPermissionDenied, "AWS_SECRET_ACCESS_KEY"},
                        Case{403, "InvalidAccessKeyId", StatusCode::kPermissionDenied, "AWS_ACCESS_KEY_ID"},
                        Case{400, "ExpiredToken", StatusCode::kPermissionDenied, "AWS_SESSION_TOKEN"},
                        Case{403, "RequestTimeTooSkewed", StatusCode::kPermissionDenied, "clock"},
                        Case{301, "PermanentRedirect", StatusCode::kFailedPrecondition, "--s3-region"},
                        Case{503, "SlowDown", StatusCode::kUnavailable, "try again later"},
                        Case{500, "InternalError", StatusCode::kUnavailable, "try again later"},
                        Case{400, "InvalidRequest", StatusCode::kIOError, "InvalidRequest"}}) {
    canned.Set(c.http, S3Error(c.code, "canned"));
    auto got = client->GetObject("photos", "k.png", 1000);
    ASSERT_FALSE(got.ok()) << c.code;
    EXPECT_EQ(got.status().code(), c.want) << c.code << ": " << got.status().ToString();
    EXPECT_NE(got.status().message().find(c.hint), std::string::npos) << c.code << ": " << got.status().ToString();
  }
  // HEAD replies carry no body: the HTTP status decides.
  canned.Set(404, "");
  EXPECT_EQ(client->HeadObject("photos", "k.png").status().code(), StatusCode::kNotFound);
  canned.Set(403, "");
  EXPECT_EQ(client->HeadObject("photos", "k.png").status().code(), StatusCode::kPermissionDenied);
  canned.Set(200, "<html>not s3</html>");
  EXPECT_EQ(client->ListObjectsV2("photos", "").status().code(), StatusCode::kIOError);
}

TEST(S3Errors, SendsWhatItSignedPathStyle) {
  Canned canned;
  auto client = canned.Client();
  canned.Set(200, "x");
  ASSERT_TRUE(client->GetObject("photos", "a b/c+d.png", 10).ok());
  const httplib::Request req = canned.last();
  EXPECT_EQ(req.target, "/photos/a%20b/c%2Bd.png");  // exactly as encoded and signed
  EXPECT_EQ(req.get_header_value("x-amz-security-token"), "session-token");
  EXPECT_EQ(req.get_header_value("x-amz-content-sha256"), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  const std::string auth = req.get_header_value("Authorization");
  EXPECT_EQ(auth.rfind("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/", 0), 0u) << auth;
  EXPECT_NE(auth.find("/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token, "
                      "Signature="),
            std::string::npos)
      << auth;
  EXPECT_EQ(req.get_header_value("Host"), "127.0.0.1:" + std::to_string(req.local_port));
}

TEST(S3Errors, RefusesDotSegmentsInKeys) {
  Canned canned;
  auto client = canned.Client();
  canned.Set(200, "x");
  // A path-style "/bucket/../other/key" could be normalised into another bucket on the way.
  for (const char* key : {"../other/k.png", "a/../../k.png", "./k.png", "a/.", ".."}) {
    EXPECT_EQ(client->GetObject("photos", key, 10).status().code(), StatusCode::kInvalidArgument) << key;
    EXPECT_EQ(client->HeadObject("photos", key).status().code(), StatusCode::kInvalidArgument) << key;
    EXPECT_EQ(client->PutObject("photos", key, "x").code(), StatusCode::kInvalidArgument) << key;
  }
  EXPECT_TRUE(client->GetObject("photos", "a..b/.hidden/k..png", 10).ok());
}

TEST(S3Errors, RefusesALargeObjectFromItsLength) {
  Canned canned;
  auto client = canned.Client();
  canned.Set(200, std::string(5000, 'z'));
  auto got = client->GetObject("photos", "big.png", 4999);
  ASSERT_EQ(got.status().code(), StatusCode::kResourceExhausted) << got.status().ToString();
  EXPECT_NE(got.status().message().find("5000 bytes; the limit is 4999"), std::string::npos) << got.status().ToString();
  EXPECT_TRUE(client->GetObject("photos", "big.png", 5000).ok());
}

TEST(S3Retries, SlowDownAndServerErrorsAreRetriedWithBackoffOthersAreNot) {
  Canned canned;
  auto client = canned.Client();
  canned.Set(200, "the bytes");
  // Two 503 SlowDown then the object: one call, three requests.
  canned.FailNext(2, 503, S3Error("SlowDown", "Please reduce your request rate."));
  uint64_t before = client->requests_sent();
  auto got = client->GetObject("photos", "k.png", 1000);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, "the bytes");
  EXPECT_EQ(client->requests_sent() - before, 3u);
  // More failures than retries (3): Unavailable after four requests.
  canned.FailNext(10, 500, S3Error("InternalError", "We encountered an internal error."));
  before = client->requests_sent();
  auto down = client->ListObjectsV2("photos", "");
  EXPECT_EQ(down.status().code(), StatusCode::kUnavailable) << down.status().ToString();
  EXPECT_EQ(client->requests_sent() - before, 4u);
  canned.FailNext(0, 0, "");
  // A 404 or 403 is an answer, not a hiccup: sent once.
  canned.Set(404, S3Error("NoSuchKey", "The specified key does not exist."));
  before = client->requests_sent();
  EXPECT_EQ(client->GetObject("photos", "k.png", 1000).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(client->requests_sent() - before, 1u);
  // A refusal from Content-Length is not retried either.
  canned.Set(200, std::string(100, 'x'));
  before = client->requests_sent();
  EXPECT_EQ(client->GetObject("photos", "k.png", 10).status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(client->requests_sent() - before, 1u);
}

TEST(S3Addressing, PathStyleOrVirtualHostedUrls) {
  S3Options o;
  o.access_key_id = "AKID";
  o.secret_access_key = "secret";
  o.endpoint = "https://s3.eu-west-1.amazonaws.com";
  auto aws = std::move(S3Client::Create(o)).value();
  // auto on AWS: virtual-hosted for names that are host labels...
  auto t = aws->TargetFor("photos", "2024/a b+c.png");
  EXPECT_EQ(t.url, "https://photos.s3.eu-west-1.amazonaws.com/2024/a%20b%2Bc.png");
  EXPECT_EQ(t.host, "photos.s3.eu-west-1.amazonaws.com");
  EXPECT_EQ(t.path, "/2024/a%20b%2Bc.png");
  EXPECT_EQ(aws->TargetFor("photos", "").url, "https://photos.s3.eu-west-1.amazonaws.com/");  // ListObjectsV2
  // ... path-style for a dotted name over https (the wildcard certificate covers one label only).
  EXPECT_EQ(aws->TargetFor("my.photos", "k").url, "https://s3.eu-west-1.amazonaws.com/my.photos/k");
  o.addressing = S3Addressing::kPath;
  EXPECT_EQ(std::move(S3Client::Create(o)).value()->TargetFor("photos", "k").url,
            "https://s3.eu-west-1.amazonaws.com/photos/k");
  // Another endpoint: path-style unless asked.
  o.endpoint = "http://127.0.0.1:9000";
  o.addressing = S3Addressing::kAuto;
  auto local = std::move(S3Client::Create(o)).value();
  EXPECT_EQ(local->TargetFor("photos", "k").url, "http://127.0.0.1:9000/photos/k");
  o.endpoint = "https://minio.example.test";
  o.addressing = S3Addressing::kVirtualHosted;
  EXPECT_EQ(std::move(S3Client::Create(o)).value()->TargetFor("photos", "k").url, "https://photos.minio.example.test/k");
  o.connect_to = "no-port";
  EXPECT_EQ(S3Client::Create(o).status().code(), StatusCode::kInvalidArgument);
}

// A virtual-hosted request, sent to the canned server through connect_to: the Host header and
// path are the virtual-hosted ones, and the signature is exactly SigV4 over what arrived.
TEST(S3Addressing, VirtualHostedRequestsSignTheBucketsHost) {
  Canned canned;
  canned.Set(200, "x");
  S3Options o;
  o.endpoint = "http://s3.us-east-1.amazonaws.com:" + std::to_string(canned.port());
  o.connect_to = "127.0.0.1:" + std::to_string(canned.port());
  o.access_key_id = "AKIDEXAMPLE";
  o.secret_access_key = "secret";
  o.region = "us-east-1";
  auto client = std::move(S3Client::Create(o)).value();
  ASSERT_TRUE(client->GetObject("photos", "a b/c+d 日本.png", 10).ok());
  const httplib::Request req = canned.last();
  const std::string host = "photos.s3.us-east-1.amazonaws.com:" + std::to_string(canned.port());
  EXPECT_EQ(req.get_header_value("Host"), host);
  EXPECT_EQ(req.target, "/a%20b/c%2Bd%20%E6%97%A5%E6%9C%AC.png");
  SigV4Request signed_req;
  signed_req.method = "GET";
  signed_req.path = req.target;
  signed_req.payload_sha256 = std::string(kEmptyPayloadSha256);
  const std::string amz_date = req.get_header_value("x-amz-date");
  signed_req.headers = {{"host", host}, {"x-amz-content-sha256", signed_req.payload_sha256}, {"x-amz-date", amz_date}};
  EXPECT_EQ(req.get_header_value("Authorization"),
            AuthorizationHeader(signed_req, {amz_date, "us-east-1", "s3"}, {"AKIDEXAMPLE", "secret"}));
}

// Multipart uploads have ETags "<hex>-<parts>" that are no MD5 of the bytes: kept verbatim
// (quotes and XML entities removed) and compared as strings for change detection.
TEST(S3Listing, MultipartETagsAreKeptAndCompared) {
  Canned canned;
  canned.Set(200,
             "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult><Name>photos</Name><IsTruncated>false</IsTruncated>"
             "<Contents><Key>big/video one.mp4</Key><LastModified>2024-05-01T12:00:00.000Z</LastModified>"
             "<ETag>&quot;9b2cf535f27731c974343645a3985328-3&quot;</ETag><Size>15728640</Size></Contents>"
             "<Contents><Key>a+b.txt</Key><LastModified>2024-05-01T12:00:01.000Z</LastModified>"
             "<ETag>\"d41d8cd98f00b204e9800998ecf8427e\"</ETag><Size>0</Size></Contents></ListBucketResult>");
  auto client = canned.Client();
  auto page = client->ListObjectsV2("photos", "");
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->objects.size(), 2u);
  EXPECT_EQ(page->objects[0].key, "big/video one.mp4");
  EXPECT_EQ(page->objects[0].etag, "9b2cf535f27731c974343645a3985328-3");
  EXPECT_EQ(page->objects[1].etag, "d41d8cd98f00b204e9800998ecf8427e");

  // The same listing through the Source: uri, key, size, LastModified in ns, ETag.
  SourceOptions so;
  so.s3.endpoint = "http://127.0.0.1:" + std::to_string(canned.port());
  so.s3.access_key_id = "AKID";
  so.s3.secret_access_key = "secret";
  auto source = OpenSource("s3://photos/", so);
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  std::vector<SourceEntry> seen;
  ASSERT_TRUE((*source)->List("", [&](const SourceEntry& e) { seen.push_back(e); return Status::Ok(); }).ok());
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].uri, "s3://photos/big/video one.mp4");
  EXPECT_EQ(seen[0].size, 15728640u);
  EXPECT_EQ(seen[0].mtime_ns, 1714564800LL * 1000000000);
  EXPECT_EQ(seen[0].etag, "9b2cf535f27731c974343645a3985328-3");
  SourceEntry reuploaded = seen[0];
  reuploaded.etag = "0c4c3a4f3c1b7c2e9d1f0a5b6c7d8e9f-4";  // same size and second, other parts
  EXPECT_TRUE(SourceChanged(seen[0], reuploaded));
  EXPECT_FALSE(SourceChanged(seen[0], seen[0]));
}

TEST(S3Network, ConnectionRefusedAndTimeoutAreUnavailable) {
  // A port nobody listens on: bind, read the port, close.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);
  S3Options o;
  o.endpoint = "http://127.0.0.1:" + std::to_string(port);
  o.access_key_id = "AKID";
  o.secret_access_key = "secret";
  o.region = "us-east-1";
  o.request_timeout_ms = 300;
  ::close(fd);
  auto refused = (*S3Client::Create(o))->GetObject("photos", "k.png", 10);
  ASSERT_EQ(refused.status().code(), StatusCode::kUnavailable) << refused.status().ToString();
  EXPECT_NE(refused.status().message().find("cannot connect"), std::string::npos) << refused.status().ToString();
  EXPECT_NE(refused.status().message().find("--s3-endpoint"), std::string::npos);

  // A socket that accepts connections (the kernel's backlog) but never answers.
  int silent = ::socket(AF_INET, SOCK_STREAM, 0);
  addr.sin_port = 0;
  ASSERT_EQ(::bind(silent, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(silent, 8), 0);
  len = sizeof addr;
  ::getsockname(silent, reinterpret_cast<sockaddr*>(&addr), &len);
  o.endpoint = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  const auto start = std::chrono::steady_clock::now();
  auto slow = (*S3Client::Create(o))->GetObject("photos", "k.png", 10);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ::close(silent);
  ASSERT_EQ(slow.status().code(), StatusCode::kUnavailable) << slow.status().ToString();
  EXPECT_NE(slow.status().message().find("timed out"), std::string::npos) << slow.status().ToString();
  EXPECT_LT(s, 5.0);
}

}  // namespace
}  // namespace fs::storage
