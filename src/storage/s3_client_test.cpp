// S3Client against a real S3 server (s3rver from npm on 127.0.0.1; skips when node or s3rver is
// missing): Put/Get/Head/List round trips, paging, keys that need encoding, and the errors.
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "storage/s3_client.h"
#include "storage/s3rver_fixture.h"

namespace fs::storage {
namespace {

class S3ClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    bool skip = false;
    server_ = testing::S3rver::Start({"photos", "empty-bucket"}, &why_, &skip).release();
    if (!server_ && !skip) FAIL() << why_;
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    if (!server_) GTEST_SKIP() << why_;
    auto client = S3Client::Create(server_->ClientOptions());
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    client_ = std::move(client).value();
  }

  static testing::S3rver* server_;
  static std::string why_;
  std::unique_ptr<S3Client> client_;
};
testing::S3rver* S3ClientTest::server_ = nullptr;
std::string S3ClientTest::why_;

TEST_F(S3ClientTest, PutGetHeadRoundTrip) {
  std::string bytes = "not really a picture";
  for (int i = 0; i < 256; ++i) bytes += static_cast<char>(i);  // every byte value, NUL included
  ASSERT_TRUE(client_->PutObject("photos", "round/trip.bin", bytes, "image/x-test").ok());
  auto got = client_->GetObject("photos", "round/trip.bin", 1 << 20);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, bytes);
  auto head = client_->HeadObject("photos", "round/trip.bin");
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(head->size, bytes.size());
  EXPECT_EQ(head->content_type, "image/x-test");
  EXPECT_EQ(head->etag.size(), 32u) << head->etag;  // MD5 hex, quotes removed
  EXPECT_FALSE(head->last_modified.empty());
  // Overwrite, and an empty object.
  ASSERT_TRUE(client_->PutObject("photos", "round/trip.bin", "v2").ok());
  EXPECT_EQ(*client_->GetObject("photos", "round/trip.bin", 100), "v2");
  ASSERT_TRUE(client_->PutObject("photos", "round/empty", "").ok());
  auto empty = client_->GetObject("photos", "round/empty", 0);
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_TRUE(empty->empty());
}

TEST_F(S3ClientTest, KeysThatNeedEncoding) {
  for (const std::string key : {"with space.png", "plus+equals=amp&.png", "caf\xC3\xA9/\xE7\x8C\xAB.png",
                                "dollar$ (1)/tilde~_-.png", "percent%41.png"}) {
    ASSERT_TRUE(client_->PutObject("photos", "enc/" + key, "bytes of " + key).ok()) << key;
    auto got = client_->GetObject("photos", "enc/" + key, 1000);
    ASSERT_TRUE(got.ok()) << key << ": " << got.status().ToString();
    EXPECT_EQ(*got, "bytes of " + key);
  }
  auto page = client_->ListObjectsV2("photos", "enc/");
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  std::set<std::string> keys;
  for (const auto& o : page->objects) keys.insert(o.key);
  EXPECT_TRUE(keys.count("enc/caf\xC3\xA9/\xE7\x8C\xAB.png")) << page->objects.size();
  EXPECT_TRUE(keys.count("enc/plus+equals=amp&.png"));
  EXPECT_EQ(keys.size(), 5u);
}

TEST_F(S3ClientTest, ListPagesWithPrefixAndContinuation) {
  for (int i = 0; i < 7; ++i) {
    ASSERT_TRUE(client_->PutObject("photos", "list/item-" + std::to_string(i), std::string(static_cast<size_t>(i), 'x')).ok());
  }
  ASSERT_TRUE(client_->PutObject("photos", "listed-elsewhere", "x").ok());
  std::vector<std::string> keys;
  std::string token;
  int pages = 0;
  do {
    auto page = client_->ListObjectsV2("photos", "list/", token, 3);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    ++pages;
    EXPECT_LE(page->objects.size(), 3u);
    for (const auto& o : page->objects) {
      keys.push_back(o.key);
      EXPECT_EQ(o.size, static_cast<uint64_t>(o.key.back() - '0')) << o.key;
    }
    token = page->truncated ? page->next_continuation_token : "";
    ASSERT_LT(pages, 10);
  } while (!token.empty());
  EXPECT_EQ(pages, 3);
  ASSERT_EQ(keys.size(), 7u);
  for (int i = 0; i < 7; ++i) EXPECT_EQ(keys[static_cast<size_t>(i)], "list/item-" + std::to_string(i));
  auto none = client_->ListObjectsV2("empty-bucket", "");
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_TRUE(none->objects.empty());
  EXPECT_FALSE(none->truncated);
}

TEST_F(S3ClientTest, ErrorsSayWhatWentWrong) {
  auto missing = client_->GetObject("photos", "no/such/key.png", 1000);
  ASSERT_EQ(missing.status().code(), StatusCode::kNotFound) << missing.status().ToString();
  EXPECT_NE(missing.status().message().find("no/such/key.png"), std::string::npos);
  EXPECT_EQ(client_->HeadObject("photos", "no/such/key.png").status().code(), StatusCode::kNotFound);
  auto bucket = client_->GetObject("no-such-bucket", "x.png", 1000);
  ASSERT_EQ(bucket.status().code(), StatusCode::kNotFound);
  EXPECT_NE(bucket.status().message().find("bucket 'no-such-bucket' does not exist"), std::string::npos);
  EXPECT_EQ(client_->ListObjectsV2("no-such-bucket", "").status().code(), StatusCode::kNotFound);

  // Larger than the limit: refused from Content-Length.
  ASSERT_TRUE(client_->PutObject("photos", "big.bin", std::string(100000, 'b')).ok());
  auto big = client_->GetObject("photos", "big.bin", 99999);
  ASSERT_EQ(big.status().code(), StatusCode::kResourceExhausted) << big.status().ToString();
  EXPECT_NE(big.status().message().find("100000 bytes"), std::string::npos) << big.status().ToString();
  EXPECT_TRUE(client_->GetObject("photos", "big.bin", 100000).ok());

  // An access key the server does not know.
  S3Options wrong = server_->ClientOptions();
  wrong.access_key_id = "NOT-A-KEY";
  auto stranger = S3Client::Create(wrong);
  ASSERT_TRUE(stranger.ok());
  auto denied = (*stranger)->GetObject("photos", "big.bin", 1 << 20);
  ASSERT_EQ(denied.status().code(), StatusCode::kPermissionDenied) << denied.status().ToString();
  EXPECT_NE(denied.status().message().find("AWS_ACCESS_KEY_ID"), std::string::npos);
  // The client still works after all of that.
  EXPECT_TRUE(client_->HeadObject("photos", "big.bin").ok());
}

TEST_F(S3ClientTest, ConcurrentRequestsShareThePool) {
  ASSERT_TRUE(client_->PutObject("photos", "shared.bin", "shared bytes").ok());
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        auto got = client_->GetObject("photos", "shared.bin", 100);
        if (got.ok() && *got == "shared bytes") ++ok;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 80);
}

}  // namespace
}  // namespace fs::storage
