// The HTTP transport over real sockets on 127.0.0.1: framing, limits, deadlines, ranges, fairness,
// per-client limits and shutdown. Raw sockets, so malformed and hostile requests can be sent.
#include "server/http_server.h"
#include "server/raw_http_client.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

namespace fs::server::http {
namespace {

using testing::ClosedByPeer;
using testing::Connect;
using testing::Exchange;
using testing::RawReply;
using testing::ReadReply;
using testing::SendAll;


class StringBody : public BodySource {
 public:
  explicit StringBody(std::string s) : s_(std::move(s)) {}
  uint64_t size() const override { return s_.size(); }
  size_t ReadAt(uint64_t offset, char* out, size_t n) const override {
    if (offset >= s_.size()) return 0;
    n = std::min<size_t>(n, s_.size() - offset);
    std::memcpy(out, s_.data() + offset, n);
    return n;
  }

 private:
  std::string s_;
};

// An echo server: replies with what it parsed, so tests can see the request as the handler did.
class HttpServerTest : public ::testing::Test {
 protected:
  void StartServer(Options o) {
    o.host = "127.0.0.1";
    o.port = 0;
    if (!o.handler) {
      o.handler = [this](Request& req, Response& res) {
        ++handled_;
        if (req.path == "/file") {
          res.content_type = "text/plain";
          std::string data;
          for (int i = 0; i < 1000; ++i) data += static_cast<char>('a' + i % 26);
          res.file = std::make_shared<StringBody>(data);
          return;
        }
        if (req.path == "/sleep") std::this_thread::sleep_for(std::chrono::milliseconds(40));
        if (req.path == "/split") res.headers.emplace_back("X-Evil", "a\r\nSet-Cookie: x=1");
        std::string out = req.method + " " + req.path + " body=" + std::to_string(req.body.size()) + ":" + req.body;
        for (const auto& [k, v] : req.params) out += " " + k + "=" + v;
        for (const auto& [k, part] : req.files) out += " part:" + k + "=" + part.content;
        res.content_type = "text/plain";
        res.body = out;
      };
    }
    auto s = Server::Create(std::move(o));
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(s).value();
    ASSERT_TRUE(server_->Start().ok());
    port_ = server_->port();
  }
  void TearDown() override {
    if (server_) server_->Stop();
  }
  std::unique_ptr<Server> server_;
  int port_ = 0;
  std::atomic<int> handled_{0};
};

TEST(HttpParseTest, PercentDecodeAndQuery) {
  std::string out;
  EXPECT_TRUE(PercentDecode("a%20b+c", true, &out));
  EXPECT_EQ(out, "a b c");
  EXPECT_TRUE(PercentDecode("a+b", false, &out));
  EXPECT_EQ(out, "a+b");
  EXPECT_FALSE(PercentDecode("%", true, &out));
  EXPECT_FALSE(PercentDecode("%4", true, &out));
  EXPECT_FALSE(PercentDecode("%zz", true, &out));
  std::multimap<std::string, std::string> q;
  EXPECT_TRUE(ParseQuery("q=red+car&type=image&type=pdf&empty=&flag", &q));
  EXPECT_EQ(q.count("type"), 2u);
  EXPECT_EQ(q.find("q")->second, "red car");
  EXPECT_EQ(q.find("empty")->second, "");
  EXPECT_EQ(q.count("flag"), 1u);
  EXPECT_FALSE(ParseQuery("q=%G0", &q));
}

TEST(HttpParseTest, RangesFollowRfc9110) {
  ByteRange r = ParseRange("bytes=0-9", 1000);
  EXPECT_EQ(r.kind, ByteRange::kSatisfiable);
  EXPECT_EQ(r.first, 0u);
  EXPECT_EQ(r.last, 9u);
  r = ParseRange("bytes=990-5000", 1000);
  EXPECT_EQ(r.last, 999u);
  r = ParseRange("bytes=-10", 1000);
  EXPECT_EQ(r.first, 990u);
  EXPECT_EQ(r.last, 999u);
  r = ParseRange("bytes=-5000", 1000);
  EXPECT_EQ(r.first, 0u);
  EXPECT_EQ(ParseRange("bytes=1000-", 1000).kind, ByteRange::kUnsatisfiable);
  EXPECT_EQ(ParseRange("bytes=18446744073709551615-", 1000).kind, ByteRange::kUnsatisfiable);
  EXPECT_EQ(ParseRange("bytes=99999999999999999999-", 1000).kind, ByteRange::kUnsatisfiable);
  EXPECT_EQ(ParseRange("bytes=x-", 1000).kind, ByteRange::kNone);  // not a number: ignored
  EXPECT_EQ(ParseRange("bytes=5-2", 1000).kind, ByteRange::kNone);
  EXPECT_EQ(ParseRange("bytes=0-1,5-6", 1000).kind, ByteRange::kNone);
  EXPECT_EQ(ParseRange("items=0-1", 1000).kind, ByteRange::kNone);
  EXPECT_EQ(ParseRange("bytes=0-", 0).kind, ByteRange::kUnsatisfiable);
}

TEST(HttpParseTest, Multipart) {
  std::string body =
      "--XyZ\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n"
      "PNG\r\nbytes\r\n--XyZ\r\nContent-Disposition: form-data; name=\"limit\"\r\n\r\n3\r\n--XyZ--\r\n";
  std::multimap<std::string, FormPart> parts;
  ASSERT_TRUE(ParseMultipart("multipart/form-data; boundary=XyZ", body, &parts).ok());
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts.find("image")->second.content, "PNG\r\nbytes");
  EXPECT_EQ(parts.find("image")->second.filename, "a.png");
  EXPECT_EQ(parts.find("image")->second.content_type, "image/png");
  EXPECT_EQ(parts.find("limit")->second.content, "3");
  parts.clear();
  EXPECT_FALSE(ParseMultipart("multipart/form-data", body, &parts).ok());
  EXPECT_FALSE(ParseMultipart("multipart/form-data; boundary=XyZ", "--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nno end", &parts).ok());
  EXPECT_FALSE(ParseMultipart("multipart/form-data; boundary=XyZ", "--XyZ\r\nX: y\r\n\r\nv\r\n--XyZ--", &parts).ok());
}

TEST_F(HttpServerTest, KeepAlivePipeliningAndQueries) {
  StartServer({});
  int fd = Connect(port_);
  ASSERT_GE(fd, 0);
  // Two requests in one write, then a third on the same connection.
  SendAll(fd, "GET /a?x=1&y=%C3%A9 HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n");
  std::string pending;
  RawReply a = ReadReply(fd, &pending);
  RawReply b = ReadReply(fd, &pending);
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.body, "GET /a body=0: x=1 y=\xC3\xA9");
  EXPECT_EQ(a.headers["connection"], "keep-alive");
  EXPECT_EQ(b.body, "GET /b body=0:");
  SendAll(fd, "POST /c HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
  EXPECT_EQ(ReadReply(fd, &pending).body, "POST /c body=5:hello");
  SendAll(fd, "GET /d HTTP/1.1\r\nConnection: close\r\n\r\n");
  RawReply d = ReadReply(fd, &pending);
  EXPECT_EQ(d.headers["connection"], "close");
  EXPECT_TRUE(ClosedByPeer(fd, 2000));
  ::close(fd);
}

TEST_F(HttpServerTest, AClientThatHalfClosesStillGetsItsReply) {
  StartServer({});
  int fd = Connect(port_);
  SendAll(fd, "GET /file HTTP/1.1\r\n\r\n");
  ::shutdown(fd, SHUT_WR);  // done sending, still reading
  std::string pending;
  RawReply r = ReadReply(fd, &pending);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body.size(), 1000u);
  EXPECT_TRUE(ClosedByPeer(fd, 2000));
  ::close(fd);
}

TEST_F(HttpServerTest, ChunkedBodiesAndExpectContinue) {
  StartServer({});
  RawReply r = Exchange(port_, "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "POST /c body=11:hello world");
  int fd = Connect(port_);
  SendAll(fd, "POST /c HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
  std::string pending;
  EXPECT_EQ(ReadReply(fd, &pending).status, 100);
  SendAll(fd, "abc");
  EXPECT_EQ(ReadReply(fd, &pending).body, "POST /c body=3:abc");
  ::close(fd);
  EXPECT_EQ(Exchange(port_, "POST /c HTTP/1.1\r\nContent-Length: 1\r\nExpect: magic\r\n\r\nx").status, 417);
}

TEST_F(HttpServerTest, MalformedAndOversizedRequestsGet4xxAtOnce) {
  Options o;
  o.max_body_bytes = 1000;
  o.max_request_line_bytes = 2048;
  o.max_header_bytes = 4096;
  o.max_header_count = 20;
  StartServer(o);
  // A body over the limit is refused from its Content-Length, before any of it is sent.
  RawReply big = Exchange(port_, "POST /c HTTP/1.1\r\nContent-Length: 1000000000000\r\n\r\n");
  EXPECT_EQ(big.status, 413);
  EXPECT_NE(big.body.find("payload_too_large"), std::string::npos);
  EXPECT_EQ(Exchange(port_, "POST /c HTTP/1.1\r\nContent-Length: 1e12\r\n\r\n").status, 400);
  EXPECT_EQ(Exchange(port_, "POST /c HTTP/1.1\r\nContent-Length: -1\r\n\r\n").status, 400);
  EXPECT_EQ(Exchange(port_, "POST /c HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd").status, 400);
  EXPECT_EQ(Exchange(port_, "POST /c HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n").status, 400);
  EXPECT_EQ(Exchange(port_, "POST /c HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n").status, 501);
  EXPECT_EQ(Exchange(port_, "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nfffffff\r\n").status, 413);
  EXPECT_EQ(Exchange(port_, "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").status, 400);
  EXPECT_EQ(Exchange(port_, "GET /" + std::string(3000, 'a') + " HTTP/1.1\r\n\r\n").status, 414);
  std::string many = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 30; ++i) many += "X-H" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(Exchange(port_, many + "\r\n").status, 431);
  EXPECT_EQ(Exchange(port_, "GET / HTTP/1.1\r\nX-Big: " + std::string(5000, 'b') + "\r\n\r\n").status, 431);
  EXPECT_EQ(Exchange(port_, "GET / HTTP/2.0\r\n\r\n").status, 505);
  EXPECT_EQ(Exchange(port_, "GET /a b HTTP/1.1\r\n\r\n").status, 400);
  EXPECT_EQ(Exchange(port_, "GET http://evil/ HTTP/1.1\r\n\r\n").status, 400);
  EXPECT_EQ(Exchange(port_, "GET / HTTP/1.1\r\n folded\r\n\r\n").status, 400);
  EXPECT_EQ(Exchange(port_, "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n").status, 400);
  EXPECT_EQ(Exchange(port_, "GET / HTTP/1.1\r\nX: a\x01" "b\r\n\r\n").status, 400);
  EXPECT_EQ(Exchange(port_, "GET /?q=%zz HTTP/1.1\r\n\r\n").status, 400);
  EXPECT_EQ(handled_.load(), 0) << "no malformed request may reach the handler";
  // The server still serves.
  EXPECT_EQ(Exchange(port_, "GET /ok HTTP/1.1\r\n\r\n").status, 200);
}

TEST_F(HttpServerTest, RangesHeadAndResponseSplitting) {
  StartServer({});
  RawReply whole = Exchange(port_, "GET /file HTTP/1.1\r\n\r\n");
  EXPECT_EQ(whole.status, 200);
  EXPECT_EQ(whole.body.size(), 1000u);
  EXPECT_EQ(whole.headers["accept-ranges"], "bytes");
  RawReply part = Exchange(port_, "GET /file HTTP/1.1\r\nRange: bytes=26-30\r\n\r\n");
  EXPECT_EQ(part.status, 206);
  EXPECT_EQ(part.body, "abcde");
  EXPECT_EQ(part.headers["content-range"], "bytes 26-30/1000");
  RawReply past = Exchange(port_, "GET /file HTTP/1.1\r\nRange: bytes=5000-\r\n\r\n");
  EXPECT_EQ(past.status, 416);
  EXPECT_EQ(past.headers["content-range"], "bytes */1000");
  EXPECT_LT(std::stoull(past.headers["content-length"]), 1000u);
  int fd = Connect(port_);
  SendAll(fd, "HEAD /file HTTP/1.1\r\n\r\nGET /x HTTP/1.1\r\n\r\n");
  std::string pending;
  RawReply head = ReadReply(fd, &pending, 5000, /*head=*/true);
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.headers["content-length"], "1000");
  EXPECT_EQ(ReadReply(fd, &pending).body, "GET /x body=0:") << "a HEAD reply carries no body";
  ::close(fd);
  RawReply split = Exchange(port_, "GET /split HTTP/1.1\r\n\r\n");
  EXPECT_EQ(split.status, 200);
  EXPECT_EQ(split.headers.count("set-cookie"), 0u);
  EXPECT_EQ(split.headers.count("x-evil"), 0u);
}

TEST_F(HttpServerTest, SlowHeadsTimeOutAndIdleConnectionsTakeNoWorker) {
  Options o;
  o.worker_threads = 1;
  o.header_timeout_ms = 300;
  o.max_connections_per_client = 0;
  StartServer(o);
  // 300 idle connections and 50 that never finish their head: one worker still serves.
  std::vector<int> held;
  for (int i = 0; i < 300; ++i) held.push_back(Connect(port_));
  for (int i = 0; i < 50; ++i) {
    int fd = Connect(port_);
    SendAll(fd, "GET /slow HTTP/1.1\r\nX-A: ");
    held.push_back(fd);
  }
  EXPECT_EQ(Exchange(port_, "GET /ok HTTP/1.1\r\n\r\n").status, 200);
  // The slow ones get 408 and are closed once their head is overdue.
  std::string pending;
  RawReply late = ReadReply(held.back(), &pending, 3000);
  EXPECT_EQ(late.status, 408);
  EXPECT_TRUE(ClosedByPeer(held.back(), 2000));
  for (int fd : held) ::close(fd);
}

TEST_F(HttpServerTest, PerClientConnectionAndRateLimits) {
  Options o;
  o.max_connections_per_client = 3;
  o.requests_per_second_per_client = 0.5;
  o.request_burst_per_client = 4;
  StartServer(o);
  std::vector<int> held;
  for (int i = 0; i < 3; ++i) held.push_back(Connect(port_, "127.0.0.2"));
  // The same address is over its limit; another address is not.
  RawReply over = Exchange(port_, "GET /x HTTP/1.1\r\n\r\n", "127.0.0.2");
  EXPECT_EQ(over.status, 429);
  EXPECT_NE(over.body.find("too_many_connections"), std::string::npos);
  EXPECT_EQ(Exchange(port_, "GET /x HTTP/1.1\r\n\r\n", "127.0.0.3").status, 200);
  for (int fd : held) ::close(fd);
  // Rate: a burst of 4, then 429 with Retry-After until the bucket refills.
  int ok = 0, limited = 0;
  for (int i = 0; i < 6; ++i) {
    int c = Connect(port_, "127.0.0.4");
    SendAll(c, "GET /x HTTP/1.1\r\n\r\n");
    std::string p;
    RawReply r = ReadReply(c, &p);
    ::close(c);
    if (r.status == 200) ++ok;
    if (r.status == 429) {
      ++limited;
      EXPECT_EQ(r.headers["retry-after"], "1");
    }
  }
  EXPECT_EQ(ok, 4);  // the burst
  EXPECT_EQ(limited, 2);
}

TEST_F(HttpServerTest, OneClientsBurstDoesNotStarveAnother) {
  Options o;
  o.worker_threads = 1;
  o.max_connections_per_client = 0;
  std::mutex mu;
  std::vector<std::string> order;
  o.handler = [&](Request& req, Response& res) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::lock_guard lock(mu);
    order.push_back(req.remote_ip);
    res.body = "ok";
  };
  StartServer(o);
  std::vector<int> greedy;
  for (int i = 0; i < 20; ++i) {
    int fd = Connect(port_, "127.0.0.5");
    SendAll(fd, "GET /x HTTP/1.1\r\n\r\n");
    greedy.push_back(fd);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the burst is queued
  EXPECT_EQ(Exchange(port_, "GET /x HTTP/1.1\r\n\r\n", "127.0.0.6").status, 200);
  for (int fd : greedy) {
    std::string p;
    EXPECT_EQ(ReadReply(fd, &p).status, 200);
    ::close(fd);
  }
  std::lock_guard lock(mu);
  size_t at = std::find(order.begin(), order.end(), "127.0.0.6") - order.begin();
  EXPECT_LT(at, 5u) << "served after " << at << " of the other client's 20 requests";
}

TEST_F(HttpServerTest, StopClosesIdleAndHalfSentConnections) {
  Options o;
  o.max_connections_per_client = 0;
  StartServer(o);
  std::vector<int> held;
  for (int i = 0; i < 100; ++i) held.push_back(Connect(port_));
  for (int i = 0; i < 20; ++i) {
    int fd = Connect(port_);
    SendAll(fd, i % 2 ? "GET / HTTP/1.1\r\nX: " : "POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\nab");
    held.push_back(fd);
  }
  int fd = Connect(port_);
  SendAll(fd, "GET /x HTTP/1.1\r\n\r\n");
  std::string p;
  EXPECT_EQ(ReadReply(fd, &p).status, 200);  // an idle keep-alive connection now
  held.push_back(fd);
  server_->Stop();  // must not wait for any of them (ctest's timeout would catch a hang)
  for (int h : held) {
    EXPECT_TRUE(ClosedByPeer(h, 1000));
    ::close(h);
  }
}

TEST_F(HttpServerTest, ASecondServerOnABusyPortFails) {
  StartServer({});
  Options o;
  o.host = "127.0.0.1";
  o.port = port_;
  o.handler = [](Request&, Response&) {};
  auto second = Server::Create(o);
  ASSERT_TRUE(second.ok());
  Status st = (*second)->Start();
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  EXPECT_NE(st.message().find("already in use"), std::string::npos) << st.message();
  EXPECT_EQ(Exchange(port_, "GET /still HTTP/1.1\r\n\r\n").status, 200);
}

TEST_F(HttpServerTest, ManyConnectionsOverTheLimitAreRefusedNotQueued) {
  Options o;
  o.max_connections = 10;
  o.max_connections_per_client = 0;
  StartServer(o);
  std::vector<int> held;
  for (int i = 0; i < 10; ++i) held.push_back(Connect(port_));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  RawReply r = Exchange(port_, "GET /x HTTP/1.1\r\n\r\n");
  EXPECT_EQ(r.status, 503);
  for (int fd : held) ::close(fd);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(Exchange(port_, "GET /x HTTP/1.1\r\n\r\n").status, 200);
  EXPECT_GE(server_->stats().refused_connections, 1u);
}

}  // namespace
}  // namespace fs::server::http
