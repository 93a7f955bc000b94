// Runs every file of ../shared/corpus/formats (decoder test suites: valid files of every kind, crash
// files, truncated files, decompression bombs, non-images) through image::DecodeFile with the
// default limits. Every file must decode or come back with a clear Status; the process must not
// crash. Prints counts per folder and outcome. Also checks the perceptual hash on real photos.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"
#include "image/image.h"

namespace fs {
namespace {

namespace stdfs = std::filesystem;

std::string CorpusDir() {
  const char* dir = std::getenv("FILESEARCH_SHARED_DIR");
  if (dir == nullptr) return "";
  const std::string corpus = std::string(dir) + "/corpus";
  return stdfs::is_directory(corpus) ? corpus : "";
}

bool StartsWith(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

TEST(ImageFormatsTest, WholeFormatsCorpusDecodesOrFailsCleanly) {
  const std::string corpus = CorpusDir();
  if (corpus.empty()) GTEST_SKIP() << "FILESEARCH_SHARED_DIR/corpus not found (../shared is missing)";
  const std::string root = corpus + "/formats";
  std::vector<std::string> files;
  for (const auto& e : stdfs::recursive_directory_iterator(root)) {
    if (e.is_regular_file()) files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  ASSERT_GT(files.size(), 1000u);

  const image::DecodeOptions options;  // the defaults: max_side 2048, 100 MP, 256 MiB
  std::map<std::string, std::map<std::string, int>> counts;  // folder -> outcome -> files
  std::map<std::string, int> totals;
  double slowest_ms = 0;
  std::string slowest;
  for (const std::string& path : files) {
    const std::string rel = path.substr(root.size() + 1);
    const std::string folder = rel.substr(0, rel.find('/'));
    const auto start = std::chrono::steady_clock::now();
    auto img = image::DecodeFile(path, options);
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (ms > slowest_ms) {
      slowest_ms = ms;
      slowest = rel;
    }
    std::string outcome = "decoded";
    if (img.ok()) {
      EXPECT_GT(img->width, 0) << rel;
      EXPECT_LE(std::max(img->width, img->height), options.max_side) << rel;
      EXPECT_EQ(img->pixels.size(), static_cast<size_t>(img->width) * static_cast<size_t>(img->height) * 3) << rel;
    } else {
      const StatusCode code = img.status().code();
      outcome = std::string(StatusCodeName(code));
      EXPECT_TRUE(code == StatusCode::kUnsupported || code == StatusCode::kCorruption ||
                  code == StatusCode::kResourceExhausted)
          << rel << ": " << img.status().ToString();
      // A clear reason: more than the path we prefixed.
      EXPECT_GT(img.status().message().size(), path.size() + 10) << rel;
    }
    ++counts[folder][outcome];
    ++totals[outcome];

    // Files whose fate is known.
    const std::string name = stdfs::path(rel).filename().string();
    if (StartsWith(rel, "exif-orientation/") && stdfs::path(rel).extension() == ".jpg") {
      EXPECT_TRUE(img.ok()) << rel << ": " << img.status().ToString();
    }
    if (StartsWith(rel, "pngsuite/contrib/pngsuite/") && stdfs::path(rel).extension() == ".png" &&
        name[0] != 'x') {  // PngSuite's x* files are the deliberately broken ones
      EXPECT_TRUE(img.ok()) << rel << ": " << img.status().ToString();
    }
    if (StartsWith(name, "huge_") && StartsWith(rel, "pngsuite/")) {
      EXPECT_FALSE(img.ok()) << rel;
    }
    if (StartsWith(name, "decompression_bomb")) {
      EXPECT_TRUE(!img.ok() || static_cast<uint64_t>(img->width) * static_cast<uint64_t>(img->height) <= options.max_pixels)
          << rel;
    }
  }
  std::printf("  %-18s %8s %12s %11s %18s\n", "folder", "decoded", "unsupported", "corruption",
              "resource_exhausted");
  for (const auto& [folder, by_outcome] : counts) {
    auto get = [&](const char* k) { return by_outcome.count(k) ? by_outcome.at(k) : 0; };
    std::printf("  %-18s %8d %12d %11d %18d\n", folder.c_str(), get("decoded"), get("unsupported"),
                get("corruption"), get("resource_exhausted"));
  }
  std::printf("  total %zu files: %d decoded, %d unsupported, %d corruption, %d resource_exhausted; "
              "slowest %.0f ms (%s)\n",
              files.size(), totals["decoded"], totals["unsupported"], totals["corruption"],
              totals["resource_exhausted"], slowest_ms, slowest.c_str());
  EXPECT_GT(totals["decoded"], 900);
}

// Resized + recompressed copies of a photo stay close; different photos are far apart.
TEST(ImageFormatsTest, PerceptualHashOnPhotos) {
  const std::string corpus = CorpusDir();
  if (corpus.empty()) GTEST_SKIP() << "FILESEARCH_SHARED_DIR/corpus not found (../shared is missing)";
  std::vector<uint64_t> originals;
  int worst_copy = 0;
  for (int i = 1; i <= 24; ++i) {
    char name[64];
    std::snprintf(name, sizeof name, "/photos/kodak/kodim%02d.png", i);
    auto img = image::DecodeFile(corpus + name, {});
    ASSERT_TRUE(img.ok()) << img.status().ToString();
    const uint64_t h = image::PerceptualHash(*img);
    originals.push_back(h);
    for (int side : {256, 128}) {
      auto thumb = image::MakeThumbnail(*img, side);  // resize + JPEG quality 80
      ASSERT_TRUE(thumb.ok());
      auto copy = image::DecodeMemory(*thumb, {});
      ASSERT_TRUE(copy.ok());
      worst_copy = std::max(worst_copy, image::HammingDistance(h, image::PerceptualHash(*copy)));
    }
  }
  int closest_pair = 64;
  for (size_t a = 0; a < originals.size(); ++a) {
    for (size_t b = a + 1; b < originals.size(); ++b) {
      closest_pair = std::min(closest_pair, image::HammingDistance(originals[a], originals[b]));
    }
  }
  std::printf("  kodak: worst copy distance %d, closest different pair %d\n", worst_copy, closest_pair);
  // Measured: worst copy 6 bits, closest pair of different photos 20 bits.
  EXPECT_LE(worst_copy, 10);
  EXPECT_GE(closest_pair, 14);
}

}  // namespace
}  // namespace fs
