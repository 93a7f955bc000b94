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

void FoldInto(std::string_view token, std::string* out) {
  out->assign(token);
  for (char& c : *out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
}

std::string Fold(std::string_view token) {
  std::string out;
  FoldInto(token, &out);
  return out;
}


struct Term {
  std::string folded;  // as typed, lower case
  std::string stem;    // its stem (what the index matches); = folded for prefixes and short words
  bool prefix = false;
  bool cjk = false;    // a run of CJK characters: matched as a substring
};

// Where a match of `t` may first be: the first place its first letters appear written in lower
// case, capitalised or in capitals (npos if nowhere). Finding these is a memchr-speed scan, so
// text without the words costs no tokenising, and tokenising starts near the first match.
size_t FirstCandidate(std::string_view text, const Term& t) {
  if (t.cjk) return text.find(t.folded);
  const std::string lower = (t.prefix ? t.folded : t.stem).substr(0, 3);
  std::string capital = lower, upper = lower;
  if (!capital.empty() && capital[0] >= 'a' && capital[0] <= 'z') capital[0] = static_cast<char>(capital[0] - 'a' + 'A');
  for (char& c : upper) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  size_t best = std::string_view::npos;
  for (const std::string& form : {lower, capital, upper}) best = std::min(best, text.find(form));
  return best;
}

struct Span {
  size_t begin, end;  // bytes of the text
  size_t term;
};

// Splits s[from, end) into word tokens and CJK runs, calling fn(begin, end, is_cjk) in order
// until it returns false.
template <typename Fn>
void ForEachToken(std::string_view s, Fn fn, size_t from = 0) {
  size_t pos = from;
  size_t start = from;
  enum { kNone, kWord, kCjk } in = kNone;
  while (pos < s.size()) {
    const size_t at = pos;
    const uint32_t cp = NextCodePoint(s, &pos);
    const auto kind = IsCjk(cp) ? kCjk : IsWordChar(cp) ? kWord : kNone;
    if (kind != in) {
      if (in != kNone && !fn(start, at, in == kCjk)) return;
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
      if (other.folded == t.folded && other.prefix == t.prefix) return true;
    }
    terms.push_back(std::move(t));
    return true;
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
  // The forms the content column indexes (the stem), then those the name and path parts columns do.
  for (const bool parts : {false, true}) {
    const size_t n = index_internal::TokenForms(stemmer, folded, original, parts, forms);
    for (size_t i = 0; i < n; ++i) {
      if (forms[i] == t.stem) return true;
    }
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
  // One stemmer per thread: creating one costs more than a short snippet.
  thread_local std::unique_ptr<sb_stemmer, StemmerDeleter> stemmer(sb_stemmer_new("english", "UTF_8"));
  std::string_view scan = text.substr(0, std::min(text.size(), options.max_scan_bytes));
  const std::vector<Term> terms = stemmer ? QueryTerms(query, stemmer.get()) : std::vector<Term>{};

  std::vector<Span> spans;
  size_t start = std::string_view::npos;
  for (const Term& t : terms) start = std::min(start, FirstCandidate(scan, t));
  if (start != std::string_view::npos) {
    // Back to the start of the word the candidate is in (its first letters may be mid-word).
    size_t word = start;
    while (word > 0 && start - word < 64 && static_cast<unsigned char>(scan[word - 1]) > ' ' &&
           scan[word - 1] != '.' && scan[word - 1] != ',') {
      --word;
    }
    start = word;
    while (start > 0 && (static_cast<unsigned char>(scan[start]) & 0xC0) == 0x80) --start;
    std::string forms[index_internal::kMaxTokenExtras];
    std::string folded;
    std::vector<bool> seen(terms.size(), false);
    size_t unseen = terms.size();
    size_t stop_at = scan.size();  // set once every term was seen: a little further, then stop
    ForEachToken(
        scan,
        [&](size_t begin, size_t end, bool cjk) {
          if (begin > stop_at || spans.size() >= 1000) return false;  // enough to choose a window
          if (cjk) return true;
          const std::string_view original = scan.substr(begin, end - begin);
          FoldInto(original, &folded);
          for (size_t i = 0; i < terms.size(); ++i) {
            if (!terms[i].cjk && TokenMatches(stemmer.get(), folded, original, terms[i], forms)) {
              spans.push_back({begin, end, i});
              if (!seen[i]) {
                seen[i] = true;
                if (--unseen == 0) stop_at = std::min(scan.size(), end + 4 * options.max_chars);
              }
              break;
            }
          }
          return true;
        },
        start);
    for (size_t i = 0; i < terms.size(); ++i) {
      if (!terms[i].cjk) continue;
      size_t found = 0;  // the first 64 occurrences are enough to choose a window
      for (size_t at = scan.find(terms[i].folded); at != std::string_view::npos && found < 64;
           at = scan.find(terms[i].folded, at + terms[i].folded.size()), ++found) {
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
