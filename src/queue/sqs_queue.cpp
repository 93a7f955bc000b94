// The Amazon SQS back end of JobQueue: the JSON protocol (X-Amz-Target AmazonSQS.<Action>,
// core/aws_json.h), SigV4 service "sqs". See job_queue.h for the semantics.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>

#include "core/aws_json.h"
#include "queue/job_queue.h"

namespace fs::queue {
namespace {

using json = nlohmann::json;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t ToInt(const json& attrs, const char* name) {
  if (!attrs.is_object() || !attrs.contains(name)) return 0;
  const json& v = attrs[name];
  if (v.is_number()) return v.get<int64_t>();
  if (!v.is_string()) return 0;
  try {
    return std::stoll(v.get<std::string>());
  } catch (...) {
    return 0;
  }
}

class SqsQueue final : public JobQueue {
 public:
  SqsQueue(QueueOptions options, AwsServiceConfig config, std::string queue_name, std::string queue_url)
      : JobQueue(std::move(options)),
        client_(std::move(config)),
        queue_name_(std::move(queue_name)),
        queue_url_(std::move(queue_url)) {}

  std::string name() const override { return "sqs://" + queue_name_; }

  Result<std::string> Setup() override {
    // The dead-letter queue first: the main queue's redrive policy names its ARN.
    FS_ASSIGN_OR_RETURN(json dlq, client_.Call("CreateQueue", {{"QueueName", queue_name_ + "-dlq"},
                                                               {"Attributes", {{"MessageRetentionPeriod", "1209600"}}}}));
    const std::string dlq_url = dlq.value("QueueUrl", "");
    FS_ASSIGN_OR_RETURN(json dlq_attrs, client_.Call("GetQueueAttributes", {{"QueueUrl", dlq_url},
                                                                          {"AttributeNames", {"QueueArn"}}}));
    const std::string dlq_arn = dlq_attrs["Attributes"].value("QueueArn", "");
    const json redrive = {{"deadLetterTargetArn", dlq_arn},
                          {"maxReceiveCount", std::to_string(options_.max_deliveries + 1)}};
    const json attributes = {{"VisibilityTimeout", std::to_string(options_.visibility_timeout_s)},
                             {"RedrivePolicy", redrive.dump()}};
    AwsJsonError error;
    auto created = client_.Call("CreateQueue", {{"QueueName", queue_name_}, {"Attributes", attributes}}, &error);
    std::string done;
    if (created.ok()) {
      queue_url_ = created->value("QueueUrl", "");
      done = "queue " + queue_name_ + " ready";
    } else if (error.type == "QueueAlreadyExists" || error.type == "QueueNameExists") {
      // Exists with other attributes: keep its visibility timeout, set the redrive policy.
      FS_RETURN_IF_ERROR(ResolveUrl());
      FS_RETURN_IF_ERROR(client_.Call("SetQueueAttributes", {{"QueueUrl", queue_url_},
                                                             {"Attributes", {{"RedrivePolicy", redrive.dump()}}}})
                             .status());
      done = "queue " + queue_name_ + " exists; redrive policy set";
    } else {
      return created.status();
    }
    dlq_url_ = dlq_url;
    return done + ", dead letters go to " + queue_name_ + "-dlq after " +
           std::to_string(options_.max_deliveries) + " deliveries";
  }

  Status Send(std::span<const std::string> bodies) override {
    FS_RETURN_IF_ERROR(ResolveUrl());
    for (size_t begin = 0; begin < bodies.size(); begin += 10) {
      json entries = json::array();
      for (size_t i = begin; i < std::min(bodies.size(), begin + 10); ++i) {
        entries.push_back({{"Id", std::to_string(i - begin)}, {"MessageBody", bodies[i]}});
      }
      // Failed entries (throttled ones) are sent again; a sender fault (too large) is an error.
      for (int attempt = 1; !entries.empty(); ++attempt) {
        FS_ASSIGN_OR_RETURN(json r, client_.Call("SendMessageBatch", {{"QueueUrl", queue_url_}, {"Entries", entries}}));
        json again = json::array();
        for (const json& f : r.value("Failed", json::array())) {
          if (f.value("SenderFault", false) || attempt >= kAwsMaxAttempts) {
            return Status::InvalidArgument("SQS refused a job for " + name() + ": " + f.value("Code", "") + ": " +
                                           f.value("Message", ""));
          }
          for (const json& e : entries) {
            if (e.value("Id", "") == f.value("Id", "")) again.push_back(e);
          }
        }
        entries = std::move(again);
        if (!entries.empty()) AwsRetryBackoff(attempt);
      }
    }
    return Status::Ok();
  }

  Result<std::vector<QueueMessage>> Receive(int max, int wait_ms) override {
    FS_RETURN_IF_ERROR(ResolveUrl());
    const int wait_s = std::clamp((wait_ms + 999) / 1000, 0, 20);
    json req = {{"QueueUrl", queue_url_},
                {"MaxNumberOfMessages", std::clamp(max, 1, 10)},
                {"WaitTimeSeconds", wait_s},
                {"VisibilityTimeout", options_.visibility_timeout_s},
                {"AttributeNames", {"ApproximateReceiveCount", "SentTimestamp"}},
                {"MessageSystemAttributeNames", {"ApproximateReceiveCount", "SentTimestamp"}}};
    FS_ASSIGN_OR_RETURN(json r, client_.Call("ReceiveMessage", req));
    std::vector<QueueMessage> out;
    for (const json& m : r.value("Messages", json::array())) {
      QueueMessage q;
      q.id = m.value("MessageId", "");
      q.receipt = m.value("ReceiptHandle", "");
      q.body = m.value("Body", "");
      const json attrs = m.value("Attributes", json::object());
      q.deliveries = std::max<int64_t>(1, ToInt(attrs, "ApproximateReceiveCount"));
      q.sent_ms = ToInt(attrs, "SentTimestamp");
      if (q.sent_ms > 0 && (oldest_sent_ms_ == 0 || q.sent_ms < oldest_sent_ms_)) oldest_sent_ms_ = q.sent_ms;
      out.push_back(std::move(q));
    }
    return out;
  }

  Status Ack(const QueueMessage& m) override {
    FS_RETURN_IF_ERROR(ResolveUrl());
    return client_.Call("DeleteMessage", {{"QueueUrl", queue_url_}, {"ReceiptHandle", m.receipt}}).status();
  }

  Status Release(const QueueMessage& m, int delay_s) override { return SetVisibility(m, std::max(0, delay_s)); }

  Status Extend(const QueueMessage& m) override { return SetVisibility(m, options_.visibility_timeout_s); }

  Status DeadLetter(const QueueMessage& m, const std::string& reason) override {
    FS_RETURN_IF_ERROR(ResolveUrl());
    FS_RETURN_IF_ERROR(ResolveDeadLetterUrl());
    if (!dlq_url_.empty()) {
      json attributes = {{"reason", {{"DataType", "String"}, {"StringValue", reason.empty() ? "-" : reason}}},
                         {"deliveries", {{"DataType", "Number"}, {"StringValue", std::to_string(m.deliveries)}}}};
      FS_RETURN_IF_ERROR(client_
                             .Call("SendMessage", {{"QueueUrl", dlq_url_},
                                                   {"MessageBody", m.body},
                                                   {"MessageAttributes", attributes}})
                             .status());
    }
    return Ack(m);
  }

  Result<QueueStats> Stats() override {
    FS_RETURN_IF_ERROR(ResolveUrl());
    FS_ASSIGN_OR_RETURN(json r, client_.Call("GetQueueAttributes",
                                             {{"QueueUrl", queue_url_},
                                              {"AttributeNames",
                                               {"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                                                "ApproximateNumberOfMessagesDelayed"}}}));
    const json attrs = r.value("Attributes", json::object());
    QueueStats s;
    s.visible = ToInt(attrs, "ApproximateNumberOfMessages") + ToInt(attrs, "ApproximateNumberOfMessagesDelayed");
    s.in_flight = ToInt(attrs, "ApproximateNumberOfMessagesNotVisible");
    // SQS has no "age of the oldest message" attribute (CloudWatch has it, minutes late): the
    // oldest SentTimestamp this process has received stands for it while jobs remain.
    if (s.visible + s.in_flight == 0) oldest_sent_ms_ = 0;
    s.oldest_age_s = oldest_sent_ms_ > 0 ? std::max<double>(0, (NowMs() - oldest_sent_ms_) / 1000.0) : 0;
    FS_RETURN_IF_ERROR(ResolveDeadLetterUrl());
    s.dead = -1;
    if (!dlq_url_.empty()) {
      FS_ASSIGN_OR_RETURN(json d, client_.Call("GetQueueAttributes",
                                               {{"QueueUrl", dlq_url_},
                                                {"AttributeNames",
                                                 {"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"}}}));
      const json da = d.value("Attributes", json::object());
      s.dead = ToInt(da, "ApproximateNumberOfMessages") + ToInt(da, "ApproximateNumberOfMessagesNotVisible");
    }
    return s;
  }

  Result<std::vector<DeadLetterEntry>> PeekDeadLetters(int max) override {
    FS_RETURN_IF_ERROR(ResolveUrl());
    FS_RETURN_IF_ERROR(ResolveDeadLetterUrl());
    std::vector<DeadLetterEntry> out;
    if (dlq_url_.empty()) return out;
    // Visibility 0: looked at, not taken.
    FS_ASSIGN_OR_RETURN(json r, client_.Call("ReceiveMessage", {{"QueueUrl", dlq_url_},
                                                               {"MaxNumberOfMessages", std::clamp(max, 1, 10)},
                                                               {"VisibilityTimeout", 0},
                                                               {"MessageAttributeNames", {"All"}}}));
    for (const json& m : r.value("Messages", json::array())) {
      DeadLetterEntry e;
      e.body = m.value("Body", "");
      const json attrs = m.value("MessageAttributes", json::object());
      if (attrs.contains("reason")) e.reason = attrs["reason"].value("StringValue", "");
      out.push_back(std::move(e));
    }
    return out;
  }

 private:
  Status ResolveUrl() {
    if (!queue_url_.empty()) return Status::Ok();
    AwsJsonError error;
    auto r = client_.Call("GetQueueUrl", {{"QueueName", queue_name_}}, &error);
    if (!r.ok()) {
      if (error.type.find("NonExistentQueue") != std::string::npos || error.type == "QueueDoesNotExist") {
        return Status::NotFound("no SQS queue " + queue_name_ + " at " + client_.endpoint() +
                                ": create it with 'filesearch enqueue --create-queue' (or in AWS, with a redrive "
                                "policy), or check --queue-endpoint and the region");
      }
      return r.status();
    }
    queue_url_ = r->value("QueueUrl", "");
    return Status::Ok();
  }

  // The dead-letter queue the redrive policy names ("" when there is none), looked up once.
  Status ResolveDeadLetterUrl() {
    if (dlq_resolved_) return Status::Ok();
    FS_ASSIGN_OR_RETURN(json r, client_.Call("GetQueueAttributes",
                                             {{"QueueUrl", queue_url_}, {"AttributeNames", {"RedrivePolicy"}}}));
    const json attrs = r.value("Attributes", json::object());
    if (attrs.contains("RedrivePolicy") && attrs["RedrivePolicy"].is_string()) {
      json policy = json::parse(attrs["RedrivePolicy"].get<std::string>(), nullptr, false);
      const std::string arn = policy.is_object() ? policy.value("deadLetterTargetArn", "") : "";
      const std::string dlq_name = arn.substr(arn.rfind(':') + 1);
      if (!dlq_name.empty()) {
        FS_ASSIGN_OR_RETURN(json u, client_.Call("GetQueueUrl", {{"QueueName", dlq_name}}));
        dlq_url_ = u.value("QueueUrl", "");
      }
    }
    dlq_resolved_ = true;
    return Status::Ok();
  }

  Status SetVisibility(const QueueMessage& m, int seconds) {
    FS_RETURN_IF_ERROR(ResolveUrl());
    return client_
        .Call("ChangeMessageVisibility",
              {{"QueueUrl", queue_url_}, {"ReceiptHandle", m.receipt}, {"VisibilityTimeout", seconds}})
        .status();
  }

  AwsJsonClient client_;
  std::string queue_name_, queue_url_, dlq_url_;
  bool dlq_resolved_ = false;
  int64_t oldest_sent_ms_ = 0;
};

}  // namespace

Result<std::unique_ptr<JobQueue>> OpenSqsQueue(const std::string& url, const QueueOptions& options) {
  std::string name, queue_url, endpoint = options.endpoint;
  if (url.rfind("sqs://", 0) == 0) {
    name = url.substr(6);
  } else {
    // https://sqs.REGION.amazonaws.com/ACCOUNT/NAME (or an emulator's http://host:port/ACCOUNT/NAME)
    const size_t host_start = url.find("://") + 3;
    const size_t path = url.find('/', host_start);
    if (path != std::string::npos) {
      if (endpoint.empty()) endpoint = url.substr(0, path);
      queue_url = url;
      name = url.substr(url.rfind('/') + 1);
    }
  }
  if (name.empty() || name.find('/') != std::string::npos || name.size() > 80) {
    return Status::InvalidArgument("not an SQS queue (want sqs://QUEUE_NAME or the queue's https:// url): " + url);
  }
  FS_ASSIGN_OR_RETURN(AwsServiceConfig config, AwsServiceFromEnv("sqs", "AmazonSQS", endpoint, options.region,
                                                                 "AWS_ENDPOINT_URL_SQS", "the SQS queue"));
  // A long poll waits up to 20 s; the request timeout (4x) must outlast it.
  config.timeout_ms = std::max(options.timeout_ms, 6000);
  config.retry_types = {"RequestThrottled", "ThrottlingException", "ServiceUnavailable", "InternalError"};
  return std::unique_ptr<JobQueue>(new SqsQueue(options, std::move(config), name, queue_url));
}

}  // namespace fs::queue
