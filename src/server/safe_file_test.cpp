#include "server/safe_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace fs::server {
namespace {

namespace stdfs = std::filesystem;

class SafeFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = stdfs::temp_directory_path() / ("fs_safe_" + std::to_string(::getpid()));
    stdfs::remove_all(base_);
    stdfs::create_directories(base_ / "root/sub");
    stdfs::create_directories(base_ / "outside");
    Write(base_ / "root/sub/a.png", "\x89PNG\r\n\x1a\n");
    Write(base_ / "outside/secret.png", "\x89PNG\r\n\x1a\n");
    stdfs::create_symlink(base_ / "outside/secret.png", base_ / "root/escape.png");
    stdfs::create_symlink(base_ / "outside", base_ / "root/dirlink");
    auto roots = RealRoots({(base_ / "root").string()});
    ASSERT_TRUE(roots.ok());
    roots_ = *roots;
  }
  void TearDown() override { stdfs::remove_all(base_); }
  static void Write(const stdfs::path& p, const std::string& data) { std::ofstream(p, std::ios::binary) << data; }
  UrlRefusal Why(const std::string& url) { return ResolveImageUrl(url, roots_).refusal; }
  std::string Url(const std::string& rel) { return "file://" + (base_ / rel).string(); }

  stdfs::path base_;
  std::vector<std::string> roots_;
};

TEST_F(SafeFileTest, AcceptsFilesInsideARoot) {
  ResolvedUrl r = ResolveImageUrl(Url("root/sub/a.png"), roots_);
  ASSERT_EQ(r.refusal, UrlRefusal::kNone) << r.message;
  EXPECT_EQ(r.path, stdfs::canonical(base_ / "root/sub/a.png").string());
  // A host name, even localhost, is refused: the docs promise invalid_path for any host.
  EXPECT_EQ(Why("file://localhost" + (base_ / "root/sub/a.png").string()), UrlRefusal::kBadPath);
}

TEST_F(SafeFileTest, RefusesNetworkSchemesAndEscapes) {
  EXPECT_EQ(Why("http://127.0.0.1/x.png"), UrlRefusal::kScheme);
  EXPECT_EQ(Why("HTTPS://169.254.169.254/latest/meta-data"), UrlRefusal::kScheme);
  EXPECT_EQ(Why("gopher://x"), UrlRefusal::kScheme);
  EXPECT_EQ(Why("/etc/passwd"), UrlRefusal::kScheme);
  EXPECT_EQ(Why("s3://bucket/key.png"), UrlRefusal::kBucketNotAllowed);  // no buckets configured
  EXPECT_EQ(Why("file:///etc/passwd"), UrlRefusal::kOutsideRoots);
  EXPECT_EQ(Why(Url("root/../outside/secret.png")), UrlRefusal::kBadPath);
  EXPECT_EQ(Why(Url("root/%2e%2e/outside/secret.png")), UrlRefusal::kBadPath);
  EXPECT_EQ(Why(Url("root/sub/a.png%00.jpg")), UrlRefusal::kBadPath);
  EXPECT_EQ(Why(Url("root/sub/a.png%zz")), UrlRefusal::kBadPath);
  EXPECT_EQ(Why("file://evil.host/etc/passwd"), UrlRefusal::kBadPath);
  EXPECT_EQ(Why(Url("root/escape.png")), UrlRefusal::kOutsideRoots);
  EXPECT_EQ(Why(Url("root/dirlink/secret.png")), UrlRefusal::kOutsideRoots);
  EXPECT_EQ(Why(Url("root/missing.png")), UrlRefusal::kNotFound);
  EXPECT_EQ(ResolveImageUrl(Url("root/sub/a.png"), {}).refusal, UrlRefusal::kNoRoots);
}

TEST(S3Url, AcceptsKeysOfConfiguredBucketsOnly) {
  const std::vector<std::string> buckets = {"photos", "scans.2024"};
  ResolvedUrl ok = ResolveImageUrl("s3://photos/2024/cat one.png", {}, buckets);
  ASSERT_EQ(ok.refusal, UrlRefusal::kNone) << ok.message;
  EXPECT_EQ(ok.bucket, "photos");
  EXPECT_EQ(ok.key, "2024/cat one.png");
  EXPECT_TRUE(ok.path.empty());
  EXPECT_EQ(ResolveImageUrl("S3://scans.2024/%41.png", {}, buckets).key, "%41.png");  // taken as written
  EXPECT_EQ(ResolveImageUrl("s3://photos/caf\xC3\xA9/a..b/.hidden", {}, buckets).refusal, UrlRefusal::kNone);
  for (const std::string url : {"s3://other/cat.png", "s3://Photos/cat.png", "s3://photos.evil.com/cat.png",
                                "s3://127.0.0.1:9000/photos/cat.png", "s3://user@photos/cat.png", "s3:///photos/cat.png",
                                "s3://photos@169.254.169.254/x", "s3://"}) {
    ResolvedUrl r = ResolveImageUrl(url, {}, buckets);
    EXPECT_EQ(r.refusal, UrlRefusal::kBucketNotAllowed) << url;
    EXPECT_NE(r.message.find("allowed: photos, scans.2024"), std::string::npos) << r.message;
  }
  for (const std::string& url : std::vector<std::string>{"s3://photos", "s3://photos/", "s3://photos/../other/cat.png", "s3://photos/a/../../x.png",
                                "s3://photos/./cat.png", "s3://photos/a/..", "s3://photos/%2e%2e/x.png",
                                "s3://photos/a/%2E./x.png", "s3://photos//cat.png", "s3://photos/dir/",
                                "s3://photos/a\tb.png", "s3://photos/a\x7f.png", "s3://photos/bad\xff.png",
                                "s3://photos/" + std::string(1025, 'k'), std::string("s3://photos/a\0b.png", 19)}) {
    EXPECT_EQ(ResolveImageUrl(url, {}, buckets).refusal, UrlRefusal::kBadPath) << url;
  }
}

TEST_F(SafeFileTest, ReadNoFollowRefusesLinks) {
  auto ok = ReadRegularFileNoFollow(stdfs::canonical(base_ / "root/sub/a.png").string(), 1 << 20);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->substr(0, 4), "\x89PNG");
  std::string canon_root = stdfs::canonical(base_ / "root").string();
  EXPECT_FALSE(ReadRegularFileNoFollow(canon_root + "/escape.png", 1 << 20).ok());
  EXPECT_FALSE(ReadRegularFileNoFollow(canon_root + "/dirlink/secret.png", 1 << 20).ok());
  EXPECT_FALSE(ReadRegularFileNoFollow(canon_root + "/sub", 1 << 20).ok());
  auto big = ReadRegularFileNoFollow(stdfs::canonical(base_ / "root/sub/a.png").string(), 3);
  EXPECT_EQ(big.status().code(), StatusCode::kResourceExhausted);
}

TEST(SniffImage, ReadsMagicAndDimensions) {
  std::string png = std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16) + std::string("\0\0\x01\0\0\0\0\x80", 8);
  auto info = SniffImage(png);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->mime, "image/png");
  EXPECT_EQ(info->width, 256u);
  EXPECT_EQ(info->height, 128u);
  std::string gif = std::string("GIF89a\x10\0\x20\0", 10);
  info = SniffImage(gif);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->width, 16u);
  EXPECT_EQ(info->height, 32u);
  std::string jpeg = std::string("\xFF\xD8\xFF\xE0\0\x04xx\xFF\xC0\0\x11\x08\x01\x00\x02\x00", 17) + std::string(12, '\0');
  info = SniffImage(jpeg);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->height, 256u);
  EXPECT_EQ(info->width, 512u);
  EXPECT_FALSE(SniffImage("hello, I am text"));
  EXPECT_FALSE(SniffImage("<svg xmlns='http://www.w3.org/2000/svg'></svg>"));
  EXPECT_FALSE(SniffImage(""));
}

}  // namespace
}  // namespace fs::server
