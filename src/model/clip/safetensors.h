// Internal header of model/clip. A read-only, memory-mapped view of a safetensors file
// (u64 little-endian header length, JSON header {name: {dtype, shape, data_offsets}}, raw data).
// Open() validates the whole header up front: every tensor's byte range lies inside the file, matches
// dtype x shape, and ranges do not overlap; a truncated or corrupt file is a kCorruption Status naming
// the file (and the tensor), never a crash. Tensor views borrow the mapping and die with the file.
// Thread-safety: immutable after Open(); concurrent readers are fine.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace fs::clip {

enum class DType { kF32, kF16, kBF16, kI64, kOther };

struct TensorView {
  DType dtype = DType::kOther;
  std::string dtype_name;        // as written in the header ("F32", "BF16", ...)
  std::vector<int64_t> shape;    // row-major
  std::span<const std::byte> data;
  int64_t numel() const;
};

class SafetensorsFile {
 public:
  static Result<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  // "<bytes>:<mtime ns>:<SHA-256 of the JSON header and 256 samples of the data>": changes when
  // the file is replaced or rewritten (the key of derived caches such as the packed-weight file).
  const std::string& identity() const { return identity_; }
  // Null when the file holds no tensor of that name.
  const TensorView* Find(const std::string& name) const;
  // Every tensor's name, sorted.
  std::vector<std::string> names() const;
  // Lets the kernel drop the mapped pages (they are re-read from disk if touched again): called
  // once the weights have been converted into their compute layout, so RSS holds them only once.
  void ReleasePages() const;
  // The same for the whole pages inside one tensor's bytes (called after converting it, so that
  // loading never holds a tensor twice).
  void ReleasePages(const TensorView& view) const;
  // Maps one tensor's pages in a single call (MADV_POPULATE_READ) instead of one fault per page;
  // a no-op where the kernel lacks it.
  void PrefaultPages(const TensorView& view) const;

 private:
  SafetensorsFile() = default;
  std::string path_;
  std::string identity_;
  void* map_ = nullptr;
  size_t size_ = 0;
  std::map<std::string, TensorView> tensors_;
};

// "[768, 3, 32, 32]".
std::string ShapeString(std::span<const int64_t> shape);

// Converts `view` (F32, F16 or BF16) to fp32, checking every value is finite. Errors name the tensor.
Status ToFloat32(const std::string& name, const TensorView& view, std::span<float> out);
// The same for raw bytes of `dtype` (one row of a table, say): no TensorView, no allocation.
Status ToFloat32(std::string_view name, DType dtype, std::span<const std::byte> data, std::span<float> out);
// For an F32 tensor whose data is 4-byte aligned in the mapping: checks every value is finite and
// returns the data in place (no copy). Otherwise converts into *scratch (resized) and returns that.
Result<std::span<const float>> Float32View(const std::string& name, const TensorView& view,
                                           std::vector<float>* scratch);

}  // namespace fs::clip
