// E-mail (RFC 5322 with MIME, RFC 2045-2049): headers unfolded and RFC 2047 encoded-words decoded;
// multipart bodies split at their boundaries (nesting capped); text/plain preferred over text/html in
// multipart/alternative; base64 and quoted-printable undone; charsets converted to UTF-8; attachments
// give their file names, not their bytes; attached messages (message/rfc822) are read as parts.
#include <algorithm>
#include <cctype>

#include "core/base64.h"
#include "core/utf8.h"
#include "extract/encoding.h"
#include "extract/markup.h"
#include "extract/office.h"

namespace fs::extract_internal {
namespace {

struct Header {
  std::string name;   // lower case
  std::string value;  // unfolded, raw (encoded-words not yet decoded)
};

struct Part {
  std::vector<Header> headers;
  std::string_view body;
  std::string_view Get(std::string_view name) const {
    for (const auto& h : headers) {
      if (h.name == name) return h.value;
    }
    return {};
  }
};

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Headers up to the first empty line; the rest is the body.
Part ParsePart(std::string_view raw) {
  Part p;
  size_t pos = 0;
  while (pos < raw.size()) {
    size_t eol = raw.find('\n', pos);
    if (eol == std::string_view::npos) eol = raw.size();
    std::string_view line = raw.substr(pos, eol - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    size_t next = std::min(eol + 1, raw.size());
    if (line.empty()) {
      pos = next;
      break;
    }
    if ((line[0] == ' ' || line[0] == '\t') && !p.headers.empty()) {
      if (p.headers.back().value.size() < 64 * 1024) {
        p.headers.back().value += ' ';
        p.headers.back().value.append(Trim(line));
      }
    } else if (size_t colon = line.find(':'); colon != std::string_view::npos && colon > 0 &&
                                              line.substr(0, colon).find(' ') == std::string_view::npos) {
      p.headers.push_back({AsciiLower(line.substr(0, colon)), std::string(Trim(line.substr(colon + 1)))});
    } else if (p.headers.empty() && line.rfind("From ", 0) == 0) {
      // an mbox "From " separator line
    } else {
      break;  // not a header: the body starts here (a message without headers)
    }
    pos = next;
  }
  p.body = raw.substr(std::min(pos, raw.size()));
  return p;
}

std::string DecodeQuotedPrintable(std::string_view s, bool underscore_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '=') {
      if (i + 1 < s.size() && (s[i + 1] == '\n' || s[i + 1] == '\r')) {  // soft line break
        i += (s[i + 1] == '\r' && i + 2 < s.size() && s[i + 2] == '\n') ? 2 : 1;
        continue;
      }
      if (i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
          std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
        out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
        i += 2;
        continue;
      }
    }
    out.push_back(underscore_is_space && c == '_' ? ' ' : c);
  }
  return out;
}

// Lenient base64: characters outside the alphabet (and padding) are dropped, then padding is restored.
std::string DecodeBase64Lenient(std::string_view s) {
  std::string clean;
  clean.reserve(s.size());
  for (char c : s) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/') clean.push_back(c);
  }
  if (clean.size() % 4 == 1) clean.pop_back();  // a lone sextet holds no whole byte
  while (clean.size() % 4 != 0) clean.push_back('=');
  auto d = Base64Decode(clean);
  return d.ok() ? std::move(d).value() : std::string();
}

std::string ToUtf8(std::string_view bytes, std::string_view charset, size_t max_bytes) {
  return DecodeToUtf8(bytes, charset, max_bytes).text;
}

// RFC 2047: "=?charset?B?...?=" and "=?charset?Q?...?=" words; whitespace between two encoded
// words disappears.
std::string DecodeHeader(std::string_view v) {
  std::string out;
  size_t pos = 0;
  bool last_was_word = false;
  while (pos < v.size()) {
    size_t start = v.find("=?", pos);
    if (start == std::string_view::npos) {
      out.append(v.substr(pos));
      break;
    }
    size_t q1 = v.find('?', start + 2);
    size_t q2 = q1 == std::string_view::npos ? q1 : v.find('?', q1 + 1);
    size_t end = q2 == std::string_view::npos ? q2 : v.find("?=", q2 + 1);
    if (end == std::string_view::npos || q2 != q1 + 2) {
      out.append(v.substr(pos, start + 2 - pos));
      pos = start + 2;
      last_was_word = false;
      continue;
    }
    std::string_view between = v.substr(pos, start - pos);
    if (!(last_was_word && Trim(between).empty())) out.append(between);
    std::string charset(v.substr(start + 2, q1 - start - 2));
    if (size_t star = charset.find('*'); star != std::string::npos)
      charset.resize(star);  // RFC 2231 language
    const char enc = static_cast<char>(std::toupper(static_cast<unsigned char>(v[q1 + 1])));
    std::string_view payload = v.substr(q2 + 1, end - q2 - 1);
    std::string bytes = enc == 'B' ? DecodeBase64Lenient(payload) : DecodeQuotedPrintable(payload, true);
    out += ToUtf8(bytes, charset, bytes.size() * 4 + 16);
    pos = end + 2;
    last_was_word = true;
  }
  return IsValidUtf8(out) ? out : ToUtf8(out, "", out.size() * 4 + 16);
}

// A parameter of a structured header (Content-Type, Content-Disposition), RFC 2231 forms included.
std::string HeaderParam(std::string_view value, std::string_view name) {
  std::string plain, extended, ext_charset;
  bool have_extended = false;
  size_t pos = value.find(';');
  while (pos != std::string_view::npos && pos < value.size()) {
    ++pos;
    size_t eq = value.find('=', pos);
    if (eq == std::string_view::npos) break;
    std::string key = AsciiLower(Trim(value.substr(pos, eq - pos)));
    size_t vstart = eq + 1;
    while (vstart < value.size() && value[vstart] == ' ') ++vstart;
    std::string val;
    size_t after;
    if (vstart < value.size() && value[vstart] == '"') {
      after = vstart + 1;
      while (after < value.size() && value[after] != '"') {
        if (value[after] == '\\' && after + 1 < value.size()) ++after;
        val.push_back(value[after++]);
      }
      after = value.find(';', after);
    } else {
      after = value.find(';', vstart);
      val = std::string(Trim(
          value.substr(vstart, after == std::string_view::npos ? std::string_view::npos : after - vstart)));
    }
    if (key == name) {
      plain = val;
    } else if (key.rfind(std::string(name) + "*", 0) == 0) {  // name*, name*0, name*0*, name*1* ...
      const bool encoded = key.back() == '*';
      if (encoded && !have_extended) {  // the first encoded section starts with charset'language'
        size_t tick = val.find('\'');
        size_t tick2 = tick == std::string::npos ? tick : val.find('\'', tick + 1);
        if (tick2 != std::string::npos) {
          ext_charset = val.substr(0, tick);
          val = val.substr(tick2 + 1);
        }
      }
      have_extended = true;
      if (encoded) std::replace(val.begin(), val.end(), '%', '=');
      extended += encoded ? DecodeQuotedPrintable(val, false) : val;
    }
    pos = after;
  }
  if (have_extended) return ToUtf8(extended, ext_charset, extended.size() * 4 + 16);
  return DecodeHeader(plain);
}

std::string MediaType(const Part& p, std::string_view fallback) {
  std::string_view ct = p.Get("content-type");
  if (ct.empty()) return std::string(fallback);
  return AsciiLower(Trim(ct.substr(0, ct.find(';'))));
}

// "Sat, 27 Mar 2010 12:11:21 -0000" (RFC 5322 section 3.3, obsolete zone names too).
std::optional<int64_t> ParseMailDate(std::string_view v) {
  static constexpr std::string_view kMonths[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                                 "jul", "aug", "sep", "oct", "nov", "dec"};
  if (size_t comma = v.find(','); comma != std::string_view::npos) v.remove_prefix(comma + 1);
  std::vector<std::string> tok;
  std::string cur;
  for (char c : v) {
    if (c == ' ' || c == '\t') {
      if (!cur.empty()) tok.push_back(std::move(cur));
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (!cur.empty()) tok.push_back(cur);
  if (tok.size() < 4) return std::nullopt;
  int day = std::atoi(tok[0].c_str());
  int month = 0;
  for (int m = 0; m < 12; ++m) {
    if (AsciiLower(tok[1]).rfind(kMonths[m], 0) == 0) month = m + 1;
  }
  int year = std::atoi(tok[2].c_str());
  if (year < 100) year += year < 50 ? 2000 : 1900;
  int hour = 0, minute = 0, second = 0;
  if (std::sscanf(tok[3].c_str(), "%d:%d:%d", &hour, &minute, &second) < 2) return std::nullopt;
  auto t = CivilToNs(year, month, day, hour, minute, second);
  if (!t) return std::nullopt;
  int64_t offset_min = 0;
  if (tok.size() >= 5 && (tok[4][0] == '+' || tok[4][0] == '-') && tok[4].size() >= 5) {
    int hhmm = std::atoi(tok[4].c_str() + 1);
    offset_min = (tok[4][0] == '-' ? -1 : 1) * ((hhmm / 100) * 60 + hhmm % 100);
  } else if (tok.size() >= 5) {
    static constexpr std::pair<std::string_view, int> kZones[] = {{"EST", -5}, {"EDT", -4}, {"CST", -6},
                                                                  {"CDT", -5}, {"MST", -7}, {"MDT", -6},
                                                                  {"PST", -8}, {"PDT", -7}};
    for (auto [zone, hours] : kZones) {
      if (tok[4] == zone) offset_min = hours * 60;
    }
  }
  return *t - offset_min * 60 * 1000000000;
}

class MailReader {
 public:
  MailReader(const ExtractOptions& options, TextSink* sink)
      : options_(options), budget_(options), sink_(sink) {}

  Status Walk(const Part& part, std::string_view default_type, uint32_t depth) {
    if (depth > options_.max_depth) {
      return Status::Corruption("MIME parts nested deeper than " + std::to_string(options_.max_depth));
    }
    if (++parts_ > options_.max_members) {
      return Status::ResourceExhausted("more than " + std::to_string(options_.max_members) + " MIME parts");
    }
    if (sink_->Full()) return Status::Ok();
    FS_RETURN_IF_ERROR(budget_.CheckTime());
    const std::string type = MediaType(part, default_type);
    const std::string_view ct = part.Get("content-type");
    std::string_view disposition = part.Get("content-disposition");
    std::string file = HeaderParam(disposition, "filename");
    if (file.empty()) file = HeaderParam(ct, "name");
    const bool attachment = AsciiLower(disposition.substr(0, 10)) == "attachment" || !file.empty();
    if (attachment && type.rfind("multipart/", 0) != 0 && type != "message/rfc822") {
      sink_->Append("Attachment: ");
      sink_->Append(file.empty() ? std::string("(unnamed ") + type + ")" : file);
      sink_->Break();
      return Status::Ok();
    }
    if (type.rfind("multipart/", 0) == 0) return Multipart(part, type, depth);
    if (type == "message/rfc822" || type == "message/global") {
      // The decoded copy lives while its parts are walked: copies count against the unpacked cap.
      FS_ASSIGN_OR_RETURN(std::string message, Decoded(part));
      Part inner = ParsePart(message);
      HeadersText(inner);
      return Walk(inner, "text/plain", depth + 1);
    }
    if (type == "text/plain" || type == "text/html" || type == "text/enriched") {
      FS_ASSIGN_OR_RETURN(std::string bytes, Decoded(part));
      std::string charset = HeaderParam(ct, "charset");
      const size_t room = static_cast<size_t>(options_.max_text_bytes) + 64;
      if (type == "text/html") {
        // The declared charset goes first when the HTML itself declares none.
        std::string text = ToUtf8(bytes, charset, bytes.size() * 4 + 16);
        sink_->Append(HtmlToText(text, room).text);
      } else {
        sink_->Append(ToUtf8(bytes, charset, room));
      }
      sink_->Break();
    }
    return Status::Ok();
  }

  void HeadersText(const Part& p) {
    for (const char* name : {"subject", "from", "to", "cc"}) {
      std::string_view v = p.Get(name);
      if (v.empty()) continue;
      if (std::string_view(name) != "subject") {
        std::string label(name);
        label[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(label[0])));
        sink_->Append(label + ": ");
      }
      sink_->Append(DecodeHeader(v));
      sink_->Break();
    }
    sink_->Break();
  }

 private:
  Result<std::string> Decoded(const Part& part) {
    std::string cte = AsciiLower(Trim(part.Get("content-transfer-encoding")));
    std::string_view body = part.body.substr(0, static_cast<size_t>(options_.max_member_bytes));
    std::string out = cte == "base64"             ? DecodeBase64Lenient(body)
                      : cte == "quoted-printable" ? DecodeQuotedPrintable(body, false)
                                                  : std::string(body);
    FS_RETURN_IF_ERROR(budget_.AddUnpacked(out.size()));
    return out;
  }

  Status Multipart(const Part& part, const std::string& type, uint32_t depth) {
    std::string boundary = HeaderParam(part.Get("content-type"), "boundary");
    if (boundary.empty()) return Status::Ok();
    const std::string delim = "--" + boundary;
    std::vector<std::string_view> bodies;
    std::string_view b = part.body;
    size_t pos = 0, start = std::string_view::npos;
    while (pos < b.size()) {
      size_t eol = b.find('\n', pos);
      if (eol == std::string_view::npos) eol = b.size();
      std::string_view line = b.substr(pos, eol - pos);
      if (line.size() >= delim.size() && line.substr(0, delim.size()) == delim) {
        if (start != std::string_view::npos) {
          size_t end = pos;
          if (end > start && b[end - 1] == '\n') --end;
          if (end > start && b[end - 1] == '\r') --end;
          bodies.push_back(b.substr(start, end - start));
        }
        if (line.substr(delim.size(), 2) == "--") {
          start = std::string_view::npos;
          break;
        }
        start = std::min(eol + 1, b.size());
      }
      pos = eol + 1;
    }
    if (start != std::string_view::npos && start < b.size())
      bodies.push_back(b.substr(start));  // no closing line
    std::vector<Part> parts;
    for (auto body : bodies) parts.push_back(ParsePart(body));
    const std::string_view child_default = type == "multipart/digest" ? "message/rfc822" : "text/plain";
    if (type == "multipart/alternative") {
      // One rendering only: the plain text one, else the last (richest) one.
      const Part* chosen = nullptr;
      for (const auto& p : parts) {
        if (MediaType(p, child_default) == "text/plain") chosen = &p;
      }
      if (!chosen && !parts.empty()) chosen = &parts.back();
      return chosen ? Walk(*chosen, child_default, depth + 1) : Status::Ok();
    }
    for (const auto& p : parts) FS_RETURN_IF_ERROR(Walk(p, child_default, depth + 1));
    return Status::Ok();
  }

  const ExtractOptions& options_;
  Budget budget_;
  TextSink* sink_;
  uint32_t parts_ = 0;
};

}  // namespace

Extraction MailToText(std::string_view bytes, const ExtractOptions& options) {
  Extraction out;
  Part top = ParsePart(bytes);
  out.title = DecodeHeader(top.Get("subject"));
  out.author = DecodeHeader(top.Get("from"));
  out.created_ns = ParseMailDate(top.Get("date"));
  TextSink sink(static_cast<size_t>(options.max_text_bytes));
  MailReader reader(options, &sink);
  reader.HeadersText(top);
  Status s = reader.Walk(top, "text/plain", 0);
  return FinishExtraction(std::move(out), s, &sink);
}

}  // namespace fs::extract_internal
