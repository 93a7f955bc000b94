#include "model/clip/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <utility>

#include "core/hash.h"
#include "core/json_dump.h"

namespace fs::clip {
namespace {

// A header larger than this is not a model header (the real ViT-L/14 header is ~70 KB).
constexpr uint64_t kMaxHeaderBytes = 100u << 20;

struct DTypeInfo {
  const char* name;
  DType dtype;
  int bytes;
};
constexpr DTypeInfo kDTypes[] = {
    {"F32", DType::kF32, 4}, {"F16", DType::kF16, 2}, {"BF16", DType::kBF16, 2},
    {"I64", DType::kI64, 8}, {"F64", DType::kOther, 8}, {"I32", DType::kOther, 4},
    {"I16", DType::kOther, 2}, {"I8", DType::kOther, 1}, {"U8", DType::kOther, 1},
    {"BOOL", DType::kOther, 1}, {"U16", DType::kOther, 2}, {"U32", DType::kOther, 4},
    {"U64", DType::kOther, 8}, {"F8_E4M3", DType::kOther, 1}, {"F8_E5M2", DType::kOther, 1},
};

float HalfToFloat(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t mant = h & 0x3FFu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: renormalise
      int shift = 0;
      while ((mant & 0x400u) == 0) {
        mant <<= 1;
        ++shift;
      }
      mant &= 0x3FFu;
      bits = sign | (static_cast<uint32_t>(127 - 15 - shift + 1) << 23) | (mant << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7F800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

Status Bad(const std::string& path, const std::string& what) {
  return Status::Corruption("safetensors file '" + path + "' is damaged or not a safetensors file: " +
                            what + " (re-download the model)");
}

}  // namespace

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string ShapeString(std::span<const int64_t> shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    std::string m = "cannot open '" + path + "': " + std::strerror(err);
    return err == ENOENT ? Status::NotFound(m) : Status::IOError(m);
  }
  struct stat st{};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return Status::IOError("cannot stat '" + path + "': " + std::strerror(err));
  }
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    return Bad(path, "file is " + std::to_string(size) + " bytes, shorter than the 8-byte header length");
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  int err = errno;
  ::close(fd);
  if (map == MAP_FAILED) return Status::IOError("cannot map '" + path + "': " + std::strerror(err));

  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  file->map_ = map;
  file->size_ = size;
  const auto* bytes = static_cast<const std::byte*>(map);

  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | std::to_integer<uint64_t>(bytes[i]);
  if (header_len > kMaxHeaderBytes || header_len > size - 8) {
    return Bad(path, "header length " + std::to_string(header_len) + " does not fit in a file of " +
                         std::to_string(size) + " bytes (truncated?)");
  }
  const uint64_t data_start = 8 + header_len;
  const uint64_t data_len = size - data_start;
  nlohmann::json header = nlohmann::json::parse(
      reinterpret_cast<const char*>(bytes + 8), reinterpret_cast<const char*>(bytes + data_start),
      nullptr, /*allow_exceptions=*/false);
  if (!header.is_object()) return Bad(path, "header is not a JSON object");
  {  // identity: size, mtime, the header, and 256 evenly spaced 64-byte samples of the data (cheap:
     // 256 pages), so an edit that keeps the size and lands within the clock's tick is still likely seen.
    Sha256Stream sha;
    sha.Update(std::string_view(reinterpret_cast<const char*>(bytes + 8), header_len));
    constexpr uint64_t kSamples = 256, kSampleBytes = 64;
    for (uint64_t i = 0; i < kSamples && data_len > 0; ++i) {
      const uint64_t at = data_start + (data_len - std::min(data_len, kSampleBytes)) * i / (kSamples - 1);
      sha.Update(std::string_view(reinterpret_cast<const char*>(bytes + at), std::min(data_len, kSampleBytes)));
    }
    file->identity_ = std::to_string(size) + ":" +
                      std::to_string(static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec) +
                      ":" + sha.FinishHex();
  }

  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    const std::string where = "tensor '" + name + "': ";
    if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") ||
        !entry.contains("data_offsets") || !entry["dtype"].is_string() || !entry["shape"].is_array() ||
        !entry["data_offsets"].is_array() || entry["data_offsets"].size() != 2) {
      return Bad(path, where + "entry lacks dtype, shape or data_offsets");
    }
    TensorView view;
    view.dtype_name = entry["dtype"].get<std::string>();
    int elem_bytes = 0;
    for (const auto& d : kDTypes) {
      if (view.dtype_name == d.name) {
        view.dtype = d.dtype;
        elem_bytes = d.bytes;
      }
    }
    if (elem_bytes == 0) return Bad(path, where + "unknown dtype '" + view.dtype_name + "'");
    uint64_t numel = 1;
    for (const auto& d : entry["shape"]) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > (uint64_t{1} << 40)) {
        return Bad(path, where + "shape " + DumpJson(d) + " is not a list of sizes");
      }
      view.shape.push_back(d.get<int64_t>());
      numel *= d.get<uint64_t>();
      if (numel > (uint64_t{1} << 40)) return Bad(path, where + "shape is implausibly large");
    }
    const auto& offsets = entry["data_offsets"];
    if (!offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned()) {
      return Bad(path, where + "data_offsets are not unsigned integers");
    }
    const uint64_t begin = offsets[0].get<uint64_t>(), end = offsets[1].get<uint64_t>();
    if (begin > end || end > data_len) {
      return Bad(path, where + "data [" + std::to_string(begin) + ", " + std::to_string(end) +
                           ") lies outside the " + std::to_string(data_len) +
                           " data bytes (file truncated?)");
    }
    if (end - begin != numel * static_cast<uint64_t>(elem_bytes)) {
      return Bad(path, where + std::to_string(end - begin) + " data bytes do not match dtype " +
                           view.dtype_name + " and shape " + ShapeString(view.shape));
    }
    view.data = {bytes + data_start + begin, static_cast<size_t>(end - begin)};
    ranges.emplace_back(begin, end);
    file->tensors_.emplace(name, std::move(view));
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].first < ranges[i - 1].second) return Bad(path, "tensor data ranges overlap");
  }
  return file;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_ != nullptr) ::munmap(map_, size_);
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& [name, view] : tensors_) out.push_back(name);
  return out;
}

const TensorView* SafetensorsFile::Find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

void SafetensorsFile::ReleasePages() const {
  if (map_ != nullptr) ::madvise(map_, size_, MADV_DONTNEED);
}

void SafetensorsFile::ReleasePages(const TensorView& view) const {
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto begin = (reinterpret_cast<uintptr_t>(view.data.data()) + page - 1) / page * page;
  const auto end = (reinterpret_cast<uintptr_t>(view.data.data()) + view.data.size()) / page * page;
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

void SafetensorsFile::PrefaultPages(const TensorView& view) const {
#ifdef MADV_POPULATE_READ
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<uintptr_t>(view.data.data()) / page * page;
  const auto end = reinterpret_cast<uintptr_t>(view.data.data()) + view.data.size();
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_READ);
#else
  (void)view;
#endif
}

namespace {
Status NonFinite(const std::string& name, float value, size_t index) {
  return Status::Corruption("tensor '" + name + "' holds a non-finite value (" + std::to_string(value) +
                            ") at element " + std::to_string(index) + "; the weights are damaged");
}
}  // namespace

Result<std::span<const float>> Float32View(const std::string& name, const TensorView& view,
                                           std::vector<float>* scratch) {
  const auto n = static_cast<size_t>(view.numel());
  if (view.dtype == DType::kF32 && reinterpret_cast<uintptr_t>(view.data.data()) % alignof(float) == 0) {
    const auto* data = reinterpret_cast<const float*>(view.data.data());
    const auto* bits = reinterpret_cast<const uint32_t*>(view.data.data());
    constexpr size_t kChunk = 4096;
    for (size_t begin = 0; begin < n; begin += kChunk) {
      // Branch-free (so it vectorises): any exponent of all ones is an Inf or a NaN.
      const size_t end = std::min(n, begin + kChunk);
      uint32_t bad = 0;
      for (size_t i = begin; i < end; ++i) bad |= static_cast<uint32_t>((bits[i] & 0x7F800000u) == 0x7F800000u);
      if (bad != 0) {
        for (size_t i = begin; i < end; ++i) {
          if (!std::isfinite(data[i])) return NonFinite(name, data[i], i);
        }
      }
    }
    return std::span<const float>(data, n);
  }
  scratch->resize(n);
  FS_RETURN_IF_ERROR(ToFloat32(name, view, *scratch));
  return std::span<const float>(*scratch);
}

Status ToFloat32(const std::string& name, const TensorView& view, std::span<float> out) {
  if (view.dtype != DType::kF32 && view.dtype != DType::kF16 && view.dtype != DType::kBF16) {
    return Status::Unsupported("tensor '" + name + "' has dtype " + view.dtype_name +
                               "; CLIP weights must be F32, F16 or BF16");
  }
  if (out.size() != static_cast<size_t>(view.numel())) {
    return Status::Internal("tensor '" + name + "': output holds " + std::to_string(out.size()) +
                            " floats, tensor has " + std::to_string(view.numel()));
  }
  return ToFloat32(name, view.dtype, view.data, out);
}

Status ToFloat32(std::string_view name, DType dtype, std::span<const std::byte> data, std::span<float> out) {
  const size_t n = out.size();
  const size_t elem = dtype == DType::kF32 ? 4 : 2;
  if (data.size() != n * elem || (dtype != DType::kF32 && dtype != DType::kF16 && dtype != DType::kBF16)) {
    return Status::Internal("tensor '" + std::string(name) + "': cannot convert " +
                            std::to_string(data.size()) + " bytes to " + std::to_string(n) + " floats");
  }
  const std::byte* src = data.data();
  switch (dtype) {
    case DType::kF32:
      std::memcpy(out.data(), src, n * 4);
      break;
    case DType::kF16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        out[i] = HalfToFloat(h);
      }
      break;
    case DType::kBF16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        const uint32_t bits = static_cast<uint32_t>(h) << 16;
        std::memcpy(&out[i], &bits, 4);
      }
      break;
    default:
      break;  // rejected above
  }
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(out[i])) return NonFinite(std::string(name), out[i], i);
  }
  return Status::Ok();
}

}  // namespace fs::clip
