// OLE2 compound files through libgsf: Word 97+ (piece table), Excel BIFF8 (cell records and the
// shared string table), PowerPoint 97+ (text atoms), Outlook .msg (MAPI property streams), the
// SummaryInformation property set (title, author, dates) and password-protected OOXML (an
// EncryptedPackage stream). libgsf settles the container (sector chains, directory); the streams'
// record formats are simple enough to read here, following [MS-DOC], [MS-XLS], [MS-PPT], [MS-OXMSG]
// and [MS-OLEPS].
#include <gsf/gsf-infile-msole.h>
#include <gsf/gsf-infile.h>
#include <gsf/gsf-input-memory.h>
#include <gsf/gsf-input.h>
#include <gsf/gsf-utils.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>

#include "extract/markup.h"
#include "extract/office.h"

namespace fs::extract_internal {
namespace {

struct GObjectUnref {
  void operator()(void* p) const {
    if (p) g_object_unref(p);
  }
};
using InputPtr = std::unique_ptr<GsfInput, GObjectUnref>;
using InfilePtr = std::unique_ptr<GsfInfile, GObjectUnref>;

void IgnoreGlibMessage(const gchar*, GLogLevelFlags, const gchar*, gpointer) {}

// libgsf reports damaged files with g_warning on stderr (some without a log domain); the reason
// reaches the failure list anyway. No other library of ours logs through GLib's default domain.
void QuietGsf() {
  static std::once_flag once;
  std::call_once(once, [] {
    gsf_init();
    for (const char* domain : {static_cast<const char*>(nullptr), "libgsf:msole", "libgsf", "GLib-GObject"}) {
      g_log_set_handler(
          domain,
          static_cast<GLogLevelFlags>(G_LOG_LEVEL_WARNING | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_MESSAGE |
                                      G_LOG_LEVEL_INFO | G_LOG_LEVEL_DEBUG),
          IgnoreGlibMessage, nullptr);
    }
  });
}

class OleFile {
 public:
  OleFile(InputPtr source, InfilePtr root, Budget* budget)
      : source_(std::move(source)), root_(std::move(root)), budget_(budget) {}
  GsfInfile* root() const { return root_.get(); }
  Budget* budget() const { return budget_; }

  static bool Has(GsfInfile* dir, const char* name) {
    InputPtr child(gsf_infile_child_by_name(dir, name));
    return child != nullptr;
  }

  // The whole stream `name` of storage `dir`; NotFound if absent. Caps as for zip members.
  Result<std::string> Read(GsfInfile* dir, const char* name) const {
    InputPtr in(gsf_infile_child_by_name(dir, name));
    if (!in) return Status::NotFound(std::string("no '") + name + "' stream");
    return ReadInput(in.get(), name);
  }

  Result<std::string> ReadInput(GsfInput* in, std::string_view name) const {
    const ExtractOptions& o = budget_->options();
    const gsf_off_t size = gsf_input_size(in);
    if (size < 0 || static_cast<uint64_t>(size) > o.max_member_bytes) {
      return Status::ResourceExhausted("OLE2 stream '" + std::string(name) + "' larger than " +
                                       std::to_string(o.max_member_bytes >> 20) + " MiB: text not extracted");
    }
    FS_RETURN_IF_ERROR(budget_->AddUnpacked(static_cast<uint64_t>(size)));
    FS_RETURN_IF_ERROR(budget_->CheckTime());
    std::string out(static_cast<size_t>(size), '\0');
    size_t done = 0;
    while (done < out.size()) {
      size_t n = std::min<size_t>(out.size() - done, 1 << 20);
      if (!gsf_input_read(in, n, reinterpret_cast<guint8*>(out.data() + done))) {
        return Status::Corruption("damaged OLE2 stream '" + std::string(name) + "'");
      }
      done += n;
    }
    return out;
  }

 private:
  InputPtr source_;
  InfilePtr root_;
  Budget* budget_;
};

// Keeps text characters, turns Word/PowerPoint control characters into whitespace and drops field
// codes (between 0x13 and 0x14; 0x15 ends a field's result).
std::string CleanControlText(std::string_view utf8) {
  std::string out;
  out.reserve(utf8.size());
  int field_code_depth = 0;  // > 0: inside field instructions (skipped)
  std::vector<bool> in_code;
  for (char ch : utf8) {
    switch (ch) {
      case 0x13:
        in_code.push_back(true);
        ++field_code_depth;
        continue;
      case 0x14:
        if (!in_code.empty() && in_code.back()) {
          in_code.back() = false;
          --field_code_depth;
        }
        continue;
      case 0x15:
        if (!in_code.empty()) {
          if (in_code.back()) --field_code_depth;
          in_code.pop_back();
        }
        continue;
      default:
        break;
    }
    if (field_code_depth > 0) continue;
    auto c = static_cast<unsigned char>(ch);
    if (c == 0x0D || c == 0x0B || c == 0x0C)
      out.push_back('\n');
    else if (c == 0x07 || c == 0x09)
      out.push_back('\t');
    else if (c == 0x1E)
      out.push_back('-');
    else if (c >= 0x20 || c == '\n')
      out.push_back(ch);
  }
  return out;
}

// ---- SummaryInformation ([MS-OLEPS]) ----

void ReadSummary(const OleFile& ole, Extraction* out) {
  auto stream = ole.Read(ole.root(), "\005SummaryInformation");
  if (!stream.ok()) return;
  std::string_view s = *stream;
  if (Le16(s, 0) != 0xFFFE || Le32(s, 24) < 1) return;
  const uint32_t section = Le32(s, 44);
  const uint32_t count = Le32(s, section + 4);
  int codepage = 1252;
  auto text_at = [&](uint32_t at) -> std::string {
    uint32_t type = Le32(s, at), len = Le32(s, at + 4);
    if (type == 0x1E && len <= 4096)
      return CodepageToUtf8(s.substr(std::min<size_t>(at + 8, s.size()), len), codepage, 4096);
    if (type == 0x1F && len <= 2048)
      return Utf16LeToUtf8(s.substr(std::min<size_t>(at + 8, s.size()), 2 * size_t{len}), 4096);
    return "";
  };
  auto trim_nul = [](std::string v) {
    if (auto nul = v.find('\0'); nul != std::string::npos) v.resize(nul);
    return v;
  };
  for (uint32_t pass = 0; pass < 2; ++pass) {  // the code page first: strings depend on it
    for (uint32_t i = 0; i < count && i < 1024; ++i) {
      uint32_t pid = Le32(s, section + 8 + 8 * i);
      uint32_t at = section + Le32(s, section + 12 + 8 * i);
      if (pass == 0) {
        if (pid == 1 && Le32(s, at) == 0x02) codepage = Le16(s, at + 4);
        continue;
      }
      if (pid == 2)
        out->title = trim_nul(text_at(at));
      else if (pid == 4)
        out->author = trim_nul(text_at(at));
      else if ((pid == 12 || pid == 13) && Le32(s, at) == 0x40) {
        auto t = FiletimeToNs(Le64(s, at + 4));
        (pid == 12 ? out->created_ns : out->saved_ns) = t;
      }
    }
  }
}

// ---- Word 97+ ([MS-DOC] 2.4.1: retrieving text through the piece table) ----

Status WordText(const OleFile& ole, TextSink* sink) {
  FS_ASSIGN_OR_RETURN(std::string wd, ole.Read(ole.root(), "WordDocument"));
  if (wd.size() < 0x1AA || Le16(wd, 0) != 0xA5EC)
    return Status::Corruption("damaged Word document (bad FIB)");
  // nFib: 0xC1 since Word 97 (later versions say theirs elsewhere); Word 6 and 95 used 0x65-0x68.
  if (Le16(wd, 2) < 0xC0)
    return Status::Unsupported("Word 6/95 document: text not extracted (Word 97 or later needed)");
  const uint16_t flags = Le16(wd, 0x0A);
  if (flags & 0x0100) return Status::PermissionDenied("encrypted Word document: text needs a password");
  FS_ASSIGN_OR_RETURN(std::string table, ole.Read(ole.root(), (flags & 0x0200) ? "1Table" : "0Table"));
  const uint32_t fc_clx = Le32(wd, 0x1A2), lcb_clx = Le32(wd, 0x1A6);
  if (fc_clx > table.size() || lcb_clx > table.size() - fc_clx)
    return Status::Corruption("damaged Word document (bad piece table)");
  std::string_view clx = std::string_view(table).substr(fc_clx, lcb_clx);
  size_t pos = 0;
  while (pos < clx.size() && clx[pos] == 0x01) pos += 3 + Le16(clx, pos + 1);  // Prc: formatting, skipped
  if (pos >= clx.size() || clx[pos] != 0x02)
    return Status::Corruption("damaged Word document (no piece table)");
  const uint32_t lcb = Le32(clx, pos + 1);
  std::string_view plc = clx.substr(std::min(pos + 5, clx.size()));
  if (lcb < 4 || lcb > plc.size() || (lcb - 4) % 12 != 0)
    return Status::Corruption("damaged Word document (bad piece table)");
  const uint32_t pieces = (lcb - 4) / 12;
  std::string text;
  for (uint32_t i = 0; i < pieces && text.size() < 2 * ole.budget()->options().max_text_bytes; ++i) {
    const uint32_t cp0 = Le32(plc, 4 * i), cp1 = Le32(plc, 4 * (i + 1));
    if (cp1 <= cp0) continue;
    const uint32_t chars = cp1 - cp0;
    const uint32_t fc = Le32(plc, 4 * (pieces + 1) + 8 * i + 2);
    if (fc & 0x40000000) {  // 8-bit characters (CP1252) at fc/2
      size_t at = (fc & 0x3FFFFFFF) / 2;
      if (at > wd.size()) continue;
      text += CodepageToUtf8(std::string_view(wd).substr(at, chars), 1252, 4 * size_t{chars});
    } else {  // UTF-16LE at fc
      if (fc > wd.size()) continue;
      text += Utf16LeToUtf8(std::string_view(wd).substr(fc, 2 * size_t{chars}), 4 * size_t{chars});
    }
  }
  sink->Append(CleanControlText(text));
  return Status::Ok();
}

// ---- Excel BIFF8 ([MS-XLS]) ----

// Reads XLUnicodeString character data that may run on into CONTINUE records: `segments` are the
// record bodies; a string continuing in the next segment restarts with a new flags byte.
class BiffReader {
 public:
  explicit BiffReader(std::vector<std::string_view> segments) : segs_(std::move(segments)) {}
  bool AtEnd() const { return seg_ >= segs_.size(); }
  bool Need(size_t n) {
    while (seg_ < segs_.size() && pos_ >= segs_[seg_].size()) {
      ++seg_;
      pos_ = 0;
    }
    return seg_ < segs_.size() && segs_[seg_].size() - pos_ >= n;
  }
  uint8_t U8() { return Need(1) ? static_cast<uint8_t>(segs_[seg_][pos_++]) : 0; }
  uint16_t U16() {
    uint16_t v = Need(2) ? Le16(segs_[seg_], pos_) : 0;
    pos_ += 2;
    return v;
  }
  uint32_t U32() {
    uint32_t v = Need(4) ? Le32(segs_[seg_], pos_) : 0;
    pos_ += 4;
    return v;
  }
  void Skip(size_t n) {
    while (n > 0 && seg_ < segs_.size()) {
      size_t here = std::min(n, segs_[seg_].size() - std::min(pos_, segs_[seg_].size()));
      pos_ += here;
      n -= here;
      if (n > 0) {
        ++seg_;
        pos_ = 0;
      }
    }
  }
  // `cch` characters, compressed (8-bit) unless `high`; switches segments as the format says.
  std::string Chars(uint32_t cch, bool high) {
    std::string raw16;
    while (cch > 0 && seg_ < segs_.size()) {
      if (pos_ >= segs_[seg_].size()) {
        ++seg_;
        pos_ = 0;
        if (seg_ >= segs_.size()) break;
        high = (U8() & 0x01) != 0;  // a continued string starts its segment with a flags byte
        continue;
      }
      std::string_view seg = segs_[seg_];
      size_t avail = (seg.size() - pos_) / (high ? 2 : 1);
      if (avail == 0) {
        pos_ = seg.size();
        continue;
      }
      size_t take = std::min<size_t>(cch, avail);
      for (size_t k = 0; k < take; ++k) {
        if (high) {
          raw16.push_back(seg[pos_ + 2 * k]);
          raw16.push_back(seg[pos_ + 2 * k + 1]);
        } else {
          raw16.push_back(seg[pos_ + k]);  // Latin-1 code unit
          raw16.push_back('\0');
        }
      }
      pos_ += take * (high ? 2 : 1);
      cch -= static_cast<uint32_t>(take);
    }
    return Utf16LeToUtf8(raw16, raw16.size() * 2);
  }

 private:
  std::vector<std::string_view> segs_;
  size_t seg_ = 0, pos_ = 0;
};

std::string FormatNumber(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.15g", v);
  return buf;
}

double RkValue(uint32_t rk) {
  double v;
  if (rk & 0x02) {
    v = static_cast<double>(static_cast<int32_t>(rk) >> 2);
  } else {
    uint64_t bits = static_cast<uint64_t>(rk & 0xFFFFFFFC) << 32;
    std::memcpy(&v, &bits, sizeof v);
  }
  return (rk & 0x01) ? v / 100 : v;
}

Status ExcelText(const OleFile& ole, TextSink* sink) {
  auto book = ole.Read(ole.root(), "Workbook");
  if (!book.ok()) {
    if (OleFile::Has(ole.root(), "Book"))
      return Status::Unsupported("Excel 5/95 workbook: text not extracted (Excel 97 or later needed)");
    return book.status();
  }
  std::string_view wb = *book;
  std::vector<std::string> shared;
  int last_row = -1;
  auto cell = [&](std::string_view value, int row) {
    if (row != last_row && last_row >= 0) sink->Break();
    last_row = row;
    sink->Append(value);
    sink->Append("\t");
  };
  size_t pos = 0;
  while (pos + 4 <= wb.size() && !sink->Full()) {
    const uint16_t type = Le16(wb, pos), len = Le16(wb, pos + 2);
    std::string_view rec = wb.substr(pos + 4, std::min<size_t>(len, wb.size() - pos - 4));
    const size_t next = pos + 4 + len;
    switch (type) {
      case 0x0809:  // BOF
        if (Le16(rec, 0) != 0x0600)
          return Status::Unsupported("Excel workbook older than Excel 97: text not extracted");
        last_row = -1;
        sink->Break();
        break;
      case 0x002F:
        return Status::PermissionDenied("encrypted Excel workbook: text needs a password");
      case 0x0085: {  // BoundSheet8: the sheet's name
        BiffReader r({rec.substr(std::min<size_t>(6, rec.size()))});
        uint8_t cch = r.U8();
        bool high = r.U8() & 0x01;
        sink->Append(r.Chars(cch, high));
        sink->Break();
        break;
      }
      case 0x00FC: {  // SST, continued in CONTINUE (0x003C) records
        std::vector<std::string_view> segs{rec};
        size_t p = next;
        while (p + 4 <= wb.size() && Le16(wb, p) == 0x003C) {
          uint16_t l = Le16(wb, p + 2);
          segs.push_back(wb.substr(p + 4, std::min<size_t>(l, wb.size() - p - 4)));
          p += 4 + l;
        }
        BiffReader r(std::move(segs));
        r.U32();
        const uint32_t unique = r.U32();
        for (uint32_t i = 0; i < unique && !r.AtEnd() && shared.size() < 4000000; ++i) {
          uint16_t cch = r.U16();
          uint8_t f = r.U8();
          uint16_t runs = (f & 0x08) ? r.U16() : 0;
          uint32_t ext = (f & 0x04) ? r.U32() : 0;
          shared.push_back(r.Chars(cch, f & 0x01));
          r.Skip(4 * size_t{runs} + ext);
        }
        break;
      }
      case 0x00FD: {  // LabelSst
        uint32_t i = Le32(rec, 6);
        if (i < shared.size()) cell(shared[i], Le16(rec, 0));
        break;
      }
      case 0x0204:    // Label (BIFF8: XLUnicodeString)
      case 0x0207: {  // String: a formula's text result
        size_t at = type == 0x0204 ? 6 : 0;
        BiffReader r({rec.substr(std::min(at, rec.size()))});
        uint16_t cch = r.U16();
        bool high = r.U8() & 0x01;
        cell(r.Chars(cch, high), type == 0x0204 ? Le16(rec, 0) : last_row);
        break;
      }
      case 0x0203: {  // Number
        double v;
        uint64_t bits = Le64(rec, 6);
        std::memcpy(&v, &bits, sizeof v);
        cell(FormatNumber(v), Le16(rec, 0));
        break;
      }
      case 0x027E:
        cell(FormatNumber(RkValue(Le32(rec, 6))), Le16(rec, 0));
        break;      // RK
      case 0x0205:  // BoolErr: a boolean (errors are not text)
        if (rec.size() >= 8 && rec[7] == 0) cell(rec[6] ? "TRUE" : "FALSE", Le16(rec, 0));
        break;
      case 0x0006: {  // Formula: its cached result (a string one follows in a String record)
        if (Le16(rec, 12) != 0xFFFF) {
          double v;
          uint64_t bits = Le64(rec, 6);
          std::memcpy(&v, &bits, sizeof v);
          cell(FormatNumber(v), Le16(rec, 0));
        } else if (rec.size() > 8 && rec[6] == 1) {
          cell(rec[8] ? "TRUE" : "FALSE", Le16(rec, 0));
        } else {
          last_row = Le16(rec, 0);
        }
        break;
      }
      case 0x00BD: {  // MulRk: several RK cells of one row
        for (size_t at = 4; at + 6 + 2 <= rec.size(); at += 6)
          cell(FormatNumber(RkValue(Le32(rec, at + 2))), Le16(rec, 0));
        break;
      }
      default:
        break;
    }
    pos = next;
  }
  return Status::Ok();
}

// ---- PowerPoint 97+ ([MS-PPT]): TextCharsAtom (UTF-16) and TextBytesAtom (8-bit) records ----

Status PowerPointText(const OleFile& ole, TextSink* sink) {
  if (OleFile::Has(ole.root(), "EncryptedSummary")) {
    return Status::PermissionDenied("encrypted PowerPoint presentation: text needs a password");
  }
  FS_ASSIGN_OR_RETURN(std::string doc, ole.Read(ole.root(), "PowerPoint Document"));
  std::string_view s = doc;
  size_t pos = 0;
  while (pos + 8 <= s.size() && !sink->Full()) {
    const uint16_t ver_inst = Le16(s, pos), type = Le16(s, pos + 2);
    const uint32_t len = Le32(s, pos + 4);
    if ((ver_inst & 0x0F) == 0x0F) {
      // Masters and handouts hold placeholder text ("Click to edit Master title style"): skipped.
      const bool skip = type == 0x03F8 || type == 0x0FC9;
      pos += skip ? 8 + std::min<size_t>(len, s.size() - pos - 8) : 8;  // else its children follow
      continue;
    }
    std::string_view body = s.substr(pos + 8, std::min<size_t>(len, s.size() - pos - 8));
    if (type == 0x0FA0) {
      sink->Append(CleanControlText(Utf16LeToUtf8(body, body.size() * 2)));
      sink->Break();
    } else if (type == 0x0FA8) {
      sink->Append(CleanControlText(CodepageToUtf8(body, 1252, body.size() * 3)));
      sink->Break();
    } else if (type == 0x2F14) {  // CryptSession10Container
      return Status::PermissionDenied("encrypted PowerPoint presentation: text needs a password");
    }
    if (len > s.size() - pos - 8) break;
    pos += 8 + len;
  }
  return Status::Ok();
}

// ---- Outlook .msg ([MS-OXMSG]): MAPI properties as __substg1.0_<id><type> streams ----

// A string property of storage `dir`: Unicode (001F) or 8-bit (001E); "" if absent.
std::string MapiString(const OleFile& ole, GsfInfile* dir, const char* id) {
  std::string name = std::string("__substg1.0_") + id;
  if (auto w = ole.Read(dir, (name + "001F").c_str()); w.ok()) return Utf16LeToUtf8(*w, w->size() * 2);
  if (auto a = ole.Read(dir, (name + "001E").c_str()); a.ok()) {
    std::string v = CodepageToUtf8(*a, 1252, a->size() * 3);
    if (auto nul = v.find('\0'); nul != std::string::npos) v.resize(nul);
    return v;
  }
  return "";
}

// PT_SYSTIME properties of the message from its fixed-length property stream.
void MsgTimes(const OleFile& ole, Extraction* out) {
  auto props = ole.Read(ole.root(), "__properties_version1.0");
  if (!props.ok()) return;
  std::optional<int64_t> submit, delivery, creation, modified;
  for (size_t at = 32; at + 16 <= props->size(); at += 16) {
    uint32_t tag = Le32(*props, at);
    if ((tag & 0xFFFF) != 0x0040) continue;
    auto t = FiletimeToNs(Le64(*props, at + 8));
    switch (tag >> 16) {
      case 0x0039:
        submit = t;
        break;
      case 0x0E06:
        delivery = t;
        break;
      case 0x3007:
        creation = t;
        break;
      case 0x3008:
        modified = t;
        break;
      default:
        break;
    }
  }
  out->created_ns = submit ? submit : delivery ? delivery : creation;
  out->saved_ns = modified;
}

Status MsgText(const OleFile& ole, TextSink* sink, Extraction* out) {
  GsfInfile* root = ole.root();
  out->title = MapiString(ole, root, "0037");
  std::string sender = MapiString(ole, root, "0C1A");
  std::string address = MapiString(ole, root, "5D01");  // PR_SENDER_SMTP_ADDRESS
  if (address.find('@') == std::string::npos) address = MapiString(ole, root, "0C1F");
  if (address.find('@') == std::string::npos) address.clear();  // an Exchange DN is no address
  out->author = sender.empty()                         ? address
                : address.empty() || address == sender ? sender
                                                       : sender + " <" + address + ">";
  MsgTimes(ole, out);
  for (const auto& [label, id] : {std::pair{"From: ", ""}, {"To: ", "0E04"}, {"Cc: ", "0E03"}}) {
    std::string v = *id ? MapiString(ole, root, id) : out->author;
    if (v.empty()) continue;
    sink->Append(label);
    sink->Append(v);
    sink->Break();
  }
  std::string body = MapiString(ole, root, "1000");
  if (body.empty()) {
    if (auto html = ole.Read(root, "__substg1.0_10130102"); html.ok())
      body = HtmlToText(*html, html->size() + 64).text;
  }
  sink->Break();
  sink->Append(body);
  sink->Break();
  const int children = gsf_infile_num_children(root);
  for (int i = 0; i < children && i < static_cast<int>(ole.budget()->options().max_members); ++i) {
    const char* name = gsf_infile_name_by_index(root, i);
    if (!name || std::strncmp(name, "__attach_version1.0_", 20) != 0) continue;
    InputPtr child(gsf_infile_child_by_index(root, i));
    if (!child || !GSF_IS_INFILE(child.get())) continue;
    auto* dir = GSF_INFILE(child.get());
    std::string file = MapiString(ole, dir, "3707");
    if (file.empty()) file = MapiString(ole, dir, "3704");
    if (file.empty()) file = MapiString(ole, dir, "3001");
    if (file.empty()) continue;
    sink->Append("Attachment: ");
    sink->Append(file);
    sink->Break();
  }
  return Status::Ok();
}

}  // namespace

Extraction OleDocumentToText(std::string_view bytes, const ExtractOptions& options) {
  QuietGsf();
  Extraction out;
  Budget budget(options);
  InputPtr source(gsf_input_memory_new(reinterpret_cast<const guint8*>(bytes.data()),
                                       static_cast<gsf_off_t>(bytes.size()), FALSE));
  if (!source) {
    out.problem = "cannot read the OLE2 container";
    return out;
  }
  GError* error = nullptr;
  InfilePtr root(gsf_infile_msole_new(source.get(), &error));
  if (!root) {
    out.problem = std::string("damaged OLE2 compound file (") + (error ? error->message : "unreadable") + ")";
    if (error) g_error_free(error);
    return out;
  }
  OleFile ole(std::move(source), std::move(root), &budget);
  GsfInfile* r = ole.root();
  if (OleFile::Has(r, "EncryptedPackage")) {
    out.problem = "encrypted (password-protected) Office document: text needs a password";
    return out;
  }
  TextSink sink(static_cast<size_t>(options.max_text_bytes));
  Status s;
  if (OleFile::Has(r, "WordDocument")) {
    ReadSummary(ole, &out);
    s = WordText(ole, &sink);
  } else if (OleFile::Has(r, "Workbook") || OleFile::Has(r, "Book")) {
    ReadSummary(ole, &out);
    s = ExcelText(ole, &sink);
  } else if (OleFile::Has(r, "PowerPoint Document")) {
    ReadSummary(ole, &out);
    s = PowerPointText(ole, &sink);
  } else if (OleFile::Has(r, "__properties_version1.0") || OleFile::Has(r, "__substg1.0_0037001F") ||
             OleFile::Has(r, "__substg1.0_0037001E")) {
    s = MsgText(ole, &sink, &out);
  } else {
    // Thumbs.db, installers, Visio...: a container of no format we read, like any other binary
    // type. Not a failure.
  }
  return FinishExtraction(std::move(out), s, &sink);
}

}  // namespace fs::extract_internal
