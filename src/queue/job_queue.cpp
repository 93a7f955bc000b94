#include "queue/job_queue.h"

namespace fs::queue {

Result<std::unique_ptr<JobQueue>> OpenJobQueue(const std::string& url, const QueueOptions& options) {
  if (url.rfind("redis://", 0) == 0) return OpenRedisStreamQueue(url, options);
  if (url.rfind("sqs://", 0) == 0 || url.rfind("https://sqs.", 0) == 0 || url.rfind("http://", 0) == 0 ||
      url.rfind("https://", 0) == 0) {
    return OpenSqsQueue(url, options);
  }
  return Status::InvalidArgument("unknown queue '" + url +
                                 "': give sqs://QUEUE_NAME (Amazon SQS; --queue-endpoint for an emulator) or "
                                 "redis://HOST:PORT/STREAM (a Redis stream)");
}

}  // namespace fs::queue
