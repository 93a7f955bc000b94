// Internal header of model/clip's tests. Runs a PyTorch oracle (tests/clip/clip_reference.py,
// tests/clip/xlmr_reference.py)
// into a fresh temp folder and reads what it wrote. Not thread-safe; tests only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/clip/clip_model.h"

namespace fs::clip::testing {

// Runs `tests/clip/<script> --out <tmp> <args>` with `python` (a relative path is taken from the
// source tree). Returns the folder, or nullopt (with *why set) when the source tree is absent or the
// Python statement `check` (default: import torch) fails with that interpreter.
std::optional<std::string> GenerateReference(const std::string& args, std::string* why,
                                             const std::string& script = "clip_reference.py",
                                             const std::string& python = "/usr/bin/python3",
                                             const std::string& check = "import torch");
// A generated CLIP model with tiny towers and a small vocabulary, with the real CLIP tokenizer of
// `shared` (../shared/clip/tokenizer.json) copied in: what tests that run the filesearch binary
// with --model-dir use. nullopt, with *why, when the tokenizer or the oracle is missing (skip).
std::optional<std::string> GenerateTinyModel(const std::string& shared, std::string* why);
// The tiny model one test suite shares: Make() in SetUpTestSuite, Remove() in TearDownTestSuite.
// dir() is "" (and why() says why, for GTEST_SKIP) when the file `needs` under `shared` is missing
// or the model cannot be generated.
class SuiteTinyModel {
 public:
  void Make(const std::string& shared, const std::string& needs);
  void Remove();
  const std::string& dir() const { return dir_; }
  const std::string& why() const { return why_; }

 private:
  std::string dir_, why_;
};
// The source tree (FILESEARCH_SOURCE_DIR, else ".").
std::string SourceDir();
// What an oracle wrote into one model folder: pixels.f32 / image_emb.f32 (empty when absent),
// text_emb.f32, text_ids.json.
struct Reference {
  std::string dir;
  std::vector<float> pixels, image_emb, text_emb;
  std::vector<std::vector<int32_t>> ids;
};

// The reference in `variant` (a sub-folder) of the oracle output `key`, which `make` generates on
// first use (it is removed at exit). Null, with *why set, when the oracle is unavailable.
const Reference* SharedReference(const std::string& key, const std::string& variant,
                                 const std::function<std::optional<std::string>(std::string*)>& make,
                                 std::string* why);

// Encodes the reference's texts and images (if any) and expects every cosine >= min_cosine.
// Returns the lowest text cosine.
double ExpectMatches(ClipModel& model, const Reference& ref, double min_cosine);
// ClipModel::Load with `threads` threads, failing the test (and returning null) on error.
// Loads dir in a reduced precision on 2 threads, which must hold its bound (the load's own check),
// prints Describe() and expects it to say outlier channels were kept in fp32. Null on failure.
std::unique_ptr<ClipModel> LoadWithOutliers(const std::string& dir, LoadOptions::Precision precision);

std::unique_ptr<ClipModel> LoadOrDie(const std::string& dir,
                                     LoadOptions::Precision precision = LoadOptions::Precision::kFp32,
                                     int threads = 2);
std::vector<float> ReadFloats(const std::string& path);
std::vector<std::vector<int32_t>> ReadIds(const std::string& path);
// Cosine similarity of rows `row` of two [n, d] matrices.
double Cosine(const std::vector<float>& a, const std::vector<float>& b, size_t row, size_t d);
void RemoveTree(const std::string& dir);

}  // namespace fs::clip::testing

// In a test: `REFERENCE_OR_SKIP(ref, "hf-f32");` with the test file's GetReference(variant, why).
#define REFERENCE_OR_SKIP(var, variant)                     \
  std::string why_##var;                                    \
  const Reference* var = GetReference(variant, &why_##var); \
  if (var == nullptr) GTEST_SKIP() << why_##var
