// `filesearch index` then `filesearch search` on office and mail files from the textract corpus
// (../shared/corpus/docs/textract, FILESEARCH_SHARED_DIR): a word from inside each document finds
// it, the title and author fields are searchable and shown in the JSON hits, and a damaged .docx is
// on the failure list (stage "extract") yet still found by its name. Skips when the corpus is missing.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "index/store.h"
#include "spawn_util.h"

namespace fs {
namespace {

namespace stdfs = std::filesystem;

// `filesearch --no-progress ARGS...`: its exit status; what it printed in *out.
int Filesearch(std::vector<std::string> args, const std::string& log, std::string* out) {
  args.insert(args.begin(), {FILESEARCH_BINARY, "--no-progress"});
  return testing::RunCapture(args, log, out);
}

class OfficeIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    corpus_ = testing::SharedDir() + "/corpus/docs/textract/tests";
    if (!stdfs::exists(corpus_ + "/docx/raw_text.docx")) {
      GTEST_SKIP() << "no " << corpus_ << ": the shared corpus is missing (set FILESEARCH_SHARED_DIR)";
    }
    base_ = stdfs::weakly_canonical(::testing::TempDir()).string() + "/office_index_test_" +
            std::to_string(::getpid());
    stdfs::remove_all(base_);
    stdfs::create_directories(base_ + "/share");
    // Names that say nothing of the words inside.
    const std::pair<const char*, const char*> files[] = {
        {"docx/raw_text.docx", "a1.docx"}, {"doc/raw_text.doc", "a2.doc"},
        {"xlsx/raw_text.xlsx", "a3.xlsx"}, {"xls/raw_text.xls", "a4.xls"},
        {"pptx/raw_text.pptx", "a5.pptx"}, {"odt/raw_text.odt", "a6.odt"},
        {"rtf/raw_text.rtf", "a7.rtf"},    {"eml/raw_text.eml", "a8.eml"},
        {"msg/raw_text.msg", "a9.msg"},    {"epub/raw_text.epub", "b1.epub"}};
    for (const auto& [from, to] : files) stdfs::copy_file(corpus_ + "/" + from, base_ + "/share/" + to);
    std::ifstream in(corpus_ + "/docx/raw_text.docx", std::ios::binary);
    std::string head(4000, '\0');
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    std::ofstream(base_ + "/share/broken.docx", std::ios::binary) << head;  // cut short: no zip directory
  }
  void TearDown() override {
    if (!base_.empty() && !HasFailure()) stdfs::remove_all(base_);
  }
  // The names of the JSON hits of `filesearch search QUERY --json`, sorted, space-separated.
  std::string Search(const std::string& query, nlohmann::json* hits = nullptr) {
    std::string out;
    int rc = Filesearch({"--data-dir", base_ + "/data", "search", query, "--mode", "text", "--json"},
                        base_ + "/s.log", &out);
    if (rc != 0) return "(exit " + std::to_string(rc) + ") " + out;
    auto j = nlohmann::json::parse(out, nullptr, false);
    if (j.is_discarded()) return "(not JSON) " + out;
    std::vector<std::string> names;
    for (const auto& h : j["hits"]) names.push_back(h.value("name", ""));
    std::sort(names.begin(), names.end());
    std::string joined;
    for (const auto& n : names) joined += (joined.empty() ? "" : " ") + n;
    if (hits) *hits = j["hits"];
    return joined;
  }
  std::string corpus_, base_;
};

TEST_F(OfficeIndexTest, WordsTitlesAndAuthorsInsideOfficeFilesAreFound) {
  std::string out;
  ASSERT_EQ(Filesearch({"--data-dir", base_ + "/data", "index", base_ + "/share", "--test-embedder"},
                       base_ + "/i.log", &out),
            0)
      << out;
  EXPECT_NE(out.find("11 added"), std::string::npos) << out;
  // "Shoreditch" is in the hipster text of the Word and RTF files.
  EXPECT_EQ(Search("Shoreditch"), "a1.docx a2.doc a7.rtf") << out;
  EXPECT_EQ(Search("CUBEKPIMEMBER"), "a3.xlsx a4.xls");
  EXPECT_EQ(Search("cardigan"), "a5.pptx");
  EXPECT_EQ(Search("OppenOffice"), "a6.odt");
  EXPECT_EQ(Search("Extractor"), "a9.msg");
  EXPECT_EQ(Search("Samuel"), "b1.epub");
  // Title fields: the pptx's title, the e-mail subject of the .msg; shown in the hits.
  nlohmann::json hits;
  EXPECT_EQ(Search("\"I love PowerPoint\"", &hits), "a5.pptx");
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].value("title", ""), "I love PowerPoint. A lot.");
  EXPECT_EQ(hits[0].value("author", ""), "Dean Malmgren");
  EXPECT_TRUE(hits[0].contains("created")) << hits[0].dump();
  std::string human;  // the plain listing shows them too
  ASSERT_EQ(Filesearch({"--data-dir", base_ + "/data", "search", "cardigan", "--mode", "text"},
                       base_ + "/h.log", &human),
            0);
  EXPECT_NE(human.find("     title: I love PowerPoint. A lot.\n     author: Dean Malmgren\n"),
            std::string::npos)
      << human;
  EXPECT_EQ(Search("\"TIF files\"", &hits), "a9.msg");
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].value("title", ""), "Test for TIF files");
  // An author found by name: the workbook's metadata only.
  EXPECT_EQ(Search("Walkenbach"), "a3.xlsx a4.xls");
  // The damaged file: on the failure list, and still found by its name.
  EXPECT_NE(out.find("broken.docx: damaged zip container"), std::string::npos) << out;
  EXPECT_EQ(Search("broken"), "broken.docx");
  auto store = Store::Open(base_ + "/data/filesearch.db");
  ASSERT_TRUE(store.ok());
  auto failures = (*store)->ListFailures(false, 100);
  ASSERT_TRUE(failures.ok());
  ASSERT_EQ(failures->size(), 1u);
  EXPECT_NE((*failures)[0].path.find("broken.docx"), std::string::npos);
  EXPECT_EQ((*failures)[0].stage, "extract");
}

}  // namespace
}  // namespace fs
