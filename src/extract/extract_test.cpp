// Tests of extract/: encodings (inputs generated with iconv at test time), HTML and Markdown, PDF
// through poppler, MIME by content, EXIF (a synthesized JPEG and real photos). Cases on real files
// read ../shared/corpus/docs (FILESEARCH_SHARED_DIR) and skip with a message where it is missing.
#include "extract/extract.h"

#include <gtest/gtest.h>
#include <iconv.h>
#include <libexif/exif-data.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "core/utf8.h"
#include "extract/encoding.h"
#include "extract/markup.h"

namespace fs {
namespace {

using extract_internal::DecodeToUtf8;
using extract_internal::HtmlToText;
using extract_internal::MarkdownToText;

constexpr const char* kJapanese = "東京支社の議事録\n来週の会議は午後三時から始まります。";

// `utf8` converted to `charset` with the C library's iconv (what a Windows or Unix editor would save).
std::string ToCharset(const std::string& utf8, const char* charset) {
  iconv_t cd = ::iconv_open(charset, "UTF-8");
  EXPECT_NE(cd, reinterpret_cast<iconv_t>(-1)) << charset;
  std::string out(utf8.size() * 4 + 16, '\0');
  char* in = const_cast<char*>(utf8.data());
  size_t in_left = utf8.size();
  char* o = out.data();
  size_t o_left = out.size();
  size_t rc = ::iconv(cd, &in, &in_left, &o, &o_left);
  EXPECT_NE(rc, static_cast<size_t>(-1)) << "iconv to " << charset << ": " << std::strerror(errno);
  ::iconv_close(cd);
  out.resize(out.size() - o_left);
  return out;
}

std::string SharedDocs() {
  const char* env = std::getenv("FILESEARCH_SHARED_DIR");
  return std::string(env != nullptr && *env != '\0' ? env : "../shared") + "/corpus/docs";
}

std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

#define SKIP_WITHOUT(path)                                                                               \
  if (!std::filesystem::exists(path))                                                                    \
  GTEST_SKIP() << "no " << (path) << ": the shared corpus is missing (set FILESEARCH_SHARED_DIR to the " \
                  "folder holding corpus/)"

Extraction ExtractFile(const std::string& path, std::string_view mime, ExtractOptions options = {}) {
  std::string bytes = ReadAll(path);
  return Extract(bytes, bytes.size(), mime, options);
}

// --- Encodings ---------------------------------------------------------------------------------

TEST(EncodingTest, Utf8WithAndWithoutBom) {
  auto plain = DecodeToUtf8(kJapanese, "", 1 << 20);
  EXPECT_EQ(plain.text, kJapanese);
  EXPECT_EQ(plain.encoding, "utf-8");
  auto bom = DecodeToUtf8(std::string("\xEF\xBB\xBF") + kJapanese, "", 1 << 20);
  EXPECT_EQ(bom.text, kJapanese);
  EXPECT_EQ(bom.encoding, "utf-8");
}

TEST(EncodingTest, Utf16WithBom) {
  auto le = DecodeToUtf8(ToCharset(kJapanese, "UTF-16"), "", 1 << 20);  // glibc writes a BOM
  EXPECT_EQ(le.text, kJapanese);
  auto be = DecodeToUtf8("\xFE\xFF" + ToCharset(kJapanese, "UTF-16BE"), "", 1 << 20);
  EXPECT_EQ(be.text, kJapanese);
  EXPECT_EQ(be.encoding, "utf-16be");
  std::string emoji = "ok \xF0\x9F\x98\x80 done";  // a surrogate pair
  EXPECT_EQ(DecodeToUtf8("\xFF\xFE" + ToCharset(emoji, "UTF-16LE"), "", 1 << 20).text, emoji);
}

TEST(EncodingTest, Utf16WithoutBomByNulPattern) {
  std::string text = std::string("Meeting notes, Tokyo office\n") + kJapanese + "\nend of minutes\n";
  auto le = DecodeToUtf8(ToCharset(text, "UTF-16LE"), "", 1 << 20);
  EXPECT_EQ(le.encoding, "utf-16le");
  EXPECT_EQ(le.text, text);
  auto be = DecodeToUtf8(ToCharset(text, "UTF-16BE"), "", 1 << 20);
  EXPECT_EQ(be.encoding, "utf-16be");
  EXPECT_EQ(be.text, text);
  // BOM-less UTF-16 is "binary" to the magic-number sniffer; ResolveMime recognises it as text.
  EXPECT_EQ(ResolveMime(ToCharset(text, "UTF-16LE"), "application/octet-stream"), "text/plain");
}

TEST(EncodingTest, ShiftJisAndEucJpByTrialConversion) {
  std::string sjis = ToCharset(kJapanese, "CP932");
  ASSERT_NE(sjis, kJapanese);
  auto a = DecodeToUtf8(sjis, "", 1 << 20);
  EXPECT_EQ(a.encoding, "cp932");
  EXPECT_EQ(a.text, kJapanese);
  auto b = DecodeToUtf8(ToCharset(kJapanese, "EUC-JP"), "", 1 << 20);
  EXPECT_EQ(b.encoding, "euc-jp");
  EXPECT_EQ(b.text, kJapanese);
  // Short and mixed with ASCII: still decided right.
  std::string mixed = "Report 2024: 東京支社の議事録 (draft)";
  EXPECT_EQ(DecodeToUtf8(ToCharset(mixed, "CP932"), "", 1 << 20).text, mixed);
  EXPECT_EQ(DecodeToUtf8(ToCharset(mixed, "EUC-JP"), "", 1 << 20).text, mixed);
  // Half-width katakana and the CP932 extensions (① NEC row 13) survive.
  std::string ext = "ｶﾀｶﾅ と ① の請求書";
  EXPECT_EQ(DecodeToUtf8(ToCharset(ext, "CP932"), "", 1 << 20).text, ext);
}

TEST(EncodingTest, LatinTextFallsBackToCp1252) {
  auto d = DecodeToUtf8("caf\xE9 na\xEFve \x93quoted\x94 \x80 5", "", 1 << 20);
  EXPECT_EQ(d.encoding, "cp1252");
  EXPECT_EQ(d.text, "café naïve “quoted” € 5");
  std::string german = ToCharset("Grüße aus Köln, schöne Größe. Äpfel über Öl.", "ISO-8859-1");
  EXPECT_EQ(DecodeToUtf8(german, "", 1 << 20).text, "Grüße aus Köln, schöne Größe. Äpfel über Öl.");
}

TEST(EncodingTest, DeclaredCharsetWinsWhenBytesAgree) {
  std::string sjis = ToCharset("ﾃｽﾄ", "CP932");  // half-width only: alone it would look implausible
  EXPECT_EQ(DecodeToUtf8(sjis, "Shift_JIS", 1 << 20).text, "ﾃｽﾄ");
  // A declaration the bytes contradict (UTF-8 declared, Latin-1 bytes) is not trusted blindly.
  EXPECT_EQ(DecodeToUtf8("caf\xE9", "utf-8", 1 << 20).text, "café");
  EXPECT_EQ(DecodeToUtf8("K\xF6ln", "iso-8859-1", 1 << 20).text, "Köln");
}

TEST(EncodingTest, TruncatedInputAndOutputLimit) {
  std::string text = kJapanese;
  // A read cut inside a 3-byte sequence: the partial character is dropped, the rest is UTF-8.
  auto cut = DecodeToUtf8(std::string_view(text).substr(0, 4), "", 1 << 20, /*truncated=*/true);
  EXPECT_EQ(cut.encoding, "utf-8");
  EXPECT_EQ(cut.text, "東");
  std::string sjis = ToCharset(text, "CP932");
  auto sjis_cut = DecodeToUtf8(std::string_view(sjis).substr(0, sjis.size() - 3), "", 1 << 20, true);
  EXPECT_EQ(sjis_cut.encoding, "cp932");
  EXPECT_TRUE(IsValidUtf8(sjis_cut.text));
  EXPECT_EQ(sjis_cut.text.find("\xEF\xBF\xBD"), std::string::npos);  // no U+FFFD for the cut character
  // Without `truncated`, a file that really ends in a lead byte is Latin-1, not cut UTF-8.
  EXPECT_EQ(DecodeToUtf8("caf\xE9", "", 1 << 20).text, "café");
  // The output limit never splits a code point.
  for (size_t max = 0; max < 12; ++max) {
    auto d = DecodeToUtf8(sjis, "", max);
    EXPECT_LE(d.text.size(), max);
    EXPECT_TRUE(IsValidUtf8(d.text));
    EXPECT_EQ(text.compare(0, d.text.size(), d.text), 0);
  }
}

TEST(EncodingTest, ArbitraryBytesAlwaysGiveValidUtf8) {
  std::mt19937 rng(42);
  for (int round = 0; round < 300; ++round) {
    std::string bytes(static_cast<size_t>(rng() % 300), '\0');
    for (auto& b : bytes) b = static_cast<char>(rng() % (round % 3 == 0 ? 256 : 96) + (round % 3 == 0 ? 0 : 0x80));
    if (round % 5 == 0 && bytes.size() >= 2) bytes[0] = '\xFF', bytes[1] = '\xFE';
    auto d = DecodeToUtf8(bytes, round % 4 == 0 ? "shift_jis" : "", 1 << 20);
    EXPECT_TRUE(IsValidUtf8(d.text)) << "round " << round;
    auto h = HtmlToText(bytes, 1 << 20);
    EXPECT_TRUE(IsValidUtf8(h.text)) << "round " << round;
  }
}

// --- HTML and Markdown -------------------------------------------------------------------------

TEST(HtmlTest, TagsScriptsStylesAndCommentsGo) {
  auto h = HtmlToText(
      "<!DOCTYPE html><html><head><title>Quarterly &amp; Annual</title>"
      "<style>body { color: red }</style><script>var secret = '<p>hidden</p>';</script></head>"
      "<body><!-- a comment with words --><h1>Budget</h1><p>Total: <b>5</b> &lt; 7 &#x263A; &#8364; "
      "caf&eacute;&nbsp;bar</p><div>one</div><div>two</div><SCRIPT type=x>alert(1)</SCRIPT>"
      "<a href=\"x>y\">link</a> a < b &unknown; & done</body></html>",
      1 << 20);
  EXPECT_EQ(h.title, "Quarterly & Annual");
  EXPECT_NE(h.text.find("Quarterly & Annual"), std::string::npos);
  EXPECT_NE(h.text.find("Budget"), std::string::npos);
  EXPECT_NE(h.text.find("Total: 5 < 7 ☺ €"), std::string::npos) << h.text;
  EXPECT_NE(h.text.find("café bar"), std::string::npos);
  EXPECT_NE(h.text.find("one\ntwo"), std::string::npos) << h.text;
  EXPECT_NE(h.text.find("link a < b &unknown; & done"), std::string::npos) << h.text;
  for (const char* gone : {"color", "secret", "hidden", "alert", "comment", "href", "<"}) {
    if (std::string(gone) == "<") continue;
    EXPECT_EQ(h.text.find(gone), std::string::npos) << gone << " in: " << h.text;
  }
}

TEST(HtmlTest, MetaCharsetIsHonoured) {
  std::string page = "<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=Shift_JIS\">"
                     "<title>議事録</title></head><body><p>" + std::string(kJapanese) + "</p></body></html>";
  auto h = HtmlToText(ToCharset(page, "CP932"), 1 << 20);
  EXPECT_EQ(h.encoding, "cp932");
  EXPECT_EQ(h.title, "議事録");
  EXPECT_NE(h.text.find("東京支社の議事録"), std::string::npos) << h.text;
  auto euc = HtmlToText(ToCharset("<meta charset='euc-jp'><p>午後三時</p>", "EUC-JP"), 1 << 20);
  EXPECT_EQ(euc.text, "午後三時");
  auto latin = HtmlToText("<meta charset=\"iso-8859-1\"><p>K\xF6ln</p>", 1 << 20);
  EXPECT_EQ(latin.text, "Köln");
  EXPECT_EQ(extract_internal::DeclaredCharset("<?xml version=\"1.0\" encoding=\"EUC-JP\"?><a/>"), "euc-jp");
}

TEST(HtmlTest, OutputLimitAndUnclosedConstructs) {
  std::string big = "<p>";
  for (int i = 0; i < 2000; ++i) big += "東京 ";
  EXPECT_LE(HtmlToText(big, 100).text.size(), 100u);
  EXPECT_TRUE(IsValidUtf8(HtmlToText(big, 100).text));
  EXPECT_EQ(HtmlToText("text <!-- never closed", 1 << 20).text, "text");
  EXPECT_EQ(HtmlToText("before <script> never closed", 1 << 20).text, "before");
  EXPECT_EQ(HtmlToText("<p title='unterminated", 1 << 20).text, "");
}

TEST(MarkdownTest, LinksAndMarkupCharactersGo) {
  std::string md = "# Release notes\n\nSee the [install guide](https://example.com/install) and "
                   "![diagram of **flow**](img/flow.png).\n\n> *Important*: use `make` __now__.\n\n"
                   "```\ncode_line()\n```\n[ref]: https://example.com/ref\n---\nsnake_case stays";
  std::string text = MarkdownToText(md);
  EXPECT_NE(text.find("Release notes"), std::string::npos);
  EXPECT_NE(text.find("See the install guide and diagram of flow."), std::string::npos) << text;
  EXPECT_NE(text.find("Important: use make now."), std::string::npos) << text;
  EXPECT_NE(text.find("code_line()"), std::string::npos);
  EXPECT_NE(text.find("snake_case stays"), std::string::npos);
  EXPECT_EQ(text.find("example.com"), std::string::npos) << text;
  EXPECT_EQ(text.find("flow.png"), std::string::npos) << text;
  EXPECT_EQ(text.find('#'), std::string::npos);
}

TEST(ExtractTest, DispatchesByMime) {
  ExtractOptions o;
  EXPECT_EQ(Extract(ToCharset(kJapanese, "CP932"), 0, "text/plain", o).text, kJapanese);
  EXPECT_EQ(Extract("<p>a&amp;b</p>", 0, "text/html", o).text, "a&b");
  EXPECT_EQ(Extract("**bold** [x](y)", 0, "text/markdown", o).text, "bold x");
  EXPECT_EQ(Extract("{\"k\": \"v\"}", 0, "application/json", o).text, "{\"k\": \"v\"}");
  EXPECT_EQ(Extract("\x89PNG\r\n\x1A\n", 0, "image/png", o).text, "");
  o.max_text_bytes = 5;
  EXPECT_EQ(Extract("abcdefgh", 0, "text/plain", o).text, "abcde");
  EXPECT_GE(BytesWanted("text/plain", o), 10u);
  EXPECT_GT(BytesWanted("application/pdf", o), o.max_pdf_bytes);
  EXPECT_EQ(BytesWanted("image/png", o), 0u);
}

// --- MIME by content ----------------------------------------------------------------------------

TEST(ResolveMimeTest, ContentDecidesWhereTheGuessIsUnsure) {
  // Sure guesses (magic numbers, clean text) stand without asking libmagic.
  EXPECT_EQ(ResolveMime("\x89PNG\r\n\x1A\n", "image/png"), "image/png");
  EXPECT_EQ(ResolveMime("hello", "text/markdown"), "text/markdown");
  // Unsure ones go to libmagic.
  std::string sqlite = std::string("SQLite format 3\0", 16) + std::string(84, '\0');
  sqlite[16] = 0x10;  // page size 4096
  sqlite[18] = sqlite[19] = 1;
  EXPECT_EQ(ResolveMime(sqlite, "application/octet-stream"), "application/vnd.sqlite3");
  std::string wav = std::string("RIFF\x24\x08\0\0WAVEfmt \x10\0\0\0\x01\0\x01\0\x44\xAC\0\0\x88\x58\x01\0\x02\0\x10\0data", 40);
  wav += std::string(64, '\0');
  EXPECT_EQ(ResolveMime(wav, "application/octet-stream"), "audio/x-wav");
  std::string mp3 = std::string("ID3\x03\0\0\0\0\0\x0A", 10) + std::string(10, '\0') + "\xFF\xFB\x90\x64" +
                    std::string(400, '\0');
  EXPECT_EQ(ResolveMime(mp3, "application/octet-stream"), "audio/mpeg");
  // Bytes nobody recognises keep the guess.
  EXPECT_EQ(ResolveMime(std::string("\x01\x02\x03\x04\x05\x06", 6), "application/octet-stream"),
            "application/octet-stream");
}

// --- PDF ------------------------------------------------------------------------------------------

TEST(PdfTest, DamagedAndTruncatedPdfsGiveReasons) {
  ExtractOptions o;
  std::string junk = "%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage \xFF\xFE\n%%EOF";
  auto bad = Extract(junk, junk.size(), "application/pdf", o);
  EXPECT_TRUE(bad.text.empty());
  EXPECT_NE(bad.problem.find("damaged"), std::string::npos) << bad.problem;
  auto part = Extract(junk, junk.size() + 100, "application/pdf", o);
  EXPECT_NE(part.problem.find("partly"), std::string::npos) << part.problem;
  o.max_pdf_bytes = 16;
  auto big = Extract(junk, junk.size(), "application/pdf", o);
  EXPECT_NE(big.problem.find("larger than"), std::string::npos) << big.problem;
}

TEST(PdfTest, CorpusPdfsGiveTheirWords) {
  const std::string docs = SharedDocs();
  SKIP_WITHOUT(docs + "/textract/tests/pdf/raw_text.pdf");
  auto raw = ExtractFile(docs + "/textract/tests/pdf/raw_text.pdf", "application/pdf");
  EXPECT_TRUE(raw.problem.empty()) << raw.problem;
  for (const char* word : {"lovely", "hipsum", "Truffaut", "letterpress"}) {
    EXPECT_NE(raw.text.find(word), std::string::npos) << word;
  }
  auto two = ExtractFile(docs + "/textract/tests/pdf/two_column.pdf", "application/pdf");
  EXPECT_NE(two.text.find("mentorship"), std::string::npos);
  EXPECT_NE(two.text.find("Malmgren"), std::string::npos);
  auto minimal = ExtractFile(docs + "/pypdf/001-trivial/minimal-document.pdf", "application/pdf");
  EXPECT_NE(minimal.text.find("Lorem ipsum dolor sit amet"), std::string::npos) << minimal.text;
  EXPECT_TRUE(IsValidUtf8(ExtractFile(docs + "/pypdf/015-arabic/habibi.pdf", "application/pdf").text));
}

TEST(PdfTest, EncryptedPdfIsAReasonNotACrash) {
  const std::string path = SharedDocs() + "/pypdf/005-libreoffice-writer-password/libreoffice-writer-password.pdf";
  SKIP_WITHOUT(path);
  auto e = ExtractFile(path, "application/pdf");
  EXPECT_TRUE(e.text.empty());
  EXPECT_NE(e.problem.find("encrypted"), std::string::npos) << e.problem;
}

TEST(PdfTest, LargeBookIsCutAtTheTextLimit) {
  const std::string path = SharedDocs() + "/debian-reference/debian-reference/debian-reference.en.pdf";
  SKIP_WITHOUT(path);
  ExtractOptions o;
  o.max_text_bytes = 64ull << 20;
  auto t0 = std::chrono::steady_clock::now();
  auto full = ExtractFile(path, "application/pdf", o);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("debian-reference.en.pdf (1.3 MB, 261 pages): %zu bytes of text in %.2f s\n", full.text.size(), secs);
  EXPECT_TRUE(full.problem.empty()) << full.problem;
  EXPECT_NE(full.text.find("Osamu Aoki"), std::string::npos);
  EXPECT_NE(full.text.find("apt-get"), std::string::npos);
  o.max_text_bytes = 10000;
  auto cut = ExtractFile(path, "application/pdf", o);
  EXPECT_LE(cut.text.size(), 10000u);
  EXPECT_TRUE(IsValidUtf8(cut.text));
  EXPECT_EQ(full.text.compare(0, cut.text.size(), cut.text), 0);
}

// --- Real text and HTML files ------------------------------------------------------------------

TEST(CorpusTextTest, TextAndHtmlFilesGiveTheirWords) {
  const std::string docs = SharedDocs();
  SKIP_WITHOUT(docs + "/textract/tests/html/raw_text.html");
  auto txt = ExtractFile(docs + "/textract/tests/txt/raw_text.txt", "text/plain");
  EXPECT_NE(txt.text.find("Little Bo peep has lost her sheep"), std::string::npos);
  auto html = ExtractFile(docs + "/textract/tests/html/raw_text.html", "text/html");
  EXPECT_EQ(html.title, "Snow Fall: The Avalanche at Tunnel Creek - Multimedia Feature - NYTimes.com");
  EXPECT_NE(html.text.find("The snow burst through the trees"), std::string::npos);
  EXPECT_NE(html.text.find("Chris Rudolph’s piercing cry"), std::string::npos);  // &rsquo; or UTF-8
  EXPECT_EQ(html.text.find("<meta"), std::string::npos);
  EXPECT_EQ(html.text.find("function("), std::string::npos);  // scripts are gone
  auto tables = ExtractFile(docs + "/textract/tests/html/tables.html", "text/html");
  EXPECT_FALSE(tables.text.empty());
  EXPECT_EQ(tables.text.find("<td"), std::string::npos);
  auto chapter = ExtractFile(docs + "/debian-reference/debian-reference/ch02.en.html", "text/html");
  EXPECT_EQ(chapter.encoding, "utf-8");
  EXPECT_NE(chapter.text.find("Debian package management"), std::string::npos) << chapter.title;
  EXPECT_NE(chapter.text.find("aptitude"), std::string::npos);
  EXPECT_TRUE(IsValidUtf8(chapter.text));
}

// --- EXIF -----------------------------------------------------------------------------------------

// A JPEG made of SOI, an APP1 segment holding `exif` and EOI: enough for EXIF readers.
std::string JpegWithExif(ExifData* exif) {
  unsigned char* buf = nullptr;
  unsigned int size = 0;
  exif_data_save_data(exif, &buf, &size);
  std::string jpeg = "\xFF\xD8\xFF\xE1";
  jpeg += static_cast<char>((size + 2) >> 8);
  jpeg += static_cast<char>((size + 2) & 0xFF);
  jpeg.append(reinterpret_cast<const char*>(buf), size);
  jpeg += "\xFF\xD9";
  std::free(buf);
  return jpeg;
}

ExifEntry* AddEntry(ExifData* data, ExifIfd ifd, int tag, ExifFormat format, unsigned long components) {
  ExifEntry* e = exif_entry_new();
  e->tag = static_cast<ExifTag>(tag);
  e->format = format;
  e->components = components;
  e->size = static_cast<unsigned int>(exif_format_get_size(format) * components);
  e->data = static_cast<unsigned char*>(std::calloc(1, e->size));
  exif_content_add_entry(data->ifd[ifd], e);
  exif_entry_unref(e);  // the IFD holds it now
  return e;
}

void AddAscii(ExifData* data, ExifIfd ifd, int tag, const std::string& s) {
  ExifEntry* e = AddEntry(data, ifd, tag, EXIF_FORMAT_ASCII, s.size() + 1);
  std::memcpy(e->data, s.c_str(), s.size() + 1);
}

void AddDms(ExifData* data, int tag, ExifRational d, ExifRational m, ExifRational s) {
  ExifEntry* e = AddEntry(data, EXIF_IFD_GPS, tag, EXIF_FORMAT_RATIONAL, 3);
  ExifByteOrder order = exif_data_get_byte_order(data);
  exif_set_rational(e->data, order, d);
  exif_set_rational(e->data + 8, order, m);
  exif_set_rational(e->data + 16, order, s);
}

TEST(ExifTest, ReadsDateCameraAndPosition) {
  ExifData* data = exif_data_new();
  exif_data_unset_option(data, EXIF_DATA_OPTION_FOLLOW_SPECIFICATION);
  AddAscii(data, EXIF_IFD_0, EXIF_TAG_MAKE, "FUJIFILM   ");
  AddAscii(data, EXIF_IFD_0, EXIF_TAG_MODEL, "X-T30");
  AddAscii(data, EXIF_IFD_EXIF, EXIF_TAG_DATE_TIME_ORIGINAL, "2023:04:01 09:30:15");
  AddAscii(data, EXIF_IFD_EXIF, 0x9291, "25");       // SubSecTimeOriginal: 0.25 s
  AddAscii(data, EXIF_IFD_EXIF, 0x9011, "+09:00");   // OffsetTimeOriginal: Tokyo
  AddAscii(data, EXIF_IFD_GPS, EXIF_TAG_GPS_LATITUDE_REF, "N");
  AddDms(data, EXIF_TAG_GPS_LATITUDE, {35, 1}, {40, 1}, {3024, 100});   // 35°40'30.24"
  AddAscii(data, EXIF_IFD_GPS, EXIF_TAG_GPS_LONGITUDE_REF, "W");
  AddDms(data, EXIF_TAG_GPS_LONGITUDE, {139, 1}, {45, 1}, {0, 1});
  std::string jpeg = JpegWithExif(data);
  exif_data_unref(data);

  auto info = ReadExif(jpeg);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->make, "FUJIFILM");
  EXPECT_EQ(info->model, "X-T30");
  // 2023-04-01 09:30:15.25 +09:00 == 2023-04-01 00:30:15.25 UTC == 1680309015.25 s.
  ASSERT_TRUE(info->taken_ns.has_value());
  EXPECT_EQ(*info->taken_ns, 1680309015250000000);
  ASSERT_TRUE(info->latitude && info->longitude);
  EXPECT_NEAR(*info->latitude, 35.6750667, 1e-6);
  EXPECT_NEAR(*info->longitude, -139.75, 1e-9);

  ExtractOptions o;
  auto e = Extract(jpeg, jpeg.size(), "image/jpeg", o);
  ASSERT_TRUE(e.exif.has_value());
  EXPECT_EQ(e.exif->model, "X-T30");
  o.exif = false;
  EXPECT_FALSE(Extract(jpeg, jpeg.size(), "image/jpeg", o).exif.has_value());
}

TEST(ExifTest, MissingAndNonsenseValues) {
  EXPECT_EQ(ReadExif("\xFF\xD8\xFF\xE0\x00\x10JFIF\0\x01\x01\0\0\x01\0\x01\0\0\xFF\xD9").status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(ReadExif("\x89PNG\r\n\x1A\n").status().code(), StatusCode::kUnsupported);
  EXPECT_FALSE(ReadExif("\xFF\xD8\xFF\xE1\xFF\xFF" "Exif\0\0MM\0*\0\0\0\x08\xFF\xFF").ok() &&
               !ReadExif("\xFF\xD8\xFF\xE1\xFF\xFF" "Exif\0\0MM\0*\0\0\0\x08\xFF\xFF")->empty());
  ExifData* data = exif_data_new();
  exif_data_unset_option(data, EXIF_DATA_OPTION_FOLLOW_SPECIFICATION);
  AddAscii(data, EXIF_IFD_EXIF, EXIF_TAG_DATE_TIME_ORIGINAL, "0000:00:00 00:00:00");
  AddAscii(data, EXIF_IFD_GPS, EXIF_TAG_GPS_LATITUDE_REF, "N");
  AddDms(data, EXIF_TAG_GPS_LATITUDE, {95, 1}, {0, 1}, {0, 0});  // > 90° and a zero denominator
  AddAscii(data, EXIF_IFD_0, EXIF_TAG_MAKE, "Canon");
  std::string jpeg = JpegWithExif(data);
  exif_data_unref(data);
  auto info = ReadExif(jpeg);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->make, "Canon");
  EXPECT_FALSE(info->taken_ns.has_value());
  EXPECT_FALSE(info->latitude.has_value());
}

TEST(ExifTest, RealPhotos) {
  const std::string photos = SharedDocs() + "/../photos/wallpapers-jpeg";
  SKIP_WITHOUT(photos + "/mate-backgrounds__Elephants_5640x3172.jpg");
  auto head = ReadAll(photos + "/mate-backgrounds__Elephants_5640x3172.jpg").substr(0, 64 * 1024);
  auto info = ReadExif(head);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->make, "SONY");
  EXPECT_EQ(info->model, "DSC-RX100M4");
  ASSERT_TRUE(info->taken_ns.has_value());
  EXPECT_EQ(*info->taken_ns / 1000000000, 1582130105);  // 2020:02:19 16:35:05, no offset recorded
  auto olympus = ReadExif(ReadAll(photos + "/plasma-workspace-wallpapers__Path_2560x1600.jpg").substr(0, 65536));
  ASSERT_TRUE(olympus.ok());
  EXPECT_EQ(olympus->make, "OLYMPUS IMAGING CORP.");
  EXPECT_EQ(olympus->model, "E-M1");
  // Pillow's broken-EXIF test files: no crash, nonsense left unset.
  const std::string pillow = SharedDocs() + "/../formats/pillow";
  for (const char* name : {"exif_gps.jpg", "exif_gps_typeerror.jpg", "invalid-exif.jpg", "hopper_bad_exif.jpg",
                           "truncated_exif_dpi.jpg", "empty_gps_ifd.jpg", "exif-ifd-offset.jpg"}) {
    auto r = ReadExif(ReadAll(pillow + "/" + name));
    if (r.ok() && r->latitude) {
      EXPECT_LE(std::abs(*r->latitude), 90.0) << name;
    }
  }
  auto gps = ReadExif(ReadAll(pillow + "/exif_gps.jpg"));
  ASSERT_TRUE(gps.ok());
  EXPECT_FALSE(gps->latitude.has_value());  // its GPSLatitude is a single rational, not three
}

}  // namespace
}  // namespace fs
