// SyncMirror: outbox entries -> _bulk batches -> per-item results -> trim. See mirror.h.
#include "engine/mirror.h"

#include <algorithm>
#include <chrono>
#include <thread>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "core/progress.h"
#include "index/opensearch_client.h"
#include "index/opensearch_query.h"

namespace fs {
namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

struct Pending {
  std::vector<std::string> lines;  // one item's NDJSON lines each
  size_t bytes = 0;
  std::vector<std::string> uris;  // one per item, for the failure list
  std::vector<std::string> paths;
  std::vector<bool> is_delete;
  uint64_t last_seq = 0;
};

class OpenSearchBulkSink final : public BulkSink {
 public:
  explicit OpenSearchBulkSink(const OpenSearchClient* client) : client_(client) {}
  Result<std::vector<BulkItemResult>> Bulk(const std::string& ndjson, size_t items) override {
    OpenSearchRequest request;
    request.method = "POST";
    request.path = "/_bulk";
    request.body = ndjson;
    request.content_type = "application/x-ndjson";
    // Every item is idempotent (stable ids, versioned writes, deletes), so a resend is safe.
    request.read_only_post = true;
    FS_ASSIGN_OR_RETURN(OpenSearchReply reply, client_->Send(request));
    if (!reply.ok()) return Status::Unavailable(client_->DescribeError("bulk write", reply));
    const nlohmann::json j = nlohmann::json::parse(reply.body, nullptr, false);
    if (!j.is_object() || !j.contains("items") || !j["items"].is_array()) {
      return Status::IOError("OpenSearch answered _bulk without items");
    }
    std::vector<BulkItemResult> out;
    out.reserve(items);
    for (const auto& item : j["items"]) {
      if (!item.is_object() || item.empty()) return Status::IOError("OpenSearch answered _bulk with an empty item");
      const auto& r = item.begin().value();  // {"index": {...}} or {"delete": {...}}
      BulkItemResult b;
      b.status = r.value("status", 0);
      if (r.contains("error")) {
        const auto& e = r["error"];
        b.error = e.is_object() ? e.value("type", std::string()) + ": " + e.value("reason", std::string()) : e.dump();
      }
      out.push_back(std::move(b));
    }
    return out;
  }

 private:
  const OpenSearchClient* client_;
};

}  // namespace

std::unique_ptr<BulkSink> NewOpenSearchBulkSink(const OpenSearchClient* client) {
  return std::make_unique<OpenSearchBulkSink>(client);
}

Result<MirrorReport> SyncMirror(Store* store, BulkSink* sink, const MirrorOptions& o) {
  MirrorReport report;
  Pending batch;
  std::unique_ptr<Progress> bar;
  if (o.progress) {
    FS_ASSIGN_OR_RETURN(uint64_t queued, store->MirrorBacklog());
    if (queued > 0) bar = std::make_unique<Progress>("opensearch " + o.index, queued);
  }
  std::unordered_set<std::string> retried;
  auto flush = [&]() -> Status {
    if (batch.uris.empty()) {
      if (batch.last_seq) FS_RETURN_IF_ERROR(store->TrimMirrorLog(batch.last_seq));
      batch = Pending{};
      return Status::Ok();
    }
    // Items the node turned away for load (429, or a 5xx of one shard) go again, alone, after a
    // backoff, a few times within this run; what still fails, and every other refusal, goes on
    // the failure list.
    std::vector<size_t> todo(batch.uris.size());
    for (size_t i = 0; i < todo.size(); ++i) todo[i] = i;
    std::vector<FailureInput> failures;
    std::vector<std::string> passed;  // retried items that landed now
    for (int attempt = 0; !todo.empty(); ++attempt) {
      if (attempt > 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(o.item_backoff_ms << std::min(attempt - 1, 6)));
        report.retried += todo.size();
      }
      std::string body;
      for (size_t i : todo) body += batch.lines[i];
      FS_ASSIGN_OR_RETURN(std::vector<BulkItemResult> results, sink->Bulk(body, todo.size()));
      ++report.requests;
      if (results.size() != todo.size()) {
        return Status::IOError("the remote index answered " + std::to_string(results.size()) + " items for " +
                               std::to_string(todo.size()) + " sent");
      }
      std::vector<size_t> again;
      for (size_t k = 0; k < results.size(); ++k) {
        const size_t i = todo[k];
        const BulkItemResult& r = results[k];
        // 409 on a versioned write: a newer version is there already. 404 on a delete: gone already.
        const bool ok = (r.status >= 200 && r.status < 300) || (!batch.is_delete[i] && r.status == 409) ||
                        (batch.is_delete[i] && r.status == 404);
        if (ok) {
          ++(batch.is_delete[i] ? report.deleted : report.indexed);
          if (retried.count(batch.uris[i])) passed.push_back(batch.uris[i]);
          continue;
        }
        if ((r.status == 429 || r.status >= 500) && attempt + 1 < o.item_attempts) {
          again.push_back(i);
          continue;
        }
        ++report.failed;
        failures.push_back({batch.uris[i], batch.paths[i], "mirror",
                            "the remote index refused it (HTTP " + std::to_string(r.status) + "): " + r.error, false});
      }
      todo = std::move(again);
    }
    if (!failures.empty()) FS_RETURN_IF_ERROR(store->RecordFailures(failures, RetryPolicy{}, NowNs()));
    if (!passed.empty()) FS_RETURN_IF_ERROR(store->ResolveFailures(passed, "mirror"));
    // Acknowledged: only now does the outbox forget these entries.
    FS_RETURN_IF_ERROR(store->TrimMirrorLog(batch.last_seq));
    batch = Pending{};
    return Status::Ok();
  };

  // Items the remote refused earlier go out again once their backoff has run out.
  FS_ASSIGN_OR_RETURN(std::vector<std::string> due, store->FailuresDue("mirror", NowNs()));
  if (!due.empty()) FS_RETURN_IF_ERROR(store->QueueMirror(due));
  retried.insert(due.begin(), due.end());
  uint64_t after = 0;
  for (;;) {
    FS_ASSIGN_OR_RETURN(std::vector<MirrorChange> changes, store->MirrorChangesSince(after, o.scan));
    if (changes.empty()) break;
    // A uri queued several times in this window is sent once, at its last position: its current
    // state is what the remote must end with.
    if (bar) bar->Add(changes.size());
    std::unordered_set<std::string> later;
    std::vector<bool> keep(changes.size(), false);
    for (size_t i = changes.size(); i-- > 0;) keep[i] = later.insert(changes[i].uri).second;
    for (size_t i = 0; i < changes.size(); ++i) {
      const MirrorChange& c = changes[i];
      batch.last_seq = c.seq;
      after = c.seq;
      if (!keep[i]) continue;
      auto doc = store->GetByUri(c.uri);
      if (!doc.ok() && doc.status().code() != StatusCode::kNotFound) return doc.status();
      if (!doc.ok()) {
        batch.lines.push_back(opensearch::BulkDeleteLines(o.index, opensearch::StableDocId(c.uri)));
        batch.is_delete.push_back(true);
        batch.paths.push_back("");
      } else {
        std::vector<float> vec;
        if (!o.model.empty()) {
          FS_ASSIGN_OR_RETURN(auto emb, store->GetEmbedding(doc->id, o.model));
          if (emb) vec = std::move(*emb);
        }
        std::optional<uint64_t> phash;
        if (!doc->sha256.empty() && doc->mime.starts_with("image/")) {
          FS_ASSIGN_OR_RETURN(phash, store->PerceptualHashOf(doc->sha256));
        }
        batch.lines.push_back(opensearch::BulkIndexLines(o.index, *doc, doc->mtime_ns, vec, o.model, phash));
        batch.is_delete.push_back(false);
        batch.paths.push_back(doc->path);
      }
      batch.uris.push_back(c.uri);
      batch.bytes += batch.lines.back().size();
      if (batch.uris.size() >= o.max_items || batch.bytes >= o.max_bytes) FS_RETURN_IF_ERROR(flush());
    }
  }
  FS_RETURN_IF_ERROR(flush());
  if (bar) bar->Finish();
  FS_ASSIGN_OR_RETURN(report.backlog, store->MirrorBacklog());
  return report;
}

}  // namespace fs
