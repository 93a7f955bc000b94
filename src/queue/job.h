// Jobs on the queue: what a message body asks a worker to do. Two formats are understood:
//   - Amazon S3 event notifications, as S3 sends them to SQS (directly or wrapped in an SNS
//     notification): {"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": B},
//     "object": {"key": K}}}]}. ObjectCreated:* indexes s3://B/K, ObjectRemoved:* removes it. Keys
//     arrive URL-encoded ('+' for a space, %XX for other bytes) and are decoded here. S3's
//     "s3:TestEvent" (sent when notifications are configured) is a job with nothing to do.
//   - Plain jobs, the original embedding function's payload: {"imageUrl": "s3://bucket/key" or a
//     local path, "useCache": true}; "action": "remove" removes instead (filesearch's own addition).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace fs::queue {

struct JobItem {
  enum class Action { kIndex, kRemove };
  Action action = Action::kIndex;
  std::string target;     // "s3://bucket/key" (key decoded) or an absolute local path
  bool use_cache = true;  // consult the embedding cache
};

// The items of one message body; an empty list for a body with nothing to do (an S3 test event).
// InvalidArgument (the job is poison: it can never succeed) for anything else, saying why.
Result<std::vector<JobItem>> ParseJob(std::string_view body);

// The plain job for `target` ("s3://..." or an absolute path).
std::string PlainJob(const std::string& target, bool use_cache = true, bool remove = false);

// application/x-www-form-urlencoded decoding as S3 applies it to event keys: '+' is a space,
// %XX a byte. InvalidArgument for a broken escape.
Result<std::string> DecodeS3EventKey(std::string_view key);

}  // namespace fs::queue
