#include "extract/magic.h"

#include <magic.h>

namespace fs::extract_internal {
namespace {

class MagicHandle {
 public:
  MagicHandle() : cookie_(::magic_open(MAGIC_MIME_TYPE | MAGIC_NO_CHECK_COMPRESS)) {
    if (cookie_ && ::magic_load(cookie_, nullptr) != 0) {
      ::magic_close(cookie_);
      cookie_ = nullptr;
    }
  }
  ~MagicHandle() {
    if (cookie_) ::magic_close(cookie_);
  }
  MagicHandle(const MagicHandle&) = delete;
  MagicHandle& operator=(const MagicHandle&) = delete;

  std::string Mime(std::string_view head) {
    if (!cookie_) return "";
    const char* m = ::magic_buffer(cookie_, head.data(), head.size());
    return m ? std::string(m) : std::string();
  }

 private:
  magic_t cookie_;
};

}  // namespace

std::string MagicMime(std::string_view head) {
  thread_local MagicHandle handle;
  return handle.Mime(head);
}

}  // namespace fs::extract_internal
