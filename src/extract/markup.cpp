#include "extract/markup.h"

#include <cctype>
#include <cstdint>
#include <limits>

#include "core/utf8.h"
#include "extract/encoding.h"

namespace fs::extract_internal {
namespace {

bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

struct NamedEntity {
  const char* name;
  uint32_t cp;
};
// The entities real pages use; anything else stays as written.
constexpr NamedEntity kEntities[] = {
    {"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}, {"nbsp", ' '},
    {"ensp", ' '}, {"emsp", ' '}, {"thinsp", ' '}, {"shy", 0}, {"zwnj", 0}, {"zwj", 0},
    {"copy", 0xA9}, {"reg", 0xAE}, {"trade", 0x2122}, {"hellip", 0x2026}, {"mdash", 0x2014},
    {"ndash", 0x2013}, {"lsquo", 0x2018}, {"rsquo", 0x2019}, {"sbquo", 0x201A}, {"ldquo", 0x201C},
    {"rdquo", 0x201D}, {"bdquo", 0x201E}, {"laquo", 0xAB}, {"raquo", 0xBB}, {"bull", 0x2022},
    {"middot", 0xB7}, {"deg", 0xB0}, {"plusmn", 0xB1}, {"times", 0xD7}, {"divide", 0xF7},
    {"euro", 0x20AC}, {"pound", 0xA3}, {"yen", 0xA5}, {"cent", 0xA2}, {"sect", 0xA7}, {"para", 0xB6},
    {"iexcl", 0xA1}, {"iquest", 0xBF}, {"micro", 0xB5}, {"frac12", 0xBD}, {"frac14", 0xBC},
    {"frac34", 0xBE}, {"sup2", 0xB2}, {"sup3", 0xB3}, {"dagger", 0x2020}, {"Dagger", 0x2021},
    {"larr", 0x2190}, {"rarr", 0x2192}, {"uarr", 0x2191}, {"darr", 0x2193}, {"harr", 0x2194},
    {"Agrave", 0xC0}, {"Aacute", 0xC1}, {"Acirc", 0xC2}, {"Atilde", 0xC3}, {"Auml", 0xC4},
    {"Aring", 0xC5}, {"AElig", 0xC6}, {"Ccedil", 0xC7}, {"Egrave", 0xC8}, {"Eacute", 0xC9},
    {"Ecirc", 0xCA}, {"Euml", 0xCB}, {"Igrave", 0xCC}, {"Iacute", 0xCD}, {"Icirc", 0xCE},
    {"Iuml", 0xCF}, {"Ntilde", 0xD1}, {"Ograve", 0xD2}, {"Oacute", 0xD3}, {"Ocirc", 0xD4},
    {"Otilde", 0xD5}, {"Ouml", 0xD6}, {"Oslash", 0xD8}, {"Ugrave", 0xD9}, {"Uacute", 0xDA},
    {"Ucirc", 0xDB}, {"Uuml", 0xDC}, {"Yacute", 0xDD}, {"szlig", 0xDF}, {"agrave", 0xE0},
    {"aacute", 0xE1}, {"acirc", 0xE2}, {"atilde", 0xE3}, {"auml", 0xE4}, {"aring", 0xE5},
    {"aelig", 0xE6}, {"ccedil", 0xE7}, {"egrave", 0xE8}, {"eacute", 0xE9}, {"ecirc", 0xEA},
    {"euml", 0xEB}, {"igrave", 0xEC}, {"iacute", 0xED}, {"icirc", 0xEE}, {"iuml", 0xEF},
    {"ntilde", 0xF1}, {"ograve", 0xF2}, {"oacute", 0xF3}, {"ocirc", 0xF4}, {"otilde", 0xF5},
    {"ouml", 0xF6}, {"oslash", 0xF8}, {"ugrave", 0xF9}, {"uacute", 0xFA}, {"ucirc", 0xFB},
    {"uuml", 0xFC}, {"yacute", 0xFD}, {"yuml", 0xFF}, {"OElig", 0x152}, {"oelig", 0x153},
    {"Scaron", 0x160}, {"scaron", 0x161}, {"alpha", 0x3B1}, {"beta", 0x3B2}, {"gamma", 0x3B3},
    {"delta", 0x3B4}, {"pi", 0x3C0}, {"mu", 0x3BC}, {"sigma", 0x3C3}, {"omega", 0x3C9},
};

// Elements after which a browser starts a new line: they separate words.
bool IsBlockElement(std::string_view name) {
  static constexpr std::string_view kBlock[] = {
      "address", "article", "aside", "blockquote", "br", "caption", "dd", "details", "div", "dl",
      "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5",
      "h6", "header", "hr", "li", "main", "nav", "ol", "option", "p", "pre", "section", "summary",
      "table", "tbody", "td", "tfoot", "th", "thead", "title", "tr", "ul", "body", "head", "html",
      "meta", "img", "input", "button", "select", "textarea", "label"};
  for (auto b : kBlock) {
    if (name == b) return true;
  }
  return false;
}

// Collapses whitespace as it goes: one space between words, one line break between blocks.
class TextSink {
 public:
  void Text(std::string_view s) {
    for (char c : s) Char(c);
  }
  void Char(char c) {
    if (IsSpace(c)) {
      if (!out_.empty() && out_.back() != ' ' && out_.back() != '\n') out_ += ' ';
      return;
    }
    out_ += c;
  }
  void CodePoint(uint32_t cp) {
    if (cp == 0) return;
    if (cp < 0x80) {
      Char(static_cast<char>(cp));
    } else {
      AppendUtf8(cp, &out_);
    }
  }
  void Break() {
    if (!out_.empty() && out_.back() == ' ') out_.pop_back();
    if (!out_.empty() && out_.back() != '\n') out_ += '\n';
  }
  std::string& str() { return out_; }
  size_t size() const { return out_.size(); }

 private:
  std::string out_;
};

// Decodes the entity at s[i] == '&' into `sink`; returns the index after it (i + 1 when it is not
// an entity, so the '&' is kept literally by the caller).
size_t DecodeEntity(std::string_view s, size_t i, TextSink* sink) {
  size_t semi = s.find(';', i + 1);
  if (semi == std::string_view::npos || semi - i > 33) return i;
  std::string_view body = s.substr(i + 1, semi - i - 1);
  if (body.size() >= 2 && body[0] == '#') {
    bool hex = body[1] == 'x' || body[1] == 'X';
    std::string_view digits = body.substr(hex ? 2 : 1);
    if (digits.empty() || digits.size() > 8) return i;
    uint32_t cp = 0;
    for (char c : digits) {
      int v = (c >= '0' && c <= '9') ? c - '0'
              : hex && (c >= 'a' && c <= 'f') ? c - 'a' + 10
              : hex && (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                              : -1;
      if (v < 0) return i;
      cp = cp * (hex ? 16 : 10) + static_cast<uint32_t>(v);
    }
    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
    sink->CodePoint(cp);
    return semi + 1;
  }
  for (const auto& e : kEntities) {
    if (body == e.name) {
      sink->CodePoint(e.cp);
      return semi + 1;
    }
  }
  return i;
}

// Index just past the '>' that ends the tag opened at s[i] == '<' (quotes respected); s.size() if none.
size_t TagEnd(std::string_view s, size_t i) {
  char quote = 0;
  for (size_t j = i + 1; j < s.size(); ++j) {
    char c = s[j];
    if (quote) {
      if (c == quote) quote = 0;
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '>') {
      return j + 1;
    }
  }
  return s.size();
}

std::string AttributeValue(std::string_view tag_lower, std::string_view key) {
  size_t k = tag_lower.find(key);
  if (k == std::string_view::npos) return "";
  size_t v = k + key.size();
  while (v < tag_lower.size() && (tag_lower[v] == ' ' || tag_lower[v] == '"' || tag_lower[v] == '\'')) ++v;
  size_t e = v;
  while (e < tag_lower.size() && !IsSpace(tag_lower[e]) && tag_lower[e] != '"' && tag_lower[e] != '\'' &&
         tag_lower[e] != ';' && tag_lower[e] != '>' && tag_lower[e] != '/') {
    ++e;
  }
  return std::string(tag_lower.substr(v, e - v));
}

}  // namespace

std::string DeclaredCharset(std::string_view raw) {
  std::string head = AsciiLower(raw.substr(0, 4096));
  if (head.rfind("<?xml", 0) == 0) {
    size_t end = head.find("?>");
    std::string decl = head.substr(0, end);
    std::string enc = AttributeValue(decl, "encoding=");
    if (!enc.empty()) return enc;
  }
  for (size_t pos = head.find("<meta"); pos != std::string::npos; pos = head.find("<meta", pos + 5)) {
    size_t end = TagEnd(head, pos);
    std::string_view tag = std::string_view(head).substr(pos, end - pos);
    std::string cs = AttributeValue(tag, "charset=");
    if (!cs.empty()) return cs;
  }
  return "";
}

HtmlText HtmlToText(std::string_view raw, size_t max_bytes, bool truncated) {
  HtmlText result;
  // Decode everything we were given: tags make the text much smaller than the bytes.
  DecodedText decoded = DecodeToUtf8(raw, DeclaredCharset(raw), std::numeric_limits<size_t>::max(), truncated);
  result.encoding = decoded.encoding;
  const std::string& s = decoded.text;
  const std::string ls = AsciiLower(s);  // same byte offsets; for case-insensitive tag matching
  TextSink sink;
  size_t title_start = std::string::npos;
  size_t i = 0;
  while (i < s.size() && sink.size() < max_bytes + 4) {  // + 4: a cut code point is trimmed below
    char c = s[i];
    if (c == '&') {
      size_t next = DecodeEntity(s, i, &sink);
      if (next != i) {
        i = next;
        continue;
      }
      sink.Char('&');
      ++i;
      continue;
    }
    if (c != '<' || i + 1 >= s.size()) {
      sink.Char(c);
      ++i;
      continue;
    }
    if (ls.compare(i, 4, "<!--") == 0) {
      size_t end = ls.find("-->", i + 4);
      i = end == std::string::npos ? s.size() : end + 3;
      continue;
    }
    if (ls.compare(i, 9, "<![cdata[") == 0) {
      size_t end = ls.find("]]>", i + 9);
      size_t stop = end == std::string::npos ? s.size() : end;
      sink.Text(std::string_view(s).substr(i + 9, stop - i - 9));
      i = end == std::string::npos ? s.size() : end + 3;
      continue;
    }
    char n = s[i + 1];
    if (!IsAlpha(n) && n != '/' && n != '!' && n != '?') {  // "a < b": a literal '<'
      sink.Char(c);
      ++i;
      continue;
    }
    size_t end = TagEnd(s, i);
    bool closing = n == '/';
    size_t name_start = i + (closing ? 2 : 1);
    size_t name_end = name_start;
    while (name_end < end && (std::isalnum(static_cast<unsigned char>(ls[name_end])) || ls[name_end] == '-')) {
      ++name_end;
    }
    std::string_view name = std::string_view(ls).substr(name_start, name_end - name_start);
    i = end;
    if (!closing && (name == "script" || name == "style" || name == "template")) {
      std::string close = "</" + std::string(name);
      size_t at = ls.find(close, i);
      i = at == std::string::npos ? s.size() : TagEnd(s, at);
      continue;
    }
    if (name == "title") {
      if (!closing) {
        sink.Break();
        title_start = sink.size();
      } else if (title_start != std::string::npos && result.title.empty()) {
        result.title = sink.str().substr(title_start);
        while (!result.title.empty() && IsSpace(result.title.back())) result.title.pop_back();
      }
    }
    if (IsBlockElement(name)) sink.Break();
  }
  result.text = std::move(sink.str());
  while (!result.text.empty() && IsSpace(result.text.back())) result.text.pop_back();
  TruncateUtf8(&result.text, max_bytes);
  return result;
}

std::string MarkdownToText(std::string_view utf8) {
  std::string out;
  out.reserve(utf8.size());
  size_t line_start = 0;
  while (line_start < utf8.size()) {
    size_t nl = utf8.find('\n', line_start);
    size_t line_end = nl == std::string_view::npos ? utf8.size() : nl;
    std::string_view line = utf8.substr(line_start, line_end - line_start);
    line_start = line_end + 1;
    size_t p = 0;
    while (p < line.size() && (line[p] == ' ' || line[p] == '\t')) ++p;
    std::string_view rest = line.substr(p);
    // Fences, rules and "[id]: url" reference definitions carry no words worth keeping.
    if (rest.rfind("```", 0) == 0 || rest.rfind("~~~", 0) == 0 || rest.rfind("---", 0) == 0 ||
        rest.rfind("***", 0) == 0 || rest.rfind("===", 0) == 0) {
      if (rest.find_first_not_of(rest[0]) == std::string_view::npos || rest[0] == '`' || rest[0] == '~') {
        out += '\n';
        continue;
      }
    }
    if (!rest.empty() && rest[0] == '[') {
      size_t close = rest.find("]:");
      if (close != std::string_view::npos && rest.find(']') == close) {
        out += '\n';
        continue;
      }
    }
    while (!rest.empty() && (rest[0] == '#' || rest[0] == '>')) {
      rest.remove_prefix(1);
      while (!rest.empty() && rest[0] == ' ') rest.remove_prefix(1);
    }
    for (size_t k = 0; k < rest.size(); ++k) {
      char c = rest[k];
      if (c == '!' && k + 1 < rest.size() && rest[k + 1] == '[') continue;  // image: keep the alt text
      if (c == ']' && k + 1 < rest.size() && rest[k + 1] == '(') {          // "](url)": drop the target
        size_t close = rest.find(')', k + 2);
        if (close != std::string_view::npos) {
          k = close;
          continue;
        }
      }
      if (c == '[' || c == ']' || c == '*' || c == '`') continue;
      if (c == '_' && k + 1 < rest.size() && rest[k + 1] == '_') {
        ++k;
        continue;
      }
      out += c;
    }
    out += '\n';
  }
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace fs::extract_internal
