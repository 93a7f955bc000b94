// The pure parsing half of the HTTP server: query strings, multipart bodies, Range headers and the
// Request accessors. No sockets here, so every rule is unit-tested directly.
#include <cctype>
#include <cstring>

#include "server/http_server.h"

namespace fs::server::http {
namespace {

bool EqualsNoCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// The value of `key` among `; key=value` parameters of a header value (quotes removed), or "".
std::string HeaderParam(std::string_view value, std::string_view key) {
  size_t pos = 0;
  while ((pos = value.find(';', pos)) != std::string_view::npos) {
    ++pos;
    size_t end = value.find(';', pos);
    std::string_view item = Trim(value.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos));
    size_t eq = item.find('=');
    if (eq != std::string_view::npos && EqualsNoCase(Trim(item.substr(0, eq)), key)) {
      std::string_view v = Trim(item.substr(eq + 1));
      if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
      return std::string(v);
    }
  }
  return "";
}

// Decimal digits only; values past 2^64 - 1 saturate (a byte position that large is past any end).
bool ParseUint(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 64) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    v = v > (UINT64_MAX - digit) / 10 ? UINT64_MAX : v * 10 + digit;
  }
  *out = v;
  return true;
}

}  // namespace

int HexDigitValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool PercentDecode(std::string_view s, bool plus_is_space, std::string* out) {
  out->clear();
  out->reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return false;  // a '%' needs two hex digits after it
      int hi = HexDigitValue(s[i + 1]);
      int lo = HexDigitValue(s[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out->push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out->push_back(' ');
    } else {
      out->push_back(c);
    }
  }
  return true;
}

bool ParseQuery(std::string_view query, std::multimap<std::string, std::string>* out) {
  size_t start = 0;
  while (start <= query.size()) {
    size_t end = query.find('&', start);
    if (end == std::string_view::npos) end = query.size();
    std::string_view pair = query.substr(start, end - start);
    if (!pair.empty()) {
      size_t eq = pair.find('=');
      std::string key, value;
      if (!PercentDecode(pair.substr(0, eq), true, &key)) return false;
      if (eq != std::string_view::npos && !PercentDecode(pair.substr(eq + 1), true, &value)) return false;
      out->emplace(std::move(key), std::move(value));
    }
    start = end + 1;
  }
  return true;
}

Status ParseMultipart(std::string_view content_type, std::string_view body, std::multimap<std::string, FormPart>* out) {
  const std::string boundary = HeaderParam(content_type, "boundary");
  if (boundary.empty() || boundary.size() > 200) {
    return Status::InvalidArgument("multipart/form-data without a boundary parameter in its Content-Type");
  }
  const std::string delimiter = "--" + boundary;
  size_t pos = body.find(delimiter);
  if (pos == std::string_view::npos) return Status::InvalidArgument("the multipart body has no part");
  pos += delimiter.size();
  constexpr size_t kMaxParts = 100;
  for (size_t parts = 0;; ++parts) {
    // After a delimiter: "--" ends the body; otherwise CRLF and the part's headers.
    if (body.substr(pos, 2) == "--") return Status::Ok();
    if (parts >= kMaxParts) return Status::InvalidArgument("the multipart body has more than 100 parts");
    if (body.substr(pos, 2) == "\r\n") pos += 2;
    else if (body.substr(pos, 1) == "\n") pos += 1;
    else return Status::InvalidArgument("malformed multipart body: a boundary is not followed by a line end");
    size_t head_end = body.find("\r\n\r\n", pos);
    size_t head_skip = 4;
    if (head_end == std::string_view::npos) {
      head_end = body.find("\n\n", pos);
      head_skip = 2;
    }
    if (head_end == std::string_view::npos || head_end - pos > 16 << 10) {
      return Status::InvalidArgument("malformed multipart body: a part's headers do not end");
    }
    FormPart part;
    std::string_view heads = body.substr(pos, head_end - pos);
    bool has_disposition = false;
    while (!heads.empty()) {
      size_t nl = heads.find('\n');
      std::string_view line = Trim(heads.substr(0, nl));
      heads = nl == std::string_view::npos ? std::string_view() : heads.substr(nl + 1);
      size_t colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      std::string_view name = Trim(line.substr(0, colon));
      std::string_view value = Trim(line.substr(colon + 1));
      if (EqualsNoCase(name, "content-disposition")) {
        has_disposition = true;
        part.name = HeaderParam(value, "name");
        part.filename = HeaderParam(value, "filename");
      } else if (EqualsNoCase(name, "content-type")) {
        part.content_type = std::string(value);
      }
    }
    if (!has_disposition) return Status::InvalidArgument("malformed multipart body: a part has no Content-Disposition");
    pos = head_end + head_skip;
    const std::string next = "\r\n" + delimiter;
    size_t end = body.find(next, pos);
    size_t skip = next.size();
    if (end == std::string_view::npos) {
      end = body.find("\n" + delimiter, pos);
      skip = delimiter.size() + 1;
    }
    if (end == std::string_view::npos) return Status::InvalidArgument("malformed multipart body: the last part has no closing boundary");
    part.content = std::string(body.substr(pos, end - pos));
    std::string key = part.name;
    out->emplace(std::move(key), std::move(part));
    pos = end + skip;
  }
}

ByteRange ParseRange(std::string_view header, uint64_t size) {
  ByteRange r;
  std::string_view h = Trim(header);
  if (h.substr(0, 6) != "bytes=") return r;  // other units: ignored, the whole body is served
  h.remove_prefix(6);
  if (h.find(',') != std::string_view::npos) return r;  // several ranges: the whole body (allowed)
  h = Trim(h);
  size_t dash = h.find('-');
  if (dash == std::string_view::npos) return r;
  std::string_view a = Trim(h.substr(0, dash)), b = Trim(h.substr(dash + 1));
  uint64_t first = 0, last = 0;
  if (a.empty()) {  // suffix: the last N bytes
    uint64_t n = 0;
    if (!ParseUint(b, &n)) return r;
    if (n == 0 || size == 0) {
      r.kind = ByteRange::kUnsatisfiable;
      return r;
    }
    r.kind = ByteRange::kSatisfiable;
    r.first = n >= size ? 0 : size - n;
    r.last = size - 1;
    return r;
  }
  if (!ParseUint(a, &first)) return r;
  if (b.empty()) {
    last = size == 0 ? 0 : size - 1;
  } else {
    if (!ParseUint(b, &last) || last < first) return r;  // invalid: ignored
    if (size > 0 && last >= size) last = size - 1;
  }
  if (first >= size) {
    r.kind = ByteRange::kUnsatisfiable;
    return r;
  }
  r.kind = ByteRange::kSatisfiable;
  r.first = first;
  r.last = last;
  return r;
}

std::string Request::get_header_value(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (EqualsNoCase(k, name)) return v;
  }
  return "";
}

bool Request::has_header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (EqualsNoCase(k, name)) return true;
  }
  return false;
}

std::string Request::get_param_value(const std::string& key) const {
  auto it = params.find(key);
  return it == params.end() ? "" : it->second;
}

bool Request::is_multipart_form_data() const {
  std::string ct = get_header_value("content-type");
  return ct.size() >= 19 && EqualsNoCase(std::string_view(ct).substr(0, 19), "multipart/form-data");
}

}  // namespace fs::server::http
