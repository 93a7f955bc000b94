// Tests of extract/ocr: Tesseract against independent references. English: a page of a real PDF
// (../shared/corpus/docs/textract, FILESEARCH_SHARED_DIR) rendered by poppler, whose own text layer
// says what the words are. Japanese: a sentence drawn by Pillow (/usr/bin/python3) in IPA Gothic.
// Hostile inputs: blank, 1x1, noise, a bad view; configuration errors. Tests skip with a message
// when the Tesseract data, the corpus, Pillow or the font are missing.
#include "extract/ocr.h"

#include <gtest/gtest.h>
#include <poppler-document.h>
#include <poppler-image.h>
#include <poppler-page-renderer.h>
#include <poppler-page.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "core/utf8.h"

namespace fs {
namespace {

namespace stdfs = std::filesystem;

std::string TextractPdf() {
  const char* env = std::getenv("FILESEARCH_SHARED_DIR");
  return std::string(env != nullptr && *env != '\0' ? env : "../shared") +
         "/corpus/docs/textract/tests/pdf/raw_text.pdf";
}

struct Gray {
  int width = 0, height = 0;
  std::vector<uint8_t> pixels;
  OcrPixels view() const { return {width, height, 1, pixels}; }
};

// The first page of `pdf` rendered at `dpi` as 8-bit grey, and its text layer (UTF-8).
bool RenderPdfPage(const std::string& pdf, double dpi, Gray* out, std::string* text) {
  std::unique_ptr<poppler::document> doc(poppler::document::load_from_file(pdf));
  if (!doc || doc->pages() < 1) return false;
  std::unique_ptr<poppler::page> page(doc->create_page(0));
  poppler::byte_array utf8 = page->text().to_utf8();
  text->assign(utf8.begin(), utf8.end());
  poppler::page_renderer renderer;
  renderer.set_render_hints(poppler::page_renderer::antialiasing | poppler::page_renderer::text_antialiasing);
  renderer.set_image_format(poppler::image::format_gray8);
  poppler::image image = renderer.render_page(page.get(), dpi, dpi);
  if (!image.is_valid()) return false;
  out->width = image.width();
  out->height = image.height();
  out->pixels.resize(static_cast<size_t>(out->width) * out->height);
  for (int row = 0; row < out->height; ++row) {
    const char* src = image.const_data() + static_cast<size_t>(row) * image.bytes_per_row();
    std::copy(src, src + out->width, out->pixels.begin() + static_cast<ptrdiff_t>(row) * out->width);
  }
  return true;
}

// Lower-case ASCII words of at least `min_len` letters or digits.
std::vector<std::string> Words(const std::string& text, size_t min_len) {
  std::vector<std::string> words;
  std::string cur;
  auto end_word = [&] {
    if (cur.size() >= min_len) words.push_back(cur);
    cur.clear();
  };
  for (char c : text) {
    if (std::isalnum(static_cast<unsigned char>(c))) {
      cur += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else if (c != '\'') {  // "that's" stays one word in both texts
      end_word();
    }
  }
  end_word();
  return words;
}

// Fraction of `reference` words (with multiplicity) that `got` contains at least as often.
double WordRecall(const std::vector<std::string>& reference, const std::vector<std::string>& got) {
  std::multiset<std::string> pool(got.begin(), got.end());
  size_t found = 0;
  for (const auto& w : reference) {
    auto it = pool.find(w);
    if (it != pool.end()) {
      ++found;
      pool.erase(it);
    }
  }
  return reference.empty() ? 0.0 : static_cast<double>(found) / static_cast<double>(reference.size());
}

class OcrTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto setup = ResolveOcr({});
    if (!setup.ok()) GTEST_SKIP() << "no Tesseract language data: " << setup.status().message();
    setup_ = *setup;
  }
  void NeedPage() {
    if (!stdfs::exists(TextractPdf()))
      GTEST_SKIP() << "no " << TextractPdf() << ": the shared corpus is missing (set FILESEARCH_SHARED_DIR)";
    ASSERT_TRUE(RenderPdfPage(TextractPdf(), 200, &page_, &page_text_));
  }
  OcrSetup setup_;
  Gray page_;
  std::string page_text_;
};

TEST_F(OcrTest, RenderedPdfPageMatchesItsTextLayer) {
  NeedPage();
  std::vector<std::string> reference = Words(page_text_, 4);
  ASSERT_GE(reference.size(), 50u) << "the reference page should hold a paragraph of text";
  for (const char* languages : {"eng", ""}) {  // "" = the default (eng+jpn where installed)
    OcrOptions o;
    o.languages = languages;
    auto r = RecognizeText(page_.view(), o);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(IsValidUtf8(r->text));
    double recall = WordRecall(reference, Words(r->text, 4));
    std::printf("languages '%s': word recall %.3f over %zu words of 4+ letters\n", languages, recall,
                reference.size());
    EXPECT_GE(recall, 0.90) << "languages '" << languages << "' read:\n" << r->text;
    EXPECT_GT(r->words_kept, 50);
  }
}

TEST_F(OcrTest, InstanceIsReusedAcrossCallsAndThreads) {
  NeedPage();
  OcrOptions o;
  o.languages = "eng";
  auto first = RecognizeText(page_.view(), o);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  // Same thread again: same answer from the kept instance. Two other threads: their own instances.
  auto again = RecognizeText(page_.view(), o);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->text, first->text);
  std::string texts[2];
  std::vector<std::thread> threads;
  for (auto& t : texts) {
    threads.emplace_back([&, out = &t] {
      auto r = RecognizeText(page_.view(), o);
      *out = r.ok() ? r->text : r.status().ToString();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(texts[0], first->text);
  EXPECT_EQ(texts[1], first->text);
}

TEST_F(OcrTest, JapaneseDrawnByPillow) {
  if (setup_.languages.find("jpn") == std::string::npos) GTEST_SKIP() << setup_.note;
  const std::string font = "/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf";
  if (!stdfs::exists(font))
    GTEST_SKIP() << "no " << font << " (Debian fonts-ipafont-gothic) to draw Japanese with";
  const std::string sentence = "東京支社の議事録を送ります。来週の会議は午後三時から始まります。";
  const std::string dir =
      stdfs::weakly_canonical(::testing::TempDir()).string() + "/ocr_ja_" + std::to_string(::getpid());
  stdfs::create_directories(dir);
  const std::string raw = dir + "/page.gray";
  // Pillow draws the text (48 px, black on white) and writes the raw grey pixels and the size.
  std::ofstream(dir + "/draw.py") << "import sys\nfrom PIL import Image, ImageDraw, ImageFont\n"
                                     "f = ImageFont.truetype(sys.argv[1], 48)\n"
                                     "im = Image.new('L', (1700, 140), 255)\n"
                                     "ImageDraw.Draw(im).text((40, 40), sys.argv[2], font=f, fill=0)\n"
                                     "open(sys.argv[3], 'wb').write(im.tobytes())\n";
  const std::string cmd =
      "/usr/bin/python3 " + dir + "/draw.py " + font + " '" + sentence + "' " + raw + " 2>&1";
  if (std::system(cmd.c_str()) != 0 || !stdfs::exists(raw))
    GTEST_SKIP() << "Pillow (python3-pil) could not draw: " << cmd;
  std::ifstream in(raw, std::ios::binary);
  std::vector<uint8_t> pixels((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_EQ(pixels.size(), 1700u * 140u);
  stdfs::remove_all(dir);

  OcrOptions o;  // the default languages: eng+jpn
  auto r = RecognizeText({1700, 140, 1, pixels}, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  // Character recall over the sentence's CJK characters; and no spaces between them, so the
  // keyword index sees runs it can pair.
  std::multiset<uint32_t> got;
  for (size_t pos = 0; pos < r->text.size();) got.insert(NextCodePoint(r->text, &pos));
  size_t total = 0, found = 0;
  for (size_t pos = 0; pos < sentence.size();) {
    uint32_t cp = NextCodePoint(sentence, &pos);
    if (cp < 0x3040 || cp == 0x3002) continue;  // skip the full stops
    ++total;
    if (auto it = got.find(cp); it != got.end()) {
      ++found;
      got.erase(it);
    }
  }
  std::printf("Japanese: character recall %zu/%zu, read: %s\n", found, total, r->text.c_str());
  EXPECT_GE(static_cast<double>(found) / static_cast<double>(total), 0.90) << "read: " << r->text;
  EXPECT_NE(r->text.find("議事録"), std::string::npos) << "read: " << r->text;
  EXPECT_NE(r->text.find("会議"), std::string::npos) << "read: " << r->text;
}

TEST_F(OcrTest, HostileImagesGiveNoTextAndNoError) {
  OcrOptions o;
  std::vector<uint8_t> white(640 * 480 * 3, 255);
  auto blank = RecognizeText({640, 480, 3, white}, o);
  ASSERT_TRUE(blank.ok()) << blank.status().ToString();
  EXPECT_EQ(blank->text, "");

  std::vector<uint8_t> one = {0, 0, 0};
  auto tiny = RecognizeText({1, 1, 3, one}, o);
  ASSERT_TRUE(tiny.ok()) << tiny.status().ToString();
  EXPECT_EQ(tiny->text, "");
  auto empty = RecognizeText({0, 0, 3, {}}, o);
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_EQ(empty->text, "");

  std::mt19937 rng(7);
  std::vector<uint8_t> noise(640 * 480 * 3);
  for (auto& p : noise) p = static_cast<uint8_t>(rng());
  auto noisy = RecognizeText({640, 480, 3, noise}, o);
  ASSERT_TRUE(noisy.ok()) << noisy.status().ToString();
  EXPECT_EQ(noisy->text, "") << "kept " << noisy->words_kept << " words from noise";

  // A view that does not match its size is refused, not read past its end.
  auto bad = RecognizeText({640, 480, 3, one}, o);
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  auto channels = RecognizeText({1, 1, 4, std::vector<uint8_t>(4)}, o);
  EXPECT_EQ(channels.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(OcrTest, LimitsGiveResourceExhausted) {
  OcrOptions o;
  o.max_pixels = 640 * 480 - 1;
  std::vector<uint8_t> white(640 * 480, 255);
  auto big = RecognizeText({640, 480, 1, white}, o);
  EXPECT_EQ(big.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(big.status().message().find("OCR limit"), std::string::npos) << big.status().message();

  NeedPage();
  OcrOptions slow;
  slow.max_ms = 1;  // a page of text takes far longer
  auto r = RecognizeText(page_.view(), slow);
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(r.status().message().find("gave up"), std::string::npos) << r.status().message();
  // The thread's instance still works after a cancelled page.
  auto ok = RecognizeText(page_.view(), OcrOptions{});
  EXPECT_TRUE(ok.ok()) << ok.status().ToString();
}

TEST(OcrSetupTest, MissingDataSaysWhatToInstall) {
  OcrOptions o;
  o.data_dir = "/nonexistent/tessdata";
  auto r = ResolveOcr(o);
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("does not exist"), std::string::npos) << r.status().message();
  std::vector<uint8_t> white(64 * 64, 255);
  auto rec = RecognizeText({64, 64, 1, white}, o);
  EXPECT_EQ(rec.status().code(), StatusCode::kNotFound);

  // A folder without eng.traineddata, and a language that is not installed.
  const std::string empty_dir =
      stdfs::weakly_canonical(::testing::TempDir()).string() + "/ocr_empty_" + std::to_string(::getpid());
  stdfs::create_directories(empty_dir);
  o.data_dir = empty_dir;
  auto no_eng = ResolveOcr(o);
  EXPECT_EQ(no_eng.status().code(), StatusCode::kNotFound);
  EXPECT_NE(no_eng.status().message().find("tesseract-ocr-eng"), std::string::npos)
      << no_eng.status().message();
  o.languages = "xyz";
  auto no_xyz = ResolveOcr(o);
  EXPECT_EQ(no_xyz.status().code(), StatusCode::kNotFound);
  EXPECT_NE(no_xyz.status().message().find("install tesseract-ocr-xyz"), std::string::npos)
      << no_xyz.status().message();
  stdfs::remove_all(empty_dir);

  for (const char* bad : {"eng++jpn", "eng+", "../eng", "eng jpn"}) {
    OcrOptions b;
    b.languages = bad;
    EXPECT_EQ(ResolveOcr(b).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(OcrSetupTest, DefaultLanguagesFollowTheInstalledData) {
  auto r = ResolveOcr({});
  if (!r.ok()) GTEST_SKIP() << "no Tesseract language data: " << r.status().message();
  if (stdfs::exists(r->data_dir + "/jpn.traineddata")) {
    EXPECT_EQ(r->languages, "eng+jpn");
    EXPECT_EQ(r->note, "");
  } else {
    EXPECT_EQ(r->languages, "eng");
    EXPECT_NE(r->note.find("tesseract-ocr-jpn"), std::string::npos);
  }
  // A folder with English only: the default falls back to eng and says why.
  const std::string dir =
      stdfs::weakly_canonical(::testing::TempDir()).string() + "/ocr_eng_" + std::to_string(::getpid());
  stdfs::create_directories(dir);
  stdfs::create_symlink(r->data_dir + "/eng.traineddata", dir + "/eng.traineddata");
  OcrOptions o;
  o.data_dir = dir;
  auto eng = ResolveOcr(o);
  ASSERT_TRUE(eng.ok()) << eng.status().ToString();
  EXPECT_EQ(eng->languages, "eng");
  EXPECT_NE(eng->note.find("tesseract-ocr-jpn"), std::string::npos) << eng->note;
  stdfs::remove_all(dir);
}

TEST(OcrMaxSideTest, FitsThePixelLimit) {
  EXPECT_EQ(OcrMaxSide(1000, 500, 1'000'000), 1000);
  EXPECT_EQ(OcrMaxSide(4000, 3000, 3'000'000), 1999);  // half each way, less a pixel for rounding
  const int side = OcrMaxSide(5640, 3172, 8'000'000);
  const double scale = static_cast<double>(side) / 5640;
  EXPECT_LE(5640 * scale * 3172 * scale, 8'000'000.0);
  EXPECT_GT(5640 * scale * 3172 * scale, 7'980'000.0);
  EXPECT_EQ(OcrMaxSide(0, 0, 100), 0);
}

}  // namespace
}  // namespace fs
