#include "core/check.h"

#include <cstdio>
#include <cstdlib>

namespace fs::internal {
void CheckFailed(const char* file, int line, const char* cond, const char* msg) {
  std::fprintf(stderr, "filesearch: internal check failed at %s:%d: %s %s\n", file, line, cond, msg);
  std::fflush(stderr);
  std::abort();
}
}  // namespace fs::internal
