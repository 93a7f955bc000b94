// Internal header of cache/: a minimal Redis client (RESP2 over one TCP connection) for the
// shared embedding cache. Commands go out as RESP arrays of bulk strings; replies are parsed into
// RedisReply. Pipeline sends many commands in one write and reads their replies in order.
// Every socket operation has a deadline (connect and each request); a connection that failed
// (timeout, reset, protocol error) is broken for good: the caller drops it and opens another.
// Thread-safety: none; one connection per caller at a time (RedisCache keeps a pool).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

namespace fs::cache_internal {

struct RedisReply {
  enum class Type { kStatus, kError, kInteger, kBulk, kNil, kArray };
  Type type = Type::kNil;
  std::string text;  // kStatus, kError, kBulk
  int64_t integer = 0;
  std::vector<RedisReply> elements;  // kArray
};

struct RedisAddress {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string password;  // AUTH when non-empty
  int db = 0;            // SELECT when non-zero
};
// "redis://[:PASSWORD@]HOST[:PORT][/DB]"; InvalidArgument otherwise (rediss:// is not supported).
Result<RedisAddress> ParseRedisUrl(const std::string& url);

class RedisConnection {
 public:
  // Connects (and AUTH / SELECT as the address asks) within timeout_ms; Unavailable when it can't.
  static Result<std::unique_ptr<RedisConnection>> Connect(const RedisAddress& address, int timeout_ms);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // One command; an error reply (-ERR ...) is a reply, not a Status.
  Result<RedisReply> Command(const std::vector<std::string>& args);
  // Many commands in one round trip; one reply each, in order.
  Result<std::vector<RedisReply>> Pipeline(const std::vector<std::vector<std::string>>& commands);

 private:
  RedisConnection(int fd, int timeout_ms) : fd_(fd), timeout_ms_(timeout_ms) {}
  Status WriteAll(const std::string& data);
  Status Fill();  // reads more bytes into buf_ (deadline: timeout_ms_)
  Result<std::string> ReadLine();
  Result<std::string> ReadBytes(size_t n);
  Result<RedisReply> ReadReply(int depth);
  int fd_;
  int timeout_ms_;
  std::string buf_;
  size_t pos_ = 0;
};

}  // namespace fs::cache_internal
