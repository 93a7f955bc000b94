// `filesearch enqueue TARGET...`: put one job per file of a folder or S3 prefix on a queue, for a
// fleet of `filesearch worker --queue` processes. Also the queue flags every queue command shares,
// and `backfill --enqueue`'s fan-out.
#include <sys/stat.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <thread>

#include "apps/filesearch/commands.h"
#include "core/progress.h"
#include "queue/job.h"
#include "queue/job_queue.h"
#include "storage/source.h"

namespace fs::cli {
namespace {

std::atomic<bool> g_enqueue_stop{false};
extern "C" void OnEnqueueStop(int) { g_enqueue_stop.store(true); }

// Every file under `target` (an s3://bucket/prefix, a folder, or one file) as a job target:
// "s3://bucket/key" or an absolute path.
Status ListTargets(const std::string& target, const S3Flags& s3, const std::function<Status(const std::string&)>& add) {
  struct stat st{};
  if (!IsS3Uri(target) && ::lstat(target.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
    std::error_code ec;
    return add(std::filesystem::absolute(target, ec).lexically_normal().string());
  }
  SourceOptions so;
  if (IsS3Uri(target)) {
    FS_ASSIGN_OR_RETURN(so.s3, S3OptionsFromFlags(s3));
  }
  FS_ASSIGN_OR_RETURN(auto source, OpenSource(target, so));
  std::vector<SourceProblem> problems;
  FS_RETURN_IF_ERROR(source->List("", [&](const SourceEntry& e) -> Status {
    if (IsS3Uri(e.uri)) return add(e.uri);
    FS_ASSIGN_OR_RETURN(std::string path, PathFromFileUri(e.uri));
    return add(path);
  }, &problems));
  for (const auto& p : problems) std::fprintf(stderr, "filesearch: not listed: %s: %s\n", p.uri.c_str(), p.reason.c_str());
  return Status::Ok();
}

}  // namespace

void AddQueueFlags(CLI::App* cmd, QueueFlags* q, bool required) {
  auto* opt = cmd->add_option("--queue", q->url,
                              "The job queue: sqs://QUEUE_NAME (Amazon SQS; or the queue's https:// url) or\n"
                              "redis://[:PASSWORD@]HOST:PORT/STREAM (a Redis stream, consumer group 'filesearch')")
                  ->type_name("URL")
                  ->envname("FILESEARCH_QUEUE");
  if (required) opt->required();
  cmd->add_option("--queue-endpoint", q->endpoint,
                  "SQS endpoint, http(s)://host[:port] (an emulator; default $AWS_ENDPOINT_URL_SQS, else AWS's)")
      ->type_name("URL");
  cmd->add_option("--visibility-timeout", q->visibility_timeout_s,
                  "Seconds a taken job stays hidden from other workers without a heartbeat (a dead worker's job\n"
                  "comes back after this long)")
      ->capture_default_str()
      ->check(CLI::Range(1, 43200));
  cmd->add_option("--max-deliveries", q->max_deliveries,
                  "A job that failed this many times (or was taken this many times by workers that died) goes to\n"
                  "the dead-letter queue and the failure list")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  cmd->add_flag("--create-queue", q->create,
                "Create the queue and its dead-letter queue (SQS: NAME-dlq with a redrive policy) if missing");
}

Result<std::unique_ptr<queue::JobQueue>> OpenQueueFromFlags(const QueueFlags& q) {
  queue::QueueOptions o;
  o.endpoint = q.endpoint;
  o.visibility_timeout_s = q.visibility_timeout_s;
  o.max_deliveries = q.max_deliveries;
  FS_ASSIGN_OR_RETURN(auto queue, queue::OpenJobQueue(q.url, o));
  if (q.create) {
    FS_ASSIGN_OR_RETURN(std::string done, queue->Setup());
    std::fprintf(stderr, "%s\n", done.c_str());
  }
  return queue;
}

Result<uint64_t> EnqueueTargets(queue::JobQueue* queue, const std::vector<std::string>& targets, bool use_cache,
                                bool remove, bool progress) {
  Progress bar("enqueueing", 0, progress);
  std::vector<std::string> batch;
  uint64_t sent = 0;
  auto flush = [&]() -> Status {
    FS_RETURN_IF_ERROR(queue->Send(batch));
    sent += batch.size();
    bar.Add(batch.size());
    batch.clear();
    return Status::Ok();
  };
  for (const std::string& t : targets) {
    if (g_enqueue_stop.load()) break;
    if (t.rfind("s3://", 0) == 0 || t.rfind('/', 0) == 0) {
      batch.push_back(queue::PlainJob(t, use_cache, remove));
      if (batch.size() >= 100) FS_RETURN_IF_ERROR(flush());
    }
  }
  FS_RETURN_IF_ERROR(flush());
  bar.Finish();
  return sent;
}

void RegisterEnqueue(CLI::App& app, GlobalFlags& flags, int* exit_code) {
  auto* cmd = app.add_subcommand("enqueue", "Put a job per file of a folder or S3 prefix on a queue, for 'worker --queue'")
                  ->footer("Examples:\n"
                           "  filesearch enqueue s3://photos/2024/ --queue sqs://filesearch-jobs\n"
                           "  filesearch enqueue /srv/share --queue redis://10.0.0.5:6379/filesearch-jobs --create-queue\n"
                           "  filesearch enqueue s3://photos/old.jpg --remove --queue sqs://filesearch-jobs\n\n"
                           "Each job is {\"imageUrl\": TARGET, \"useCache\": true}, the payload of the original\n"
                           "embedding function; workers index the file (and embed it if it is an image). A folder\n"
                           "is walked recursively (symbolic links are not followed); an S3 prefix is listed with\n"
                           "ListObjectsV2. Start workers with 'filesearch worker --queue URL' on any machine that can\n"
                           "read the files. Enqueueing twice is harmless: a job done twice changes nothing.");
  struct Args {
    std::vector<std::string> targets;
    QueueFlags queue;
    S3Flags s3;
    bool remove = false;
    bool no_cache = false;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("TARGET", args->targets, "s3://BUCKET/PREFIX, a folder, or a file (repeatable)")->required();
  AddQueueFlags(cmd, &args->queue, /*required=*/true);
  AddS3Flags(cmd, &args->s3);
  cmd->add_flag("--remove", args->remove, "Jobs that remove the files from the index instead of indexing them");
  cmd->add_flag("--no-cache", args->no_cache, "Jobs with useCache false: workers run the model even for known bytes");
  cmd->callback([&flags, exit_code, args]() {
    auto fail = [&](const std::string& what) {
      std::fprintf(stderr, "filesearch: %s\n", what.c_str());
      *exit_code = 1;
    };
    auto queue = OpenQueueFromFlags(args->queue);
    if (!queue.ok()) return fail(queue.status().ToString());
    std::signal(SIGINT, OnEnqueueStop);
    std::signal(SIGTERM, OnEnqueueStop);
    std::vector<std::string> all;
    for (const std::string& t : args->targets) {
      Status s = ListTargets(t, args->s3, [&](const std::string& one) {
        all.push_back(one);
        return Status::Ok();
      });
      if (!s.ok()) return fail("cannot list " + t + ": " + s.ToString());
    }
    auto sent = EnqueueTargets(queue->get(), all, !args->no_cache, args->remove, !flags.no_progress);
    if (!sent.ok()) return fail("enqueue stopped: " + sent.status().ToString());
    std::printf("enqueued %llu jobs on %s%s\n", static_cast<unsigned long long>(*sent), (*queue)->name().c_str(),
                g_enqueue_stop.load() ? " (interrupted)" : "");
    if (g_enqueue_stop.load()) *exit_code = 130;
  });
}

}  // namespace fs::cli
