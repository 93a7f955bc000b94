#include "index/snippet.h"

#include <libstemmer.h>

#include <algorithm>
#include <memory>

#include "core/utf8.h"
#include "index/fts_tokenizer.h"

namespace fs {
namespace {

using index_internal::IsCjk;

struct StemmerDeleter {
  void operator()(sb_stemmer* s) const { sb_stemmer_delete(s); }
};

bool IsSpace(uint32_t cp) {
  return cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == '\f' || cp == '\v' || cp == 0xA0 ||
         cp == 0x3000 || (cp >= 0x2000 && cp <= 0x200B) || cp == 0x2028 || cp == 0x2029;
}

// A character that belongs to a word (unicode61's view, roughly): ASCII letters and digits, and
// non-ASCII characters other than punctuation, spaces, symbols and CJK (CJK is matched by runs).
bool IsWordChar(uint32_t cp) {
  if (cp < 0x80) return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9');
  if (IsCjk(cp) || IsSpace(cp) || cp == 0xFFFD) return false;
  if (cp <= 0xBF) return false;                        // Latin-1 punctuation and symbols
  if (cp == 0xD7 || cp == 0xF7) return false;          // x and ÷
  if (cp >= 0x2000 && cp <= 0x2BFF) return false;      // general punctuation, symbols, arrows
  if (cp >= 0x3000 && cp <= 0x303F) return false;      // CJK punctuation
  if (cp >= 0xFF00 && cp <= 0xFF0F) return false;      // full-width punctuation
  if (cp >= 0x1F000) return cp >= 0x20000;             // emoji and other symbols; CJK B..F are CJK
  return true;
}

std::string Fold(std::string_view token) {
  std::string out(token);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

struct Term {
  std::string folded;  // as typed, lower case
  std::string stem;    // its stem (what the index matches); = folded for prefixes and short words
  bool prefix = false;
  bool cjk = false;    // a run of CJK characters: matched as a substring
};

struct Span {
  size_t begin, end;  // bytes of the text
  size_t term;
};

// Splits `s` into word tokens and CJK runs, calling fn(begin, end, is_cjk) in order.
template <typename Fn>
void ForEachToken(std::string_view s, Fn fn) {
  size_t pos = 0;
  size_t start = 0;
  enum { kNone, kWord, kCjk } in = kNone;
  while (pos < s.size()) {
    const size_t at = pos;
    const uint32_t cp = NextCodePoint(s, &pos);
    const auto kind = IsCjk(cp) ? kCjk : IsWordChar(cp) ? kWord : kNone;
    if (kind != in) {
      if (in != kNone) fn(start, at, in == kCjk);
      in = kind;
      start = at;
    }
  }
  if (in != kNone) fn(start, s.size(), in == kCjk);
}

std::vector<Term> QueryTerms(std::string_view query, sb_stemmer* stemmer) {
  std::vector<Term> terms;
  ForEachToken(query, [&](size_t begin, size_t end, bool cjk) {
    Term t;
    t.folded = Fold(query.substr(begin, end - begin));
    t.cjk = cjk;
    t.prefix = !cjk && end < query.size() && query[end] == '*';
    t.stem = (t.prefix || cjk) ? t.folded : std::string(index_internal::StemToken(stemmer, t.folded));
    for (const Term& other : terms) {
      if (other.folded == t.folded && other.prefix == t.prefix) return;
    }
    terms.push_back(std::move(t));
  });
  return terms;
}

// Does the document token (`original` as written, `folded` its lower case) match `term` the way
// the index does?
bool TokenMatches(sb_stemmer* stemmer, std::string_view folded, std::string_view original, const Term& t,
                  std::string (&forms)[index_internal::kMaxTokenExtras]) {
  if (t.prefix) return folded.rfind(t.folded, 0) == 0;
  if (folded == t.folded || folded == t.stem) return true;
  // Cheap test first: every form of the token that could equal the stem holds its first letters.
  if (folded.find(std::string_view(t.stem).substr(0, 3)) == std::string_view::npos) return false;
  const size_t n = index_internal::TokenForms(stemmer, folded, original, forms);
  for (size_t i = 0; i < n; ++i) {
    if (forms[i] == t.stem) return true;
  }
  return false;
}

// Appends text[begin, end) to `parts` as one piece, white space collapsed to single spaces and
// control characters dropped; `*last_space` carries whether the previous piece ended in a space.
void AppendPiece(std::string_view text, size_t begin, size_t end, bool match, std::vector<SnippetPart>* parts,
                 bool* last_space) {
  std::string out;
  size_t pos = begin;
  while (pos < end) {
    const uint32_t cp = NextCodePoint(text, &pos);
    if (IsSpace(cp) || cp < 0x20 || cp == 0x7F) {
      if (!*last_space) out += ' ';
      *last_space = true;
      continue;
    }
    AppendUtf8(cp, &out);
    *last_space = false;
  }
  if (out.empty()) return;
  if (!parts->empty() && parts->back().match == match) {
    parts->back().text += out;
  } else {
    parts->push_back({std::move(out), match});
  }
}

// The byte offset `chars` code points before `pos` (or 0).
size_t BackChars(std::string_view s, size_t pos, size_t chars) {
  while (pos > 0 && chars > 0) {
    --pos;
    while (pos > 0 && (static_cast<unsigned char>(s[pos]) & 0xC0) == 0x80) --pos;
    --chars;
  }
  return pos;
}

// The byte offset `chars` code points after `pos` (or the end).
size_t ForwardChars(std::string_view s, size_t pos, size_t chars) {
  while (pos < s.size() && chars > 0) {
    NextCodePoint(s, &pos);
    --chars;
  }
  return pos;
}

}  // namespace

std::vector<SnippetPart> MakeSnippet(std::string_view text, std::string_view query, const SnippetOptions& options) {
  std::unique_ptr<sb_stemmer, StemmerDeleter> stemmer(sb_stemmer_new("english", "UTF_8"));
  std::string_view scan = text.substr(0, std::min(text.size(), options.max_scan_bytes));
  const std::vector<Term> terms = stemmer ? QueryTerms(query, stemmer.get()) : std::vector<Term>{};

  std::vector<Span> spans;
  if (!terms.empty()) {
    std::string forms[index_internal::kMaxTokenExtras];
    ForEachToken(scan, [&](size_t begin, size_t end, bool cjk) {
      if (cjk) return;
      const std::string_view original = scan.substr(begin, end - begin);
      const std::string folded = Fold(original);
      for (size_t i = 0; i < terms.size(); ++i) {
        if (!terms[i].cjk && TokenMatches(stemmer.get(), folded, original, terms[i], forms)) {
          spans.push_back({begin, end, i});
          break;
        }
      }
    });
    for (size_t i = 0; i < terms.size(); ++i) {
      if (!terms[i].cjk) continue;
      for (size_t at = scan.find(terms[i].folded); at != std::string_view::npos;
           at = scan.find(terms[i].folded, at + terms[i].folded.size())) {
        spans.push_back({at, at + terms[i].folded.size(), i});
      }
    }
    std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.begin < b.begin; });
    // Overlapping spans (a CJK run inside another) keep the first.
    std::vector<Span> kept;
    for (const Span& s : spans) {
      if (kept.empty() || s.begin >= kept.back().end) kept.push_back(s);
    }
    spans.swap(kept);
  }

  // The window: the first run of matches, within max_chars, holding the most distinct terms.
  size_t best_first = 0, best_count = 0, best_last = 0;
  for (size_t first = 0; first < spans.size(); ++first) {
    const size_t limit = ForwardChars(text, spans[first].begin, options.max_chars);
    std::vector<bool> seen(terms.size(), false);
    size_t count = 0, last = first;
    for (size_t j = first; j < spans.size() && spans[j].end <= limit; ++j) {
      if (!seen[spans[j].term]) {
        seen[spans[j].term] = true;
        ++count;
      }
      last = j;
    }
    if (count > best_count) {
      best_count = count;
      best_first = first;
      best_last = last;
    }
    if (count == terms.size()) break;
  }

  size_t begin = 0;
  if (best_count > 0) {
    // Some context before the first match, more when the matches leave room for it, from a word start.
    const size_t used = spans[best_last].end - spans[best_first].begin;
    const size_t room = used >= options.max_chars ? 0 : std::min<size_t>(options.max_chars / 4, options.max_chars - used);
    begin = BackChars(text, spans[best_first].begin, room);
    if (begin > 0) {
      for (size_t p = begin; p < spans[best_first].begin;) {
        if (IsSpace(NextCodePoint(text, &p))) {
          begin = p;
          break;
        }
      }
    }
  }
  size_t end = ForwardChars(text, begin, options.max_chars);
  if (end < text.size()) {
    // End at a space within the last 30 characters, never inside a match.
    const size_t floor = BackChars(text, end, 30);
    for (size_t p = end; p > floor; --p) {
      if (text[p - 1] == ' ' || text[p - 1] == '\n') {
        end = p - 1;
        break;
      }
    }
    for (const Span& s : spans) {
      if (s.begin < end && s.end > end) end = s.end;
    }
  }

  std::vector<SnippetPart> parts;
  bool last_space = true;  // drops leading space
  size_t at = begin;
  for (const Span& s : spans) {
    if (s.begin < begin || s.end > end) continue;
    AppendPiece(text, at, s.begin, false, &parts, &last_space);
    AppendPiece(text, s.begin, s.end, true, &parts, &last_space);
    at = s.end;
  }
  AppendPiece(text, at, end, false, &parts, &last_space);
  if (!parts.empty() && !parts.back().match && parts.back().text.back() == ' ') parts.back().text.pop_back();
  if (!parts.empty() && parts.back().text.empty()) parts.pop_back();
  if (parts.empty()) return parts;
  if (begin > 0) {
    if (parts.front().match) parts.insert(parts.begin(), {"…", false});
    else parts.front().text.insert(0, "…");
  }
  if (end < text.size()) {
    if (parts.back().match) parts.push_back({"…", false});
    else parts.back().text += "…";
  }
  return parts;
}

}  // namespace fs
