// FS_CHECK: the one way to abort on a programmer error (a broken invariant, not bad input).
// Thread-safe; prints file:line and the message to stderr, then aborts.
#pragma once

namespace fs::internal {
[[noreturn]] void CheckFailed(const char* file, int line, const char* cond, const char* msg);
}

#define FS_CHECK(cond)                                                        \
  do {                                                                        \
    if (!(cond)) ::fs::internal::CheckFailed(__FILE__, __LINE__, #cond, ""); \
  } while (0)
#define FS_CHECK_MSG(cond, msg)                                                  \
  do {                                                                           \
    if (!(cond)) ::fs::internal::CheckFailed(__FILE__, __LINE__, #cond, (msg)); \
  } while (0)

// Clang thread-safety annotations (checked with -Wthread-safety); no-ops elsewhere.
#if defined(__clang__)
#define FS_GUARDED_BY(x) __attribute__((guarded_by(x)))
#define FS_REQUIRES(x) __attribute__((requires_capability(x)))
#else
#define FS_GUARDED_BY(x)
#define FS_REQUIRES(x)
#endif
