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

#include "storage/s3_client.h"
#include "storage/s3_xml.h"

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
    return std::move(S3Client::Create(o)).value();
  }

 private:
  void Answer(const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(mu_);
    last_ = req;
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
