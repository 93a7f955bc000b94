#include "storage/s3_xml.h"

#include <cstdlib>

#include "core/utf8.h"

namespace fs::storage {

std::vector<std::string_view> XmlElements(std::string_view doc, std::string_view name) {
  std::vector<std::string_view> out;
  const std::string open = "<" + std::string(name);
  const std::string close = "</" + std::string(name) + ">";
  size_t at = 0;
  while ((at = doc.find(open, at)) != std::string_view::npos) {
    const size_t after = at + open.size();
    if (after >= doc.size()) break;
    const char next = doc[after];
    if (next != '>' && next != ' ' && next != '/' && next != '\t' && next != '\r' && next != '\n') {
      at = after;  // a longer name that starts the same (<Key> vs <KeyCount>)
      continue;
    }
    const size_t tag_end = doc.find('>', after);
    if (tag_end == std::string_view::npos) break;
    if (doc[tag_end - 1] == '/') {  // <name/>
      out.emplace_back();
      at = tag_end + 1;
      continue;
    }
    const size_t end = doc.find(close, tag_end + 1);
    if (end == std::string_view::npos) break;
    out.push_back(doc.substr(tag_end + 1, end - tag_end - 1));
    at = end + close.size();
  }
  return out;
}

std::string XmlText(std::string_view doc, std::string_view name) {
  auto all = XmlElements(doc, name);
  return all.empty() ? std::string() : XmlUnescape(all.front());
}

std::string XmlUnescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '&') {
      out += s[i];
      continue;
    }
    const size_t semi = s.find(';', i);
    if (semi == std::string_view::npos || semi - i > 10) {
      out += s[i];
      continue;
    }
    const std::string_view entity = s.substr(i + 1, semi - i - 1);
    if (entity == "lt") out += '<';
    else if (entity == "gt") out += '>';
    else if (entity == "amp") out += '&';
    else if (entity == "quot") out += '"';
    else if (entity == "apos") out += '\'';
    else if (entity.size() >= 2 && entity[0] == '#') {
      const bool hex = entity[1] == 'x' || entity[1] == 'X';
      const std::string digits(entity.substr(hex ? 2 : 1));
      char* end = nullptr;
      const unsigned long cp = std::strtoul(digits.c_str(), &end, hex ? 16 : 10);
      if (digits.empty() || *end != '\0' || cp == 0 || cp > 0x10FFFF) {
        out += s[i];
        continue;
      }
      AppendUtf8(static_cast<uint32_t>(cp), &out);
    } else {
      out += s[i];
      continue;
    }
    i = semi;
  }
  return out;
}

}  // namespace fs::storage
