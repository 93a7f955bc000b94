// `filesearch index --ocr` and `filesearch worker --ocr` end to end: a page of a real PDF
// (../shared/corpus/docs/textract, FILESEARCH_SHARED_DIR) rendered by poppler to a PNG is found by
// keyword search through a word that only the picture holds; a real photo and a broken image are
// indexed too, the broken one with its OCR failure on the failure list (stage "extract").
// Skips with a message when the corpus or the Tesseract data is missing.
#include <gtest/gtest.h>
#include <poppler-document.h>
#include <poppler-image.h>
#include <poppler-page-renderer.h>
#include <poppler-page.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include "engine/engine.h"
#include "spawn_util.h"

namespace fs {
namespace {

namespace stdfs = std::filesystem;

std::string Shared() { return testing::SharedDir(); }

// Runs the binary with `args`; its exit status, its output in *out.
int RunCli(const std::vector<std::string>& args, const std::string& log, std::string* out) {
  std::vector<std::string> argv = {FILESEARCH_BINARY, "--no-progress"};
  argv.insert(argv.end(), args.begin(), args.end());
  return testing::RunCapture(argv, log, out);
}

class OcrIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string pdf = Shared() + "/corpus/docs/textract/tests/pdf/raw_text.pdf";
    const std::string photo = Shared() + "/corpus/photos/kodak/kodim23.png";
    if (!stdfs::exists(pdf) || !stdfs::exists(photo)) {
      GTEST_SKIP() << "no " << Shared()
                   << "/corpus: the shared corpus is missing (set FILESEARCH_SHARED_DIR)";
    }
    auto setup = ResolveOcr({});
    if (!setup.ok()) GTEST_SKIP() << "no Tesseract language data: " << setup.status().message();
    base_ = stdfs::weakly_canonical(::testing::TempDir()).string() + "/ocr_index_test_" +
            std::to_string(::getpid());
    stdfs::remove_all(base_);
    stdfs::create_directories(base_ + "/share/scans");
    // The picture of the page (its name says nothing of its words), a photo and a broken PNG.
    std::unique_ptr<poppler::document> doc(poppler::document::load_from_file(pdf));
    ASSERT_TRUE(doc);
    std::unique_ptr<poppler::page> page(doc->create_page(0));
    poppler::page_renderer renderer;
    renderer.set_render_hints(poppler::page_renderer::antialiasing |
                              poppler::page_renderer::text_antialiasing);
    ASSERT_TRUE(renderer.render_page(page.get(), 150, 150).save(base_ + "/share/scans/img_0001.png", "png"));
    stdfs::copy_file(photo, base_ + "/share/scans/img_0002.png");
    std::string png;
    {
      std::ifstream f(base_ + "/share/scans/img_0001.png", std::ios::binary);
      std::stringstream ss;
      ss << f.rdbuf();
      png = ss.str();
    }
    std::ofstream(base_ + "/share/scans/img_0003.png", std::ios::binary) << png.substr(0, 60);  // header only
  }
  void TearDown() override {
    if (!base_.empty() && !HasFailure()) stdfs::remove_all(base_);
  }
  // Documents whose text matches `word` in a fresh read of `data`'s store, as "name name ...".
  std::string Hits(const std::string& data, const std::string& word) {
    auto store = Store::Open(data + "/filesearch.db");
    if (!store.ok()) return "(no store)";
    auto found = (*store)->KeywordSearch(word, {}, 0, 10);
    if (!found.ok()) return found.status().ToString();
    std::string names;
    for (const auto& hit : found->hits) {
      auto doc = (*store)->Get(hit.id);
      names += (names.empty() ? "" : " ") + (doc.ok() ? doc->name : doc.status().ToString());
    }
    return names;
  }
  std::string base_;
};

TEST_F(OcrIndexTest, IndexFindsAnImageByTheWordsInIt) {
  std::string out;
  // Without --ocr the words of the picture are not searchable (the default).
  ASSERT_EQ(RunCli({"--data-dir", base_ + "/plain", "index", base_ + "/share", "--test-embedder"},
                   base_ + "/plain.log", &out),
            0)
      << out;
  EXPECT_EQ(Hits(base_ + "/plain", "letterpress"), "");

  ASSERT_EQ(RunCli({"--data-dir", base_ + "/ocr", "index", base_ + "/share", "--test-embedder", "--ocr"},
                   base_ + "/ocr.log", &out),
            0)
      << out;
  EXPECT_NE(out.find("3 added"), std::string::npos) << out;
  for (const char* word : {"letterpress", "typewriter", "Shoreditch", "lovely"}) {
    EXPECT_EQ(Hits(base_ + "/ocr", word), "img_0001.png") << word << "\n" << out;
  }
  // The broken PNG: indexed by name, its OCR failure reported and on the failure list.
  EXPECT_NE(out.find("img_0003.png: OCR: cannot decode the image"), std::string::npos) << out;
  auto store = Store::Open(base_ + "/ocr/filesearch.db");
  ASSERT_TRUE(store.ok());
  auto failures = (*store)->ListFailures(false, 100);
  ASSERT_TRUE(failures.ok());
  bool listed = false;
  for (const auto& f : *failures) {
    if (f.path.find("img_0003.png") != std::string::npos && f.stage == "extract" &&
        f.reason.rfind("OCR:", 0) == 0)
      listed = true;
  }
  EXPECT_TRUE(listed) << "the OCR failure should be on the failure list, stage extract";
  EXPECT_EQ(Hits(base_ + "/ocr", "img_0003"), "img_0003.png") << "still indexed by its name";
}

// A folder indexed without OCR, then with it: the images already indexed are read again for their
// text (once), keeping their embeddings; a later run without OCR and then with it reads only
// again what that run stored without text.
TEST_F(OcrIndexTest, OcrOnAnAlreadyIndexedFolderReadsItsImages) {
  std::string out;
  const std::string data = base_ + "/later";
  ASSERT_EQ(RunCli({"--data-dir", data, "index", base_ + "/share", "--test-embedder"}, base_ + "/l1.log", &out), 0)
      << out;
  EXPECT_EQ(Hits(data, "letterpress"), "");
  int64_t embedded_before = 0;
  {
    auto store = Store::Open(data + "/filesearch.db");
    ASSERT_TRUE(store.ok());
    embedded_before = static_cast<int64_t>((*store)->Stats()->embeddings);
  }
  ASSERT_GT(embedded_before, 0);

  ASSERT_EQ(RunCli({"--data-dir", data, "index", base_ + "/share", "--test-embedder", "--ocr"}, base_ + "/l2.log",
                   &out),
            0)
      << out;
  EXPECT_NE(out.find("3 updated"), std::string::npos) << "the three images are read again\n" << out;
  EXPECT_EQ(Hits(data, "letterpress"), "img_0001.png") << out;
  EXPECT_EQ(out.find("images embedded"), std::string::npos) << "same bytes: the embeddings stay\n" << out;
  {
    auto store = Store::Open(data + "/filesearch.db");
    ASSERT_TRUE(store.ok());
    EXPECT_EQ(static_cast<int64_t>((*store)->Stats()->embeddings), embedded_before);
  }

  // Done once: the next OCR run finds nothing to read.
  ASSERT_EQ(RunCli({"--data-dir", data, "index", base_ + "/share", "--test-embedder", "--ocr"}, base_ + "/l3.log",
                   &out),
            0)
      << out;
  EXPECT_NE(out.find("0 updated, 3 unchanged"), std::string::npos) << out;

  // A run without OCR adds an image without its text; the next OCR run reads the images again.
  stdfs::copy_file(base_ + "/share/scans/img_0001.png", base_ + "/share/scans/img_0004.png");
  ASSERT_EQ(RunCli({"--data-dir", data, "index", base_ + "/share", "--test-embedder"}, base_ + "/l4.log", &out), 0)
      << out;
  ASSERT_EQ(RunCli({"--data-dir", data, "index", base_ + "/share", "--test-embedder", "--ocr"}, base_ + "/l5.log",
                   &out),
            0)
      << out;
  EXPECT_EQ(Hits(data, "letterpress"), "img_0001.png img_0004.png") << out;
}

TEST_F(OcrIndexTest, BadOcrSettingsFailBeforeIndexing) {
  std::string out;
  EXPECT_EQ(
      RunCli({"--data-dir", base_ + "/bad", "index", base_ + "/share", "--ocr", "--ocr-languages", "xyz"},
             base_ + "/bad.log", &out),
      1);
  EXPECT_NE(out.find("install tesseract-ocr-xyz"), std::string::npos) << out;
  EXPECT_EQ(RunCli({"--data-dir", base_ + "/bad", "index", base_ + "/share", "--ocr", "--ocr-data-dir",
                    base_ + "/none"},
                   base_ + "/bad.log", &out),
            1);
  EXPECT_NE(out.find("does not exist"), std::string::npos) << out;
  EXPECT_FALSE(stdfs::exists(base_ + "/bad/filesearch.db")) << "nothing was indexed";
}

TEST_F(OcrIndexTest, WorkerReadsNewImages) {
  const pid_t pid =
      testing::Spawn({FILESEARCH_BINARY, "--no-progress", "--data-dir", base_ + "/worker", "worker",
                      base_ + "/share", "--test-embedder", "--ocr", "--quiet-ms", "100"},
                     base_ + "/worker.log");
  ASSERT_GT(pid, 0);
  std::string hits;
  // Up to 60 s: the first pass reads the page. Until the worker has created its store, Hits says
  // "(no store)": keep polling through that too (a loaded machine starts the worker slowly).
  for (int i = 0; i < 600 && hits != "img_0001.png"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    hits = Hits(base_ + "/worker", "letterpress");
  }
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_EQ(hits, "img_0001.png");
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

}  // namespace
}  // namespace fs
