// End to end on real files nobody here made (../shared/corpus, issue 4 §6): photos, documents,
// every image Pillow tests (crash files, decompression bombs, truncated files) plus generated
// variants: renamed copies (exact duplicates), a re-encoded smaller copy (a near duplicate), a
// zero-byte image, a PNG with a lying extension, a truncated JPEG. One index run must finish;
// every good file is found by name (and documents by content); every image either has an
// embedding or is on the failure list with a reason; the duplicates are found.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include "engine/engine.h"
#include "image/image.h"

namespace fs {
namespace {

namespace stdfs = std::filesystem;

std::string Corpus() {
  const char* env = std::getenv("FILESEARCH_SHARED_DIR");
  return std::string(env != nullptr && *env != '\0' ? env : "../shared") + "/corpus";
}

// A real (if crude) image embedding: the picture decoded under the decoder's limits and averaged
// to 6 x 6 RGB, centred and L2-normalised. Resized or recompressed copies land close together;
// undecodable files fail with the decoder's reason, as with CLIP.
class TinyImageEmbedder : public ImageEmbedder {
 public:
  const std::string& model_id() const override { return id_; }
  size_t dim() const override { return 108; }
  Status EmbedFiles(std::span<const std::string> paths, std::span<float> out, std::vector<Status>* per_file,
                    std::vector<uint64_t>* phash) override {
    per_file->assign(paths.size(), Status::Ok());
    if (phash != nullptr) phash->assign(paths.size(), 0);
    image::DecodeOptions d;
    d.max_side = 512;
    d.max_pixels = 50'000'000;
    d.max_decode_ms = 10000;
    for (size_t i = 0; i < paths.size(); ++i) {
      auto img = image::DecodeFile(paths[i], d);
      if (!img.ok()) {
        (*per_file)[i] = img.status();
        continue;
      }
      if (phash != nullptr) (*phash)[i] = image::PerceptualHash(*img);
      float* v = out.data() + i * 108;
      std::fill(v, v + 108, 0.f);
      std::vector<int> count(36, 0);
      for (int y = 0; y < img->height; ++y) {
        for (int x = 0; x < img->width; ++x) {
          const int cell = (y * 6 / img->height) * 6 + x * 6 / img->width;
          const uint8_t* p = &img->pixels[(static_cast<size_t>(y) * img->width + x) * 3];
          for (int c = 0; c < 3; ++c) v[cell * 3 + c] += p[c];
          ++count[cell];
        }
      }
      double mean = 0, norm = 0;
      for (int k = 0; k < 108; ++k) mean += (v[k] /= static_cast<float>(std::max(1, count[k / 3])));
      mean /= 108;
      for (int k = 0; k < 108; ++k) norm += (v[k] - mean) * (v[k] - mean);
      norm = std::sqrt(norm) + 1e-9;
      for (int k = 0; k < 108; ++k) v[k] = static_cast<float>((v[k] - mean) / norm);
    }
    return Status::Ok();
  }

 private:
  std::string id_ = "test/tiny-image-108";
};

class CorpusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    corpus_ = Corpus();
    if (!stdfs::exists(corpus_ + "/formats/pillow") || !stdfs::exists(corpus_ + "/photos/kodak")) {
      GTEST_SKIP() << "no " << corpus_ << ": the shared corpus is missing (set FILESEARCH_SHARED_DIR)";
    }
    base_ = stdfs::weakly_canonical(::testing::TempDir()).string() + "/corpus_test_" + std::to_string(::getpid());
    stdfs::remove_all(base_);
    stdfs::create_directories(base_ + "/share");
  }
  void TearDown() override {
    if (!base_.empty() && !HasFailure()) stdfs::remove_all(base_);
  }
  void CopyDir(const std::string& from, const std::string& to) {
    stdfs::create_directories(to);
    for (const auto& e : stdfs::directory_iterator(from)) {
      if (e.is_regular_file()) stdfs::copy_file(e.path(), to + "/" + e.path().filename().string());
    }
  }
  std::string corpus_, base_;
};

TEST_F(CorpusTest, RealCorpusIndexesCompletelyWithFailuresAndDuplicates) {
  const std::string share = base_ + "/share";
  CopyDir(corpus_ + "/photos/kodak", share + "/photos/kodak");
  CopyDir(corpus_ + "/photos/wikipedia", share + "/photos/wikipedia");
  CopyDir(corpus_ + "/formats/pillow", share + "/formats/pillow");  // crash files and bombs included
  CopyDir(corpus_ + "/docs/textract/tests/txt", share + "/docs/txt");
  CopyDir(corpus_ + "/docs/textract/tests/html", share + "/docs/html");
  CopyDir(corpus_ + "/docs/textract/tests/pdf", share + "/docs/pdf");
  // Generated variants.
  stdfs::create_directories(share + "/variants");
  stdfs::copy_file(share + "/photos/kodak/kodim05.png", share + "/variants/copy of kodim05.png");   // exact
  stdfs::copy_file(share + "/photos/kodak/kodim05.png", share + "/variants/kodim05-backup.PNG");   // exact
  {
    auto img = image::DecodeFile(share + "/photos/kodak/kodim07.png", {});
    ASSERT_TRUE(img.ok());
    auto small = image::MakeThumbnail(*img, 300);  // resized and recompressed: a near duplicate
    ASSERT_TRUE(small.ok());
    std::ofstream(share + "/variants/kodim07-small.jpg", std::ios::binary) << *small;
    auto full = image::MakeThumbnail(*img, 768);
    ASSERT_TRUE(full.ok());
    std::ofstream(share + "/variants/truncated.jpg", std::ios::binary) << full->substr(0, full->size() / 3);
    // Slightly cropped (2% off each side) and recompressed: a near duplicate too.
    image::RgbImage crop;
    const int dx = img->width / 50, dy = img->height / 50;
    crop.width = img->width - 2 * dx;
    crop.height = img->height - 2 * dy;
    for (int y = dy; y < dy + crop.height; ++y) {
      const uint8_t* row = &img->pixels[(static_cast<size_t>(y) * img->width + dx) * 3];
      crop.pixels.insert(crop.pixels.end(), row, row + static_cast<size_t>(crop.width) * 3);
    }
    auto cropped = image::MakeThumbnail(crop, 768);
    ASSERT_TRUE(cropped.ok());
    std::ofstream(share + "/variants/kodim07-cropped.jpg", std::ios::binary) << *cropped;
  }
  std::ofstream(share + "/variants/empty.jpg", std::ios::binary);  // zero bytes
  stdfs::copy_file(share + "/photos/kodak/kodim09.png", share + "/variants/notes.txt");  // lying extension

  EngineOptions o;
  o.data_dir = base_ + "/data";
  o.progress = false;
  auto engine = Engine::Open(o);
  ASSERT_TRUE(engine.ok());
  ASSERT_TRUE((*engine)->SetEmbedder(std::make_unique<TinyImageEmbedder>()).ok());
  auto report = (*engine)->Index(share);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  Store* store = (*engine)->store();

  // Every regular file became a document (nothing was lost to a bad neighbour).
  size_t files = 0;
  for (const auto& e : stdfs::recursive_directory_iterator(share)) files += e.is_regular_file();
  auto stats = store->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->documents, files);

  // Good files are found by name; documents by their words.
  for (const char* name : {"kodim01", "kodim24", "kodim07-small", "raw_text", "two_column"}) {
    auto page = store->KeywordSearch(name, {}, 0, 5);
    ASSERT_TRUE(page.ok());
    EXPECT_GE(page->total, 1u) << name;
  }
  // A word of each document's own text (the expected-text .txt files beside them hold it too).
  for (const char* words : {"peep sheep", "avalanche tunnel", "lovely documents", "mentorship"}) {
    auto page = store->KeywordSearch(words, {}, 0, 10);
    ASSERT_TRUE(page.ok());
    EXPECT_GE(page->total, 1u) << words;
  }
  auto html = store->KeywordSearch("avalanche", SearchFilters{{"text/html"}}, 0, 10);
  EXPECT_GE(html->total, 1u) << "raw_text.html's text was extracted";
  SearchFilters pdf_only;
  pdf_only.extensions = {"pdf"};
  EXPECT_GE(store->KeywordSearch("lovely", pdf_only, 0, 10)->total, 1u) << "raw_text.pdf's text was extracted";
  EXPECT_GE(store->KeywordSearch("mentorship", pdf_only, 0, 10)->total, 1u) << "two_column.pdf's text was extracted";
  // A zero-byte file is indexed by name, not taken for an image.
  auto empty = store->GetByUri(FileUri(share + "/variants/empty.jpg"));
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->size, 0u);
  EXPECT_NE(empty->mime.rfind("image/", 0), 0u) << empty->mime;
  EXPECT_EQ(store->GetByUri(FileUri(share + "/variants/notes.txt"))->mime, "image/png");

  // Every image has an embedding or a failure entry with a reason; the bad ones are among the failures.
  auto failures = store->ListFailures(false, 100000);
  ASSERT_TRUE(failures.ok());
  std::set<std::string> failed;
  for (const auto& f : *failures) {
    EXPECT_FALSE(f.reason.empty()) << f.path;
    if (f.stage == "embed") failed.insert(f.path);
  }
  auto missing = store->ImagesMissingEmbedding("test/tiny-image-108", 0, 100000);
  ASSERT_TRUE(missing.ok());
  size_t unaccounted = 0;
  for (const auto& [id, uri] : *missing) {
    auto p = PathFromFileUri(uri);
    if (!p.ok() || !failed.count(*p)) {
      ++unaccounted;
      ADD_FAILURE() << uri << " has no embedding and no failure entry";
    }
  }
  EXPECT_EQ(unaccounted, 0u);
  for (const char* bad : {"/formats/pillow/decompression_bomb.gif", "/variants/truncated.jpg"}) {
    EXPECT_TRUE(failed.count(share + bad)) << bad << " should be on the failure list";
  }
  for (const auto& f : *failures) {
    if (f.path == share + "/formats/pillow/decompression_bomb.gif") {
      EXPECT_TRUE(f.dead()) << "a bomb is refused for good";
      EXPECT_NE(f.reason.find("bomb"), std::string::npos) << f.reason;
    }
  }
  EXPECT_GT(failed.size(), 20u) << "Pillow's crash files and bombs fail";
  EXPECT_GT(stats->embeddings, 300u) << "and the many good images are embedded";

  // Duplicates: the renamed copies by content, the small re-encoded copy by embedding.
  DuplicateOptions dopt;
  dopt.min_cosine = 0.97f;
  auto dups = (*engine)->FindDuplicates(dopt);
  ASSERT_TRUE(dups.ok());
  bool exact = false;
  for (const auto& g : dups->exact) {
    std::set<std::string> names;
    for (auto id : g) names.insert(store->Get(id)->name);
    if (names.count("kodim05.png") && names.count("copy of kodim05.png") && names.count("kodim05-backup.PNG")) exact = true;
  }
  EXPECT_TRUE(exact) << "kodim05.png and its two renamed copies";
  const int64_t orig = store->GetByUri(FileUri(share + "/photos/kodak/kodim07.png"))->id;
  const int64_t small = store->GetByUri(FileUri(share + "/variants/kodim07-small.jpg"))->id;
  const int64_t cropped = store->GetByUri(FileUri(share + "/variants/kodim07-cropped.jpg"))->id;
  // Both measures find the resized copy and the cropped copy: the embedding (cosine) and the
  // perceptual hash stored from the same decode (a few bits of 64).
  auto find_pair = [&](int64_t a, int64_t b) -> const NearDuplicate* {
    for (const auto& n : dups->near) {
      if (n.a == std::min(a, b) && n.b == std::max(a, b)) return &n;
    }
    return nullptr;
  };
  EXPECT_GT(dups->hashed, 300u) << "every embedded image has a perceptual hash";
  for (int64_t copy : {small, cropped}) {
    const NearDuplicate* n = find_pair(orig, copy);
    auto ha = image::DecodeFile(share + "/photos/kodak/kodim07.png", {});
    auto hb = image::DecodeFile(store->Get(copy)->path, {});
    ASSERT_TRUE(ha.ok() && hb.ok());
    ASSERT_NE(n, nullptr) << "kodim07.png and its " << (copy == small ? "resized" : "cropped") << " copy: bits "
                          << image::HammingDistance(image::PerceptualHash(*ha), image::PerceptualHash(*hb));
    EXPECT_TRUE(n->by_embedding && n->by_hash) << "cosine " << n->cosine << ", bits " << n->hamming;
    EXPECT_LE(n->hamming, 8);
  }
  // Hash-only: with the embedding threshold out of reach, the copies are still found by hash, and
  // two different Kodak photos are not.
  DuplicateOptions hash_only;
  hash_only.min_cosine = 1.01f;
  hash_only.max_groups = 1'000'000;  // Pillow's suite holds many variants of the same few pictures
  auto by_hash = (*engine)->FindDuplicates(hash_only);
  ASSERT_TRUE(by_hash.ok());
  bool small_found = false, cropped_found = false;
  const int64_t other = store->GetByUri(FileUri(share + "/photos/kodak/kodim08.png"))->id;
  for (const auto& n : by_hash->near) {
    EXPECT_FALSE(n.by_embedding);
    EXPECT_TRUE(std::isnan(n.cosine));
    small_found |= n.a == std::min(orig, small) && n.b == std::max(orig, small);
    cropped_found |= n.a == std::min(orig, cropped) && n.b == std::max(orig, cropped);
    EXPECT_FALSE(n.a == std::min(orig, other) && n.b == std::max(orig, other)) << "kodim07 and kodim08 are different photos";
  }
  EXPECT_TRUE(small_found && cropped_found);
  std::printf("corpus: %zu files indexed, %llu embedded, %zu on the failure list (%zu embed), %zu exact groups, "
              "%zu near pairs (cosine >= 0.97 or <= 8 bits; capped at 1000), %zu by hash alone\n",
              files, static_cast<unsigned long long>(stats->embeddings), failures->size(), failed.size(),
              dups->exact.size(), dups->near.size(), by_hash->near.size());
}

}  // namespace
}  // namespace fs
