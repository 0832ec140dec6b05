// SyncConnection: one blocking Redis connection with a deadline on connect and on every command, for
// threads that may block (the readiness prober, the CLI). The reactor uses redis::Client instead.
// After a failure the connection is closed and the next command reconnects, because a timed-out
// hiredis context may still deliver the late reply to the next command.
// Not thread-safe: one owner.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "lagoon/config/url.hpp"
#include "lagoon/redis/reply.hpp"

struct redisContext;

namespace lagoon::redis {

class SyncConnection {
 public:
  SyncConnection(config::RedisEndpoint endpoint, std::chrono::milliseconds timeout);
  ~SyncConnection();
  SyncConnection(const SyncConnection&) = delete;
  SyncConnection& operator=(const SyncConnection&) = delete;

  // The reply (which may be a Redis error reply), or nullopt when Redis could not be reached in time;
  // error() then says why.
  std::optional<Reply> command(const std::vector<std::string>& args);
  const std::string& error() const noexcept { return error_; }

 private:
  bool connect();
  void reset() noexcept;

  config::RedisEndpoint endpoint_;
  std::chrono::milliseconds timeout_;
  redisContext* ctx_ = nullptr;
  std::string error_;
};

}  // namespace lagoon::redis
