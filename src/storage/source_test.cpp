// The Source interface without S3: the folder source (list with a prefix, stat, read with a byte
// limit, links never followed), s3:// uri parsing, change detection, and the factory's refusals.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "storage/source.h"

namespace fs {
namespace {

namespace stdfs = std::filesystem;

class FolderSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = stdfs::weakly_canonical(::testing::TempDir()).string() + "/source_test_" + std::to_string(::getpid());
    stdfs::remove_all(root_);
    stdfs::create_directories(root_ + "/docs/deep");
    stdfs::create_directories(root_ + "/pics");
    Write("docs/a b.txt", "alpha");
    Write("docs/deep/c+d.txt", "gamma delta");
    Write("pics/日本.png", std::string(100, 'p'));
    Write("top.txt", "top");
    stdfs::create_symlink(root_ + "/top.txt", root_ + "/docs/link.txt");
    ::mkfifo((root_ + "/docs/fifo").c_str(), 0600);
  }
  void TearDown() override { stdfs::remove_all(root_); }
  void Write(const std::string& rel, const std::string& bytes) {
    std::ofstream(root_ + "/" + rel, std::ios::binary) << bytes;
  }
  std::vector<std::string> Keys(const Source& source, const std::string& prefix, uint64_t* skipped = nullptr) {
    std::vector<std::string> keys;
    Status st = source.List(prefix, [&](const SourceEntry& e) {
      keys.push_back(e.key);
      EXPECT_EQ(e.uri, FileUri(root_ + "/" + e.key));
      return Status::Ok();
    }, nullptr, skipped);
    EXPECT_TRUE(st.ok()) << st.ToString();
    std::sort(keys.begin(), keys.end());
    return keys;
  }
  std::string root_;
};

TEST_F(FolderSourceTest, ListsWithAPrefixNeverFollowingLinks) {
  auto source = OpenSource(root_ + "/./");
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  EXPECT_EQ((*source)->root_uri(), FileUri(root_ + "/"));
  uint64_t skipped = 0;
  EXPECT_EQ(Keys(**source, "", &skipped),
            (std::vector<std::string>{"docs/a b.txt", "docs/deep/c+d.txt", "pics/日本.png", "top.txt"}));
  EXPECT_EQ(skipped, 2u);  // the symbolic link and the FIFO
  EXPECT_EQ(Keys(**source, "docs/"), (std::vector<std::string>{"docs/a b.txt", "docs/deep/c+d.txt"}));
  EXPECT_EQ(Keys(**source, "docs/deep"), (std::vector<std::string>{"docs/deep/c+d.txt"}));
  EXPECT_EQ(Keys(**source, "to"), (std::vector<std::string>{"top.txt"}));
  EXPECT_TRUE(Keys(**source, "nothing/").empty());
  // fn's error stops the listing and is returned.
  int calls = 0;
  Status stopped = (*source)->List("", [&](const SourceEntry&) {
    ++calls;
    return Status::Internal("enough");
  });
  EXPECT_EQ(stopped.code(), StatusCode::kInternal);
  EXPECT_EQ(calls, 1);
}

TEST_F(FolderSourceTest, StatAndReadWithALimit) {
  auto source = std::move(OpenSource("file://" + root_)).value();
  const std::string uri = FileUri(root_ + "/pics/日本.png");
  auto st = source->Stat(uri);
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->size, 100u);
  EXPECT_EQ(st->key, "pics/日本.png");
  EXPECT_GT(st->mtime_ns, 0);
  EXPECT_EQ(*source->Read(uri, 100), std::string(100, 'p'));
  auto over = source->Read(uri, 99);
  EXPECT_EQ(over.status().code(), StatusCode::kResourceExhausted) << over.status().ToString();
  EXPECT_NE(over.status().message().find("the limit is 99 bytes"), std::string::npos) << over.status().ToString();
  EXPECT_EQ(source->Read(FileUri(root_ + "/gone.txt"), 10).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(source->Read(FileUri(root_ + "/docs/link.txt"), 10).status().code(), StatusCode::kIOError);  // O_NOFOLLOW
  EXPECT_EQ(source->Stat(FileUri(root_ + "/docs/link.txt")).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(source->Read(FileUri("/etc/hostname"), 10).status().code(), StatusCode::kInvalidArgument);  // not under the root
  EXPECT_EQ(source->Read("s3://bucket/key", 10).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(FolderSourceTest, AnySourceReadsByUri) {
  auto any = std::move(OpenAnySource({})).value();
  EXPECT_EQ(*any->Read(FileUri(root_ + "/docs/a b.txt"), 10), "alpha");
  EXPECT_EQ(any->List("", [](const SourceEntry&) { return Status::Ok(); }).code(), StatusCode::kUnsupported);
  EXPECT_EQ(any->Read("s3://Bad_Bucket/k", 10).status().code(), StatusCode::kInvalidArgument);
}

TEST(SourceFactory, RefusesWhatIsNeitherAFolderNorABucket) {
  EXPECT_EQ(OpenSource("/no/such/folder/anywhere").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(OpenSource("/etc/hostname").status().code(), StatusCode::kInvalidArgument);  // a file
  EXPECT_EQ(OpenSource("https://example.test/x").status().code(), StatusCode::kInvalidArgument);
  auto bad = OpenSource("s3://UPPER_case/prefix");
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("s3://bucket/prefix"), std::string::npos) << bad.status().ToString();
  SourceOptions o;
  o.s3.endpoint = "http://127.0.0.1:1";
  o.list_page_keys = 0;
  EXPECT_EQ(OpenSource("s3://photos", o).status().code(), StatusCode::kInvalidArgument);
  o.list_page_keys = 1000;
  auto s3 = OpenSource("s3://photos/2024/", o);  // does not connect
  ASSERT_TRUE(s3.ok()) << s3.status().ToString();
  EXPECT_EQ((*s3)->root_uri(), "s3://photos/2024/");
  EXPECT_TRUE((*s3)->Contains("s3://photos/2024/a.png"));
  EXPECT_FALSE((*s3)->Contains("s3://photos/2023/a.png"));
}

TEST(S3Uris, ParseAndPrint) {
  auto loc = ParseS3Uri("s3://photos/2024/a b+c 日本.png");
  ASSERT_TRUE(loc.ok());
  EXPECT_EQ(loc->bucket, "photos");
  EXPECT_EQ(loc->key, "2024/a b+c 日本.png");
  EXPECT_EQ(S3Uri(loc->bucket, loc->key), "s3://photos/2024/a b+c 日本.png");
  EXPECT_EQ(ParseS3Uri("s3://photos")->key, "");
  EXPECT_FALSE(ParseS3Uri("s3://ab/k").ok());  // too short for a bucket
  EXPECT_FALSE(ParseS3Uri("file:///x").ok());
  EXPECT_TRUE(IsS3Uri("s3://x"));
  EXPECT_FALSE(IsS3Uri("S3:/x"));
}

TEST(SourceChanges, SizeTimeOrETag) {
  const SourceEntry a{"s3://b/k", "k", 10, 1000, "abc", 0};
  SourceEntry b = a;
  EXPECT_FALSE(SourceChanged(a, b));
  b.size = 11;
  EXPECT_TRUE(SourceChanged(a, b));
  b = a;
  b.mtime_ns = 2000;
  EXPECT_TRUE(SourceChanged(a, b));
  b = a;
  b.etag = "abd";  // rewritten within the same second, same size
  EXPECT_TRUE(SourceChanged(a, b));
  b.etag = "";  // a folder's entry, or a document stored before ETags were kept: size and time decide
  EXPECT_FALSE(SourceChanged(a, b));
  EXPECT_FALSE(SourceChanged(b, a));
}

}  // namespace
}  // namespace fs
