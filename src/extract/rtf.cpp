// RTF to text: a small reader of control words and groups (RTF 1.9.1). Text bytes are in the
// document's \ansicpg code page; \uN gives Unicode (with \ucN fallback characters skipped);
// destinations that hold no body text (font and colour tables, stylesheets, pictures, objects,
// field instructions, unknown \* destinations) are skipped; \info gives title, author and dates.
#include <algorithm>
#include <array>
#include <cstdlib>

#include "core/utf8.h"
#include "extract/office.h"

namespace fs::extract_internal {
namespace {

enum class Dest { kBody, kSkip, kTitle, kAuthor, kCreated, kSaved, kInfo };

struct GroupState {
  Dest dest = Dest::kBody;
  int uc = 1;  // fallback characters that follow each \uN
};

bool IsSkippedDestination(std::string_view w) {
  static constexpr std::string_view kSkipped[] = {"fonttbl",
                                                  "colortbl",
                                                  "stylesheet",
                                                  "listtable",
                                                  "listoverridetable",
                                                  "revtbl",
                                                  "rsidtbl",
                                                  "generator",
                                                  "pict",
                                                  "objdata",
                                                  "objclass",
                                                  "fldinst",
                                                  "themedata",
                                                  "colorschememapping",
                                                  "datastore",
                                                  "latentstyles",
                                                  "xmlnstbl",
                                                  "pgdsctbl",
                                                  "filetbl",
                                                  "bkmkstart",
                                                  "bkmkend",
                                                  "nonshppict",
                                                  "pntext",
                                                  "pntxta",
                                                  "pntxtb",
                                                  "listtext",
                                                  "mmathPr",
                                                  "wgrffmtfilter",
                                                  "xmlopen",
                                                  "xmlclose",
                                                  "protusertbl",
                                                  "userprops",
                                                  "passwordhash"};
  for (auto s : kSkipped) {
    if (w == s) return true;
  }
  return false;
}

// Control words that stand for a character.
constexpr std::pair<std::string_view, std::string_view> kSymbols[] = {
    {"tab", "\t"},   {"cell", "\t"},      {"emdash", "-"},     {"endash", "-"},           {"lquote", "'"},
    {"rquote", "'"}, {"ldblquote", "\""}, {"rdblquote", "\""}, {"bullet", "\xE2\x80\xA2"}};

class RtfReader {
 public:
  RtfReader(std::string_view src, const ExtractOptions& options, TextSink* sink, Extraction* meta)
      : s_(src), options_(options), sink_(sink), meta_(meta) {}

  Status Run() {
    std::vector<GroupState> stack;
    GroupState cur;
    size_t pos = 0;
    while (pos < s_.size() && !sink_->Full()) {
      const char c = s_[pos];
      if (c == '{') {
        if (stack.size() >= options_.max_depth) {
          return Status::Corruption("RTF groups nested deeper than " + std::to_string(options_.max_depth));
        }
        FlushBytes(cur);
        stack.push_back(cur);
        ++pos;
        ignorable_ = false;
      } else if (c == '}') {
        FlushBytes(cur);
        EndGroup(cur);
        if (stack.empty()) break;  // the document's closing brace
        cur = stack.back();
        stack.pop_back();
        ++pos;
      } else if (c == '\\') {
        pos = ControlAt(pos + 1, &cur);
      } else if (c == '\r' || c == '\n') {
        ++pos;
      } else {
        Byte(c, cur);
        ++pos;
      }
      if ((++steps_ & 0xFFFF) == 0 && std::chrono::steady_clock::now() > deadline_) {
        return Status::ResourceExhausted("RTF took longer than " + std::to_string(options_.office_time_ms) +
                                         " ms");
      }
    }
    FlushBytes(cur);
    return Status::Ok();
  }

 private:
  void Byte(char c, const GroupState& g) {
    if (skip_fallback_ > 0) {
      --skip_fallback_;
      return;
    }
    if (g.dest != Dest::kSkip && g.dest != Dest::kInfo) bytes_.push_back(c);
  }

  void Emit(std::string_view utf8, const GroupState& g) {
    switch (g.dest) {
      case Dest::kBody:
        sink_->Append(utf8);
        break;
      case Dest::kTitle:
        if (meta_->title.size() < 4096) meta_->title.append(utf8);
        break;
      case Dest::kAuthor:
        if (meta_->author.size() < 4096) meta_->author.append(utf8);
        break;
      default:
        break;
    }
  }

  void FlushBytes(const GroupState& g) {
    if (bytes_.empty()) return;
    Emit(CodepageToUtf8(bytes_, codepage_, bytes_.size() * 3 + 4), g);
    bytes_.clear();
  }

  void EndGroup(const GroupState& g) {
    if (g.dest == Dest::kCreated || g.dest == Dest::kSaved) {
      auto t = CivilToNs(time_[0], time_[1], time_[2], time_[3], time_[4], time_[5]);
      (g.dest == Dest::kCreated ? meta_->created_ns : meta_->saved_ns) = t;
      time_ = {0, 1, 1, 0, 0, 0};
    }
  }

  void Unicode(long n, const GroupState& g) {
    uint32_t unit = static_cast<uint32_t>(n < 0 ? n + 65536 : n) & 0xFFFF;
    std::string out;
    if (unit >= 0xD800 && unit <= 0xDBFF) {
      high_surrogate_ = unit;
      return;
    }
    if (unit >= 0xDC00 && unit <= 0xDFFF && high_surrogate_) {
      AppendUtf8(0x10000 + ((high_surrogate_ - 0xD800) << 10) + (unit - 0xDC00), &out);
    } else {
      AppendUtf8(unit >= 0xD800 && unit <= 0xDFFF ? 0xFFFD : unit, &out);
    }
    high_surrogate_ = 0;
    Emit(out, g);
  }

  // Parses the control word or symbol after a backslash at `pos`; returns the position after it.
  size_t ControlAt(size_t pos, GroupState* g) {
    if (pos >= s_.size()) return pos;
    const char c = s_[pos];
    if (!std::isalpha(static_cast<unsigned char>(c))) {  // a control symbol
      switch (c) {
        case '\'': {
          if (pos + 2 < s_.size()) {
            char hex[3] = {s_[pos + 1], s_[pos + 2], 0};
            char* end = nullptr;
            long v = std::strtol(hex, &end, 16);
            if (end == hex + 2) Byte(static_cast<char>(v), *g);
          }
          return pos + 3;
        }
        case '*':
          ignorable_ = true;
          return pos + 1;
        case '~':
          Text(" ", *g);
          return pos + 1;
        case '_':
          Text("-", *g);
          return pos + 1;
        case '\r':
        case '\n':
          Break(*g);
          return pos + 1;
        case '\\':
        case '{':
        case '}':
          Byte(c, *g);
          return pos + 1;
        default:
          return pos + 1;  // \- optional hyphen, \| formula, \: subentry
      }
    }
    size_t end = pos;
    while (end < s_.size() && end - pos < 32 && std::isalpha(static_cast<unsigned char>(s_[end]))) ++end;
    std::string_view word = s_.substr(pos, end - pos);
    bool has_num = false;
    long num = 0;
    size_t num_start = end;
    if (end < s_.size() && (s_[end] == '-' || std::isdigit(static_cast<unsigned char>(s_[end])))) {
      ++end;
      while (end < s_.size() && end - num_start < 11 && std::isdigit(static_cast<unsigned char>(s_[end])))
        ++end;
      num = std::strtol(std::string(s_.substr(num_start, end - num_start)).c_str(), nullptr, 10);
      has_num = true;
    }
    if (end < s_.size() && s_[end] == ' ') ++end;  // the delimiter belongs to the word
    if (word == "bin" && has_num && num > 0) {
      return end + std::min<size_t>(static_cast<size_t>(num), s_.size() - end);
    }
    Word(word, has_num, num, g);
    return end;
  }

  void Text(std::string_view t, const GroupState& g) {
    FlushBytes(g);
    Emit(t, g);
  }
  void Break(const GroupState& g) {
    FlushBytes(g);
    if (g.dest == Dest::kBody) sink_->Break();
  }

  void Word(std::string_view w, bool has_num, long num, GroupState* g) {
    const bool ignorable = ignorable_;
    ignorable_ = false;
    if (w == "u" && has_num) {
      FlushBytes(*g);
      Unicode(num, *g);
      skip_fallback_ = g->uc;
      return;
    }
    if (w == "uc" && has_num) {
      g->uc = static_cast<int>(std::clamp(num, 0L, 8L));
      return;
    }
    if (w == "ansicpg" && has_num) {
      codepage_ = static_cast<int>(num);
      return;
    }
    if (w == "par" || w == "line" || w == "sect" || w == "page" || w == "row") {
      Break(*g);
      return;
    }
    for (const auto& [word, text] : kSymbols) {
      if (w == word) {
        Text(text, *g);
        return;
      }
    }
    FlushBytes(*g);
    if (g->dest == Dest::kSkip) return;
    if (g->dest == Dest::kCreated || g->dest == Dest::kSaved) {
      static constexpr std::array<std::string_view, 6> kParts = {"yr", "mo", "dy", "hr", "min", "sec"};
      for (size_t i = 0; i < kParts.size(); ++i) {
        if (w == kParts[i] && has_num) time_[i] = static_cast<int>(num);
      }
      return;
    }
    if (w == "info") {
      g->dest = Dest::kInfo;
      return;
    }
    if (g->dest == Dest::kInfo) {
      static constexpr std::pair<std::string_view, Dest> kInfoFields[] = {{"title", Dest::kTitle},
                                                                          {"author", Dest::kAuthor},
                                                                          {"creatim", Dest::kCreated},
                                                                          {"revtim", Dest::kSaved}};
      for (const auto& [word, dest] : kInfoFields) {
        if (w == word) g->dest = dest;
      }
      return;
    }
    if (IsSkippedDestination(w) || ignorable) {  // unknown \* destinations are skipped by the spec
      if (!(ignorable && (w == "shppict" || w == "fldrslt"))) g->dest = Dest::kSkip;
    }
  }

  std::string_view s_;
  const ExtractOptions& options_;
  TextSink* sink_;
  Extraction* meta_;
  std::string bytes_;
  int codepage_ = 1252;
  int skip_fallback_ = 0;
  bool ignorable_ = false;
  uint32_t high_surrogate_ = 0;
  std::array<int, 6> time_ = {0, 1, 1, 0, 0, 0};
  uint64_t steps_ = 0;
  std::chrono::steady_clock::time_point deadline_ =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.office_time_ms);
};

}  // namespace

Extraction RtfToText(std::string_view bytes, const ExtractOptions& options) {
  Extraction out;
  if (bytes.substr(0, 5) != "{\\rtf") {
    out.problem = "not an RTF document (no {\\rtf header)";
    return out;
  }
  TextSink sink(static_cast<size_t>(options.max_text_bytes));
  RtfReader reader(bytes, options, &sink, &out);
  Status s = reader.Run();
  if (!IsValidUtf8(out.title)) out.title = RepairUtf8(out.title);
  if (!IsValidUtf8(out.author)) out.author = RepairUtf8(out.author);
  return FinishExtraction(std::move(out), s, &sink);
}

}  // namespace fs::extract_internal
