// A directory of 100,000 files: the crawl completes, every file is indexed, and a re-run is a
// no-op that only stats files.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "engine/crawl.h"

namespace fs {
namespace {

namespace stdfs = std::filesystem;

TEST(BulkTest, HundredThousandFilesInOneDirectory) {
  const std::string base = stdfs::weakly_canonical(::testing::TempDir()).string() + "/bulk_test_" + std::to_string(::getpid());
  stdfs::remove_all(base);
  stdfs::create_directories(base + "/many");
  constexpr int kFiles = 100000;
  for (int i = 0; i < kFiles; ++i) {
    std::string path = base + "/many/file" + std::to_string(i) + ".txt";
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_GE(fd, 0);
    std::string body = "item" + std::to_string(i) + " shared";
    ASSERT_EQ(::write(fd, body.data(), body.size()), static_cast<ssize_t>(body.size()));
    ::close(fd);
  }
  auto store = Store::Open(base + "/db.sqlite");
  ASSERT_TRUE(store.ok());
  CrawlOptions o;
  o.progress = false;
  o.batch_size = 2000;
  auto r = CrawlDirectory(store->get(), base + "/many", o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->added, static_cast<uint64_t>(kFiles));
  EXPECT_TRUE(r->problems.empty());
  EXPECT_EQ((*store)->Stats()->documents, static_cast<uint64_t>(kFiles));
  auto page = (*store)->KeywordSearch("item77777", {}, 0, 10);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->hits.size(), 1u);
  EXPECT_EQ((*store)->Get(page->hits[0].id)->name, "file77777.txt");
  EXPECT_EQ((*store)->KeywordSearch("shared", {}, 0, 10)->total, static_cast<uint64_t>(kFiles));
  auto again = CrawlDirectory(store->get(), base + "/many", o);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->unchanged, static_cast<uint64_t>(kFiles));
  EXPECT_EQ(again->added + again->updated + again->removed, 0u);
  store->reset();
  stdfs::remove_all(base);
}

}  // namespace
}  // namespace fs
