#include "engine/crawl.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <iconv.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/env.h"
#include "engine/mime.h"

namespace fs {
namespace {

namespace stdfs = std::filesystem;

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary) << data;
}

class CrawlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = stdfs::weakly_canonical(::testing::TempDir()).string() + "/crawl_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    stdfs::remove_all(base_);
    root_ = base_ + "/root";
    stdfs::create_directories(root_);
    auto s = Store::Open(base_ + "/db.sqlite");
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
    options_.progress = false;
  }
  void TearDown() override {
    store_.reset();
    stdfs::remove_all(base_);
  }
  CrawlReport Crawl() {
    auto r = CrawlDirectory(store_.get(), root_, options_);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : CrawlReport{};
  }
  size_t Hits(std::string_view q) { return store_->KeywordSearch(q, {}, 0, 1000)->hits.size(); }

  std::string base_, root_;
  std::unique_ptr<Store> store_;
  CrawlOptions options_;
};

// A file that could not be read waits out its backoff instead of being opened on every pass,
// unless it changed since (ctime: a chmod that fixes it counts, though it leaves mtime alone).
// Root can read any file here, so the failure is recorded as the engine would record it.
TEST_F(CrawlTest, UnreadableFilesWaitForTheirBackoffUnlessTheyChange) {
  WriteFile(root_ + "/locked.txt", "finally readable words");
  WriteFile(root_ + "/fixed.txt", "repaired words");
  WriteFile(root_ + "/open.txt", "plain words");
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the failures come after the files' ctime
  const int64_t failed_at = WallClockNs();
  RetryPolicy policy;
  policy.base_backoff_ms = 60'000;
  std::vector<FailureInput> failures;
  for (const char* name : {"locked.txt", "fixed.txt"}) {
    failures.push_back({"file://" + root_ + "/" + name, root_ + "/" + name, "read", "cannot open: Permission denied", false});
  }
  ASSERT_TRUE(store_->RecordFailures(failures, policy, failed_at).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_EQ(::chmod((root_ + "/fixed.txt").c_str(), 0600), 0);  // the fix: ctime moves, mtime does not

  auto r1 = Crawl();
  EXPECT_EQ(r1.held, 1u);
  EXPECT_EQ(r1.added, 2u);
  EXPECT_EQ(Hits("finally"), 0u) << "backing off and unchanged: not opened";
  EXPECT_EQ(Hits("repaired"), 1u) << "changed since it failed: tried at once";
  EXPECT_EQ(Hits("plain"), 1u);
  EXPECT_EQ(store_->CountFailures()->retrying, 1u);

  options_.now_ns = failed_at + int64_t{61} * 1'000'000'000;  // the retry is due
  auto r2 = Crawl();
  EXPECT_EQ(r2.held, 0u);
  EXPECT_EQ(r2.added, 1u);
  EXPECT_EQ(Hits("finally"), 1u);
  EXPECT_EQ(store_->CountFailures()->retrying, 0u) << "stored: every failure is resolved";
}

TEST_F(CrawlTest, IndexesRecursivelyAndIncrementally) {
  stdfs::create_directories(root_ + "/a/b");
  WriteFile(root_ + "/top.txt", "alpha words");
  WriteFile(root_ + "/a/mid.md", "beta words");
  WriteFile(root_ + "/a/b/deep.txt", "gamma words");
  auto r1 = Crawl();
  EXPECT_EQ(r1.added, 3u);
  EXPECT_EQ(Hits("words"), 3u);
  EXPECT_EQ(Hits("deep"), 1u);   // file name
  EXPECT_EQ(Hits("mid"), 1u);

  auto r2 = Crawl();
  EXPECT_EQ(r2.unchanged, 3u);
  EXPECT_EQ(r2.added + r2.updated + r2.removed, 0u);

  WriteFile(root_ + "/a/mid.md", "delta words, longer now");
  stdfs::remove(root_ + "/top.txt");
  auto r3 = Crawl();
  EXPECT_EQ(r3.updated, 1u);
  EXPECT_EQ(r3.removed, 1u);
  EXPECT_EQ(r3.unchanged, 1u);
  EXPECT_EQ(Hits("beta"), 0u);
  EXPECT_EQ(Hits("delta"), 1u);
  EXPECT_EQ(Hits("alpha"), 0u);
}

TEST_F(CrawlTest, SymlinksFifosAndLoopsAreSkipped) {
  stdfs::create_directories(base_ + "/outside");
  WriteFile(base_ + "/outside/secret.txt", "secret");
  stdfs::create_directory_symlink(base_ + "/outside", root_ + "/escape");
  stdfs::create_directory_symlink(root_, root_ + "/loop");
  stdfs::create_symlink(base_ + "/outside/secret.txt", root_ + "/link.txt");
  ASSERT_EQ(::mkfifo((root_ + "/pipe").c_str(), 0644), 0);
  WriteFile(root_ + "/real.txt", "real");
  auto r = Crawl();
  EXPECT_EQ(r.added, 1u);
  EXPECT_EQ(r.skipped, 4u);
  EXPECT_EQ(Hits("secret"), 0u);
  EXPECT_EQ(Hits("real"), 1u);
}

TEST_F(CrawlTest, OddNamesAndEmptyFiles) {
  std::string bad = root_ + "/bad\xFF\xFEname.txt";
  WriteFile(bad, "latin1 name");
  std::string long_name(250, 'x');
  WriteFile(root_ + "/" + long_name + ".txt", "long name");
  WriteFile(root_ + "/empty.dat", "");
  WriteFile(root_ + "/2024年請求書.txt", "");
  auto r = Crawl();
  EXPECT_EQ(r.added, 4u);
  EXPECT_TRUE(r.problems.empty());
  EXPECT_EQ(Hits("latin1"), 1u);
  EXPECT_EQ(Hits("empty.dat"), 1u);  // "empty" alone is also part of this test's folder name
  EXPECT_EQ(Hits("請求"), 1u);
  auto doc = store_->GetByUri(FileUri(bad));
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ(*PathFromFileUri(doc->uri), bad);  // the uri maps back to the exact bytes
  EXPECT_EQ(doc->mime, "text/plain");
  EXPECT_EQ(store_->GetByUri(FileUri(root_ + "/empty.dat"))->mime, "application/x-empty");
  // Re-crawl: still stable.
  EXPECT_EQ(Crawl().unchanged, 4u);
}

TEST_F(CrawlTest, FilesVanishingMidCrawlAreReported) {
  for (int i = 0; i < 10; ++i) WriteFile(root_ + "/f" + std::to_string(i) + ".txt", "v" + std::to_string(i));
  options_.batch_size = 1;
  bool deleted = false;
  options_.on_commit = [&](const std::vector<std::string>&) {
    if (deleted) return;
    deleted = true;
    for (int i = 0; i < 10; ++i) stdfs::remove(root_ + "/f" + std::to_string(i) + ".txt");
  };
  auto r = Crawl();
  EXPECT_EQ(r.problems.size(), 9u);
  for (auto& p : r.problems) EXPECT_EQ(p.reason, "vanished during the crawl");
}

TEST_F(CrawlTest, PermissionDeniedIsReportedNotFatal) {
  stdfs::create_directories(root_ + "/locked");
  WriteFile(root_ + "/locked/hidden.txt", "hidden");
  WriteFile(root_ + "/open.txt", "open");
  WriteFile(root_ + "/noread.txt", "noread");
  ::chmod((root_ + "/locked").c_str(), 0);
  ::chmod((root_ + "/noread.txt").c_str(), 0);
  ::chmod(base_.c_str(), 0777);
  ::chmod(root_.c_str(), 0777);
  // Root ignores permission bits: run the crawl as 'nobody' in a child process.
  store_.reset();
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) _exit(10);
    auto store = Store::Open(base_ + "/nobody.sqlite");
    if (!store.ok()) _exit(11);
    auto r = CrawlDirectory(store->get(), root_, options_);
    if (!r.ok()) _exit(12);
    if (r->added != 1) _exit(13);            // only open.txt
    if (r->problems.size() != 2) _exit(14);  // locked/ and noread.txt
    _exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::chmod((root_ + "/locked").c_str(), 0755);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST_F(CrawlTest, NotADirectoryIsAClearError) {
  WriteFile(root_ + "/file.txt", "x");
  auto r = CrawlDirectory(store_.get(), root_ + "/file.txt", options_);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  auto m = CrawlDirectory(store_.get(), root_ + "/missing", options_);
  EXPECT_EQ(m.status().code(), StatusCode::kNotFound);
}

// Shared corpus files (FILESEARCH_SHARED_DIR, else ../shared) copied into the crawled folder.
std::string SharedCorpus() {
  const char* env = std::getenv("FILESEARCH_SHARED_DIR");
  return std::string(env != nullptr && *env != '\0' ? env : "../shared") + "/corpus";
}

std::string ToShiftJis(const std::string& utf8) {
  iconv_t cd = ::iconv_open("CP932", "UTF-8");
  std::string out(utf8.size() * 2, '\0');
  char* in = const_cast<char*>(utf8.data());
  size_t in_left = utf8.size(), out_left = out.size();
  char* o = out.data();
  ::iconv(cd, &in, &in_left, &o, &out_left);
  ::iconv_close(cd);
  out.resize(out.size() - out_left);
  return out;
}

TEST_F(CrawlTest, ExtractsTextByContentAndReportsFailures) {
  const std::string corpus = SharedCorpus();
  const std::string pdf = corpus + "/docs/textract/tests/pdf/raw_text.pdf";
  const std::string html = corpus + "/docs/textract/tests/html/raw_text.html";
  const std::string png = corpus + "/photos/kodak/kodim01.png";
  const std::string locked =
      corpus + "/docs/pypdf/005-libreoffice-writer-password/libreoffice-writer-password.pdf";
  for (const auto& p : {pdf, html, png, locked}) {
    if (!stdfs::exists(p)) GTEST_SKIP() << "no " << p << ": the shared corpus is missing (FILESEARCH_SHARED_DIR)";
  }
  WriteFile(root_ + "/minutes.txt", ToShiftJis("東京支社の議事録\n来週の会議は午後三時から始まります。\n"));
  stdfs::copy_file(html, root_ + "/snowfall.html");
  stdfs::copy_file(pdf, root_ + "/report.pdf");
  stdfs::copy_file(png, root_ + "/notes.txt");  // a PNG with a lying extension
  stdfs::copy_file(locked, root_ + "/vaultlocked.pdf");
  WriteFile(root_ + "/brokenfile.pdf", "%PDF-1.4\nthis is not really a PDF\n");
  auto r = Crawl();
  EXPECT_EQ(r.added, 6u);
  EXPECT_EQ(Hits("議事録"), 1u);
  EXPECT_EQ(Hits("午後"), 1u);
  EXPECT_EQ(Hits("Avalanche"), 1u);
  EXPECT_EQ(Hits("Tunnel Creek"), 1u);
  EXPECT_EQ(Hits("stylesheet"), 0u);  // markup is not indexed
  EXPECT_EQ(Hits("lovely"), 2u);  // English stems: "lovely" and "loved" are both "love"
  EXPECT_EQ(Hits("Truffaut"), 1u);
  EXPECT_EQ(store_->GetByUri(FileUri(root_ + "/notes.txt"))->mime, "image/png");
  EXPECT_EQ(store_->GetByUri(FileUri(root_ + "/minutes.txt"))->mime, "text/plain");
  EXPECT_EQ(store_->GetByUri(FileUri(root_ + "/report.pdf"))->mime, "application/pdf");
  // Failed extractions are reported with their reason; the files are still found by name.
  ASSERT_EQ(r.problems.size(), 2u);
  std::string reasons;
  for (const auto& p : r.problems) reasons += stdfs::path(p.path).filename().string() + ": " + p.reason + "\n";
  EXPECT_NE(reasons.find("vaultlocked.pdf: encrypted"), std::string::npos) << reasons;
  EXPECT_NE(reasons.find("brokenfile.pdf: damaged"), std::string::npos) << reasons;
  EXPECT_EQ(Hits("vaultlocked"), 1u);
  EXPECT_EQ(Hits("brokenfile"), 1u);
}

TEST_F(CrawlTest, PhotoMetadataBecomesFilterableFields) {
  const std::string sony = SharedCorpus() + "/photos/wallpapers-jpeg/mate-backgrounds__Elephants_5640x3172.jpg";
  const std::string gps = SharedCorpus() + "/formats/pillow/exif_gps.jpg";
  for (const auto& p : {sony, gps}) {
    if (!stdfs::exists(p)) GTEST_SKIP() << "no " << p << ": the shared corpus is missing (FILESEARCH_SHARED_DIR)";
  }
  stdfs::copy_file(sony, root_ + "/elephants.jpg");
  stdfs::copy_file(gps, root_ + "/located.jpg");
  WriteFile(root_ + "/plain.txt", "elephants without a camera");
  Crawl();
  auto doc = store_->GetByUri(FileUri(root_ + "/elephants.jpg"));
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ(doc->camera, "SONY DSC-RX100M4");
  ASSERT_TRUE(doc->taken_ns.has_value());
  EXPECT_EQ(*doc->taken_ns / 1000000000, 1582130105);  // 2020-02-19 16:35:05
  auto located = store_->GetByUri(FileUri(root_ + "/located.jpg"));
  ASSERT_TRUE(located.ok());
  // Its GPSLatitude is one rational instead of three: nonsense is left unset, not stored wrong.
  EXPECT_FALSE(located->gps_lat.has_value());
  // Date-taken filters: only photos with a date inside the range match; a text file never does.
  SearchFilters f;
  f.min_taken_ns = int64_t{1582000000} * 1000000000;
  f.max_taken_ns = int64_t{1583000000} * 1000000000;
  auto in = store_->KeywordSearch("elephants", f, 0, 10);
  ASSERT_TRUE(in.ok());
  ASSERT_EQ(in->total, 1u);
  EXPECT_EQ(in->hits[0].id, doc->id);
  f.min_taken_ns = int64_t{1600000000} * 1000000000;
  f.max_taken_ns.reset();
  EXPECT_EQ(store_->KeywordSearch("elephants", f, 0, 10)->total, 0u);
  EXPECT_EQ(store_->KeywordSearch("elephants", {}, 0, 10)->total, 2u);
}

TEST_F(CrawlTest, TextLimitAppliesAfterDecoding) {
  options_.max_text_bytes = 64;
  std::string text;
  for (int i = 0; i < 100; ++i) text += "請求書 ";
  WriteFile(root_ + "/long.txt", ToShiftJis(text));
  Crawl();
  auto doc = store_->GetByUri(FileUri(root_ + "/long.txt"));
  ASSERT_TRUE(doc.ok());
  EXPECT_LE(doc->content.size(), 64u);
  EXPECT_GE(doc->content.size(), 60u);
  EXPECT_EQ(doc->content.rfind("請求書 ", 0), 0u);
}

TEST(MimeTest, ContentBeatsExtension) {
  EXPECT_EQ(DetectMime("\x89PNG\r\n\x1A\n....", "pdf"), "image/png");
  EXPECT_EQ(DetectMime("\xFF\xD8\xFF\xE0", "txt"), "image/jpeg");
  EXPECT_EQ(DetectMime("%PDF-1.7", "jpg"), "application/pdf");
  EXPECT_EQ(DetectMime("hello world", "md"), "text/markdown");
  EXPECT_EQ(DetectMime("hello world", "bin"), "text/plain");
  EXPECT_EQ(DetectMime(std::string_view("\0\1\2\3", 4), "txt"), "application/octet-stream");
  EXPECT_EQ(DetectMime("PK\x03\x04....", "docx"),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document");
  EXPECT_EQ(ExtensionOf("Photo.JPG"), "jpg");
  EXPECT_EQ(ExtensionOf(".bashrc"), "");
  EXPECT_EQ(ExtensionOf("archive.tar.gz"), "gz");
}

TEST(UriTest, RoundTripsEveryByte) {
  std::string path = "/a/%41 b/\x01\xFF\xC3\xA9";
  std::string uri = FileUri(path);
  EXPECT_EQ(uri, "file:///a/%2541 b/%01%FF\xC3\xA9");
  EXPECT_EQ(*PathFromFileUri(uri), path);
  EXPECT_FALSE(PathFromFileUri("http://x").ok());
  EXPECT_FALSE(PathFromFileUri("file:///%Z1").ok());
}

}  // namespace
}  // namespace fs
