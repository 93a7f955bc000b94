#include "queue/job.h"

#include <nlohmann/json.hpp>

namespace fs::queue {
namespace {

using json = nlohmann::json;

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Status ParseRecords(const json& records, std::vector<JobItem>* items) {
  if (!records.is_array()) return Status::InvalidArgument("\"Records\" is not an array");
  for (const json& r : records) {
    if (!r.is_object()) return Status::InvalidArgument("an S3 event record is not an object");
    const std::string event = r.value("eventName", "");
    JobItem item;
    if (event.rfind("ObjectCreated:", 0) == 0) {
      item.action = JobItem::Action::kIndex;
    } else if (event.rfind("ObjectRemoved:", 0) == 0) {
      item.action = JobItem::Action::kRemove;
    } else {
      continue;  // ObjectRestore, Replication, LifecycleTransition ...: nothing for the index
    }
    const json s3 = r.value("s3", json::object());
    const std::string bucket = s3.value("bucket", json::object()).value("name", "");
    const std::string raw_key = s3.value("object", json::object()).value("key", "");
    if (bucket.empty() || raw_key.empty()) {
      return Status::InvalidArgument("S3 event " + event + " without s3.bucket.name or s3.object.key");
    }
    FS_ASSIGN_OR_RETURN(std::string key, DecodeS3EventKey(raw_key));
    item.target = "s3://" + bucket + "/" + key;
    items->push_back(std::move(item));
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> DecodeS3EventKey(std::string_view key) {
  std::string out;
  out.reserve(key.size());
  for (size_t i = 0; i < key.size(); ++i) {
    const char c = key[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%') {
      const int hi = i + 2 < key.size() ? HexValue(key[i + 1]) : -1;
      const int lo = i + 2 < key.size() ? HexValue(key[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        return Status::InvalidArgument("broken %-escape in the S3 event key '" + std::string(key) + "'");
      }
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

Result<std::vector<JobItem>> ParseJob(std::string_view body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::InvalidArgument("not a job: the message is not a JSON object (want an S3 event or "
                                   "{\"imageUrl\": \"s3://...\"})");
  }
  // An S3 event delivered through SNS: the event is the notification's Message.
  if (j.value("Type", "") == "Notification" && j.contains("Message") && j["Message"].is_string()) {
    return ParseJob(j["Message"].get<std::string>());
  }
  std::vector<JobItem> items;
  if (j.contains("Records")) {
    FS_RETURN_IF_ERROR(ParseRecords(j["Records"], &items));
    return items;
  }
  if (j.value("Event", "") == "s3:TestEvent") return items;
  if (j.contains("imageUrl")) {
    if (!j["imageUrl"].is_string() || j["imageUrl"].get<std::string>().empty()) {
      return Status::InvalidArgument("not a job: \"imageUrl\" must be a non-empty string");
    }
    JobItem item;
    item.target = j["imageUrl"].get<std::string>();
    if (item.target.rfind("s3://", 0) != 0 && item.target.rfind('/', 0) != 0) {
      return Status::InvalidArgument("not a job: \"imageUrl\" must be s3://BUCKET/KEY or an absolute path, not '" +
                                     item.target + "'");
    }
    if (j.contains("useCache")) {
      if (!j["useCache"].is_boolean()) return Status::InvalidArgument("not a job: \"useCache\" must be true or false");
      item.use_cache = j["useCache"].get<bool>();
    }
    const std::string action = j.value("action", "index");
    if (action == "remove") {
      item.action = JobItem::Action::kRemove;
    } else if (action != "index") {
      return Status::InvalidArgument("not a job: \"action\" must be \"index\" or \"remove\"");
    }
    items.push_back(std::move(item));
    return items;
  }
  return Status::InvalidArgument("not a job: neither an S3 event (\"Records\") nor {\"imageUrl\": ...}");
}

std::string PlainJob(const std::string& target, bool use_cache, bool remove) {
  json j = {{"imageUrl", target}, {"useCache", use_cache}};
  if (remove) j["action"] = "remove";
  return j.dump();
}

}  // namespace fs::queue
