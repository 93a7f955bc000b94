// WatchFolder: keeps the index of one folder current while it changes (`filesearch worker DIR`).
//
// At start it reconciles the folder with the index (an incremental crawl: anything added,
// changed, moved or deleted while no worker ran is picked up, so no change is lost across a
// restart). Then inotify watches every directory under the root (new directories are watched as
// they appear); events are debounced (a pass starts once the folder has been quiet for
// `quiet_ms`, or `max_delay_ms` after the first event of a burst) and each pass is another
// incremental crawl of the root, which handles creates, writes, renames, moves and deletes the
// same way and embeds new images when the engine has an embedder. A file still being written is
// read again by the pass its next write (or close) triggers. A watch-queue overflow, a watch
// limit or an unreadable directory only schedules a full pass. Files that fail go on the store's
// failure list; when a transient failure's backoff runs out, a pass retries it (checked every
// second); permanent failures and those out of attempts stay there as dead letters. `stop` (set from a SIGTERM or
// SIGINT handler) ends the loop after the current pass, with the vector snapshot saved.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "core/status.h"
#include "engine/engine.h"

namespace fs {

struct WatchOptions {
  int quiet_ms = 300;        // a pass waits until no event came for this long...
  int max_delay_ms = 2000;   // ...but no longer than this after the first event of a burst
  CrawlOptions crawl;        // per pass (progress is off after the first pass)
  // After every pass (the first included): what it did. For logs and tests.
  std::function<void(const IndexReport&, double seconds)> on_pass;
};

struct WatchStats {
  uint64_t passes = 0;
  uint64_t events = 0;
  uint64_t overflows = 0;
  uint64_t retry_passes = 0;  // passes started because a failed file's backoff ran out
};

Result<WatchStats> WatchFolder(Engine* engine, const std::string& root, const WatchOptions& options,
                               const std::atomic<bool>& stop);

}  // namespace fs
