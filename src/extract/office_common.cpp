// What the office, mail and archive readers share: the per-file budget, the text sink, the expat
// wrapper and date/byte decoding.
#include <expat.h>

#include <cstring>

#include "core/utf8.h"
#include "extract/encoding.h"
#include "extract/office.h"

namespace fs::extract_internal {

Budget::Budget(const ExtractOptions& options)
    : options_(options),
      deadline_(std::chrono::steady_clock::now() + std::chrono::milliseconds(options.office_time_ms)) {}

Status Budget::CheckTime() const {
  if (std::chrono::steady_clock::now() > deadline_) {
    return Status::ResourceExhausted("took longer than " + std::to_string(options_.office_time_ms) +
                                     " ms: text not extracted");
  }
  return Status::Ok();
}

Status Budget::AddUnpacked(uint64_t n) {
  unpacked_ += n;
  if (unpacked_ > options_.max_unpacked_bytes) {
    return Status::ResourceExhausted("decompresses to more than " +
                                     std::to_string(options_.max_unpacked_bytes >> 20) +
                                     " MiB (a decompression bomb?): text not extracted");
  }
  return Status::Ok();
}

void TextSink::Append(std::string_view utf8) {
  if (Full() || utf8.empty()) return;
  text_.append(utf8);  // Take() cuts to max_ at a code point boundary
}

void TextSink::Break() {
  if (Full() || text_.empty()) return;
  size_t n = text_.size();
  if (n >= 2 && text_[n - 1] == '\n' && text_[n - 2] == '\n') return;
  text_.push_back('\n');
}

Extraction FinishExtraction(Extraction out, const Status& status, TextSink* sink) {
  if (status.ok()) {
    out.text = sink->Take();
  } else {
    out.problem = status.message();
    out.text.clear();
  }
  return out;
}

std::string TextSink::Take() {
  if (!IsValidUtf8(text_)) text_ = RepairUtf8(text_);
  TruncateUtf8(&text_, max_);
  while (!text_.empty() && (text_.back() == '\n' || text_.back() == ' ' || text_.back() == '\t'))
    text_.pop_back();
  return std::move(text_);
}

// ---- XML ----

namespace {

std::string_view LocalName(const char* name) {
  const char* colon = std::strrchr(name, ':');
  return colon ? std::string_view(colon + 1) : std::string_view(name);
}

}  // namespace

std::string_view XmlAttr(const char** attrs, std::string_view local) {
  for (size_t i = 0; attrs && attrs[i]; i += 2) {
    if (LocalName(attrs[i]) == local) return attrs[i + 1];
  }
  return {};
}

struct XmlScanner::Impl {
  XML_Parser parser = nullptr;
  XmlHandler* handler = nullptr;
  uint32_t max_depth = 0;
  uint32_t depth = 0;
  std::string refused;  // why we stopped the parser ("" when it was the handler being done)

  void Refuse(std::string why) {
    if (refused.empty()) refused = std::move(why);
    XML_StopParser(parser, XML_FALSE);
  }

  static void OnStart(void* self, const XML_Char* name, const XML_Char** attrs) {
    auto* impl = static_cast<Impl*>(self);
    if (++impl->depth > impl->max_depth) {
      impl->Refuse("XML nested deeper than " + std::to_string(impl->max_depth) + " elements");
      return;
    }
    impl->handler->Start(LocalName(name), attrs);
    if (impl->handler->Done()) XML_StopParser(impl->parser, XML_FALSE);
  }
  static void OnEnd(void* self, const XML_Char* name) {
    auto* impl = static_cast<Impl*>(self);
    --impl->depth;
    impl->handler->End(LocalName(name));
  }
  static void OnText(void* self, const XML_Char* s, int len) {
    auto* impl = static_cast<Impl*>(self);
    impl->handler->Text(std::string_view(s, static_cast<size_t>(len)));
    if (impl->handler->Done()) XML_StopParser(impl->parser, XML_FALSE);
  }
  // Billion laughs and external entities both need declarations: none is accepted. Office XML never
  // declares entities.
  static void OnEntityDecl(void* self, const XML_Char*, int, const XML_Char*, int, const XML_Char*,
                           const XML_Char*, const XML_Char*, const XML_Char*) {
    static_cast<Impl*>(self)->Refuse("XML declares entities (refused: entity expansion attacks)");
  }
};

XmlScanner::XmlScanner(XmlHandler* handler, uint32_t max_depth) : impl_(new Impl) {
  impl_->parser = XML_ParserCreate(nullptr);
  impl_->handler = handler;
  impl_->max_depth = max_depth;
  if (!impl_->parser) return;
  XML_SetUserData(impl_->parser, impl_);
  XML_SetElementHandler(impl_->parser, Impl::OnStart, Impl::OnEnd);
  XML_SetCharacterDataHandler(impl_->parser, Impl::OnText);
  XML_SetEntityDeclHandler(impl_->parser, Impl::OnEntityDecl);
  XML_SetParamEntityParsing(impl_->parser, XML_PARAM_ENTITY_PARSING_NEVER);
}

XmlScanner::~XmlScanner() {
  if (impl_->parser) XML_ParserFree(impl_->parser);
  delete impl_;
}

Status XmlScanner::Feed(std::string_view chunk, bool last) {
  if (stopped_) return Status::Ok();
  if (!impl_->parser) return Status::ResourceExhausted("cannot create an XML parser");
  if (chunk.size() > static_cast<size_t>(INT32_MAX)) return Status::ResourceExhausted("XML chunk too large");
  if (XML_Parse(impl_->parser, chunk.data(), static_cast<int>(chunk.size()), last ? XML_TRUE : XML_FALSE) ==
      XML_STATUS_OK) {
    return Status::Ok();
  }
  stopped_ = true;
  if (!impl_->refused.empty()) return Status::Corruption(impl_->refused);
  if (XML_GetErrorCode(impl_->parser) == XML_ERROR_ABORTED) return Status::Ok();  // the handler is done
  return Status::Corruption(std::string("malformed XML: ") +
                            XML_ErrorString(XML_GetErrorCode(impl_->parser)) + " at line " +
                            std::to_string(XML_GetCurrentLineNumber(impl_->parser)));
}

Status ParseXml(std::string_view xml, XmlHandler* handler, uint32_t max_depth) {
  XmlScanner scanner(handler, max_depth);
  return scanner.Feed(xml, true);
}

// ---- Dates ----

std::optional<int64_t> CivilToNs(int year, int month, int day, int hour, int minute, int second) {
  if (year < 1601 || year > 2200 || month < 1 || month > 12 || day < 1 || day > 31 || hour < 0 || hour > 23 ||
      minute < 0 || minute > 59 || second < 0 || second > 60) {
    return std::nullopt;
  }
  // Days since 1970-01-01 of a proleptic Gregorian date (the era arithmetic of "days from civil").
  const int y = year - (month <= 2 ? 1 : 0);
  const int era = (y >= 0 ? y : y - 399) / 400;
  const int yoe = y - era * 400;
  const int doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
  const int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  const int64_t days = static_cast<int64_t>(era) * 146097 + doe - 719468;
  return ((days * 24 + hour) * 60 + minute) * 60 * int64_t{1000000000} + int64_t{second} * 1000000000;
}

std::optional<int64_t> ParseIsoTime(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\n' || s.front() == '\t')) s.remove_prefix(1);
  size_t pos = 0;
  auto number = [&](size_t digits, int* out) {
    if (pos + digits > s.size()) return false;
    int v = 0;
    for (size_t i = 0; i < digits; ++i) {
      char c = s[pos + i];
      if (c < '0' || c > '9') return false;
      v = v * 10 + (c - '0');
    }
    pos += digits;
    *out = v;
    return true;
  };
  auto expect = [&](char c) { return pos < s.size() && s[pos] == c ? (++pos, true) : false; };
  int year = 0, month = 1, day = 1, hour = 0, minute = 0, second = 0;
  if (!number(4, &year) || !expect('-') || !number(2, &month) || !expect('-') || !number(2, &day))
    return std::nullopt;
  int64_t offset_s = 0;
  if (pos < s.size() && (s[pos] == 'T' || s[pos] == ' ')) {
    ++pos;
    if (!number(2, &hour) || !expect(':') || !number(2, &minute)) return std::nullopt;
    if (expect(':') && !number(2, &second)) return std::nullopt;
    if (expect('.')) {
      while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') ++pos;
    }
    if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
      int sign = s[pos] == '-' ? -1 : 1;
      ++pos;
      int oh = 0, om = 0;
      if (!number(2, &oh)) return std::nullopt;
      expect(':');
      if (!number(2, &om)) om = 0;
      offset_s = sign * (oh * 3600 + om * 60);
    }
  }
  auto t = CivilToNs(year, month, day, hour, minute, second);
  if (!t) return std::nullopt;
  return *t - offset_s * 1000000000;
}

std::optional<int64_t> FiletimeToNs(uint64_t filetime) {
  constexpr uint64_t kEpochDiff = 116444736000000000ull;  // 1601-01-01 to 1970-01-01 in 100 ns ticks
  constexpr uint64_t kMax = kEpochDiff + 7258118400ull * 10000000ull;  // year 2200
  if (filetime == 0 || filetime > kMax) return std::nullopt;
  return (static_cast<int64_t>(filetime) - static_cast<int64_t>(kEpochDiff)) * 100;
}

// ---- Bytes ----

std::string Utf16LeToUtf8(std::string_view raw, size_t max_bytes) {
  std::string out = Utf16ToUtf8(raw.substr(0, raw.size() & ~size_t{1}), true, max_bytes);
  while (!out.empty() && out.back() == '\0') out.pop_back();  // NUL terminators of fixed strings
  return out;
}

std::string CodepageToUtf8(std::string_view raw, int codepage, size_t max_bytes) {
  if (codepage == 1200) return Utf16LeToUtf8(raw, max_bytes);
  std::string label = codepage == 65001 ? "utf-8"
                      : codepage == 932 ? "cp932"
                                        : "cp" + std::to_string(codepage);
  if (codepage <= 0 || codepage == 1252 || codepage == 28591 || codepage == 20127) label = "cp1252";
  DecodedText d = DecodeToUtf8(raw, label, max_bytes);
  return std::move(d.text);
}

uint16_t Le16(std::string_view s, size_t at) {
  if (at > s.size() || s.size() - at < 2) return 0;
  return static_cast<uint16_t>(static_cast<unsigned char>(s[at]) | static_cast<unsigned char>(s[at + 1])
                                                                       << 8);
}

uint32_t Le32(std::string_view s, size_t at) {
  if (at > s.size() || s.size() - at < 4) return 0;
  return static_cast<uint32_t>(Le16(s, at)) | static_cast<uint32_t>(Le16(s, at + 2)) << 16;
}

uint64_t Le64(std::string_view s, size_t at) {
  if (at > s.size() || s.size() - at < 8) return 0;
  return static_cast<uint64_t>(Le32(s, at)) | static_cast<uint64_t>(Le32(s, at + 4)) << 32;
}

}  // namespace fs::extract_internal
