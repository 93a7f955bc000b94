// The Redis Streams back end of JobQueue (see job_queue.h): one stream, one consumer group
// "filesearch", dead letters in STREAM:dead. Uses the RESP client of cache/ (redis_client.h).
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "cache/redis_client.h"
#include "queue/job_queue.h"

namespace fs::queue {
namespace {

using cache_internal::RedisAddress;
using cache_internal::RedisConnection;
using cache_internal::RedisReply;

constexpr const char* kGroup = "filesearch";
constexpr int kMaxBlockMs = 10000;  // a blocking read waits at most this long per call

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The milliseconds part of a stream id "1700000000000-0".
int64_t IdMs(const std::string& id) {
  try {
    return std::stoll(id.substr(0, id.find('-')));
  } catch (...) {
    return 0;
  }
}

// The value of `field` in an entry's [field, value, ...] array.
std::string FieldOf(const RedisReply& fields, const std::string& field) {
  for (size_t i = 0; i + 1 < fields.elements.size(); i += 2) {
    if (fields.elements[i].text == field) return fields.elements[i + 1].text;
  }
  return "";
}

class RedisStreamQueue final : public JobQueue {
 public:
  RedisStreamQueue(QueueOptions options, RedisAddress address, std::string display, std::string stream)
      : JobQueue(std::move(options)),
        address_(std::move(address)),
        display_(std::move(display)),
        stream_(std::move(stream)),
        dead_(stream_ + ":dead") {
    if (options_.consumer.empty()) {
      char host[256] = {0};
      ::gethostname(host, sizeof host - 1);
      options_.consumer = std::string(host) + ":" + std::to_string(::getpid());
    }
  }

  std::string name() const override { return display_; }

  Result<std::string> Setup() override {
    FS_ASSIGN_OR_RETURN(RedisReply r, Command({"XGROUP", "CREATE", stream_, kGroup, "0", "MKSTREAM"}));
    if (r.type == RedisReply::Type::kError) {
      if (r.text.rfind("BUSYGROUP", 0) == 0) return "stream " + stream_ + " and group " + kGroup + " exist";
      return Status::InvalidArgument("Redis XGROUP CREATE on " + display_ + ": " + r.text);
    }
    return "created stream " + stream_ + " with consumer group " + kGroup + "; dead letters go to " + dead_;
  }

  Status Send(std::span<const std::string> bodies) override {
    for (size_t begin = 0; begin < bodies.size(); begin += 500) {
      std::vector<std::vector<std::string>> commands;
      for (size_t i = begin; i < std::min(bodies.size(), begin + 500); ++i) {
        commands.push_back({"XADD", stream_, "*", "job", bodies[i]});
      }
      FS_ASSIGN_OR_RETURN(auto replies, Pipeline(commands));
      for (const RedisReply& r : replies) {
        if (r.type == RedisReply::Type::kError) return Status::InvalidArgument("Redis XADD to " + display_ + ": " + r.text);
      }
    }
    return Status::Ok();
  }

  Result<std::vector<QueueMessage>> Receive(int max, int wait_ms) override {
    FS_RETURN_IF_ERROR(EnsureGroup());
    max = std::clamp(max, 1, 100);
    std::vector<std::pair<std::string, std::string>> got;  // id, job
    // Jobs another consumer took and did not finish within the visibility timeout come first.
    const std::string min_idle = std::to_string(int64_t{options_.visibility_timeout_s} * 1000);
    FS_ASSIGN_OR_RETURN(RedisReply claimed, Command({"XAUTOCLAIM", stream_, kGroup, options_.consumer, min_idle, "0-0",
                                                     "COUNT", std::to_string(max)}));
    if (claimed.type == RedisReply::Type::kError) return ReplyError("XAUTOCLAIM", claimed);
    if (claimed.elements.size() >= 2) TakeEntries(claimed.elements[1], &got);
    if (got.empty()) {
      const int block = std::clamp(wait_ms, 0, kMaxBlockMs);
      std::vector<std::string> read = {"XREADGROUP", "GROUP", kGroup, options_.consumer, "COUNT", std::to_string(max)};
      if (block > 0) {
        read.push_back("BLOCK");
        read.push_back(std::to_string(block));
      }
      read.insert(read.end(), {"STREAMS", stream_, ">"});
      FS_ASSIGN_OR_RETURN(RedisReply r, Command(read));
      if (r.type == RedisReply::Type::kError) return ReplyError("XREADGROUP", r);
      for (const RedisReply& s : r.elements) {
        if (s.elements.size() >= 2) TakeEntries(s.elements[1], &got);
      }
    }
    std::vector<QueueMessage> out;
    if (got.empty()) return out;
    // Delivery counts: XPENDING's extended form, one entry each, in one round trip.
    std::vector<std::vector<std::string>> pending;
    for (const auto& [id, job] : got) pending.push_back({"XPENDING", stream_, kGroup, id, id, "1"});
    FS_ASSIGN_OR_RETURN(auto counts, Pipeline(pending));
    for (size_t i = 0; i < got.size(); ++i) {
      QueueMessage m;
      m.id = m.receipt = got[i].first;
      m.body = got[i].second;
      m.sent_ms = IdMs(m.id);
      if (i < counts.size() && !counts[i].elements.empty() && counts[i].elements[0].elements.size() >= 4) {
        m.deliveries = std::max<int64_t>(1, counts[i].elements[0].elements[3].integer);
      }
      out.push_back(std::move(m));
    }
    return out;
  }

  Status Ack(const QueueMessage& m) override {
    FS_ASSIGN_OR_RETURN(auto r, Pipeline({{"XACK", stream_, kGroup, m.receipt}, {"XDEL", stream_, m.receipt}}));
    for (const RedisReply& x : r) {
      if (x.type == RedisReply::Type::kError) return ReplyError("XACK", x);
    }
    return Status::Ok();
  }

  Status Release(const QueueMessage& m, int delay_s) override {
    // Back-dates the entry's idle time so XAUTOCLAIM (any consumer's) takes it after `delay_s`;
    // JUSTID: not counted as a delivery (the next claim is).
    const int64_t idle = std::max<int64_t>(0, int64_t{options_.visibility_timeout_s - std::max(0, delay_s)} * 1000);
    return Claim(m, {"IDLE", std::to_string(idle)});
  }

  Status Extend(const QueueMessage& m) override { return Claim(m, {}); }

  Status DeadLetter(const QueueMessage& m, const std::string& reason) override {
    FS_ASSIGN_OR_RETURN(auto r, Pipeline({{"XADD", dead_, "*", "job", m.body, "reason", reason, "deliveries",
                                           std::to_string(m.deliveries), "id", m.id},
                                          {"XACK", stream_, kGroup, m.receipt},
                                          {"XDEL", stream_, m.receipt}}));
    for (const RedisReply& x : r) {
      if (x.type == RedisReply::Type::kError) return ReplyError("dead-letter", x);
    }
    return Status::Ok();
  }

  Result<QueueStats> Stats() override {
    FS_RETURN_IF_ERROR(EnsureGroup());
    // Pending entries idle past the visibility timeout (a dead worker's, or handed back) are
    // up for the taking: they count as visible, not in flight (at most 10000 are looked at).
    const std::string idle = std::to_string(int64_t{options_.visibility_timeout_s} * 1000);
    FS_ASSIGN_OR_RETURN(auto r, Pipeline({{"XLEN", stream_},
                                          {"XPENDING", stream_, kGroup},
                                          {"XRANGE", stream_, "-", "+", "COUNT", "1"},
                                          {"XLEN", dead_},
                                          {"XPENDING", stream_, kGroup, "IDLE", idle, "-", "+", "10000"}}));
    QueueStats s;
    if (r.size() != 5) return Status::Internal("Redis: wrong number of replies");
    const int64_t length = r[0].integer;
    const int64_t pending = r[1].elements.empty() ? 0 : r[1].elements[0].integer;
    const int64_t reclaimable = std::min<int64_t>(pending, static_cast<int64_t>(r[4].elements.size()));
    s.in_flight = pending - reclaimable;
    s.visible = std::max<int64_t>(0, length - pending) + reclaimable;
    if (!r[2].elements.empty() && !r[2].elements[0].elements.empty()) {
      s.oldest_age_s = std::max<double>(0, (NowMs() - IdMs(r[2].elements[0].elements[0].text)) / 1000.0);
    }
    s.dead = r[3].integer;
    return s;
  }

  Result<std::vector<DeadLetterEntry>> PeekDeadLetters(int max) override {
    FS_ASSIGN_OR_RETURN(RedisReply r, Command({"XRANGE", dead_, "-", "+", "COUNT", std::to_string(std::max(1, max))}));
    if (r.type == RedisReply::Type::kError) return ReplyError("XRANGE", r);
    std::vector<DeadLetterEntry> out;
    for (const RedisReply& e : r.elements) {
      if (e.elements.size() < 2) continue;
      out.push_back({FieldOf(e.elements[1], "job"), FieldOf(e.elements[1], "reason")});
    }
    return out;
  }

 private:
  // [[id, [field, value, ...]], ...] -> (id, job); entries deleted meanwhile (nil fields) skipped.
  static void TakeEntries(const RedisReply& entries, std::vector<std::pair<std::string, std::string>>* got) {
    for (const RedisReply& e : entries.elements) {
      if (e.elements.size() < 2 || e.elements[1].type != RedisReply::Type::kArray) continue;
      got->emplace_back(e.elements[0].text, FieldOf(e.elements[1], "job"));
    }
  }

  Status ReplyError(const std::string& what, const RedisReply& r) const {
    return Status::InvalidArgument("Redis " + what + " on " + display_ + ": " + r.text);
  }

  // The consumer group exists (created with the stream on first use; "0": jobs added before it count).
  Status EnsureGroup() {
    if (group_ready_) return Status::Ok();
    FS_RETURN_IF_ERROR(Setup().status());
    group_ready_ = true;
    return Status::Ok();
  }

  Status Claim(const QueueMessage& m, const std::vector<std::string>& extra) {
    std::vector<std::string> cmd = {"XCLAIM", stream_, kGroup, options_.consumer, "0", m.receipt};
    cmd.insert(cmd.end(), extra.begin(), extra.end());
    cmd.push_back("JUSTID");
    FS_ASSIGN_OR_RETURN(RedisReply r, Command(cmd));
    if (r.type == RedisReply::Type::kError) return ReplyError("XCLAIM", r);
    return Status::Ok();
  }

  Result<RedisConnection*> Conn() {
    if (!conn_) {
      auto c = RedisConnection::Connect(address_, options_.timeout_ms + kMaxBlockMs);
      if (!c.ok()) return Status::Unavailable("Redis queue " + display_ + ": " + c.status().message());
      conn_ = std::move(*c);
    }
    return conn_.get();
  }

  // A failed connection is dropped; the next call opens another (the server may be back).
  template <typename T>
  Result<T> Dropped(Result<T> r) {
    if (r.ok()) return r;
    conn_.reset();
    group_ready_ = false;
    return Status::Unavailable("Redis queue " + display_ + ": " + r.status().message());
  }

  Result<RedisReply> Command(const std::vector<std::string>& args) {
    FS_ASSIGN_OR_RETURN(RedisConnection * c, Conn());
    return Dropped(c->Command(args));
  }

  Result<std::vector<RedisReply>> Pipeline(const std::vector<std::vector<std::string>>& commands) {
    FS_ASSIGN_OR_RETURN(RedisConnection * c, Conn());
    return Dropped(c->Pipeline(commands));
  }

  RedisAddress address_;
  std::string display_, stream_, dead_;
  std::unique_ptr<RedisConnection> conn_;
  bool group_ready_ = false;
};

}  // namespace

Result<std::unique_ptr<JobQueue>> OpenRedisStreamQueue(const std::string& url, const QueueOptions& options) {
  const std::string scheme = "redis://";
  const size_t slash = url.rfind('/');
  if (url.rfind(scheme, 0) != 0 || slash < scheme.size() || slash + 1 >= url.size()) {
    return Status::InvalidArgument("not a Redis stream queue (want redis://[:PASSWORD@]HOST:PORT[/DB]/STREAM): " + url);
  }
  const std::string stream = url.substr(slash + 1);
  FS_ASSIGN_OR_RETURN(RedisAddress address, cache_internal::ParseRedisUrl(url.substr(0, slash)));
  std::string display = "redis://" + address.host + ":" + std::to_string(address.port) + "/" + stream;
  return std::unique_ptr<JobQueue>(new RedisStreamQueue(options, std::move(address), std::move(display), stream));
}

}  // namespace fs::queue
