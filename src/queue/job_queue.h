// JobQueue: the work queue of a worker fleet (`filesearch worker --queue URL`). Two back ends
// behind one interface, both at-least-once:
//   sqs://QUEUE_NAME (or the queue's https:// url)  Amazon SQS, JSON protocol, SigV4. Redelivery by
//       visibility timeout; ApproximateReceiveCount is the delivery count; the dead-letter queue is
//       the one the queue's RedrivePolicy names (Setup makes QUEUE-dlq and a policy whose
//       maxReceiveCount is max_deliveries + 1, so the worker's own count decides first and the
//       policy only catches jobs that kill every worker that takes them).
//   redis://[:PASSWORD@]HOST:PORT/STREAM             a Redis stream with one consumer group
//       ("filesearch"). Redelivery by claiming pending entries idle past the visibility timeout
//       (XAUTOCLAIM); XPENDING's delivery count is the delivery count; dead letters are XADDed to
//       STREAM:dead with their reason. Acknowledged entries are deleted (XACK + XDEL), so the
//       stream holds only jobs not yet done.
// A message stays invisible to other consumers while held (visibility timeout); Extend keeps it so
// while a long job runs; Ack removes it for good; Release makes it visible again (another worker,
// or this one, takes it); DeadLetter moves it to the dead-letter queue with a reason.
// Thread-safety: a JobQueue is used by one thread at a time (the worker loop and its heartbeat
// take turns under the worker's lock).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"

namespace fs::queue {

struct QueueMessage {
  std::string id;          // SQS MessageId / stream entry id
  std::string receipt;     // what Ack / Release / Extend need (SQS ReceiptHandle / entry id)
  std::string body;        // the job (JSON)
  int64_t deliveries = 1;  // times it was handed out, this one included
  int64_t sent_ms = 0;     // when it was enqueued, ms since the epoch (0: unknown)
};

struct QueueStats {
  int64_t visible = 0;      // waiting to be taken (approximate)
  int64_t in_flight = 0;    // taken, not yet acknowledged (approximate)
  double oldest_age_s = 0;  // age of the oldest job not yet done (0: none)
  int64_t dead = 0;         // jobs in the dead-letter queue (-1: there is none)
};

struct QueueOptions {
  int visibility_timeout_s = 60;  // a taken job comes back after this long without Extend/Ack
  int max_deliveries = 5;         // a job handed out more often than this is dead (worker's rule)
  std::string endpoint;           // SQS: endpoint override (--queue-endpoint, $AWS_ENDPOINT_URL_SQS)
  std::string region;             // SQS: "" = $AWS_REGION, $AWS_DEFAULT_REGION, us-east-1
  std::string consumer;           // Redis: this consumer's name in the group ("" = host:pid)
  int timeout_ms = 5000;          // connect and request timeout (long polls get it on top)
};

class JobQueue {
 public:
  virtual ~JobQueue() = default;
  // "sqs://name" or "redis://host:port/stream", for messages.
  virtual std::string name() const = 0;
  // Creates the queue and its dead-letter queue when missing (SQS: QUEUE and QUEUE-dlq with a
  // redrive policy; Redis: the stream and the consumer group). Returns what it did, one line.
  virtual Result<std::string> Setup() = 0;
  // Enqueues jobs (SQS: SendMessageBatch, 10 a request; Redis: XADD, pipelined).
  virtual Status Send(std::span<const std::string> bodies) = 0;
  // Takes up to `max` jobs, waiting up to `wait_ms` for one to arrive (long poll). Empty: none.
  virtual Result<std::vector<QueueMessage>> Receive(int max, int wait_ms) = 0;
  virtual Status Ack(const QueueMessage& m) = 0;
  // Makes the job visible again after `delay_s` seconds (0: at once).
  virtual Status Release(const QueueMessage& m, int delay_s) = 0;
  // Keeps the job invisible for another visibility timeout (a heartbeat while it runs).
  virtual Status Extend(const QueueMessage& m) = 0;
  // Moves the job to the dead-letter queue with `reason`, then removes it from this queue.
  virtual Status DeadLetter(const QueueMessage& m, const std::string& reason) = 0;
  virtual Result<QueueStats> Stats() = 0;
  // Up to `max` dead letters: their bodies and reasons (Redis: from STREAM:dead; SQS: peeked with a
  // zero-second... visibility of 0 s is not allowed, so a 1 s visibility: they come back at once).
  struct DeadLetterEntry {
    std::string body, reason;
  };
  virtual Result<std::vector<DeadLetterEntry>> PeekDeadLetters(int max) = 0;
  const QueueOptions& options() const { return options_; }

 protected:
  explicit JobQueue(QueueOptions options) : options_(std::move(options)) {}
  QueueOptions options_;
};

// Opens the queue a url names (see the top of this file); connects lazily. InvalidArgument for a
// url of another kind, saying which kinds there are.
Result<std::unique_ptr<JobQueue>> OpenJobQueue(const std::string& url, const QueueOptions& options);

// Back ends (job_queue.cpp dispatches on the scheme).
Result<std::unique_ptr<JobQueue>> OpenSqsQueue(const std::string& url, const QueueOptions& options);
Result<std::unique_ptr<JobQueue>> OpenRedisStreamQueue(const std::string& url, const QueueOptions& options);

}  // namespace fs::queue
