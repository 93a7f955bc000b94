// Mirror: keeps a remote index (OpenSearch) equal to the store. Every document write, delete and
// embedding change queues its uri in the store's outbox in the same transaction (Store::
// EnableMirror); SyncMirror sends the current state of each queued uri as one _bulk item (the
// whole document with its embedding, under its stable id, versioned by mtime; or a delete) and
// trims the outbox only after the remote index acknowledged the batch. So nothing acknowledged is
// lost when the remote goes away mid-run (the next sync resends from the outbox), and nothing is
// duplicated (ids are stable, writes idempotent). Items the remote refuses go on the failure list
// (stage "mirror") with its reason; the rest land.
//
// Thread-safety: one SyncMirror per store at a time (the caller's loop: index, worker, backfill).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "index/store.h"

namespace fs {

// One item's outcome in a _bulk reply, in request order.
struct BulkItemResult {
  int status = 0;      // HTTP status of the item (2xx: applied)
  std::string error;   // the remote's reason when it failed
};

// Where _bulk requests go. The OpenSearch client implements it; retries of whole requests (429,
// 5xx, connection errors) are its job, so a non-OK status here means "not delivered, try later".
class BulkSink {
 public:
  virtual ~BulkSink() = default;
  virtual Result<std::vector<BulkItemResult>> Bulk(const std::string& ndjson, size_t items) = 0;
};

struct MirrorOptions {
  std::string index = "cis-files";  // the remote index
  std::string model;                // embeddings of this model are sent ("" = none)
  size_t max_items = 500;           // documents per _bulk request
  size_t max_bytes = 8u << 20;      // NDJSON bytes per _bulk request (a 512-d vector is ~6 KB)
  size_t scan = 5000;               // outbox entries read at a time
  bool progress = false;            // a progress bar over the outbox on stderr
  // Items the node turns away for load (HTTP 429 or 5xx in the _bulk reply) are sent again, alone,
  // up to this many attempts in all, after item_backoff_ms, doubling; then the failure list.
  int item_attempts = 6;
  int item_backoff_ms = 200;
};

struct MirrorReport {
  uint64_t indexed = 0;   // documents written
  uint64_t deleted = 0;   // documents removed
  uint64_t failed = 0;    // items the remote refused (on the failure list)
  uint64_t requests = 0;  // _bulk requests sent
  uint64_t retried = 0;   // items sent again after a 429 or 5xx of their own
  uint64_t backlog = 0;   // outbox entries left (0 after a complete sync)
};

Result<MirrorReport> SyncMirror(Store* store, BulkSink* sink, const MirrorOptions& options);

class OpenSearchClient;
// _bulk through an OpenSearch client (borrowed): POST /_bulk, Content-Type application/x-ndjson,
// per-item statuses from the reply. The client retries 429 and 5xx with backoff.
std::unique_ptr<BulkSink> NewOpenSearchBulkSink(const OpenSearchClient* client);

}  // namespace fs
