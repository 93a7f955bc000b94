// Office, mail and archive extraction: documents built here (zip members written with zlib, OLE2
// files with libgsf's writer), hostile ones too (zip bombs, billion laughs, deep nesting, damaged and
// encrypted containers), and the textract corpus (../shared/corpus/docs/textract, found through
// FILESEARCH_SHARED_DIR): every word of each format's known text must be found.
#include <gsf/gsf-outfile-msole.h>
#include <gsf/gsf-outfile.h>
#include <gsf/gsf-output-memory.h>
#include <gsf/gsf-utils.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "core/utf8.h"
#include "extract/extract.h"

namespace fs {
namespace {

namespace stdfs = std::filesystem;

constexpr const char* kDocx = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
constexpr const char* kXlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
constexpr const char* kPptx = "application/vnd.openxmlformats-officedocument.presentationml.presentation";
constexpr const char* kOdt = "application/vnd.oasis.opendocument.text";

Extraction ExtractAll(std::string_view bytes, std::string_view mime, const ExtractOptions& o = {}) {
  return Extract(bytes, bytes.size(), mime, o);
}

// ---- A minimal zip writer (PKWARE APPNOTE 4.3): stored or raw-deflated members. ----

struct Member {
  Member(std::string n, std::string d, bool deflated = true, bool encrypted = false,
         std::optional<uint32_t> claimed = std::nullopt)
      : name(std::move(n)),
        data(std::move(d)),
        deflate(deflated),
        encrypted_flag(encrypted),
        claimed_size(claimed) {}
  std::string name;
  std::string data;
  bool deflate;
  bool encrypted_flag;                   // general purpose bit 0 (the data is not really encrypted)
  std::optional<uint32_t> claimed_size;  // a lying uncompressed size
};

void Put16(std::string* s, uint32_t v) {
  s->push_back(static_cast<char>(v & 0xFF));
  s->push_back(static_cast<char>((v >> 8) & 0xFF));
}
void Put32(std::string* s, uint32_t v) {
  Put16(s, v & 0xFFFF);
  Put16(s, v >> 16);
}

std::string RawDeflate(const std::string& in) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&z, in.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string MakeZip(const std::vector<Member>& members) {
  std::string out, central;
  for (const auto& m : members) {
    const uint32_t crc = static_cast<uint32_t>(
        crc32(0, reinterpret_cast<const Bytef*>(m.data.data()), static_cast<uInt>(m.data.size())));
    const std::string body = m.deflate ? RawDeflate(m.data) : m.data;
    const uint32_t size = m.claimed_size.value_or(static_cast<uint32_t>(m.data.size()));
    const uint32_t offset = static_cast<uint32_t>(out.size());
    const uint16_t flags = m.encrypted_flag ? 1 : 0, method = m.deflate ? 8 : 0;
    auto common = [&](std::string* s) {
      Put16(s, 20);  // version needed
      Put16(s, flags);
      Put16(s, method);
      Put16(s, 0);     // time
      Put16(s, 0x21);  // date: 1980-01-01
      Put32(s, crc);
      Put32(s, static_cast<uint32_t>(body.size()));
      Put32(s, size);
      Put16(s, static_cast<uint32_t>(m.name.size()));
      Put16(s, 0);  // extra
    };
    Put32(&out, 0x04034b50);
    common(&out);
    out += m.name;
    out += body;
    Put32(&central, 0x02014b50);
    Put16(&central, 20);  // version made by
    common(&central);
    Put16(&central, 0);  // comment
    Put16(&central, 0);  // disk
    Put16(&central, 0);  // internal attributes
    Put32(&central, 0);  // external attributes
    Put32(&central, offset);
    central += m.name;
  }
  const uint32_t cd_offset = static_cast<uint32_t>(out.size());
  out += central;
  Put32(&out, 0x06054b50);
  Put16(&out, 0);
  Put16(&out, 0);
  Put16(&out, static_cast<uint32_t>(members.size()));
  Put16(&out, static_cast<uint32_t>(members.size()));
  Put32(&out, static_cast<uint32_t>(central.size()));
  Put32(&out, cd_offset);
  Put16(&out, 0);
  return out;
}

const char* kWordNs = R"(xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main")";

std::string WordXml(const std::string& body) {
  return std::string("<?xml version=\"1.0\" encoding=\"UTF-8\"?><w:document ") + kWordNs + "><w:body>" +
         body + "</w:body></w:document>";
}

std::string Docx(const std::string& document_xml, const std::string& core_xml = "") {
  std::vector<Member> m = {{"[Content_Types].xml", "<Types/>"}, {"word/document.xml", document_xml}};
  if (!core_xml.empty()) m.push_back({"docProps/core.xml", core_xml});
  return MakeZip(m);
}

// ---- OLE2 files through libgsf's writer. ----

struct Stream {
  std::string path;  // "a/b" makes storage a with stream b
  std::string data;
};

std::string MakeOle(const std::vector<Stream>& streams) {
  gsf_init();
  GsfOutput* mem = gsf_output_memory_new();
  GsfOutfile* root = gsf_outfile_msole_new(mem);
  std::map<std::string, GsfOutfile*> dirs;
  for (const auto& s : streams) {
    GsfOutfile* parent = root;
    std::string name = s.path;
    if (auto slash = name.find('/'); slash != std::string::npos) {
      std::string dir = name.substr(0, slash);
      if (!dirs.count(dir)) dirs[dir] = GSF_OUTFILE(gsf_outfile_new_child(root, dir.c_str(), TRUE));
      parent = dirs[dir];
      name = name.substr(slash + 1);
    }
    GsfOutput* child = gsf_outfile_new_child(parent, name.c_str(), FALSE);
    gsf_output_write(child, s.data.size(), reinterpret_cast<const guint8*>(s.data.data()));
    gsf_output_close(child);
    g_object_unref(child);
  }
  for (auto& [name, dir] : dirs) {
    gsf_output_close(GSF_OUTPUT(dir));
    g_object_unref(dir);
  }
  gsf_output_close(GSF_OUTPUT(root));
  g_object_unref(root);
  const auto* bytes = gsf_output_memory_get_bytes(GSF_OUTPUT_MEMORY(mem));
  std::string out(reinterpret_cast<const char*>(bytes), static_cast<size_t>(gsf_output_size(mem)));
  g_object_unref(mem);
  return out;
}

std::string Utf16(std::string_view ascii) {
  std::string out;
  for (char c : ascii) {
    out.push_back(c);
    out.push_back('\0');
  }
  return out;
}

// A PowerPoint record header: version/instance, type, length.
std::string PptRecord(uint16_t ver_inst, uint16_t type, const std::string& body) {
  std::string out;
  Put16(&out, ver_inst);
  Put16(&out, type);
  Put32(&out, static_cast<uint32_t>(body.size()));
  return out + body;
}

// ---- Documents that read well ----

TEST(OfficeTest, DocxTextAndCoreProperties) {
  std::string xml = WordXml(
      "<w:p><w:r><w:t>Quarterly</w:t></w:r><w:r><w:tab/><w:t xml:space=\"preserve\">budget "
      "review</w:t></w:r></w:p>"
      "<w:p><w:r><w:delText>removed</w:delText></w:r><w:r><w:instrText>HYPERLINK x</w:instrText></w:r>"
      "<w:r><w:t>caf\xC3\xA9</w:t></w:r></w:p>");
  std::string core = R"(<?xml version="1.0"?><cp:coreProperties
    xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties"
    xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/">
    <dc:title>Budget 2026</dc:title><dc:creator>Alice Example</dc:creator>
    <dcterms:created>2014-08-25T13:47:00Z</dcterms:created>
    <dcterms:modified>2014-08-26T00:00:00+02:00</dcterms:modified>
    </cp:coreProperties>)";
  Extraction e = ExtractAll(Docx(xml, core), kDocx);
  EXPECT_EQ(e.problem, "");
  EXPECT_NE(e.text.find("Quarterly\tbudget review"), std::string::npos) << e.text;
  EXPECT_NE(e.text.find("caf\xC3\xA9"), std::string::npos) << e.text;
  EXPECT_EQ(e.text.find("removed"), std::string::npos) << "deleted text is not the document's";
  EXPECT_EQ(e.text.find("HYPERLINK"), std::string::npos) << "field codes are not text";
  EXPECT_EQ(e.title, "Budget 2026");
  EXPECT_EQ(e.author, "Alice Example");
  ASSERT_TRUE(e.created_ns && e.saved_ns);
  EXPECT_EQ(*e.created_ns, 1408974420ll * 1000000000);         // 2014-08-25T13:47:00Z
  EXPECT_EQ(*e.saved_ns, (1409011200ll - 7200) * 1000000000);  // midnight at +02:00
  EXPECT_EQ(e.text.rfind("Budget 2026\nAlice Example\n", 0), 0u)
      << "title and author lead the text: " << e.text;
}

TEST(OfficeTest, XlsxCellsWithSharedStrings) {
  std::string shared = R"(<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">
    <si><t>Revenue</t></si><si><r><t>Tok</t></r><r><t>yo</t></r><rPh><t>toukyou</t></rPh></si></sst>)";
  std::string sheet =
      R"(<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>
    <row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1"><v>1234.5</v></c></row>
    <row r="2"><c r="A2" t="s"><v>1</v></c><c r="B2" t="inlineStr"><is><t>inline words</t></is></c></row>
    </sheetData></worksheet>)";
  std::string book = R"(<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>
    <sheet name="Sales Q1" sheetId="1" r:id="rId1"/></sheets></workbook>)";
  Extraction e = ExtractAll(
      MakeZip(
          {{"xl/workbook.xml", book}, {"xl/sharedStrings.xml", shared}, {"xl/worksheets/sheet1.xml", sheet}}),
      kXlsx);
  EXPECT_EQ(e.problem, "");
  EXPECT_NE(e.text.find("Sales Q1"), std::string::npos) << e.text;
  EXPECT_NE(e.text.find("Revenue\t1234.5"), std::string::npos) << e.text;
  EXPECT_NE(e.text.find("Tokyo\tinline words"), std::string::npos) << e.text;
  EXPECT_EQ(e.text.find("toukyou"), std::string::npos) << "phonetic guides are left out";
}

TEST(OfficeTest, PptxSlidesInNumericOrder) {
  auto slide = [](const char* text) {
    return std::string(R"(<p:sld xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main"
      xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"><a:p><a:r><a:t>)") +
           text + "</a:t></a:r></a:p></p:sld>";
  };
  Extraction e = ExtractAll(MakeZip({{"ppt/presentation.xml", "<p/>"},
                                     {"ppt/slides/slide10.xml", slide("tenth")},
                                     {"ppt/slides/slide2.xml", slide("second")},
                                     {"ppt/slides/slide1.xml", slide("first")}}),
                            kPptx);
  EXPECT_EQ(e.problem, "");
  EXPECT_EQ(e.text, "first\n\nsecond\n\ntenth");
}

TEST(OfficeTest, OpenDocumentBodyAndMeta) {
  std::string content =
      R"(<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"
    xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"><office:automatic-styles/><office:body>
    <office:text><text:h>Heading</text:h><text:p>one<text:s/>two<text:tab/>three</text:p></office:text>
    </office:body></office:document-content>)";
  std::string meta = R"(<office:document-meta xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"
    xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0" xmlns:dc="http://purl.org/dc/elements/1.1/">
    <office:meta><dc:title>Minutes</dc:title><meta:initial-creator>Bob</meta:initial-creator>
    <dc:creator>Carol</dc:creator><meta:creation-date>2020-01-02T03:04:05</meta:creation-date>
    <dc:date>2020-02-03T00:00:00</dc:date></office:meta></office:document-meta>)";
  Extraction e =
      ExtractAll(MakeZip({{"mimetype", kOdt, false}, {"content.xml", content}, {"meta.xml", meta}}), kOdt);
  EXPECT_EQ(e.problem, "");
  EXPECT_NE(e.text.find("Heading\none two\tthree"), std::string::npos) << e.text;
  EXPECT_EQ(e.title, "Minutes");
  EXPECT_EQ(e.author, "Bob") << "the initial creator is the author";
  ASSERT_TRUE(e.created_ns && e.saved_ns);
  EXPECT_EQ(*e.created_ns, 1577934245ll * 1000000000);
  EXPECT_EQ(*e.saved_ns, 1580688000ll * 1000000000);
}

TEST(OfficeTest, EpubChaptersInSpineOrder) {
  std::string container = R"(<container xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>
    <rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/></rootfiles></container>)";
  std::string opf =
      R"(<package xmlns="http://www.idpf.org/2007/opf" xmlns:dc="http://purl.org/dc/elements/1.1/">
    <metadata><dc:title>A Book</dc:title><dc:creator>Dana</dc:creator><dc:date>2001-05-06</dc:date></metadata>
    <manifest><item id="c1" href="ch%201.xhtml"/><item id="c2" href="ch2.xhtml"/></manifest>
    <spine><itemref idref="c2"/><itemref idref="c1"/></spine></package>)";
  auto page = [](const char* text) {
    return std::string("<!DOCTYPE html><html xmlns=\"http://www.w3.org/1999/xhtml\"><body><p>") + text +
           "&nbsp;end</p></body></html>";
  };
  Extraction e = ExtractAll(MakeZip({{"mimetype", "application/epub+zip", false},
                                     {"META-INF/container.xml", container},
                                     {"OEBPS/content.opf", opf},
                                     {"OEBPS/ch 1.xhtml", page("alpha")},
                                     {"OEBPS/ch2.xhtml", page("beta")}}),
                            "application/epub+zip");
  EXPECT_EQ(e.problem, "");
  size_t a = e.text.find("alpha"), b = e.text.find("beta");
  ASSERT_NE(a, std::string::npos) << e.text;
  ASSERT_NE(b, std::string::npos) << e.text;
  EXPECT_LT(b, a) << "the spine puts chapter 2 first";
  EXPECT_EQ(e.title, "A Book");
  EXPECT_EQ(e.author, "Dana");
  EXPECT_TRUE(e.created_ns.has_value());
}

TEST(OfficeTest, ZipArchiveGivesMemberNames) {
  Extraction e = ExtractAll(MakeZip({{"reports/2026/plan.txt", "x"}, {"photos/beach.jpg", "y", true, true}}),
                            "application/zip");
  EXPECT_EQ(e.problem, "") << "names are readable even where contents are encrypted";
  EXPECT_EQ(e.text, "reports/2026/plan.txt\nphotos/beach.jpg");
}

TEST(OfficeTest, ZipKindComesFromItsMembersWhenTheTypeSaysZip) {
  Extraction e =
      ExtractAll(Docx(WordXml("<w:p><w:r><w:t>renamed report</w:t></w:r></w:p>")), "application/zip");
  EXPECT_EQ(e.problem, "");
  EXPECT_EQ(e.text, "renamed report");
  Extraction macro = ExtractAll(Docx(WordXml("<w:p><w:r><w:t>with macros</w:t></w:r></w:p>")),
                                "application/vnd.ms-word.document.macroEnabled.12");
  EXPECT_EQ(macro.text, "with macros");
}

TEST(OfficeTest, RtfControlWordsUnicodeAndInfo) {
  std::string rtf =
      "{\\rtf1\\ansi\\ansicpg1252\\deff0{\\fonttbl{\\f0 Times New Roman;}}{\\colortbl;\\red0\\green0\\blue0;}"
      "{\\info{\\title Annual Report}{\\author Erin}{\\creatim\\yr2015\\mo3\\dy4\\hr5\\min6}}"
      "{\\*\\generator Riched20;}\\pard Caf\\'e9 na\\u239?ve\\par"
      "{\\field{\\*\\fldinst HYPERLINK \"http://x\"}{\\fldrslt link text}}\\tab end"
      "{\\pict\\pngblip 89504e47}{\\*\\unknowndest hidden}\\par\\u-10179?\\u-8704? }";
  Extraction e = ExtractAll(rtf, "application/rtf");
  EXPECT_EQ(e.problem, "");
  EXPECT_NE(e.text.find("Caf\xC3\xA9 na\xC3\xAFve\nlink text\tend"), std::string::npos) << e.text;
  EXPECT_EQ(e.text.find("HYPERLINK"), std::string::npos) << e.text;
  EXPECT_EQ(e.text.find("hidden"), std::string::npos) << e.text;
  EXPECT_EQ(e.text.find("Times"), std::string::npos) << e.text;
  EXPECT_EQ(e.text.find("89504e47"), std::string::npos) << e.text;
  EXPECT_NE(e.text.find("\xF0\x9F\x98\x80"), std::string::npos) << "a surrogate pair: " << e.text;
  EXPECT_EQ(e.title, "Annual Report");
  EXPECT_EQ(e.author, "Erin");
  ASSERT_TRUE(e.created_ns.has_value());
  EXPECT_EQ(*e.created_ns, 1425445560ll * 1000000000);  // 2015-03-04 05:06 UTC
}

TEST(OfficeTest, JapaneseRtfAndMail) {
  // Shift_JIS bytes in an RTF of code page 932: "東京" is 93 8C 8B 9E.
  Extraction rtf = ExtractAll("{\\rtf1\\ansi\\ansicpg932 \\'93\\'8c\\'8b\\'9e\\par}", "application/rtf");
  EXPECT_EQ(rtf.text, "\xE6\x9D\xB1\xE4\xBA\xAC");
  // ISO-2022-JP, as Japanese mail is sent: "会議" in the subject (B-encoded) and the body.
  std::string mail =
      "Subject: =?ISO-2022-JP?B?GyRCMnE1RBsoQg==?=\r\n"
      "Content-Type: text/plain; charset=ISO-2022-JP\r\n\r\n"
      "\x1B$B2q5D\x1B(B\r\n";
  Extraction eml = ExtractAll(mail, "message/rfc822");
  EXPECT_EQ(eml.title, "\xE4\xBC\x9A\xE8\xAD\xB0");
  EXPECT_NE(eml.text.find("\xE4\xBC\x9A\xE8\xAD\xB0"), std::string::npos) << eml.text;
}

TEST(OfficeTest, MailPartsHeadersAndAttachmentNames) {
  std::string eml =
      "From: =?UTF-8?B?SsO8cmdlbg==?= <j@example.com>\r\n"
      "To: team@example.com\r\n"
      "Subject: =?ISO-8859-1?Q?R=E9union?= =?ISO-8859-1?Q?_demain?=\r\n"
      "Date: Sat, 27 Mar 2010 12:11:21 -0100\r\n"
      "MIME-Version: 1.0\r\n"
      "Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n"
      "preamble\r\n--outer\r\n"
      "Content-Type: multipart/alternative; boundary=inner\r\n\r\n"
      "--inner\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: "
      "quoted-printable\r\n\r\n"
      "Caf=E9 at ten, long li=\r\nne joined\r\n"
      "--inner\r\nContent-Type: text/html\r\n\r\n<p>html rendering</p>\r\n--inner--\r\n"
      "--outer\r\nContent-Type: application/pdf; name=\"agenda.pdf\"\r\nContent-Transfer-Encoding: base64\r\n"
      "Content-Disposition: attachment; filename*=UTF-8''Pr%C3%A9sentation%20finale.pdf\r\n\r\nJVBERi0=\r\n"
      "--outer\r\nContent-Type: message/rfc822\r\n\r\nSubject: forwarded note\r\n\r\ninner body words\r\n"
      "--outer--\r\n";
  Extraction e = ExtractAll(eml, "message/rfc822");
  EXPECT_EQ(e.problem, "");
  EXPECT_EQ(e.title, "R\xC3\xA9union demain");
  EXPECT_EQ(e.author, "J\xC3\xBCrgen <j@example.com>");
  ASSERT_TRUE(e.created_ns.has_value());
  EXPECT_EQ(*e.created_ns, (1269691881ll + 3600) * 1000000000);
  EXPECT_NE(e.text.find("Caf\xC3\xA9 at ten, long line joined"), std::string::npos) << e.text;
  EXPECT_EQ(e.text.find("html rendering"), std::string::npos) << "plain text preferred: " << e.text;
  EXPECT_NE(e.text.find("Attachment: Pr\xC3\xA9sentation finale.pdf"), std::string::npos) << e.text;
  EXPECT_EQ(e.text.find("JVBERi0"), std::string::npos) << e.text;
  EXPECT_NE(e.text.find("forwarded note"), std::string::npos) << e.text;
  EXPECT_NE(e.text.find("inner body words"), std::string::npos) << e.text;
  EXPECT_NE(e.text.find("To: team@example.com"), std::string::npos) << e.text;
}

TEST(OfficeTest, PowerPointTextAtoms) {
  std::string atoms =
      PptRecord(0, 0x0FA0, Utf16("Slide title")) + PptRecord(0, 0x0FA8, "body \x93quoted\x94");
  std::string master = PptRecord(0x000F, 0x03F8, PptRecord(0, 0x0FA8, "Click to edit Master title style"));
  std::string doc = PptRecord(0x000F, 0x03E8, master + PptRecord(0x000F, 0x0FF0, atoms));
  Extraction e = ExtractAll(MakeOle({{"PowerPoint Document", doc}, {"Current User", std::string(20, '\0')}}),
                            "application/vnd.ms-powerpoint");
  EXPECT_EQ(e.problem, "");
  EXPECT_EQ(e.text, "Slide title\nbody \xE2\x80\x9Cquoted\xE2\x80\x9D");
}

TEST(OfficeTest, OutlookMessageFieldsBodyAndAttachments) {
  std::string props(32, '\0');
  Put32(&props, 0x00390040);  // PR_CLIENT_SUBMIT_TIME, PT_SYSTIME
  Put32(&props, 0);
  Put32(&props, 0xD53E8000u);  // FILETIME 116444736000000000 + 1 s... low part
  Put32(&props, 0x019DB1DEu);
  Extraction e =
      ExtractAll(MakeOle({{"__substg1.0_0037001F", Utf16("Lunch plans")},
                          {"__substg1.0_0C1A001F", Utf16("Frank")},
                          {"__substg1.0_1000001F", Utf16("Meet at noon by the fountain.")},
                          {"__properties_version1.0", props},
                          {"__attach_version1.0_#00000000/__substg1.0_3707001F", Utf16("map of park.png")}}),
                 "application/vnd.ms-outlook");
  EXPECT_EQ(e.problem, "");
  EXPECT_EQ(e.title, "Lunch plans");
  EXPECT_EQ(e.author, "Frank");
  ASSERT_TRUE(e.created_ns.has_value());
  EXPECT_EQ(*e.created_ns, 0);  // 1970-01-01: the FILETIME of the epoch
  EXPECT_NE(e.text.find("Meet at noon by the fountain."), std::string::npos) << e.text;
  EXPECT_NE(e.text.find("Attachment: map of park.png"), std::string::npos) << e.text;
}

// ---- Hostile and broken files: a reason, quickly, never a crash or a hang ----

TEST(OfficeTest, ZipBombIsRefusedByRatio) {
  std::string spaces(8 << 20, ' ');  // deflates about 1000:1
  // Between elements, where no text is kept: the reader would inflate it all.
  Extraction e = ExtractAll(Docx(WordXml("<w:p>" + spaces + "</w:p>")), kDocx);
  EXPECT_NE(e.problem.find("zip bomb"), std::string::npos) << e.problem;
  EXPECT_EQ(e.text, "");
}

TEST(OfficeTest, ZipBombIsRefusedBySize) {
  ExtractOptions o;
  o.max_zip_ratio = 1000000;  // the ratio alone would let it through
  o.max_member_bytes = 4 << 20;
  // Field codes are no text: the reader goes through all of them.
  std::string big =
      WordXml("<w:p><w:r><w:instrText>" + std::string(6 << 20, 'a') + "</w:instrText></w:r></w:p>");
  Extraction e = ExtractAll(Docx(big), kDocx, o);
  EXPECT_NE(e.problem.find("decompresses to more than 4 MiB"), std::string::npos) << e.problem;
  // A directory that understates the size changes nothing: the bytes produced are counted.
  Extraction lying = ExtractAll(MakeZip({{"word/document.xml", big, true, false, 100}}), kDocx, o);
  EXPECT_NE(lying.problem, "");
  // Many members that are each fine but too much together.
  o.max_member_bytes = 64 << 20;
  o.max_unpacked_bytes = 8 << 20;
  std::vector<Member> many = {{"word/document.xml", WordXml("<w:p/>")}};
  for (int i = 1; i <= 5; ++i)
    many.push_back(
        {"word/header" + std::to_string(i) + ".xml", "<hdr>" + std::string(2 << 20, ' ') + "</hdr>"});
  Extraction total = ExtractAll(MakeZip(many), kDocx, o);
  EXPECT_NE(total.problem.find("decompresses to more than 8 MiB"), std::string::npos) << total.problem;
}

TEST(OfficeTest, TooManyMembersIsRefused) {
  ExtractOptions o;
  o.max_members = 100;
  std::vector<Member> m;
  for (int i = 0; i < 101; ++i) m.push_back({std::to_string(i) + ".txt", "", false});
  EXPECT_NE(ExtractAll(MakeZip(m), "application/zip", o).problem.find("more than 100 members"),
            std::string::npos);
}

TEST(OfficeTest, BillionLaughsIsRefused) {
  std::string xml = "<?xml version=\"1.0\"?><!DOCTYPE w:document [<!ENTITY lol \"lol\">";
  for (int i = 1; i <= 9; ++i) {
    xml += "<!ENTITY lol" + std::to_string(i) + " \"";
    for (int k = 0; k < 10; ++k) xml += "&lol" + (i > 1 ? std::to_string(i - 1) : std::string()) + ";";
    xml += "\">";
  }
  xml += "]><w:document " + std::string(kWordNs) +
         "><w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>";
  Extraction e = ExtractAll(Docx(xml), kDocx);
  EXPECT_NE(e.problem.find("entities"), std::string::npos) << e.problem;
  EXPECT_EQ(e.text, "");
}

TEST(OfficeTest, DeepNestingIsRefused) {
  std::string open, close;
  for (int i = 0; i < 10000; ++i) {
    open += "<w:sdt>";
    close = "</w:sdt>" + close;
  }
  Extraction docx = ExtractAll(Docx(WordXml(open + close)), kDocx);
  EXPECT_NE(docx.problem.find("nested deeper than 256"), std::string::npos) << docx.problem;

  Extraction rtf = ExtractAll("{\\rtf1 " + std::string(10000, '{') + "x" + std::string(10000, '}') + "}",
                              "application/rtf");
  EXPECT_NE(rtf.problem.find("nested deeper than 256"), std::string::npos) << rtf.problem;

  std::string mail = "Subject: deep\r\n";
  for (int i = 0; i < 1000; ++i) {
    mail += "Content-Type: multipart/mixed; boundary=b" + std::to_string(i) + "\r\n\r\n--b" +
            std::to_string(i) + "\r\n";
  }
  Extraction eml = ExtractAll(mail, "message/rfc822");
  EXPECT_NE(eml.problem.find("nested deeper than 256"), std::string::npos) << eml.problem;
  // Messages attached inside messages: each level is a decoded copy, so the copies are capped too.
  ExtractOptions o;
  o.max_unpacked_bytes = 1 << 20;
  std::string nested = std::string(300 << 10, 'x');
  for (int i = 0; i < 10; ++i) nested = "Content-Type: message/rfc822\r\n\r\n" + nested;
  Extraction copies = ExtractAll(nested, "message/rfc822", o);
  EXPECT_NE(copies.problem.find("decompresses to more than 1 MiB"), std::string::npos) << copies.problem;
}

TEST(OfficeTest, DamagedContainersSayWhy) {
  std::string docx = Docx(WordXml("<w:p><w:r><w:t>hello</w:t></w:r></w:p>"));
  EXPECT_NE(ExtractAll(docx.substr(0, docx.size() / 2), kDocx).problem.find("damaged zip"),
            std::string::npos);
  EXPECT_NE(ExtractAll(std::string("PK\x03\x04") + std::string(100, 'x'), kDocx).problem, "");
  EXPECT_NE(ExtractAll(docx, kXlsx).problem.find("xl/workbook.xml is missing"), std::string::npos);
  std::string corrupt_member = docx;
  corrupt_member[40] ^= 0x55;  // inside the deflated document.xml
  EXPECT_NE(ExtractAll(corrupt_member, kDocx).problem, "");
  EXPECT_NE(ExtractAll(Docx(WordXml("<w:p><unclosed>")), kDocx).problem.find("malformed XML"),
            std::string::npos);
  std::string ole = MakeOle({{"WordDocument", "short"}});
  EXPECT_NE(ExtractAll(ole, "application/msword").problem.find("damaged Word document"), std::string::npos);
  EXPECT_NE(ExtractAll(ole.substr(0, 700), "application/msword").problem, "");
  EXPECT_NE(ExtractAll("not an office file", "application/msword").problem, "");
  std::string word95(0x200, '\0');
  word95[0] = '\xEC';
  word95[1] = '\xA5';
  word95[2] = 0x68;  // nFib of Word 95
  EXPECT_NE(ExtractAll(MakeOle({{"WordDocument", word95}}), "application/msword").problem.find("Word 6/95"),
            std::string::npos);
  Extraction thumbs = ExtractAll(MakeOle({{"Catalog", std::string(64, '\0')}}), "application/x-ole-storage");
  EXPECT_EQ(thumbs.problem, "")
      << "an OLE2 file of another kind (Thumbs.db) has no text, and that is no failure";
  EXPECT_EQ(thumbs.text, "");
  EXPECT_NE(ExtractAll("{\\rtf1 unterminated {\\b bold", "application/rtf").problem, "x") << "no crash";
}

TEST(OfficeTest, EncryptedFilesSayEncrypted) {
  // Password-protected OOXML: an OLE2 file holding EncryptionInfo and EncryptedPackage, named .docx.
  std::string shell =
      MakeOle({{"EncryptionInfo", std::string(64, '\x04')}, {"EncryptedPackage", std::string(4096, 'z')}});
  Extraction e = ExtractAll(shell, kDocx);
  EXPECT_NE(e.problem.find("encrypted"), std::string::npos) << e.problem;
  // A zip member with the encryption flag.
  Extraction member = ExtractAll(MakeZip({{"word/document.xml", WordXml(""), false, true}}), kDocx);
  EXPECT_NE(member.problem.find("encrypted"), std::string::npos) << member.problem;
  // Encrypted Word 97: the FIB's fEncrypted bit.
  std::string fib(0x200, '\0');
  fib[0] = '\xEC';
  fib[1] = '\xA5';
  fib[2] = '\xC1';   // nFib 193
  fib[0x0B] = 0x01;  // flags: fEncrypted
  Extraction doc =
      ExtractAll(MakeOle({{"WordDocument", fib}, {"0Table", std::string(512, '\0')}}), "application/msword");
  EXPECT_NE(doc.problem.find("encrypted Word document"), std::string::npos) << doc.problem;
  // Encrypted Excel 97: a FilePass record after the workbook's BOF.
  std::string book;
  Put16(&book, 0x0809);
  Put16(&book, 16);
  Put16(&book, 0x0600);
  book += std::string(14, '\0');
  Put16(&book, 0x002F);
  Put16(&book, 6);
  book += std::string(6, '\1');
  Extraction xls = ExtractAll(MakeOle({{"Workbook", book}}), "application/vnd.ms-excel");
  EXPECT_NE(xls.problem.find("encrypted Excel workbook"), std::string::npos) << xls.problem;
  // OpenDocument with encryption data in its manifest.
  Extraction odt = ExtractAll(
      MakeZip({{"content.xml", "\x01\x02garbage"}, {"META-INF/manifest.xml", "<manifest:encryption-data/>"}}),
      kOdt);
  EXPECT_NE(odt.problem.find("encrypted"), std::string::npos) << odt.problem;
}

TEST(OfficeTest, TooLargeOrPartlyReadFilesAreNotParsed) {
  ExtractOptions o;
  o.max_office_bytes = 1000;
  std::string docx = Docx(WordXml("<w:p><w:r><w:t>" + std::string(2000, 'a') + "</w:t></w:r></w:p>"));
  EXPECT_GE(BytesWanted(kDocx, o), 1001u);
  EXPECT_NE(Extract(docx, 5000, kDocx, o).problem.find("larger than"), std::string::npos);
  EXPECT_NE(Extract(docx.substr(0, 100), docx.size(), kDocx, {}).problem.find("partly read"),
            std::string::npos);
  // A plain archive over the limit keeps no names, and that is no failure.
  Extraction big = Extract(MakeZip({{"a.txt", "x"}}), 5000, "application/zip", o);
  EXPECT_EQ(big.problem, "");
  EXPECT_EQ(big.text, "");
}

TEST(OfficeTest, TimeBudgetStopsLongWork) {
  ExtractOptions o;
  o.office_time_ms = 0;  // spent before the first chunk is parsed
  Extraction docx = ExtractAll(Docx(WordXml("<w:p><w:r><w:t>words</w:t></w:r></w:p>")), kDocx, o);
  EXPECT_NE(docx.problem.find("took longer than 0 ms"), std::string::npos) << docx.problem;
  std::string rtf = "{\\rtf1 ";
  for (int i = 0; i < 20000; ++i) rtf += "word\\par ";
  Extraction r = ExtractAll(rtf + "}", "application/rtf", o);
  EXPECT_NE(r.problem.find("took longer than 0 ms"), std::string::npos) << r.problem;
  EXPECT_NE(ExtractAll(MakeOle({{"WordDocument", std::string(1024, '\0')}}), "application/msword", o)
                .problem.find("took longer"),
            std::string::npos);
}

TEST(OfficeTest, AHugeSheetStopsInflatingOnceTheTextIsFull) {
  ExtractOptions o;
  o.max_text_bytes = 1000;
  o.max_member_bytes = 1 << 20;  // the sheet is 4 MiB: reading it to its end would break this cap
  std::string rows;
  for (int r = 1; rows.size() < (4u << 20); ++r)
    rows += "<row><c t=\"inlineStr\"><is><t>cell " + std::to_string(r) + "</t></is></c></row>";
  std::string sheet = "<worksheet><sheetData>" + rows + "</sheetData></worksheet>";
  Extraction e = ExtractAll(
      MakeZip({{"xl/workbook.xml", "<workbook/>"}, {"xl/worksheets/sheet1.xml", sheet}}), kXlsx, o);
  EXPECT_EQ(e.problem, "");
  EXPECT_EQ(e.text.substr(0, 14), "cell 1\t\ncell 2");
  EXPECT_LE(e.text.size(), 1000u);
}

TEST(OfficeTest, TextIsCutToTheLimit) {
  ExtractOptions o;
  o.max_text_bytes = 100;
  Extraction e =
      ExtractAll(Docx(WordXml("<w:p><w:r><w:t>" + std::string(5000, 'w') + "</w:t></w:r></w:p>")), kDocx, o);
  EXPECT_EQ(e.problem, "");
  EXPECT_EQ(e.text.size(), 100u);
}

// ---- The textract corpus: every word of the known text is found, in every format ----

std::string Shared() {
  const char* env = std::getenv("FILESEARCH_SHARED_DIR");
  return std::string(env != nullptr && *env != '\0' ? env : "../shared");
}

std::string ReadFile(const stdfs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Lower-case ASCII letter runs: what "every word" means for these files (numbers are formatted
// differently by each program that wrote them).
std::set<std::string> Words(std::string_view text) {
  std::set<std::string> out;
  std::string w;
  for (char c : text) {
    if (std::isalpha(static_cast<unsigned char>(c))) {
      w.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    } else if (!w.empty()) {
      out.insert(std::move(w));
      w.clear();
    }
  }
  if (!w.empty()) out.insert(w);
  return out;
}

struct CorpusFormat {
  const char* ext;
  const char* mime;
};

constexpr CorpusFormat kCorpus[] = {{"docx", kDocx},
                                    {"xlsx", kXlsx},
                                    {"pptx", kPptx},
                                    {"odt", kOdt},
                                    {"ods", "application/vnd.oasis.opendocument.spreadsheet"},
                                    {"epub", "application/epub+zip"},
                                    {"rtf", "application/rtf"},
                                    {"eml", "message/rfc822"},
                                    {"doc", "application/msword"},
                                    {"xls", "application/vnd.ms-excel"},
                                    {"msg", "application/vnd.ms-outlook"}};

class OfficeCorpusTest : public ::testing::TestWithParam<CorpusFormat> {};

TEST_P(OfficeCorpusTest, EveryWordOfTheKnownTextIsFound) {
  const stdfs::path dir = stdfs::path(Shared()) / "corpus/docs/textract/tests" / GetParam().ext;
  if (!stdfs::exists(dir))
    GTEST_SKIP() << "no " << dir << ": the shared corpus is missing (set FILESEARCH_SHARED_DIR)";
  const std::string standard =
      ReadFile(stdfs::path(Shared()) / "corpus/docs/textract/tests/txt/standardized_text.txt");
  int checked = 0;
  for (const auto& entry : stdfs::directory_iterator(dir)) {
    if (entry.path().extension() != std::string(".") + GetParam().ext) continue;
    const std::string stem = entry.path().stem().string();
    // standardized_text*.EXT hold the standard sentence; raw_text.EXT the text in raw_text.txt.
    std::string expected;
    if (stem.rfind("standardized_text", 0) == 0)
      expected = standard;
    else if (stdfs::exists(dir / (stem + ".txt")))
      expected = ReadFile(dir / (stem + ".txt"));
    else
      continue;
    ExtractOptions o;
    o.max_text_bytes = 8 << 20;
    Extraction e = ExtractAll(ReadFile(entry.path()), GetParam().mime, o);
    EXPECT_EQ(e.problem, "") << entry.path();
    std::set<std::string> found = Words(e.text);
    std::string missing;
    for (const auto& w : Words(expected)) {
      if (!found.count(w)) missing += " " + w;
    }
    EXPECT_EQ(missing, "") << entry.path() << " misses words; its text:\n" << e.text.substr(0, 2000);
    ++checked;
  }
  EXPECT_GT(checked, 0) << "no file with a known text in " << dir;
}

// Damaged copies (bytes flipped, tails cut) of every corpus file and of the files built above: each
// gives text or a reason, never a crash or a hang (run it under FILESEARCH_SANITIZE=address,undefined).
TEST_P(OfficeCorpusTest, DamagedCopiesGiveTextOrAReason) {
  const stdfs::path dir = stdfs::path(Shared()) / "corpus/docs/textract/tests" / GetParam().ext;
  std::vector<std::string> originals;
  if (stdfs::exists(dir)) {
    for (const auto& entry : stdfs::directory_iterator(dir)) {
      if (entry.path().extension() == std::string(".") + GetParam().ext)
        originals.push_back(ReadFile(entry.path()));
    }
  }
  if (std::string(GetParam().ext) == "docx")
    originals.push_back(Docx(WordXml("<w:p><w:r><w:t>x</w:t></w:r></w:p>")));
  if (originals.empty()) GTEST_SKIP() << "no " << dir << ": the shared corpus is missing";
  uint64_t state = 0x9E3779B97F4A7C15ull;
  auto next = [&state] {  // xorshift64*: the same damage on every run
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * 0x2545F4914F6CDD1Dull;
  };
  int problems = 0;
  for (const auto& original : originals) {
    for (int round = 0; round < 40; ++round) {
      std::string damaged = original;
      if (round % 4 == 3) {
        damaged.resize(next() % damaged.size());
      } else {
        for (int flips = 1 + static_cast<int>(next() % 8); flips > 0; --flips) {
          damaged[next() % damaged.size()] = static_cast<char>(next());
        }
      }
      Extraction e = ExtractAll(damaged, GetParam().mime);
      EXPECT_TRUE(IsValidUtf8(e.text) && IsValidUtf8(e.title) && IsValidUtf8(e.author)) << "round " << round;
      problems += e.problem.empty() ? 0 : 1;
    }
  }
  RecordProperty("problems", problems);
}

INSTANTIATE_TEST_SUITE_P(Formats, OfficeCorpusTest, ::testing::ValuesIn(kCorpus),
                         [](const auto& param_info) { return std::string(param_info.param.ext); });

}  // namespace
}  // namespace fs
