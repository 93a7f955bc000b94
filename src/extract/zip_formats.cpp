// Zip-based formats: OOXML, OpenDocument, EPUB, and plain zips (member names). libzip reads the
// container; members are decompressed in chunks so the caps hold on the bytes actually produced,
// whatever sizes the directory claims.
#include <zip.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>

#include "core/utf8.h"
#include "extract/markup.h"
#include "extract/office.h"

namespace fs::extract_internal {
namespace {

bool StartsWith(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}
bool EndsWith(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

struct ZipCloser {
  void operator()(zip_t* z) const { zip_discard(z); }
};
struct ZipFileCloser {
  void operator()(zip_file_t* f) const { zip_fclose(f); }
};

struct ZipEntry {
  std::string name;
  uint64_t size = 0;       // as the directory claims
  uint64_t comp_size = 0;  // as the directory claims
  bool encrypted = false;
};

class ZipReader {
 public:
  static Result<std::unique_ptr<ZipReader>> Open(std::string_view bytes, Budget* budget) {
    zip_error_t error;
    zip_error_init(&error);
    zip_source_t* src = zip_source_buffer_create(bytes.data(), bytes.size(), 0, &error);
    if (!src) return Status::ResourceExhausted("cannot read the zip container");
    zip_t* z = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &error);
    if (!z) {
      std::string why = zip_error_strerror(&error);
      zip_source_free(src);
      zip_error_fini(&error);
      return Status::Corruption("damaged zip container (" + why + ")");
    }
    zip_error_fini(&error);
    auto reader = std::unique_ptr<ZipReader>(new ZipReader(z, budget));
    const zip_int64_t n = zip_get_num_entries(z, 0);
    if (n < 0 || static_cast<uint64_t>(n) > budget->options().max_members) {
      return Status::ResourceExhausted("zip has more than " + std::to_string(budget->options().max_members) +
                                       " members: text not extracted");
    }
    for (zip_int64_t i = 0; i < n; ++i) {
      zip_stat_t st;
      zip_stat_init(&st);
      if (zip_stat_index(z, static_cast<zip_uint64_t>(i), 0, &st) != 0 || !(st.valid & ZIP_STAT_NAME)) {
        return Status::Corruption("damaged zip directory entry " + std::to_string(i));
      }
      ZipEntry e;
      e.name = IsValidUtf8(st.name) ? std::string(st.name) : RepairUtf8(st.name);
      e.size = (st.valid & ZIP_STAT_SIZE) ? st.size : 0;
      e.comp_size = (st.valid & ZIP_STAT_COMP_SIZE) ? st.comp_size : 0;
      e.encrypted = (st.valid & ZIP_STAT_ENCRYPTION_METHOD) && st.encryption_method != ZIP_EM_NONE;
      reader->index_[e.name] = reader->entries_.size();
      reader->entries_.push_back(std::move(e));
    }
    return reader;
  }

  const std::vector<ZipEntry>& entries() const { return entries_; }
  const ZipEntry* Find(std::string_view name) const {
    auto it = index_.find(std::string(name));
    return it == index_.end() ? nullptr : &entries_[it->second];
  }

  // Streams member `e` to `sink` in chunks until its end or until `*done` turns true (the reader
  // has what it wants: a sheet whose first rows fill the text need not be inflated to its end).
  // Enforces the per-member, total and ratio caps on the bytes decompressed.
  Status Read(const ZipEntry& e, const std::function<Status(std::string_view, bool last)>& sink,
              const bool* done = nullptr) {
    const ExtractOptions& o = budget_->options();
    if (e.encrypted)
      return Status::PermissionDenied("encrypted (password-protected) zip member '" + e.name + "'");
    FS_RETURN_IF_ERROR(budget_->CheckTime());
    std::unique_ptr<zip_file_t, ZipFileCloser> f(zip_fopen(z_.get(), e.name.c_str(), 0));
    if (!f) {
      zip_error_t* err = zip_get_error(z_.get());
      if (zip_error_code_zip(err) == ZIP_ER_NOPASSWD || zip_error_code_zip(err) == ZIP_ER_WRONGPASSWD) {
        return Status::PermissionDenied("encrypted (password-protected) zip member '" + e.name + "'");
      }
      return Status::Corruption("cannot open zip member '" + e.name + "' (" + zip_error_strerror(err) + ")");
    }
    std::string buf(64 * 1024, '\0');
    uint64_t produced = 0;
    while (true) {
      zip_int64_t got = zip_fread(f.get(), buf.data(), buf.size());
      if (got < 0) {
        return Status::Corruption("damaged zip member '" + e.name + "' (" + zip_file_strerror(f.get()) + ")");
      }
      produced += static_cast<uint64_t>(got);
      if (produced > o.max_member_bytes) return MemberTooLarge(e);
      if (produced > (1u << 20) && produced / std::max<uint64_t>(e.comp_size, 1) > o.max_zip_ratio) {
        return Status::ResourceExhausted("zip member '" + e.name + "' expands more than " +
                                         std::to_string(o.max_zip_ratio) +
                                         "x (a zip bomb?): text not extracted");
      }
      FS_RETURN_IF_ERROR(budget_->AddUnpacked(static_cast<uint64_t>(got)));
      FS_RETURN_IF_ERROR(budget_->CheckTime());
      const bool last = got == 0;
      Status s = sink(std::string_view(buf.data(), static_cast<size_t>(got)), last);
      if (!s.ok() || last || (done && *done)) return s;
    }
  }

  Result<std::string> ReadAll(const ZipEntry& e) {
    if (e.size > budget_->options().max_member_bytes) return MemberTooLarge(e);  // all of it is needed
    std::string out;
    FS_RETURN_IF_ERROR(Read(e, [&](std::string_view chunk, bool) {
      out.append(chunk);
      return Status::Ok();
    }));
    return out;
  }

  // Parses member `name` as XML into `handler`.
  Status ReadXml(const ZipEntry& e, XmlHandler* handler) {
    XmlScanner scanner(handler, budget_->options().max_depth);
    bool done = false;
    return Read(
        e,
        [&](std::string_view chunk, bool last) {
          Status s = scanner.Feed(chunk, last);
          done = scanner.stopped();
          return s;
        },
        &done);
  }

 private:
  ZipReader(zip_t* z, Budget* budget) : z_(z), budget_(budget) {}
  Status MemberTooLarge(const ZipEntry& e) const {
    return Status::ResourceExhausted("zip member '" + e.name + "' decompresses to more than " +
                                     std::to_string(budget_->options().max_member_bytes >> 20) +
                                     " MiB: text not extracted");
  }

  std::unique_ptr<zip_t, ZipCloser> z_;
  Budget* budget_;
  std::vector<ZipEntry> entries_;
  std::map<std::string, size_t> index_;
};

// Natural order of numbered parts: slide2.xml before slide10.xml.
bool NaturalLess(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (std::isdigit(static_cast<unsigned char>(a[i])) && std::isdigit(static_cast<unsigned char>(b[j]))) {
      size_t ie = i, je = j;
      while (ie < a.size() && std::isdigit(static_cast<unsigned char>(a[ie]))) ++ie;
      while (je < b.size() && std::isdigit(static_cast<unsigned char>(b[je]))) ++je;
      std::string_view na(a.data() + i, ie - i), nb(b.data() + j, je - j);
      while (na.size() > 1 && na[0] == '0') na.remove_prefix(1);
      while (nb.size() > 1 && nb[0] == '0') nb.remove_prefix(1);
      if (na.size() != nb.size()) return na.size() < nb.size();
      if (na != nb) return na < nb;
      i = ie;
      j = je;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i;
      ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

// Members whose names start with `prefix` and end with `suffix`, in natural order.
std::vector<const ZipEntry*> Members(const ZipReader& zip, std::string_view prefix, std::string_view suffix) {
  std::vector<const ZipEntry*> out;
  for (const auto& e : zip.entries()) {
    if (StartsWith(e.name, prefix) && EndsWith(e.name, suffix) &&
        e.name.find('/', prefix.size()) == std::string::npos) {
      out.push_back(&e);
    }
  }
  std::sort(out.begin(), out.end(),
            [](const ZipEntry* a, const ZipEntry* b) { return NaturalLess(a->name, b->name); });
  return out;
}

// Text runs of WordprocessingML, DrawingML (slides) and SpreadsheetML shared strings: the content of
// <t> elements; <tab/>, <br/> and paragraph ends become whitespace. Deleted text (<w:delText>) and
// field codes (<w:instrText>) are not <t> and so are skipped.
class RunTextHandler : public XmlHandler {
 public:
  explicit RunTextHandler(TextSink* out) : out_(out) {}
  void Start(std::string_view local, const char**) override {
    if (local == "t")
      ++in_text_;
    else if (local == "tab")
      out_->Append("\t");
    else if (local == "br" || local == "cr")
      out_->Append("\n");
  }
  void End(std::string_view local) override {
    if (local == "t") {
      if (in_text_ > 0) --in_text_;
    } else if (local == "p" || local == "tr") {
      out_->Break();
    } else if (local == "tc") {
      out_->Append("\t");
    }
  }
  void Text(std::string_view s) override {
    if (in_text_) out_->Append(s);
  }
  bool Done() const override { return out_->Full(); }

 private:
  TextSink* out_;
  int in_text_ = 0;
};

// xl/sharedStrings.xml: one string per <si>, phonetic guides (<rPh>) left out.
class SharedStringsHandler : public XmlHandler {
 public:
  explicit SharedStringsHandler(std::vector<std::string>* out, size_t max_bytes)
      : out_(out), max_(max_bytes) {}
  void Start(std::string_view local, const char**) override {
    if (local == "si")
      out_->emplace_back();
    else if (local == "t")
      ++in_text_;
    else if (local == "rPh")
      ++in_phonetic_;
  }
  void End(std::string_view local) override {
    if (local == "t" && in_text_ > 0)
      --in_text_;
    else if (local == "rPh" && in_phonetic_ > 0)
      --in_phonetic_;
  }
  void Text(std::string_view s) override {
    if (in_text_ && !in_phonetic_ && !out_->empty() && bytes_ < max_) {
      out_->back().append(s);
      bytes_ += s.size();
    }
  }

 private:
  std::vector<std::string>* out_;
  size_t max_;
  size_t bytes_ = 0;
  int in_text_ = 0, in_phonetic_ = 0;
};

// A worksheet: cell values in row order, tab-separated; shared-string cells resolved.
class SheetHandler : public XmlHandler {
 public:
  SheetHandler(const std::vector<std::string>& shared, TextSink* out) : shared_(shared), out_(out) {}
  void Start(std::string_view local, const char** attrs) override {
    if (local == "c") {
      type_ = std::string(XmlAttr(attrs, "t"));
      value_.clear();
    } else if (local == "v" || local == "t") {
      ++in_value_;
    }
  }
  void End(std::string_view local) override {
    if ((local == "v" || local == "t") && in_value_ > 0) {
      --in_value_;
    } else if (local == "c") {
      if (type_ == "s") {
        char* end = nullptr;
        unsigned long i = std::strtoul(value_.c_str(), &end, 10);
        if (end != value_.c_str() && i < shared_.size()) out_->Append(shared_[i]);
      } else {
        out_->Append(value_);
      }
      out_->Append("\t");
    } else if (local == "row") {
      out_->Break();
    }
  }
  void Text(std::string_view s) override {
    if (in_value_ && value_.size() < (1u << 20)) value_.append(s);
  }
  bool Done() const override { return out_->Full(); }

 private:
  const std::vector<std::string>& shared_;
  TextSink* out_;
  std::string type_, value_;
  int in_value_ = 0;
};

// OpenDocument content.xml: everything inside <office:body>; paragraphs and rows end lines,
// <text:s/> is a space, <text:tab/> a tab, cells are tab-separated.
class OdfBodyHandler : public XmlHandler {
 public:
  explicit OdfBodyHandler(TextSink* out) : out_(out) {}
  void Start(std::string_view local, const char** attrs) override {
    if (local == "body") ++in_body_;
    if (!in_body_) return;
    if (local == "s") {
      std::string_view c = XmlAttr(attrs, "c");  // a run of c spaces
      out_->Append(std::string(std::clamp(c.empty() ? 1 : std::atoi(std::string(c).c_str()), 1, 100), ' '));
    } else if (local == "tab")
      out_->Append("\t");
    else if (local == "line-break")
      out_->Append("\n");
  }
  void End(std::string_view local) override {
    if (local == "body" && in_body_ > 0) --in_body_;
    if (!in_body_) return;
    // Annotations (cell comments) start with their author and date: keep them apart from the text.
    if (local == "p" || local == "h" || local == "table-row" || local == "list-item" || local == "creator" ||
        local == "date") {
      out_->Break();
    } else if (local == "table-cell")
      out_->Append("\t");
  }
  void Text(std::string_view s) override {
    if (in_body_) out_->Append(s);
  }
  bool Done() const override { return out_->Full(); }

 private:
  TextSink* out_;
  int in_body_ = 0;
};

// Dublin Core and friends: docProps/core.xml (OOXML), meta.xml (ODF), the OPF package (EPUB).
class MetadataHandler : public XmlHandler {
 public:
  // `dc_date_is_created`: in OPF dc:date is the publication date; in ODF meta.xml the last save.
  MetadataHandler(Extraction* out, bool dc_date_is_created)
      : out_(out), dc_date_is_created_(dc_date_is_created) {}
  void Start(std::string_view local, const char**) override {
    field_ = local;
    value_.clear();
  }
  void End(std::string_view local) override {
    if (local != field_) return;
    std::string v = Trim(value_);
    field_.clear();
    if (v.empty()) return;
    if (local == "title" && out_->title.empty()) {
      out_->title = v;
    } else if (local == "initial-creator") {
      out_->author = v;  // ODF: the original author outranks dc:creator (the last editor)
      have_initial_creator_ = true;
    } else if (local == "creator" && !have_initial_creator_ && out_->author.empty()) {
      out_->author = v;
    } else if (local == "created" || local == "creation-date") {
      out_->created_ns = ParseIsoTime(v);
    } else if (local == "modified" || (local == "date" && !dc_date_is_created_)) {
      out_->saved_ns = ParseIsoTime(v);
    } else if (local == "date" && !out_->created_ns) {
      out_->created_ns = ParseIsoTime(v);
    }
  }
  void Text(std::string_view s) override {
    if (!field_.empty() && value_.size() < 4096) value_.append(s);
  }

 private:
  static std::string Trim(const std::string& s) {
    size_t b = s.find_first_not_of(" \t\r\n");
    if (b == std::string::npos) return "";
    size_t e = s.find_last_not_of(" \t\r\n");
    return s.substr(b, e - b + 1);
  }
  Extraction* out_;
  bool dc_date_is_created_;
  bool have_initial_creator_ = false;
  std::string field_, value_;
};

// Reads optional metadata; a broken metadata part does not fail the document.
void ReadMetadata(ZipReader& zip, std::string_view member, bool dc_date_is_created, Extraction* out) {
  if (const ZipEntry* e = zip.Find(member)) {
    MetadataHandler h(out, dc_date_is_created);
    (void)zip.ReadXml(*e, &h);
  }
}

Status ReadParts(ZipReader& zip, const std::vector<const ZipEntry*>& parts, TextSink* sink) {
  for (const ZipEntry* e : parts) {
    if (sink->Full()) break;
    RunTextHandler h(sink);
    FS_RETURN_IF_ERROR(zip.ReadXml(*e, &h));
    sink->Break();
  }
  return Status::Ok();
}

Status WordText(ZipReader& zip, TextSink* sink) {
  const ZipEntry* main = zip.Find("word/document.xml");
  if (!main) return Status::Corruption("not a Word document: word/document.xml is missing");
  FS_RETURN_IF_ERROR(ReadParts(zip, {main}, sink));
  for (const char* part : {"header", "footer", "footnotes", "endnotes", "comments"}) {
    FS_RETURN_IF_ERROR(ReadParts(zip, Members(zip, std::string("word/") + part, ".xml"), sink));
  }
  return Status::Ok();
}

Status SlidesText(ZipReader& zip, TextSink* sink) {
  auto slides = Members(zip, "ppt/slides/slide", ".xml");
  if (slides.empty() && !zip.Find("ppt/presentation.xml")) {
    return Status::Corruption("not a PowerPoint presentation: ppt/presentation.xml is missing");
  }
  FS_RETURN_IF_ERROR(ReadParts(zip, slides, sink));
  return ReadParts(zip, Members(zip, "ppt/notesSlides/notesSlide", ".xml"), sink);
}

// Sheet names from xl/workbook.xml.
class SheetNamesHandler : public XmlHandler {
 public:
  explicit SheetNamesHandler(TextSink* out) : out_(out) {}
  void Start(std::string_view local, const char** attrs) override {
    if (local == "sheet") {
      out_->Append(XmlAttr(attrs, "name"));
      out_->Break();
    }
  }
  void End(std::string_view) override {}
  void Text(std::string_view) override {}

 private:
  TextSink* out_;
};

Status SpreadsheetText(ZipReader& zip, TextSink* sink) {
  const ZipEntry* book = zip.Find("xl/workbook.xml");
  if (!book) return Status::Corruption("not an Excel workbook: xl/workbook.xml is missing");
  SheetNamesHandler names(sink);
  FS_RETURN_IF_ERROR(zip.ReadXml(*book, &names));
  std::vector<std::string> shared;
  if (const ZipEntry* e = zip.Find("xl/sharedStrings.xml")) {
    SharedStringsHandler h(&shared, size_t{64} << 20);  // the member cap bounds it too
    FS_RETURN_IF_ERROR(zip.ReadXml(*e, &h));
  }
  for (const ZipEntry* e : Members(zip, "xl/worksheets/sheet", ".xml")) {
    if (sink->Full()) break;
    SheetHandler h(shared, sink);
    FS_RETURN_IF_ERROR(zip.ReadXml(*e, &h));
    sink->Break();
  }
  return Status::Ok();
}

Status OpenDocumentText(ZipReader& zip, TextSink* sink) {
  if (const ZipEntry* manifest = zip.Find("META-INF/manifest.xml")) {
    FS_ASSIGN_OR_RETURN(std::string m, zip.ReadAll(*manifest));
    if (m.find("encryption-data") != std::string::npos) {
      return Status::PermissionDenied("encrypted (password-protected) OpenDocument: text needs a password");
    }
  }
  const ZipEntry* content = zip.Find("content.xml");
  if (!content) return Status::Corruption("not an OpenDocument file: content.xml is missing");
  OdfBodyHandler h(sink);
  return zip.ReadXml(*content, &h);
}

// EPUB: META-INF/container.xml names the OPF package; its spine orders the XHTML chapters.
class OpfHandler : public XmlHandler {
 public:
  void Start(std::string_view local, const char** attrs) override {
    if (local == "item")
      items[std::string(XmlAttr(attrs, "id"))] = std::string(XmlAttr(attrs, "href"));
    else if (local == "itemref")
      spine.emplace_back(XmlAttr(attrs, "idref"));
    else if (local == "rootfile" && rootfile.empty())
      rootfile = XmlAttr(attrs, "full-path");
  }
  void End(std::string_view) override {}
  void Text(std::string_view) override {}
  std::map<std::string, std::string> items;
  std::vector<std::string> spine;
  std::string rootfile;
};

std::string PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

Status EpubText(ZipReader& zip, TextSink* sink, Extraction* meta) {
  std::vector<const ZipEntry*> chapters;
  OpfHandler container;
  if (const ZipEntry* c = zip.Find("META-INF/container.xml")) FS_RETURN_IF_ERROR(zip.ReadXml(*c, &container));
  if (const ZipEntry* opf_entry = container.rootfile.empty() ? nullptr : zip.Find(container.rootfile)) {
    OpfHandler opf;
    FS_RETURN_IF_ERROR(zip.ReadXml(*opf_entry, &opf));
    ReadMetadata(zip, opf_entry->name, /*dc_date_is_created=*/true, meta);
    std::string dir = container.rootfile.substr(0, container.rootfile.rfind('/') + 1);
    for (const auto& id : opf.spine) {
      auto it = opf.items.find(id);
      if (it == opf.items.end()) continue;
      if (const ZipEntry* e = zip.Find(dir + PercentDecode(it->second))) chapters.push_back(e);
    }
  }
  if (chapters.empty()) {  // no usable package: every XHTML member in archive order
    for (const auto& e : zip.entries()) {
      if (EndsWith(e.name, ".xhtml") || EndsWith(e.name, ".html") || EndsWith(e.name, ".htm"))
        chapters.push_back(&e);
    }
  }
  if (chapters.empty()) return Status::Corruption("not an EPUB book: no XHTML content found");
  for (const ZipEntry* e : chapters) {
    if (sink->Full()) break;
    FS_ASSIGN_OR_RETURN(std::string html, zip.ReadAll(*e));
    HtmlText h = HtmlToText(html, html.size() + 64);
    sink->Append(h.text);
    sink->Break();
  }
  return Status::Ok();
}

void ZipNames(const ZipReader& zip, TextSink* sink) {
  for (const auto& e : zip.entries()) {
    if (sink->Full()) break;
    sink->Append(e.name);
    sink->Append("\n");
  }
}

enum class ZipKind { kWord, kSlides, kSheets, kOpenDocument, kEpub, kArchive };

// The MIME type when it names a format; else (a bare zip, a macro-enabled or mislabelled file) the
// members: a .docx renamed .zip is still a Word document.
ZipKind KindOfZip(const ZipReader& zip, std::string_view mime) {
  if (EndsWith(mime, "wordprocessingml.document")) return ZipKind::kWord;
  if (EndsWith(mime, "presentationml.presentation")) return ZipKind::kSlides;
  if (EndsWith(mime, "spreadsheetml.sheet")) return ZipKind::kSheets;
  if (StartsWith(mime, "application/vnd.oasis.opendocument.")) return ZipKind::kOpenDocument;
  if (mime == "application/epub+zip") return ZipKind::kEpub;
  if (zip.Find("word/document.xml")) return ZipKind::kWord;
  if (zip.Find("ppt/presentation.xml")) return ZipKind::kSlides;
  if (zip.Find("xl/workbook.xml")) return ZipKind::kSheets;
  if (zip.Find("mimetype") && zip.Find("META-INF/container.xml")) return ZipKind::kEpub;
  if (zip.Find("mimetype") && zip.Find("content.xml")) return ZipKind::kOpenDocument;
  return ZipKind::kArchive;
}

}  // namespace

Extraction ZipDocumentToText(std::string_view bytes, std::string_view mime, const ExtractOptions& options) {
  Extraction out;
  Budget budget(options);
  auto zip = ZipReader::Open(bytes, &budget);
  if (!zip.ok()) {
    out.problem = zip.status().message();
    return out;
  }
  ZipReader& z = **zip;
  TextSink sink(static_cast<size_t>(options.max_text_bytes));
  Status s;
  switch (KindOfZip(z, mime)) {
    case ZipKind::kWord:
      ReadMetadata(z, "docProps/core.xml", /*dc_date_is_created=*/false, &out);
      s = WordText(z, &sink);
      break;
    case ZipKind::kSlides:
      ReadMetadata(z, "docProps/core.xml", /*dc_date_is_created=*/false, &out);
      s = SlidesText(z, &sink);
      break;
    case ZipKind::kSheets:
      ReadMetadata(z, "docProps/core.xml", /*dc_date_is_created=*/false, &out);
      s = SpreadsheetText(z, &sink);
      break;
    case ZipKind::kOpenDocument:
      ReadMetadata(z, "meta.xml", /*dc_date_is_created=*/false, &out);
      s = OpenDocumentText(z, &sink);
      break;
    case ZipKind::kEpub:
      s = EpubText(z, &sink, &out);
      break;
    case ZipKind::kArchive:
      ZipNames(z, &sink);
      break;
  }
  return FinishExtraction(std::move(out), s, &sink);
}

}  // namespace fs::extract_internal
