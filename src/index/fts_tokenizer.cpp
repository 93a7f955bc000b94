#include "index/fts_tokenizer.h"

#include <sqlite3.h>

#include <cstring>
#include <new>
#include <string_view>

#include "core/utf8.h"

namespace fs::index_internal {
namespace {

struct Tokenizer {
  fts5_tokenizer base_api{};       // unicode61's functions
  Fts5Tokenizer* base = nullptr;   // unicode61 instance
};

// Forwards unicode61's tokens, shifting their byte offsets to the run's place in the text.
struct ShiftCtx {
  void* ctx;
  int (*x_token)(void*, int, const char*, int, int, int);
  int shift;
};

int ShiftToken(void* p, int tflags, const char* token, int n, int start, int end) {
  auto* s = static_cast<ShiftCtx*>(p);
  return s->x_token(s->ctx, tflags, token, n, start + s->shift, end + s->shift);
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
  if (rc != SQLITE_OK) {
    delete t;
    return rc;
  }
  *out = reinterpret_cast<Fts5Tokenizer*>(t);
  return SQLITE_OK;
}

void Delete(Fts5Tokenizer* p) {
  auto* t = reinterpret_cast<Tokenizer*>(p);
  if (t->base) t->base_api.xDelete(t->base);
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
  size_t pos = 0;
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
    ShiftCtx shift{ctx, x_token, static_cast<int>(run_start)};
    int rc = t->base_api.xTokenize(t->base, &shift, flags, ptext + run_start,
                                   static_cast<int>(pos - run_start), ShiftToken);
    if (rc != SQLITE_OK) return rc;
  }
  return SQLITE_OK;
}

}  // namespace

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
