#include "extract/encoding.h"

#include <iconv.h>

#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "core/utf8.h"

namespace fs::extract_internal {
namespace {

constexpr size_t kSampleBytes = 64 * 1024;  // encoding decisions look at this much input

// Length of the longest prefix of `s` that does not end inside a multi-byte UTF-8 sequence.
size_t CompleteUtf8Prefix(std::string_view s) {
  size_t n = s.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    auto c = static_cast<unsigned char>(s[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    size_t need = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
    return need > back ? n - back : n;
  }
  return n;
}

struct IconvHandle {
  iconv_t cd;
  explicit IconvHandle(const char* from) : cd(::iconv_open("UTF-8", from)) {}
  ~IconvHandle() {
    if (ok()) ::iconv_close(cd);
  }
  IconvHandle(const IconvHandle&) = delete;
  IconvHandle& operator=(const IconvHandle&) = delete;
  bool ok() const { return cd != reinterpret_cast<iconv_t>(-1); }
};

struct Trial {
  bool opened = false;
  std::string out;
  size_t errors = 0;  // bytes iconv rejected (each became one U+FFFD)
};

// Converts `raw` from `from` to UTF-8 with iconv, replacing each rejected byte with U+FFFD and
// stopping once `max_out` bytes are produced. An incomplete sequence at the very end is dropped when
// `truncated` (the read stopped there), else it is one more rejected byte.
Trial Convert(std::string_view raw, const char* from, size_t max_out, bool truncated) {
  Trial t;
  IconvHandle h(from);
  if (!h.ok()) return t;
  t.opened = true;
  char buf[16384];
  char* in = const_cast<char*>(raw.data());
  size_t in_left = raw.size();
  while (in_left > 0 && t.out.size() < max_out) {
    char* out = buf;
    size_t out_left = sizeof(buf);
    size_t rc = ::iconv(h.cd, &in, &in_left, &out, &out_left);
    int err = errno;
    t.out.append(buf, static_cast<size_t>(out - buf));
    if (rc != static_cast<size_t>(-1)) break;
    if (err == E2BIG) continue;
    if (err == EINVAL && truncated) break;  // a multi-byte sequence cut by a truncated read
    // EILSEQ, or EINVAL at the end of complete input: one bad byte.
    ++t.errors;
    AppendUtf8(0xFFFD, &t.out);
    ++in;
    --in_left;
    ::iconv(h.cd, nullptr, nullptr, nullptr, nullptr);  // reset shift state
  }
  return t;
}

// CP1252, with the five bytes it leaves undefined read as their Latin-1 (C1) code points.
std::string DecodeCp1252(std::string_view raw, size_t max_out) {
  static constexpr uint16_t k80[32] = {
      0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
      0x2039, 0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
      0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178};
  std::string out;
  out.reserve(std::min(raw.size() + raw.size() / 4, max_out + 4));
  for (char ch : raw) {
    if (out.size() >= max_out) break;
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x80) {
      out.push_back(ch);
    } else {
      AppendUtf8(c < 0xA0 ? k80[c - 0x80] : c, &out);
    }
  }
  return out;
}

// Decodes UTF-16 (no BOM in `raw`); unpaired surrogates become U+FFFD. `bad`, if given, counts
// code units that are implausible in text (unpaired surrogates, C0 controls other than whitespace).
std::string DecodeUtf16(std::string_view raw, bool le, size_t max_out, size_t* bad = nullptr) {
  std::string out;
  auto unit = [&](size_t i) -> uint32_t {
    auto b0 = static_cast<unsigned char>(raw[i]);
    auto b1 = static_cast<unsigned char>(raw[i + 1]);
    return le ? (static_cast<uint32_t>(b1) << 8 | b0) : (static_cast<uint32_t>(b0) << 8 | b1);
  };
  size_t implausible = 0;
  for (size_t i = 0; i + 1 < raw.size() && out.size() < max_out; i += 2) {
    uint32_t cu = unit(i);
    if (cu >= 0xD800 && cu <= 0xDBFF && i + 3 < raw.size()) {
      uint32_t cu2 = unit(i + 2);
      if (cu2 >= 0xDC00 && cu2 <= 0xDFFF) {
        AppendUtf8(0x10000 + ((cu - 0xD800) << 10) + (cu2 - 0xDC00), &out);
        i += 2;
        continue;
      }
    }
    if (cu >= 0xD800 && cu <= 0xDFFF) {
      if (cu <= 0xDBFF && i + 3 >= raw.size()) break;  // high surrogate cut at the end
      ++implausible;
      cu = 0xFFFD;
    } else if (cu < 0x20 && cu != '\t' && cu != '\n' && cu != '\r' && cu != '\f') {
      ++implausible;
    }
    AppendUtf8(cu, &out);
  }
  if (bad) *bad = implausible;
  return out;
}

// BOM-less UTF-16: NUL bytes (the high byte of ASCII characters) almost all on one parity.
// Returns 0 (no), 1 (little-endian) or 2 (big-endian).
int LooksLikeUtf16(std::string_view raw) {
  std::string_view sample = raw.substr(0, 4096);
  if (sample.size() < 4 || std::memchr(sample.data(), 0, sample.size()) == nullptr) return 0;
  size_t even = 0, odd = 0, pairs = sample.size() / 2;
  for (size_t i = 0; i + 1 < sample.size(); i += 2) {
    even += sample[i] == 0;
    odd += sample[i + 1] == 0;
  }
  auto dominant = [&](size_t major, size_t minor) { return major * 100 >= pairs && minor * 20 <= major; };
  int guess = dominant(odd, even) ? 1 : dominant(even, odd) ? 2 : 0;
  if (guess == 0) return 0;
  size_t bad = 0;
  std::string decoded = DecodeUtf16(sample, guess == 1, sample.size() * 2, &bad);
  return bad * 50 <= pairs ? guess : 0;  // at most 2% control characters or broken surrogates
}

// How Japanese a decoded sample looks, per non-ASCII character, in [-4, 2]; `nonascii` gets the count.
double JapaneseScore(std::string_view utf8, size_t* nonascii) {
  size_t pos = 0, count = 0;
  double score = 0;
  while (pos < utf8.size()) {
    uint32_t cp = NextCodePoint(utf8, &pos);
    if (cp < 0x80) continue;
    ++count;
    if (cp >= 0x3041 && cp <= 0x30FF) score += 2;         // hiragana, katakana
    else if (cp >= 0x4E00 && cp <= 0x9FFF) score += 1;    // kanji
    else if (cp >= 0x3000 && cp <= 0x303F) score += 1;    // CJK punctuation
    else if (cp >= 0xFF01 && cp <= 0xFF5E) score += 1;    // full-width ASCII
    // Half-width katakana (what Latin-1 capitals become in CP932), symbols, Greek: neutral.
    else if (cp >= 0xE000 && cp <= 0xF8FF) score -= 3;    // user-defined area
    else if (cp >= 0x80 && cp <= 0x9F) score -= 3;        // C1 controls
    else if (cp == 0xFFFD) score -= 4;                    // rejected byte
  }
  *nonascii = count;
  return count == 0 ? 0 : score / static_cast<double>(count);
}

// max + 4 without overflow: room for a code point that the final cut removes.
size_t Slack(size_t max) { return max > SIZE_MAX - 4 ? SIZE_MAX : max + 4; }

DecodedText Finish(std::string text, const char* encoding, size_t max_bytes) {
  if (!IsValidUtf8(text)) text = RepairUtf8(text);  // defensive: iconv output is valid already
  TruncateUtf8(&text, max_bytes);
  return {std::move(text), encoding};
}

}  // namespace

std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

void TruncateUtf8(std::string* s, size_t max_bytes) {
  if (s->size() <= max_bytes) return;
  size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>((*s)[cut]) & 0xC0) == 0x80) --cut;
  s->resize(cut);
}

std::string Utf16ToUtf8(std::string_view raw, bool little_endian, size_t max_bytes) {
  std::string out = DecodeUtf16(raw, little_endian, Slack(max_bytes));
  TruncateUtf8(&out, max_bytes);
  return out;
}

std::string CanonicalCharset(std::string_view label) {
  std::string l = AsciiLower(label);
  while (!l.empty() && (l.back() == ' ' || l.back() == '"' || l.back() == '\'')) l.pop_back();
  while (!l.empty() && (l.front() == ' ' || l.front() == '"' || l.front() == '\'')) l.erase(0, 1);
  if (l.empty()) return "";
  if (l == "utf-8" || l == "utf8" || l == "unicode-1-1-utf-8") return "UTF-8";
  if (l == "shift_jis" || l == "shift-jis" || l == "sjis" || l == "x-sjis" || l == "ms_kanji" || l == "cp932" ||
      l == "windows-31j" || l == "ms932" || l == "csshiftjis") {
    return "CP932";
  }
  if (l == "euc-jp" || l == "eucjp" || l == "x-euc-jp" || l == "cseucpkdfmtjapanese") return "EUC-JP";
  // As browsers do: Latin-1 and ASCII labels mean windows-1252.
  if (l == "iso-8859-1" || l == "latin1" || l == "iso8859-1" || l == "l1" || l == "us-ascii" || l == "ascii" ||
      l == "windows-1252" || l == "cp1252" || l == "x-cp1252") {
    return "CP1252";
  }
  // A UTF-16/32 label inside an ASCII-readable document is wrong by construction.
  if (l.rfind("utf-16", 0) == 0 || l.rfind("utf-32", 0) == 0 || l.rfind("ucs", 0) == 0) return "";
  for (char c : l) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.' && c != ':') return "";
  }
  std::string upper = l;
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  IconvHandle probe(upper.c_str());
  return probe.ok() ? upper : "";
}

DecodedText DecodeToUtf8(std::string_view raw, std::string_view declared, size_t max_bytes, bool truncated) {
  // 1. Byte-order marks.
  if (raw.size() >= 3 && raw.substr(0, 3) == "\xEF\xBB\xBF") {
    std::string_view body = raw.substr(3);
    if (truncated) body = body.substr(0, CompleteUtf8Prefix(body));
    return Finish(IsValidUtf8(body) ? std::string(body) : RepairUtf8(body), "utf-8", max_bytes);
  }
  if (raw.size() >= 2 && (raw.substr(0, 2) == "\xFF\xFE" || raw.substr(0, 2) == "\xFE\xFF")) {
    bool le = raw[0] == '\xFF';
    return Finish(DecodeUtf16(raw.substr(2), le, Slack(max_bytes)), le ? "utf-16le" : "utf-16be", max_bytes);
  }
  std::string_view sample = raw.substr(0, kSampleBytes);
  std::string_view complete = truncated ? raw.substr(0, CompleteUtf8Prefix(raw)) : raw;

  // 2. A charset the document declares, when its bytes agree.
  std::string charset = CanonicalCharset(declared);
  if (charset == "UTF-8" && IsValidUtf8(complete)) return Finish(std::string(complete), "utf-8", max_bytes);
  if (charset == "CP1252") {
    if (!IsValidUtf8(complete)) return Finish(DecodeCp1252(raw, Slack(max_bytes)), "cp1252", max_bytes);
  } else if (!charset.empty() && charset != "UTF-8") {
    Trial t = Convert(sample, charset.c_str(), Slack(kSampleBytes * 4), true);
    size_t nonascii = 0;
    for (char c : sample) nonascii += static_cast<unsigned char>(c) >= 0x80;
    if (t.opened && t.errors * 50 <= nonascii) {
      Trial full = Convert(raw, charset.c_str(), Slack(max_bytes), truncated);
      std::string name = AsciiLower(charset);
      return {Finish(std::move(full.out), "", max_bytes).text, name};
    }
  }

  // 3. UTF-16 without a BOM.
  if (int utf16 = LooksLikeUtf16(raw)) {
    return Finish(DecodeUtf16(raw, utf16 == 1, Slack(max_bytes)), utf16 == 1 ? "utf-16le" : "utf-16be", max_bytes);
  }

  // 4. UTF-8 (and ASCII): the common case, one validation pass.
  if (IsValidUtf8(complete)) return Finish(std::string(complete), "utf-8", max_bytes);

  // 5. Japanese legacy encodings, by trial conversion of a sample.
  struct Candidate {
    const char* iconv_name;
    const char* name;
  };
  static constexpr Candidate kJapanese[] = {{"CP932", "cp932"}, {"EUC-JP", "euc-jp"}};
  const Candidate* best = nullptr;
  double best_score = 0.6;  // below this, a candidate is not plausible Japanese
  for (const auto& c : kJapanese) {
    Trial t = Convert(sample, c.iconv_name, Slack(kSampleBytes * 4), true);
    if (!t.opened) continue;
    size_t nonascii = 0;
    double score = JapaneseScore(t.out, &nonascii);
    if (nonascii == 0 || t.errors * 50 > nonascii) continue;
    if (score > best_score) {
      best_score = score;
      best = &c;
    }
  }
  if (best) {
    Trial full = Convert(raw, best->iconv_name, Slack(max_bytes), truncated);
    return Finish(std::move(full.out), best->name, max_bytes);
  }

  // 6. Western fallback.
  return Finish(DecodeCp1252(raw, Slack(max_bytes)), "cp1252", max_bytes);
}

}  // namespace fs::extract_internal
