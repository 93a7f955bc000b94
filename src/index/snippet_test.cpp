#include "index/snippet.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/utf8.h"

namespace fs {
namespace {

std::string Joined(const std::vector<SnippetPart>& parts) {
  std::string out;
  for (const auto& p : parts) out += p.text;
  return out;
}

std::vector<std::string> Marked(const std::vector<SnippetPart>& parts) {
  std::vector<std::string> out;
  for (const auto& p : parts) {
    if (p.match) out.push_back(p.text);
  }
  return out;
}

TEST(SnippetTest, MarksEveryFormOfTheQueryWords) {
  const auto parts = MakeSnippet("The Elephants walked to the river. An elephant drinks.", "elephant river");
  EXPECT_EQ(Marked(parts), (std::vector<std::string>{"Elephants", "river", "elephant"}));
  EXPECT_EQ(Joined(parts), "The Elephants walked to the river. An elephant drinks.");
}

TEST(SnippetTest, MarksPartsOfNamesPrefixesAndShortWords) {
  EXPECT_EQ(Marked(MakeSnippet("see kodim01.png and kodim02.png", "kodim")),
            (std::vector<std::string>{"kodim01", "kodim02"}));
  EXPECT_EQ(Marked(MakeSnippet("the q3-sales sheet", "q3")), (std::vector<std::string>{"q3"}));
  EXPECT_EQ(Marked(MakeSnippet("MyInvoice2024 was paid", "invoices")), (std::vector<std::string>{"MyInvoice2024"}));
  EXPECT_EQ(Marked(MakeSnippet("quarterly and quartz", "quart*")), (std::vector<std::string>{"quarterly", "quartz"}));
  EXPECT_TRUE(Marked(MakeSnippet("nothing to see", "elephant")).empty());
}

TEST(SnippetTest, MarksCjkRunsAsSubstrings) {
  const auto parts = MakeSnippet("2024年請求書の控え", "請求");
  EXPECT_EQ(Marked(parts), (std::vector<std::string>{"請求"}));
  EXPECT_EQ(Joined(parts), "2024年請求書の控え");
}

TEST(SnippetTest, CutsAWindowAroundTheMatchesAtWordBoundaries) {
  std::string text;
  for (int i = 0; i < 200; ++i) text += "filler" + std::to_string(i) + " ";
  text += "the annual budget report ";
  for (int i = 0; i < 200; ++i) text += "tail" + std::to_string(i) + " ";
  SnippetOptions o;
  o.max_chars = 80;
  const auto parts = MakeSnippet(text, "budget report", o);
  const std::string s = Joined(parts);
  EXPECT_EQ(Marked(parts), (std::vector<std::string>{"budget", "report"}));
  EXPECT_EQ(s.rfind("…", 0), 0u) << s;
  EXPECT_EQ(s.substr(s.size() - 3), "…") << s;
  EXPECT_LE(s.size(), 80u + 6) << s;
  EXPECT_EQ(s.substr(3, 10), "the annual") << s;  // some words before, starting at a word
}

TEST(SnippetTest, PrefersTheWindowWithMoreDistinctWords) {
  std::string text = "report alone here. ";
  for (int i = 0; i < 100; ++i) text += "pad ";
  text += "budget report together";
  SnippetOptions o;
  o.max_chars = 60;
  EXPECT_EQ(Marked(MakeSnippet(text, "budget report", o)), (std::vector<std::string>{"budget", "report"}));
}

TEST(SnippetTest, FindsWordsFarIntoLongTextInAnyCase) {
  std::string text;
  for (int i = 0; i < 50000; ++i) text += "filler ";
  text += "The BUDGET of headquarters and the Quarterly plan. ";
  for (int i = 0; i < 1000; ++i) text += "budget ";
  const auto parts = MakeSnippet(text, "quarterly budget");
  const auto marked = Marked(parts);
  ASSERT_GE(marked.size(), 2u) << Joined(parts);
  EXPECT_EQ(marked[0], "BUDGET");
  EXPECT_EQ(marked[1], "Quarterly");  // not "headquarters", whose letters come first
}

TEST(SnippetTest, NoMatchShowsTheStartAndWhitespaceCollapses) {
  const auto parts = MakeSnippet("  First\n\n line\tof text  ", "zebra");
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].text, "First line of text");
  EXPECT_FALSE(parts[0].match);
  EXPECT_TRUE(MakeSnippet(" \n\t ", "x").empty());
  EXPECT_TRUE(MakeSnippet("", "x").empty());
}

TEST(SnippetTest, HostileTextStaysValidUtf8) {
  std::string text = "caf\xC3\xA9 \xFF\xFE broken \xE4\xB8 report";
  text += std::string(5000, '\xE4');
  SnippetOptions o;
  o.max_chars = 50;
  const auto parts = MakeSnippet(text, "report \xFF", o);
  EXPECT_EQ(Marked(parts), (std::vector<std::string>{"report"}));
  for (const auto& p : parts) EXPECT_TRUE(IsValidUtf8(p.text)) << p.text;
}

}  // namespace
}  // namespace fs
