#include "model/clip/unicode.h"

#include <gtest/gtest.h>

namespace fs::clip::unicode {
namespace {

TEST(ClipUnicode, Categories) {
  EXPECT_TRUE(IsLetter(U'a'));
  EXPECT_TRUE(IsLetter(U'Z'));
  EXPECT_TRUE(IsLetter(U'é'));
  EXPECT_TRUE(IsLetter(U'猫'));      // Lo, inside the CJK range row
  EXPECT_TRUE(IsLetter(U'\uAC00'));  // Hangul syllable (a First/Last range in UnicodeData)
  EXPECT_TRUE(IsLetter(U'ー'));      // Lm
  EXPECT_FALSE(IsLetter(U'1'));
  EXPECT_FALSE(IsLetter(U'\u0301'));  // Mn: not a letter
  EXPECT_FALSE(IsLetter(U'😀'));
  EXPECT_TRUE(IsNumber(U'7'));
  EXPECT_TRUE(IsNumber(U'²'));  // No
  EXPECT_TRUE(IsNumber(U'Ⅻ'));  // Nl
  EXPECT_TRUE(IsNumber(U'١'));  // Arabic-Indic digit
  EXPECT_FALSE(IsNumber(U'a'));
  for (char32_t ws :
       {U' ', U'\t', U'\n', U'\r', U'\v', U'\f', U'\u0085', U'\u00A0', U'\u3000', U'\u2028', U'\u202F'}) {
    EXPECT_TRUE(IsWhiteSpace(ws)) << static_cast<uint32_t>(ws);
  }
  EXPECT_FALSE(IsWhiteSpace(U'\u200B'));  // zero width space is not White_Space
  EXPECT_FALSE(IsWhiteSpace(U'\uFEFF'));
  EXPECT_FALSE(IsLetter(0x110000));
  EXPECT_FALSE(IsLetter(0xD800));
}

TEST(ClipUnicode, NfcComposes) {
  EXPECT_EQ(Nfc(U"cafe\u0301"), U"café");
  EXPECT_EQ(Nfc(U"café"), U"café");
  EXPECT_EQ(Nfc(U"\u212B"), U"\u00C5");         // singleton: Angstrom sign -> Å
  EXPECT_EQ(Nfc(U"\u2126"), U"\u03A9");         // Ohm -> Omega
  EXPECT_EQ(Nfc(U"a\u0323\u0302"), U"\u1EAD");  // ậ from either mark order
  EXPECT_EQ(Nfc(U"a\u0302\u0323"), U"\u1EAD");
  EXPECT_EQ(Nfc(U"s\u0307\u0323"), U"\u1E69");        // canonical reordering, then composition
  EXPECT_EQ(Nfc(U"\u1100\u1161\u11A8"), U"\uAC01");   // Hangul LVT
  EXPECT_EQ(Nfc(U"\uAC00\u11A8"), U"\uAC01");         // LV + T
  EXPECT_EQ(Nfc(U"\u0B47\u0B3E"), U"\u0B4B");         // two starters compose
  EXPECT_EQ(Nfc(U"q\u0301"), U"q\u0301");             // no composite: unchanged
  EXPECT_EQ(Nfc(U"\u0301a"), U"\u0301a");             // leading non-starter
  EXPECT_EQ(Nfc(U"e\u0301\u0301"), U"\u00E9\u0301");  // second mark is blocked
  EXPECT_EQ(Nfc(U"\u0958"), U"\u0915\u093C");         // composition exclusion stays decomposed
  EXPECT_EQ(Nfc(U"\u0344"), U"\u0308\u0301");         // non-starter decomposition
  EXPECT_EQ(Nfc(U"か\u3099"), U"が");
  EXPECT_EQ(Nfc(U""), U"");
}

TEST(ClipUnicode, LowercaseFull) {
  EXPECT_EQ(Lowercase(U"Hello WORLD 123"), U"hello world 123");
  EXPECT_EQ(Lowercase(U"ÀÉÎÕÜ"), U"àéîõü");
  EXPECT_EQ(Lowercase(U"İ"), U"i\u0307");  // SpecialCasing, unconditional
  EXPECT_EQ(Lowercase(U"ẞ"), U"ß");
  EXPECT_EQ(Lowercase(U"ǅ"), U"ǆ");
  EXPECT_EQ(Lowercase(U"ΟΔΟΣ"), U"οδος");  // final sigma
  EXPECT_EQ(Lowercase(U"ΣΑΣ ΣΑΣ"), U"σας σας");
  EXPECT_EQ(Lowercase(U"Σ"), U"σ");        // nothing cased before: not final
  EXPECT_EQ(Lowercase(U"ΑΣ'Α"), U"ασ'α");  // apostrophe is case-ignorable
  EXPECT_EQ(Lowercase(U"ΑΣ."), U"ας.");
  EXPECT_EQ(Lowercase(U"ΑΣ1"), U"ας1");
  EXPECT_EQ(Lowercase(U"日本"), U"日本");
}

}  // namespace
}  // namespace fs::clip::unicode
