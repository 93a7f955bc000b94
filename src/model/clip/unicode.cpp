#include "model/clip/unicode.h"

#include <algorithm>
#include <cstdint>
#include <iterator>

namespace fs::clip::unicode {
namespace {

struct CpRange {
  char32_t lo, hi;  // inclusive
};
struct CccRange {
  char32_t lo, hi;
  uint8_t ccc;
};
struct LowerMapping {
  char32_t cp;
  char32_t lower[3];  // zero-padded
};
struct Decomposition {
  char32_t cp, first, second;  // second == 0: singleton decomposition
};
struct Composition {
  char32_t first, second, composite;
};
// Grapheme_Cluster_Break values (UAX #29); kOther for code points the table does not list.
// clang-format off
enum class Gcb : uint8_t {
  kOther, kCR, kLF, kControl, kExtend, kZWJ, kRegionalIndicator, kPrepend, kSpacingMark,
  kL, kV, kT, kLV, kLVT
};
// clang-format on
struct GraphemeBreakRange {
  char32_t lo, hi;
  Gcb value;
};

#include "model/clip/clip_unicode_tables.inc"

template <size_t N>
bool InRanges(const CpRange (&ranges)[N], char32_t cp) {
  // First range whose upper bound is >= cp.
  const CpRange* it = std::lower_bound(std::begin(ranges), std::end(ranges), cp,
                                       [](const CpRange& r, char32_t c) { return r.hi < c; });
  return it != std::end(ranges) && it->lo <= cp;
}

// Hangul syllables are composed and decomposed arithmetically (Unicode 15, section 3.12).
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28;
constexpr char32_t kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

const Decomposition* FindDecomposition(char32_t cp) {
  const Decomposition* it = std::lower_bound(std::begin(kDecompositions), std::end(kDecompositions), cp,
                                             [](const Decomposition& d, char32_t c) { return d.cp < c; });
  return it != std::end(kDecompositions) && it->cp == cp ? it : nullptr;
}

void Decompose(char32_t cp, std::u32string* out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const char32_t s = cp - kSBase;
    out->push_back(kLBase + s / kNCount);
    out->push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out->push_back(kTBase + s % kTCount);
    return;
  }
  const Decomposition* d = cp < 0xC0 ? nullptr : FindDecomposition(cp);
  if (d == nullptr) {
    out->push_back(cp);
    return;
  }
  Decompose(d->first, out);  // canonical decompositions nest a few levels at most
  if (d->second != 0) Decompose(d->second, out);
}

// The primary composite of (first, second), or 0 when there is none.
char32_t Compose(char32_t first, char32_t second) {
  if (first >= kLBase && first < kLBase + kLCount && second >= kVBase && second < kVBase + kVCount) {
    return kSBase + ((first - kLBase) * kVCount + (second - kVBase)) * kTCount;
  }
  if (first >= kSBase && first < kSBase + kSCount && (first - kSBase) % kTCount == 0 && second > kTBase &&
      second < kTBase + kTCount) {
    return first + (second - kTBase);
  }
  const Composition* it =
      std::lower_bound(std::begin(kCompositions), std::end(kCompositions), std::pair(first, second),
                       [](const Composition& c, const std::pair<char32_t, char32_t>& key) {
                         return c.first < key.first || (c.first == key.first && c.second < key.second);
                       });
  if (it != std::end(kCompositions) && it->first == first && it->second == second) {
    return it->composite;
  }
  return 0;
}

bool IsCased(char32_t cp) {
  return InRanges(kCasedRanges, cp);
}
bool IsCaseIgnorable(char32_t cp) {
  return InRanges(kCaseIgnorableRanges, cp);
}

// Final_Sigma (Unicode 15, table 3-17): preceded by a cased letter and not followed by one, where
// case-ignorable characters in between are skipped. Like ICU, a character that is both
// case-ignorable and cased counts as ignorable.
bool IsFinalSigma(std::u32string_view text, size_t pos) {
  bool cased_before = false;
  for (size_t i = pos; i-- > 0;) {
    if (IsCaseIgnorable(text[i])) continue;
    cased_before = IsCased(text[i]);
    break;
  }
  if (!cased_before) return false;
  for (size_t i = pos + 1; i < text.size(); ++i) {
    if (IsCaseIgnorable(text[i])) continue;
    return !IsCased(text[i]);
  }
  return true;
}

Gcb GraphemeBreak(char32_t cp) {
  if (cp >= 0x20 && cp < 0x7F) return Gcb::kOther;
  const GraphemeBreakRange* it =
      std::lower_bound(std::begin(kGraphemeBreakRanges), std::end(kGraphemeBreakRanges), cp,
                       [](const GraphemeBreakRange& r, char32_t c) { return r.hi < c; });
  return it != std::end(kGraphemeBreakRanges) && it->lo <= cp ? it->value : Gcb::kOther;
}

bool IsExtendedPictographic(char32_t cp) {
  return cp >= 0xA9 && InRanges(kExtendedPictographicRanges, cp);
}

// Indic_Conjunct_Break, for GB9c.
enum class Incb : uint8_t { kNone, kConsonant, kLinker, kExtend };
Incb IndicConjunctBreak(char32_t cp, Gcb gcb) {
  if (cp < 0x900) return gcb == Gcb::kExtend ? Incb::kExtend : Incb::kNone;
  if (InRanges(kIncbLinkerRanges, cp)) return Incb::kLinker;
  if (InRanges(kIncbConsonantRanges, cp)) return Incb::kConsonant;
  if ((gcb == Gcb::kExtend && cp != 0x200C) || gcb == Gcb::kZWJ) return Incb::kExtend;
  return Incb::kNone;
}

}  // namespace

size_t GraphemeClusterEnd(std::u32string_view text, size_t start) {
  size_t pos = start;
  Gcb prev = GraphemeBreak(text[pos]);
  // GB11 state: the cluster so far ends in ExtPict Extend* (ZWJ when `after_zwj`).
  bool pictographic_run = IsExtendedPictographic(text[pos]);
  bool after_zwj = false;
  size_t regional_run = prev == Gcb::kRegionalIndicator ? 1 : 0;
  // GB9c state: 0 none, 1 after InCB=Consonant [Extend]*, 2 after a consonant and then a linker,
  // with any Extend or Linker after it.
  int conjunct = IndicConjunctBreak(text[pos], prev) == Incb::kConsonant ? 1 : 0;
  for (++pos; pos < text.size(); ++pos) {
    const char32_t cp = text[pos];
    const Gcb next = GraphemeBreak(cp);
    const Incb incb = IndicConjunctBreak(cp, next);
    bool join = false;
    if (prev == Gcb::kCR && next == Gcb::kLF) {
      join = true;  // GB3
    } else if (prev == Gcb::kCR || prev == Gcb::kLF || prev == Gcb::kControl || next == Gcb::kCR ||
               next == Gcb::kLF || next == Gcb::kControl) {
      join = false;  // GB4, GB5
    } else if (prev == Gcb::kL &&
               (next == Gcb::kL || next == Gcb::kV || next == Gcb::kLV || next == Gcb::kLVT)) {
      join = true;  // GB6
    } else if ((prev == Gcb::kLV || prev == Gcb::kV) && (next == Gcb::kV || next == Gcb::kT)) {
      join = true;  // GB7
    } else if ((prev == Gcb::kLVT || prev == Gcb::kT) && next == Gcb::kT) {
      join = true;  // GB8
    } else if (next == Gcb::kExtend || next == Gcb::kZWJ || next == Gcb::kSpacingMark) {
      join = true;  // GB9, GB9a
    } else if (prev == Gcb::kPrepend) {
      join = true;  // GB9b
    } else if (conjunct == 2 && incb == Incb::kConsonant) {
      join = true;  // GB9c
    } else if (after_zwj && IsExtendedPictographic(cp)) {
      join = true;  // GB11
    } else if (prev == Gcb::kRegionalIndicator && next == Gcb::kRegionalIndicator) {
      join = regional_run % 2 == 1;  // GB12, GB13: pairs
    }
    if (!join) break;
    // Track GB11 and GB12/13 state across the joined character.
    if (IsExtendedPictographic(cp)) {
      pictographic_run = true;
      after_zwj = false;
    } else if (next == Gcb::kExtend && pictographic_run && !after_zwj) {
      // still ExtPict Extend*
    } else if (next == Gcb::kZWJ && pictographic_run && !after_zwj) {
      after_zwj = true;
    } else {
      pictographic_run = false;
      after_zwj = false;
    }
    regional_run = next == Gcb::kRegionalIndicator ? regional_run + 1 : 0;
    if (incb == Incb::kConsonant) {
      conjunct = 1;
    } else if (incb == Incb::kLinker && conjunct > 0) {
      conjunct = 2;
    } else if (incb != Incb::kExtend) {
      conjunct = 0;
    }
    prev = next;
  }
  return pos;
}

bool IsLetter(char32_t cp) {
  if (cp < 0x80) return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
  return InRanges(kLetterRanges, cp);
}

bool IsNumber(char32_t cp) {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  return InRanges(kNumberRanges, cp);
}

bool IsWhiteSpace(char32_t cp) {
  if (cp < 0x80) return cp == ' ' || (cp >= 0x09 && cp <= 0x0D);
  return InRanges(kWhiteSpaceRanges, cp);
}

int CombiningClass(char32_t cp) {
  if (cp < 0x300) return 0;
  const CccRange* it = std::lower_bound(std::begin(kCccRanges), std::end(kCccRanges), cp,
                                        [](const CccRange& r, char32_t c) { return r.hi < c; });
  return it != std::end(kCccRanges) && it->lo <= cp ? it->ccc : 0;
}

std::u32string Nfc(std::u32string_view text) {
  // 1. Full canonical decomposition.
  std::u32string buf;
  buf.reserve(text.size() + 8);
  for (char32_t cp : text) Decompose(cp, &buf);
  // 2. Canonical ordering: stable sort of each run of non-starters by combining class.
  for (size_t i = 1; i < buf.size(); ++i) {
    const int ccc = CombiningClass(buf[i]);
    if (ccc == 0) continue;
    size_t j = i;
    while (j > 0) {
      const int prev = CombiningClass(buf[j - 1]);
      if (prev <= ccc) break;
      std::swap(buf[j - 1], buf[j]);
      --j;
    }
  }
  // 3. Canonical composition: each character composes with the last starter unless blocked by a
  //    character in between of class 0 or of a class >= its own.
  if (buf.empty()) return buf;
  size_t starter_pos = 0;
  bool have_starter = CombiningClass(buf[0]) == 0;
  int last_class = have_starter ? 0 : 256;
  size_t out_pos = 1;
  for (size_t i = 1; i < buf.size(); ++i) {
    const char32_t cp = buf[i];
    const int ccc = CombiningClass(cp);
    if (have_starter && (last_class < ccc || last_class == 0)) {
      const char32_t composite = Compose(buf[starter_pos], cp);
      if (composite != 0) {
        buf[starter_pos] = composite;
        continue;
      }
    }
    if (ccc == 0) {
      starter_pos = out_pos;
      have_starter = true;
    }
    last_class = ccc;
    buf[out_pos++] = cp;
  }
  buf.resize(out_pos);
  return buf;
}

std::u32string Lowercase(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char32_t cp = text[i];
    if (cp < 0x80) {
      out.push_back(cp >= 'A' && cp <= 'Z' ? cp + 0x20 : cp);
      continue;
    }
    if (cp == 0x03A3) {
      out.push_back(IsFinalSigma(text, i) ? 0x03C2 : 0x03C3);
      continue;
    }
    const LowerMapping* it = std::lower_bound(std::begin(kLowerMappings), std::end(kLowerMappings), cp,
                                              [](const LowerMapping& m, char32_t c) { return m.cp < c; });
    if (it == std::end(kLowerMappings) || it->cp != cp) {
      out.push_back(cp);
      continue;
    }
    for (char32_t mapped : it->lower) {
      if (mapped != 0) out.push_back(mapped);
    }
  }
  return out;
}

}  // namespace fs::clip::unicode
