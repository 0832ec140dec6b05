// SyncConnection: one blocking Redis connection with a deadline on connect and on every command, for
// threads that may block (the readiness prober, the CLI). The reactor uses redis::Client instead.
// After a failure the connection is closed and the next command reconnects, because a timed-out
// hiredis context may still deliver the late reply to the next command. Made from a Config with
// Sentinel discovery, each (re)connect asks the sentinels where the primary is and checks its ROLE; a
// READONLY reply (a demoted primary) closes the connection so that the next command asks again.
// Not thread-safe: one owner.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "lagoon/config/config.hpp"
#include "lagoon/config/url.hpp"
#include "lagoon/redis/reply.hpp"

struct redisContext;

namespace lagoon::redis {

class SyncConnection {
 public:
  SyncConnection(config::RedisEndpoint endpoint, std::chrono::milliseconds timeout);
  // LAGOON_REDIS_URL, or the sentinels when LAGOON_REDIS_SENTINELS is set.
  SyncConnection(const config::Config& cfg, std::chrono::milliseconds timeout);
  ~SyncConnection();
  SyncConnection(const SyncConnection&) = delete;
  SyncConnection& operator=(const SyncConnection&) = delete;

  // The reply (which may be a Redis error reply), or nullopt when Redis could not be reached in time;
  // error() then says why.
  std::optional<Reply> command(const std::vector<std::string>& args);
  const std::string& error() const noexcept { return error_; }
  // Closes the connection; the next command opens one anew (and asks the sentinels again).
  void close() noexcept { reset(); }

 private:
  bool connect();
  void reset() noexcept;

  config::RedisEndpoint endpoint_;
  std::vector<config::HostPort> sentinels_;  // empty: endpoint_ as given
  std::string master_name_;
  std::string sentinel_password_;
  std::chrono::milliseconds timeout_;
  redisContext* ctx_ = nullptr;
  std::string error_;
};

}  // namespace lagoon::redis
