#include "index/fts_tokenizer.h"

#include <libstemmer.h>
#include <sqlite3.h>

#include <cstring>
#include <new>
#include <string>
#include <string_view>

#include "core/utf8.h"

namespace fs::index_internal {
namespace {

struct Tokenizer {
  fts5_tokenizer base_api{};       // unicode61's functions
  Fts5Tokenizer* base = nullptr;   // unicode61 instance
  sb_stemmer* stemmer = nullptr;   // Snowball English (Porter2)
  std::string extras[kMaxTokenExtras];  // scratch: one token's extra forms
};

bool IsAsciiLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsAsciiDigit(char c) { return c >= '0' && c <= '9'; }

// Forwards unicode61's tokens, shifting their byte offsets to the run's place in the text, and
// adds each token's extra forms (TokenForms) as colocated tokens (documents) or replaces it by its
// stem (queries, except prefix queries).
struct ShiftCtx {
  void* ctx;
  int (*x_token)(void*, int, const char*, int, int, int);
  int shift;
  Tokenizer* t;
  std::string_view run;  // the original text of the run (case and separators intact)
  bool query;
  bool prefix;
  bool parts;  // a parts column (text starts with kPartsMarker): only the parts of each token
};

int ShiftToken(void* p, int tflags, const char* token, int n, int start, int end) {
  auto* s = static_cast<ShiftCtx*>(p);
  std::string_view folded(token, static_cast<size_t>(n));
  std::string_view original = s->run.substr(static_cast<size_t>(start), static_cast<size_t>(end - start));
  if (s->query) {
    if (s->prefix) return s->x_token(s->ctx, tflags, token, n, start + s->shift, end + s->shift);
    const std::string_view stem = StemToken(s->t->stemmer, folded);
    return s->x_token(s->ctx, tflags, stem.data(), static_cast<int>(stem.size()), start + s->shift, end + s->shift);
  }
  int rc = SQLITE_OK;
  if (!s->parts) rc = s->x_token(s->ctx, tflags, token, n, start + s->shift, end + s->shift);
  if (rc != SQLITE_OK) return rc;
  const size_t count = TokenForms(s->t->stemmer, folded, original, s->parts, s->t->extras);
  // In a parts column the first part of a token takes a position of its own and the rest share
  // it, as a whole column's extra forms share their token's: each token with parts counts once in
  // the document's length, and no term is written twice at one position.
  for (size_t i = 0; i < count && rc == SQLITE_OK; ++i) {
    const std::string& e = s->t->extras[i];
    const int flags = s->parts && i == 0 ? tflags : FTS5_TOKEN_COLOCATED;
    rc = s->x_token(s->ctx, flags, e.data(), static_cast<int>(e.size()), start + s->shift, end + s->shift);
  }
  return rc;
}

int Create(void* api_ptr, const char** /*args*/, int /*nargs*/, Fts5Tokenizer** out) {
  auto* api = static_cast<fts5_api*>(api_ptr);
  auto* t = new (std::nothrow) Tokenizer();
  if (!t) return SQLITE_NOMEM;
  void* user = nullptr;
  int rc = api->xFindTokenizer(api, "unicode61", &user, &t->base_api);
  if (rc == SQLITE_OK) {
    const char* base_args[] = {"remove_diacritics", "2"};
    rc = t->base_api.xCreate(user, base_args, 2, &t->base);
  }
  if (rc == SQLITE_OK) {
    t->stemmer = sb_stemmer_new("english", "UTF_8");
    if (!t->stemmer) rc = SQLITE_NOMEM;
  }
  if (rc != SQLITE_OK) {
    if (t->base) t->base_api.xDelete(t->base);
    delete t;
    return rc;
  }
  *out = reinterpret_cast<Fts5Tokenizer*>(t);
  return SQLITE_OK;
}

void Delete(Fts5Tokenizer* p) {
  auto* t = reinterpret_cast<Tokenizer*>(p);
  if (t->base) t->base_api.xDelete(t->base);
  if (t->stemmer) sb_stemmer_delete(t->stemmer);
  delete t;
}

// One CJK run, streamed with one character of lookahead. Document mode: every character, plus
// the pair it starts at the same position. Query mode: a lone character, or the chain of pairs.
int EmitCjkRun(std::string_view text, size_t* pos, bool query, void* ctx,
               int (*x_token)(void*, int, const char*, int, int, int)) {
  size_t cur = *pos;
  size_t cur_end = cur;
  NextCodePoint(text, &cur_end);
  bool first = true;
  while (true) {
    size_t next_end = cur_end;
    bool has_next = false;
    if (cur_end < text.size()) {
      uint32_t c = NextCodePoint(text, &next_end);
      has_next = IsCjk(c);
    }
    const int a = static_cast<int>(cur), b = static_cast<int>(cur_end), c = static_cast<int>(next_end);
    int rc = SQLITE_OK;
    if (!query || (first && !has_next)) {
      rc = x_token(ctx, 0, text.data() + a, b - a, a, b);
      if (rc != SQLITE_OK) return rc;
    }
    if (has_next) {
      rc = x_token(ctx, query ? 0 : FTS5_TOKEN_COLOCATED, text.data() + a, c - a, a, c);
      if (rc != SQLITE_OK) return rc;
    } else {
      *pos = cur_end;
      return SQLITE_OK;
    }
    first = false;
    cur = cur_end;
    cur_end = next_end;
  }
}

int Tokenize(Fts5Tokenizer* p, void* ctx, int flags, const char* ptext, int ntext,
             int (*x_token)(void*, int, const char*, int, int, int)) {
  auto* t = reinterpret_cast<Tokenizer*>(p);
  std::string_view text(ptext, ntext > 0 ? static_cast<size_t>(ntext) : 0);
  const bool query = (flags & FTS5_TOKENIZE_QUERY) != 0;
  const bool prefix = (flags & FTS5_TOKENIZE_PREFIX) != 0;
  size_t pos = 0;
  // A document column whose text starts with the marker is a parts column: Latin tokens give only
  // their parts, CJK runs nothing (their characters are in the whole-word column already).
  const bool parts = !query && !text.empty() && text[0] == kPartsMarker;
  if (parts) {
    pos = 1;
    while (pos < text.size()) {
      size_t run_start = pos;
      size_t probe = pos;
      while (probe < text.size()) {
        size_t next = probe;
        if (IsCjk(NextCodePoint(text, &next))) break;
        probe = next;
      }
      if (probe > run_start) {
        ShiftCtx shift{ctx, x_token, static_cast<int>(run_start), t, text.substr(run_start, probe - run_start), false,
                       false, true};
        int rc = t->base_api.xTokenize(t->base, &shift, flags, ptext + run_start, static_cast<int>(probe - run_start),
                                       ShiftToken);
        if (rc != SQLITE_OK) return rc;
      }
      pos = probe;
      while (pos < text.size()) {  // skip the CJK run
        size_t next = pos;
        if (!IsCjk(NextCodePoint(text, &next))) break;
        pos = next;
      }
    }
    return SQLITE_OK;
  }
  while (pos < text.size()) {
    size_t probe = pos;
    if (IsCjk(NextCodePoint(text, &probe))) {
      int rc = EmitCjkRun(text, &pos, query, ctx, x_token);
      if (rc != SQLITE_OK) return rc;
      continue;
    }
    // A non-CJK run: hand it to unicode61.
    size_t run_start = pos;
    while (pos < text.size()) {
      size_t next = pos;
      if (IsCjk(NextCodePoint(text, &next))) break;
      pos = next;
    }
    ShiftCtx shift{ctx, x_token, static_cast<int>(run_start), t, text.substr(run_start, pos - run_start), query,
                   prefix, false};
    int rc = t->base_api.xTokenize(t->base, &shift, flags, ptext + run_start,
                                   static_cast<int>(pos - run_start), ShiftToken);
    if (rc != SQLITE_OK) return rc;
  }
  return SQLITE_OK;
}

}  // namespace

std::string_view StemToken(sb_stemmer* stemmer, std::string_view folded) {
  // Only plain ASCII words of three or more characters with a letter: Snowball English leaves
  // shorter words alone anyway, and other scripts are not English.
  if (folded.size() < 3 || folded.size() > 64) return folded;
  bool letter = false;
  for (char c : folded) {
    if (static_cast<unsigned char>(c) >= 0x80) return folded;
    letter = letter || IsAsciiLetter(c);
  }
  if (!letter) return folded;
  const sb_symbol* out = sb_stemmer_stem(stemmer, reinterpret_cast<const sb_symbol*>(folded.data()),
                                         static_cast<int>(folded.size()));
  if (!out) return folded;
  return {reinterpret_cast<const char*>(out), static_cast<size_t>(sb_stemmer_length(stemmer))};
}

size_t TokenForms(sb_stemmer* stemmer, std::string_view folded, std::string_view original, bool parts,
                  std::string (&out)[kMaxTokenExtras]) {
  size_t count = 0;
  // The whole word's forms: parts equal to them are whole-word matches already.
  std::string whole_stem(StemToken(stemmer, folded));
  auto add = [&](std::string_view form) {
    if (count == kMaxTokenExtras || form == folded) return;
    if (parts && form == whole_stem) return;
    for (size_t i = 0; i < count; ++i) {
      if (out[i] == form) return;
    }
    out[count++].assign(form);
  };
  if (!parts) {
    add(whole_stem);
    return count;
  }
  // Parts: only for ASCII tokens whose original spelling is the folded one up to case (the
  // offsets then line up character for character).
  if (original.size() != folded.size()) return count;
  for (char c : original) {
    if (static_cast<unsigned char>(c) >= 0x80) return count;
  }
  auto boundary = [&](size_t i) {  // a part starts at original[i]
    const char a = original[i - 1], b = original[i];
    return (IsAsciiLetter(a) && IsAsciiDigit(b)) || (IsAsciiDigit(a) && IsAsciiLetter(b)) ||
           (a >= 'a' && a <= 'z' && b >= 'A' && b <= 'Z');
  };
  size_t part_start = 0;
  for (size_t i = 1; i <= original.size(); ++i) {
    if (i < original.size() && !boundary(i)) continue;
    if (part_start == 0 && i == original.size()) break;  // one part: the token itself
    if (i - part_start >= 2) {
      const std::string_view part = folded.substr(part_start, i - part_start);
      add(part);
      add(StemToken(stemmer, part));
    }
    part_start = i;
  }
  return count;
}

bool IsCjk(unsigned cp) {
  return (cp >= 0x3040 && cp <= 0x30FF) ||   // Hiragana, Katakana
         (cp >= 0x3400 && cp <= 0x4DBF) ||   // CJK Extension A
         (cp >= 0x4E00 && cp <= 0x9FFF) ||   // CJK Unified Ideographs
         (cp >= 0xAC00 && cp <= 0xD7AF) ||   // Hangul syllables
         (cp >= 0xF900 && cp <= 0xFAFF) ||   // CJK Compatibility Ideographs
         (cp >= 0xFF66 && cp <= 0xFF9F) ||   // half-width Katakana
         (cp >= 0x20000 && cp <= 0x2FFFF) || // CJK Extensions B..F
         cp == 0x3005 || cp == 0x30FC;        // 々, ー
}

int RegisterFtsTokenizer(sqlite3* db) {
  fts5_api* api = nullptr;
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &stmt, nullptr);
  if (rc != SQLITE_OK) return rc;
  sqlite3_bind_pointer(stmt, 1, static_cast<void*>(&api), "fts5_api_ptr", nullptr);
  sqlite3_step(stmt);
  rc = sqlite3_finalize(stmt);
  if (rc != SQLITE_OK) return rc;
  if (!api || api->iVersion < 2) return SQLITE_ERROR;
  fts5_tokenizer tok{Create, Delete, Tokenize};
  return api->xCreateTokenizer(api, "filesearch", api, &tok, nullptr);
}

}  // namespace fs::index_internal
