#include "model/clip/tokenizer_corpus.h"

#include <cstdint>
#include <string_view>

#include "core/utf8.h"
#include "model/clip/unicode.h"

namespace fs::clip {
namespace {

// SplitMix64: fixed arithmetic, so the corpus is the same everywhere.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  size_t Below(size_t n) { return static_cast<size_t>(Next() % n); }
  bool Chance(int percent) { return Below(100) < static_cast<size_t>(percent); }
  template <typename T, size_t N>
  const T& Pick(const T (&items)[N]) {
    return items[Below(N)];
  }

 private:
  uint64_t state_;
};

// Data tables, laid out by hand.
// clang-format off
constexpr std::string_view kWords[] = {
    "the", "a", "photo", "of", "cat", "dog", "red", "car", "in", "snow", "quarterly", "report",
    "invoice", "meeting", "notes", "beach", "sunset", "mountain", "city", "night", "street",
    "people", "walking", "running", "blue", "green", "yellow", "house", "tree", "river", "boat",
    "airplane", "flying", "over", "clouds", "children", "playing", "football", "field", "kitchen",
    "table", "chair", "laptop", "screen", "document", "contract", "signed", "budget", "revenue",
    "growth", "marketing", "strategy", "presentation", "slides", "diagram", "architecture",
    "network", "server", "database", "backup", "holiday", "party", "birthday", "cake", "candles",
    "wedding", "dress", "flowers", "garden", "spring", "summer", "autumn", "winter", "morning",
    "evening", "coffee", "cup", "breakfast", "lunch", "dinner", "restaurant", "menu", "price",
    "discount", "customer", "support", "ticket", "urgent", "review", "draft", "final", "version",
    "untitled", "screenshot", "scan", "receipt", "passport", "license", "unbelievably",
    "antidisestablishmentarianism", "photosynthesis", "xylophone", "quizzical", "jukebox",
    "zebra", "hippopotamus", "supercalifragilisticexpialidocious", "ok", "I", "you", "we",
    "they", "is", "are", "was", "were", "and", "or", "not", "with", "without", "from", "to",
    "on", "at", "by", "for", "about", "this", "that", "these", "those", "very", "big", "small",
};
constexpr std::string_view kContractionWords[] = {
    "it's", "don't", "I'm", "we're", "they've", "you'll", "she'd", "can't", "won't", "o'clock",
    "rock'n'roll", "'twas", "y'all", "ma'am", "IT'S", "DON'T", "We'Re", "THEY'VE", "You'LL",
    "he'D", "dogs'", "'quoted'", "''", "'", "'s", "'S", "'ll", "'x", "l'amour", "aujourd'hui",
    "it’s", "don’t",
};
constexpr std::string_view kPunct[] = {
    ".", ",", "!", "?", ";", ":", "...", "!!", "?!", "-", "--", "—", "–", "(", ")", "[", "]",
    "{", "}", "\"", "“", "”", "‘", "’", "«", "»", "/", "\\", "|", "@", "#", "$", "%", "^", "&",
    "*", "_", "+", "=", "<", ">", "~", "`", "©", "®", "™", "°", "§", "¶", "•", "…", "¿", "¡",
    "<|", "|>", "</w>", "<w>", "&amp;", "&lt;b&gt;", "\\n", "->", "=>", "::", "#!/bin/sh",
};
constexpr std::string_view kSnippets[] = {
    "https://example.com/path?q=1&x=y#frag", "user.name+tag@example.co.uk", "C:\\Users\\me\\file.txt",
    "/home/user/Documents/report_2023-Q4 (final).pdf", "#hashtag @mention", "x = f(y) + 2*z;",
    "if (a < b && c != d) { return; }", "<html><body>Hi</body></html>", "$19.99 / €20,50 / ¥3000",
    "A/B testing", "e-mail", "state-of-the-art", "ROI: +12.5%", "v1.2.3-beta+build.7",
    "IMG_20230401_123456.jpg", "Q&A", "24/7", "3:45 PM", "#1", "50%-off", "snake_case_name",
    "CamelCaseName", "SCREAMING_SNAKE", "dots...and...more", "¯\\_(ツ)_/¯", "(╯°□°)╯︵ ┻━┻",
};
constexpr std::string_view kEmoji[] = {
    "😀", "😂", "🥲", "❤️", "❤", "👍", "👍🏽", "👩‍💻", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇯🇵", "🇺🇸", "🇫🇷", "🎉", "🔥",
    "🐱", "🐶", "🚗", "❄️", "☃️", "⭐", "✨", "🍕", "☕", "📄", "📷", "🧑🏿‍🚀", "🫠", "🤷‍♀️", "✅", "❌",
    "➡️", "©️", "#️⃣", "1️⃣", "🔟", "♻️", "⚠️", "🌍", "🌸",
};
constexpr std::string_view kAccentWords[] = {
    "café", "naïve", "résumé", "jalapeño", "façade", "Ångström", "Über", "über", "straße",
    "STRASSE", "Straße", "Ærøskøbing", "Øresund", "Œuvre", "ĳssel", "Dvořák", "Łódź", "Kraków",
    "Wałęsa", "İstanbul", "ıstanbul", "Işık", "ĞÜŞİÖÇ", "Tiếng Việt", "Nguyễn", "phở", "ẞ",
    "ΟΔΟΣ", "Σίσυφος", "ΣΑΣ ΣΑΣ", "λόγος", "ΑΘΗΝΑ", "Σ", "ΑΣ.", "ΑΣ'Α", "Москва", "ПРИВЕТ",
    "Ёлка", "Україна", "Ωμέγα", "ǅemal", "ǄEMAL", "ǈ", "Ǉ", "ﬁne", "ﬀ", "Å", "Å", "K", "Ω",
    "ﬃ", "ŉ", "ǰ", "ΐ", "ᾼ", "ᾳ", "ῼ",
};
// Decomposed forms: base letter + combining marks (NFC must compose them).
constexpr std::string_view kDecomposed[] = {
    "e\u0301", "E\u0301", "a\u0308", "o\u0302", "n\u0303", "c\u0327", "u\u0308\u0301",
    "a\u0323\u0302", "a\u0302\u0323", "o\u031B\u0303", "s\u0323\u0307", "s\u0307\u0323",
    "A\u030A", "i\u0307", "I\u0307", "\u03B1\u0313\u0301", "\u0391\u0345", "e\u0301\u0301",
    "q\u0301", "\u1100\u1161", "\u1100\u1161\u11A8", "\u1112\u1161\u11AB\u1100\u1173\u11AF",
    "\u0915\u093C", "\u0B47\u0B3E", "\u0627\u0653", "x\u0300\u0301\u0302\u0303\u0304",
    "\u0301", "\u0301a", "a\u0360b", "\u00C5\u0301", "\u212B", "\u2126",
};
constexpr std::string_view kJapanese[] = {
    "日本語", "東京", "写真", "猫", "犬", "雪の中の赤い車", "会議の議事録", "請求書", "見積書",
    "こんにちは", "ありがとうございます", "すみません", "ひらがな", "カタカナ", "コンピューター",
    "ファイル", "検索", "エンジン", "データベース", "サーバー", "ﾊﾝｶｸｶﾀｶﾅ", "ｶﾞｷﾞ", "ー", "々",
    "。", "、", "「", "」", "『", "』", "・", "！", "？", "（", "）", "：", "　", "１２３",
    "ＡＢＣ", "令和5年", "第3四半期", "2023年4月1日", "ガ", "パ", "が", "か\u3099", "ハ\u309A",
};
constexpr std::string_view kChinese[] = {
    "中文", "搜索", "引擎", "图片", "文件", "公司", "报告", "季度", "红色", "汽车", "雪地",
    "我们", "你好", "谢谢", "北京", "上海", "人工智能", "机器学习", "数据库", "服务器",
    "繁體中文", "臺灣", "香港", "，", "。", "！", "？", "；", "：", "“", "”", "《", "》", "（",
    "）", "、", "……", "——", "一二三", "二〇二三年", "百分之五十", "發票", "會議記錄",
};
constexpr std::string_view kOtherScripts[] = {
    "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया", "สวัสดีชาวโลก", "안녕하세요", "한국어 검색",
    "გამარჯობა", "Բարեւ", "ሰላም", "ᚠᚢᚦ", "𝐀𝐁𝐂", "𝔸𝔹ℂ", "ⅫⅣ", "①②③", "½ ¼ ¾", "x²+y³", "H₂O",
    "٣٤٥", "१२३", "๑๒๓", "𝟙𝟚𝟛", "Ⓐⓑ", "ﬀ ﬁ", "™℠", "№5", "℃", "µ", "Å",
};
constexpr std::string_view kWhitespace[] = {
    " ", "  ", "\t", "\n", "\r\n", "\v", "\f", "\u00A0", "\u3000", "\u2002", "\u2009", "\u202F",
    "\u205F", "\u2028", "\u2029", "\u1680", "\xC2\x85", " \t \n ",
};
constexpr std::string_view kOddChars[] = {
    "\u200B", "\u200C", "\u200D", "\u200E", "\u2060", "\u00AD", "\u034F", "\uFE0F", "\uFE0E",
    "\x01", "\x1F", "\x7F", "\xC2\x80", "\xC2\x9F", "\uFFFD", "\uE000", "\U0010FFFD",
    "\U0001F3FB", std::string_view("\0", 1), "\u180E",
};
constexpr std::string_view kSpecials[] = {
    "<|startoftext|>", "<|endoftext|>", "<|STARTOFTEXT|>", "<|EndOfText|>", "<|endoftext",
    "|endoftext|>", "<|startoftext|><|endoftext|>", "< |endoftext| >",
};

// Code point ranges assigned before Unicode 15 (random characters are drawn from these).
struct Block {
  char32_t lo, hi;
};
constexpr Block kBlocks[] = {
    {0x21, 0x7E},     {0xA1, 0xFF},     {0x100, 0x17F},   {0x180, 0x24F},   {0x250, 0x2AF},
    {0x2B0, 0x2FF},   {0x300, 0x36F},   {0x391, 0x3A1},   {0x3A3, 0x3FF},   {0x400, 0x4FF},
    {0x5D0, 0x5EA},   {0x620, 0x64A},   {0x660, 0x669},   {0x900, 0x97F},   {0xE01, 0xE3A},
    {0xE40, 0xE5B},   {0x1100, 0x11FF}, {0x1E00, 0x1EFF}, {0x1F00, 0x1F15}, {0x2010, 0x2027},
    {0x2030, 0x205E}, {0x20A0, 0x20BF}, {0x2100, 0x214F}, {0x2150, 0x2189}, {0x2190, 0x21FF},
    {0x2200, 0x22FF}, {0x2460, 0x24FF}, {0x2500, 0x257F}, {0x3041, 0x3096}, {0x3099, 0x30FF},
    {0x4E00, 0x9FA5}, {0xAC00, 0xD7A3}, {0xFF01, 0xFF5E}, {0xFF61, 0xFF9F}, {0x1F300, 0x1F5FF},
    {0x1F600, 0x1F64F}, {0x1D400, 0x1D454},
};

// clang-format on

std::string RandomChars(Rng& rng, size_t count) {
  std::string s;
  for (size_t i = 0; i < count; ++i) {
    const Block& b = rng.Pick(kBlocks);
    AppendUtf8(static_cast<uint32_t>(b.lo + rng.Below(b.hi - b.lo + 1)), &s);
  }
  return s;
}

std::string Capitalise(Rng& rng, std::string_view word) {
  std::string w(word);
  const size_t mode = rng.Below(10);
  if (mode == 0) {
    for (char& c : w) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c);
  } else if (mode <= 2 && !w.empty() && w[0] >= 'a' && w[0] <= 'z') {
    w[0] = static_cast<char>(w[0] - 32);
  }
  return w;
}

std::string Sentence(Rng& rng, size_t words) {
  std::string s;
  for (size_t i = 0; i < words; ++i) {
    if (i > 0) s += rng.Chance(5) ? "  " : " ";
    if (rng.Chance(8)) {
      s += rng.Pick(kContractionWords);
    } else {
      s += Capitalise(rng, rng.Pick(kWords));
    }
    if (rng.Chance(12)) s += rng.Pick(kPunct);
  }
  return s;
}

std::string Number(Rng& rng) {
  switch (rng.Below(8)) {
    case 0:
      return std::to_string(rng.Below(10));
    case 1:
      return std::to_string(rng.Next() % 1000000000000ull);
    case 2:
      return std::to_string(rng.Below(1000)) + "." + std::to_string(rng.Below(100000));
    case 3:
      return "-" + std::to_string(rng.Below(100000)) + "," + std::to_string(100 + rng.Below(900));
    case 4:
      return std::to_string(1900 + rng.Below(200)) + "-" + std::to_string(1 + rng.Below(12)) + "-" +
             std::to_string(1 + rng.Below(28));
    case 5:
      return "+1 (" + std::to_string(100 + rng.Below(900)) + ") 555-" +
             std::to_string(1000 + rng.Below(9000));
    case 6:
      return "0x" + std::to_string(rng.Below(0xFFFFFF)) + "ff";
    default:
      return std::to_string(rng.Below(100)) + "%";
  }
}

// Appends `count` strings, each of 1..max_parts results of part(), every part followed by a space
// with probability space_percent.
template <typename Part>
void AddMixed(Rng& rng, int count, size_t max_parts, int space_percent, std::vector<std::string>& out,
              Part part) {
  for (int i = 0; i < count; ++i) {
    std::string s;
    const size_t parts = 1 + rng.Below(max_parts);
    for (size_t p = 0; p < parts; ++p) {
      s += part();
      if (rng.Chance(space_percent)) s += ' ';
    }
    out.push_back(std::move(s));
  }
}

}  // namespace

std::vector<std::string> TokenizerCorpus() {
  Rng rng(20240229);
  std::vector<std::string> out;
  // Fixed cases first.
  out.push_back("");
  for (std::string_view w : kWhitespace) out.emplace_back(w);
  out.push_back("a photo of a cat");
  out.push_back("A PHOTO OF A CAT.");
  out.push_back("red car in the snow");
  for (std::string_view s : kSpecials) {
    out.emplace_back(s);
    out.push_back("a " + std::string(s) + " b");
    out.push_back("x" + std::string(s) + "y");
  }
  for (std::string_view w : kContractionWords) out.emplace_back(w);
  for (std::string_view w : kPunct) out.emplace_back(w);
  for (std::string_view w : kSnippets) out.emplace_back(w);
  for (std::string_view w : kEmoji) out.emplace_back(w);
  for (std::string_view w : kAccentWords) out.emplace_back(w);
  for (std::string_view w : kDecomposed) out.emplace_back(w);
  for (std::string_view w : kJapanese) out.emplace_back(w);
  for (std::string_view w : kChinese) out.emplace_back(w);
  for (std::string_view w : kOtherScripts) out.emplace_back(w);
  for (std::string_view w : kOddChars) out.push_back("a" + std::string(w) + "b" + std::string(w));

  // English sentences.
  for (int i = 0; i < 400; ++i) out.push_back(Sentence(rng, 1 + rng.Below(15)));
  // Punctuation-heavy.
  AddMixed(rng, 250, 8, 40, out, [&] {
    switch (rng.Below(4)) {
      case 0:
        return std::string(rng.Pick(kPunct));
      case 1:
        return std::string(rng.Pick(kSnippets));
      case 2:
        return std::string(rng.Pick(kContractionWords));
      default:
        return std::string(rng.Pick(kWords));
    }
  });
  // Numbers.
  for (int i = 0; i < 200; ++i) {
    std::string s = rng.Chance(50) ? Number(rng) : Sentence(rng, 1 + rng.Below(4)) + " " + Number(rng);
    if (rng.Chance(30)) s += " " + std::string(rng.Pick(kOtherScripts));
    out.push_back(s);
  }
  // Emoji, alone, repeated and inside text.
  AddMixed(rng, 200, 6, 50, out,
           [&] { return rng.Chance(60) ? std::string(rng.Pick(kEmoji)) : std::string(rng.Pick(kWords)); });
  // Accents, decomposed marks, Greek, Cyrillic, Turkish.
  AddMixed(rng, 300, 6, 60, out, [&] {
    std::string part = rng.Chance(35)   ? std::string(rng.Pick(kDecomposed))
                       : rng.Chance(70) ? std::string(rng.Pick(kAccentWords))
                                        : Capitalise(rng, rng.Pick(kWords));
    if (rng.Chance(10)) part += rng.Pick(kPunct);
    return part;
  });
  // Japanese and Chinese text: runs without spaces, mixed with Latin words and numbers.
  AddMixed(rng, 200, 10, 10, out, [&] {
    return rng.Chance(85) ? std::string(rng.Pick(kJapanese)) : Capitalise(rng, rng.Pick(kWords));
  });
  AddMixed(rng, 200, 10, 10, out,
           [&] { return rng.Chance(85) ? std::string(rng.Pick(kChinese)) : Number(rng); });
  // Random characters from many blocks, with whitespace and odd characters mixed in.
  AddMixed(rng, 300, 5, 0, out, [&] {
    std::string part = RandomChars(rng, 1 + rng.Below(8));
    if (rng.Chance(30)) part += rng.Pick(kWhitespace);
    if (rng.Chance(10)) part += rng.Pick(kOddChars);
    return part;
  });
  // Whitespace-only and space-padded strings.
  for (int i = 0; i < 40; ++i) {
    std::string s;
    const size_t parts = 1 + rng.Below(5);
    for (size_t p = 0; p < parts; ++p) s += rng.Pick(kWhitespace);
    if (rng.Chance(50)) s += Sentence(rng, 1 + rng.Below(3)) + std::string(rng.Pick(kWhitespace));
    out.push_back(s);
  }
  // 200-word texts (well over 77 tokens), some in other languages.
  for (int i = 0; i < 100; ++i) {
    std::string s;
    for (int w = 0; w < 200; ++w) {
      if (w > 0) s += ' ';
      const size_t kind = rng.Below(20);
      if (i % 4 == 3 && kind < 6) {
        s += rng.Pick(kJapanese);
      } else if (i % 4 == 2 && kind < 6) {
        s += rng.Pick(kAccentWords);
      } else if (kind == 19) {
        s += rng.Pick(kEmoji);
      } else {
        s += Capitalise(rng, rng.Pick(kWords));
      }
      if (rng.Chance(8)) s += rng.Pick(kPunct);
    }
    out.push_back(s);
  }
  // Any letter, number or combining mark of the BMP and SMP (as the build's Unicode 15 tables say;
  // such characters keep their category in later versions), mixed with ASCII and whitespace.
  AddMixed(rng, 400, 10, 15, out, [&] {
    std::string part;
    if (rng.Chance(25)) {
      part = rng.Chance(50) ? std::string(rng.Pick(kPunct)) : std::string(rng.Pick(kWords));
      return part;
    }
    while (true) {
      const auto cp = static_cast<char32_t>(rng.Below(0x20000));
      if (unicode::IsLetter(cp) || unicode::IsNumber(cp) || unicode::CombiningClass(cp) > 0) {
        AppendUtf8(static_cast<uint32_t>(cp), &part);
        return part;
      }
    }
  });
  // Long unbroken runs (one huge pre-token): letters, CJK, symbols, digits.
  for (int i = 0; i < 20; ++i) {
    std::string s;
    const size_t n = 50 + rng.Below(400);
    for (size_t k = 0; k < n; ++k) {
      switch (i % 4) {
        case 0:
          s += static_cast<char>('a' + rng.Below(26));
          break;
        case 1:
          s += rng.Pick(kChinese);
          break;
        case 2:
          s += "!?*#"[rng.Below(4)];
          break;
        default:
          s += static_cast<char>('0' + rng.Below(10));
          break;
      }
    }
    out.push_back(s);
  }
  return out;
}

}  // namespace fs::clip

namespace fs::clip {
namespace {

// clang-format off
constexpr std::string_view kXlmrWords[] = {
    // Japanese: kana, kanji, half-width katakana (with voiced marks), full-width digits and Latin
    "写真", "東京の夜景", "富士山と桜", "猫の写真", "ひらがな", "カタカナ", "ｶﾀｶﾅ", "ﾃﾞｰﾀﾍﾞｰｽ", "ﾊﾟｿｺﾝ",
    "ｶﾞｷﾞｸﾞ", "ｱｲｳｴｵ", "｡｢｣､･", "１２３４５", "ＡＢＣｘｙｚ", "ＦＵＬＬ　ＷＩＤＴＨ", "２０２３年", "第３四半期",
    "ヴァイオリン", "コンピューター", "が", "か\u3099", "ハ\u309A", "㍻", "㌔", "㍍", "㋿", "①", "⑳", "ー", "〜", "～",
    // Chinese
    "北京的夜景", "一只猫的照片", "貓咪的照片", "人工智能", "数据库服务器", "繁體中文", "臺灣", "，", "。", "“引号”", "《书名》",
    // Korean: syllables, conjoining jamo, compatibility and half-width jamo
    "고양이 사진", "안녕하세요", "한국어", "\u1100\u1161\u11A8", "\u1112\u1161\u11AB", "\u1100\u1161",
    "ㄱㄴㄷ", "ﾡﾢﾣ", "ﾾￂ", "한글\u302E",
    // Thai
    "สวัสดีชาวโลก", "ภาษาไทย", "น้ำ", "กำ", "เด็กๆ", "๑๒๓",
    // Arabic: plain, with harakat, presentation forms, digits, number signs
    "صورة قطة", "مرحبا بالعالم", "العَرَبِيَّة", "بِسْمِ", "ﷺ", "ﻻ", "ﺑﺴﻢ", "٣٤٥", "\u0600\u0661\u0662", "\u06DD\u0661",
    "ـــ", "لا", "\u0627\u0653",
    // Hindi: conjuncts, nukta (precomposed and not), candrabindu, digits
    "नमस्ते दुनिया", "हिन्दी", "क्षत्रिय", "ज़िंदगी", "\u0915\u093C", "\u0958", "\u095B\u0301", "क्\u200Dष", "क्\u200Cष",
    "चाँद", "१२३", "श्री",
    // Cyrillic, Greek (monotonic, polytonic, decomposed)
    "Фотография кошки", "Москва", "Ёлка", "Україна", "ПРИВЕТ", "й", "и\u0306", "Ωμέγα", "λόγος", "ΣΑΣ",
    "ἀρχή", "ᾅ", "\u03B1\u0313\u0301", "\u03C9\u0342\u0345", "ΐ", "ϓ", "ϴ",
    // European accents, ligatures, compatibility letters
    "Ein Foto einer Katze", "Une photo d'un chat", "Una foto de un gato", "café", "cafe\u0301", "naïve",
    "Straße", "Ærøskøbing", "Dvořák", "Łódź", "İstanbul", "ﬁne", "ﬀ", "ĳ", "ŉ", "ǅ", "Å", "Å", "K",
    "x\u0300\u0301\u0302", "e\u0301\u0301", "o\u0308\u0304", "ﬁ\u0301", "Ａ\u0301", "①\u0301",
    // Symbols that normalise: super/subscripts, fractions, Roman numerals, math letters, units
    "x²", "H₂O", "½", "⅞", "Ⅻ", "ⅳ", "𝐀𝐁𝐂", "𝔸𝔹ℂ", "𝟙𝟚𝟛", "℃", "№", "™", "µ", "Ω", "…", "‥", "′″",
};
constexpr std::string_view kXlmrEmoji[] = {
    "😀", "🌫", "🌫️", "🌫🌫", "👍🏽", "👩‍💻", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🏴‍☠️", "🇯🇵", "🇺🇸🇫🇷", "🇯", "🧑🏿‍🚀", "🤷‍♀️", "🙇🏻‍♂️",
    "❤️", "❤", "❤️‍🔥", "#️⃣", "1️⃣", "*⃣", "©️", "®", "™️", "🏴\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F",
    "😶‍🌫️", "🫠", "🦙", "🐱", "☕", "♻️", "✌🏾", "\u263A\uFE0E", "\u263A\uFE0F",
};
constexpr std::string_view kXlmrSpecials[] = {
    "<s>", "</s>", "<pad>", "<unk>", "<mask>", "<s", "s>", "<S>", "<MASK>", "< mask >", "＜s＞", "﹤unk﹥",
    "<s><s>", "</s><s>", "<mask><mask>", "<<s>>", "<unk>unk", "▁", "▁▁", "▁a", "a▁b",
};
// Characters that are controls, spaces, joiners, marks or otherwise odd for a normaliser.
constexpr std::string_view kXlmrOdd[] = {
    std::string_view("\0", 1), "\x01", "\x08", "\x0B", "\x0C", "\x1B", "\x1F", "\x7F", "\xC2\x80", "\xC2\x85",
    "\xC2\x9F", "\u00A0", "\u00AD", "\u034F", "\u061C", "\u115F", "\u1160", "\u1680", "\u180E", "\u2000",
    "\u200A", "\u200B", "\u200C", "\u200D", "\u200E", "\u200F", "\u2028", "\u2029", "\u202A", "\u202E",
    "\u202F", "\u205F", "\u2060", "\u2066", "\u2069", "\u2581", "\u3000", "\u3164", "\uFE0E", "\uFE0F",
    "\uFEFF", "\uFFA0", "\uFFF9", "\uFFFC", "\uFFFD", "\uE000", "\U000F0000", "\U0001D173", "\U000E0001",
    "\U000E0020", "\U000E0100", "\r\n", "\r", "\n", "\t",
};
// Marks and joiners that attach to what precedes them (grapheme Extend, SpacingMark, ZWJ).
constexpr char32_t kAttachers[] = {
    0x0300, 0x0301, 0x0308, 0x0323, 0x0327, 0x0345, 0x0363, 0x0591, 0x05B0, 0x05BC, 0x064B, 0x0650,
    0x0651, 0x0654, 0x0670, 0x093C, 0x093F, 0x0941, 0x094D, 0x0981, 0x0E31, 0x0E33, 0x0E48, 0x200C,
    0x200D, 0x20D0, 0x20E3, 0x3099, 0x309A, 0xFE0F, 0xFE20, 0xFF9E, 0xFF9F, 0x1F3FB, 0xE0100,
};
// Characters that start a cluster: letters of many scripts, digits, symbols, emoji, prepends.
constexpr char32_t kBases[] = {
    'a', 'e', 'A', 'o', 'i', '1', '#', '*', '<', '.', ' ', 0xA9, 0xAE, 0xDF, 0xE9, 0x131, 0x3B1, 0x3C9,
    0x391, 0x438, 0x5D0, 0x627, 0x628, 0x915, 0x958, 0x995, 0xE01, 0xE32, 0x1100, 0x1161, 0x11A8,
    0x2160, 0x2460, 0x3042, 0x304B, 0x30AB, 0x3131, 0x4E00, 0xAC00, 0xFB01, 0xFF21, 0xFF76, 0xFF8A,
    0x1F44D, 0x1F469, 0x1F1EF, 0x0600, 0x06DD, 0x070F, 0x110BD, 0x2581, 0xFFFD,
};
// Blocks rich in compatibility mappings (NFKC changes them) and other scripts, assigned by 15.0.
constexpr Block kXlmrBlocks[] = {
    {0x2070, 0x2071}, {0x2074, 0x208E}, {0x2100, 0x214F}, {0x2150, 0x2189}, {0x2460, 0x24FF},
    {0x2F00, 0x2FD5}, {0x3131, 0x318E}, {0x3200, 0x321E}, {0x3220, 0x32FF}, {0x3300, 0x33FF},
    {0xF900, 0xFA6D}, {0xFB00, 0xFB06}, {0xFB13, 0xFB17}, {0xFB1D, 0xFB36}, {0xFB50, 0xFBC1},
    {0xFBD3, 0xFD3D}, {0xFE10, 0xFE19}, {0xFE30, 0xFE52}, {0xFE54, 0xFE66}, {0xFE70, 0xFE74},
    {0xFE76, 0xFEFC}, {0xFF01, 0xFFBE}, {0xFFC2, 0xFFC7}, {0xFFE0, 0xFFE6}, {0xFFE8, 0xFFEE},
    {0x1D400, 0x1D454}, {0x1D7CE, 0x1D7FF}, {0x1F100, 0x1F10A}, {0x1F130, 0x1F14F}, {0x1F200, 0x1F202},
    {0x0E01, 0x0E3A}, {0x0E40, 0x0E5B}, {0x0600, 0x06FF}, {0x0900, 0x097F}, {0x0980, 0x09FE},
    {0x0370, 0x0377}, {0x0384, 0x038A}, {0x1F00, 0x1F15}, {0x1F80, 0x1FB4}, {0x0400, 0x04FF},
    {0x3041, 0x3096}, {0x30A0, 0x30FF}, {0xFF61, 0xFF9F}, {0xAC00, 0xD7A3}, {0x1100, 0x11FF},
    {0x4E00, 0x9FFF}, {0x20000, 0x2A6DF}, {0x1F300, 0x1F64F}, {0x1F900, 0x1F9FF}, {0x00A0, 0x00FF},
    {0x0300, 0x036F}, {0x2000, 0x206F},
};
// clang-format on

std::string Utf8(char32_t cp) {
  std::string s;
  AppendUtf8(static_cast<uint32_t>(cp), &s);
  return s;
}

std::string FromBlocks(Rng& rng, size_t count) {
  std::string s;
  for (size_t i = 0; i < count; ++i) {
    const Block& b = rng.Pick(kXlmrBlocks);
    s += Utf8(static_cast<char32_t>(b.lo + rng.Below(b.hi - b.lo + 1)));
  }
  return s;
}

// A base followed by 0..3 attaching marks: the short clusters the Precompiled normaliser looks up
// whole.
std::string Cluster(Rng& rng) {
  std::string s = Utf8(rng.Pick(kBases));
  const size_t marks = rng.Below(4);
  for (size_t i = 0; i < marks; ++i) s += Utf8(rng.Pick(kAttachers));
  return s;
}

std::string XlmrPart(Rng& rng) {
  switch (rng.Below(7)) {
    case 0:
    case 1:
      return std::string(rng.Pick(kXlmrWords));
    case 2:
      return std::string(rng.Pick(kXlmrEmoji));
    case 3:
      return Cluster(rng);
    case 4:
      return FromBlocks(rng, 1 + rng.Below(6));
    case 5:
      return std::string(rng.Pick(kXlmrOdd));
    default:
      return rng.Chance(20) ? std::string(rng.Pick(kXlmrSpecials)) : Capitalise(rng, rng.Pick(kWords));
  }
}

}  // namespace

std::vector<std::string> XlmrTokenizerCorpus() {
  Rng rng(20261206);
  std::vector<std::string> out;
  for (std::string_view w : kXlmrWords) out.emplace_back(w);
  for (std::string_view w : kXlmrEmoji) out.emplace_back(w);
  for (std::string_view w : kXlmrSpecials) {
    out.emplace_back(w);
    for (std::string_view space : {" ", "  ", "\t", "\u00A0", "\u3000", "\n"}) {
      out.push_back("a" + std::string(space) + std::string(w) + std::string(space) + "b");
    }
  }
  for (std::string_view w : kXlmrOdd) {
    out.emplace_back(w);
    out.push_back("a" + std::string(w) + "b" + std::string(w));
    out.push_back(std::string(w) + "東京" + std::string(w) + " x");
  }
  // Every base with every attacher, and prepends before every base.
  for (char32_t base : kBases) {
    for (char32_t mark : kAttachers) out.push_back(Utf8(base) + Utf8(mark) + (rng.Chance(50) ? "x" : ""));
  }
  // Random short clusters in runs, with and without spaces.
  AddMixed(rng, 600, 6, 30, out, [&] { return Cluster(rng); });
  // Mixed scripts, emoji, odd characters and specials.
  AddMixed(rng, 900, 10, 35, out, [&] { return XlmrPart(rng); });
  // Characters of compatibility-rich blocks and other scripts.
  AddMixed(rng, 500, 6, 20, out, [&] { return FromBlocks(rng, 1 + rng.Below(10)); });
  // Very long texts: 300-1500 parts, well over 77 tokens; a few unbroken runs.
  for (int i = 0; i < 24; ++i) {
    std::string s;
    const size_t parts = 300 + rng.Below(1200);
    for (size_t p = 0; p < parts; ++p) {
      s += i % 3 == 0 ? std::string(rng.Pick(kXlmrWords)) : XlmrPart(rng);
      if (i % 6 != 5 && rng.Chance(70)) s += ' ';
    }
    out.push_back(s);
  }
  return out;
}

}  // namespace fs::clip
