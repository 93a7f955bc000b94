// Internal header of model/clip's tests. Runs the PyTorch oracle (tests/clip/clip_reference.py)
// into a fresh temp folder and reads what it wrote. Not thread-safe; tests only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace fs::clip::testing {

// Runs `clip_reference.py --out <tmp> <args>` with /usr/bin/python3. Returns the folder, or
// nullopt (with *why set) when Python, PyTorch or the source tree is unavailable.
std::optional<std::string> GenerateReference(const std::string& args, std::string* why);
std::vector<float> ReadFloats(const std::string& path);
std::vector<std::vector<int32_t>> ReadIds(const std::string& path);
// Cosine similarity of rows `row` of two [n, d] matrices.
double Cosine(const std::vector<float>& a, const std::vector<float>& b, size_t row, size_t d);
void RemoveTree(const std::string& dir);

}  // namespace fs::clip::testing
