// Redis on the reactor: hiredis's async API driven by Asio (hiredis ships no Asio adapter).
//
// Client: a small fixed set of command connections, each living on its own strand, used round-robin.
// command() is awaitable and always completes within redis_timeout: with the reply, or with timeout /
// unavailable (no connection up) / skipped (breaker open). A timed-out connection is torn down and
// reconnected with backoff, so a hung Redis never accumulates queued commands. A circuit breaker opens
// when Redis failed at least redis_breaker_failures of the last twice as many calls within redis_breaker_window
// (timeouts, no connection, and error replies such as READONLY or OOM — all but NOSCRIPT, which the
// caller answers by sending the script) and skips Redis for redis_breaker_cooldown, so while Redis hangs
// (kill -STOP) requests pay at most one deadline and then none. The commands failed by tearing down a
// connection after one timed out are that timeout's consequence and are not counted again.
//
// Subscriber: one more connection that SUBSCRIBEs to a channel and hands each message to a callback;
// it tells when it has (re)subscribed, because messages sent while it was away are lost.
//
// Both connect to where their Locator says the primary is and follow it when Sentinel moves it; without a
// locator given they make one of their own from the config.
//
// Thread-safety: command(), send(), live() and the breaker may be used from any reactor thread.
// start() once after construction; shutdown() (also run by the destructor) only when no thread runs
// the io_context any more, and before the io_context is destroyed.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "lagoon/config/config.hpp"
#include "lagoon/metrics/registry.hpp"
#include "lagoon/redis/reply.hpp"

namespace boost::asio {
class io_context;
}

namespace lagoon::redis {

enum class Status {
  ok,           // Redis answered (the reply may still be a Redis error reply)
  timeout,      // no answer within the deadline
  unavailable,  // no connection up
  skipped,      // the breaker is open: Redis was not asked
};

struct Result {
  Status status = Status::unavailable;
  Reply reply;
  bool answered() const noexcept { return status == Status::ok && !reply.is_error(); }
};

class Connection;
class Locator;

class Client {
 public:
  Client(boost::asio::io_context& ioc, const config::Config& cfg, metrics::Registry& metrics,
         std::shared_ptr<Locator> locator = nullptr);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void start();
  void shutdown() noexcept;

  boost::asio::awaitable<Result> command(std::vector<std::string> args);
  // A Lua script by its hash: `args` is {"EVALSHA", sha1 of `script`, numkeys, …}. When Redis has lost
  // its script cache (restarted, flushed) the script itself is sent once (EVAL), and is cached again.
  // `script` must outlive the call (the scripts are static).
  boost::asio::awaitable<Result> evalsha(std::vector<std::string> args, const std::string& script);
  // Fire and forget (cache fills, invalidations): counted and breaker-checked like command().
  void send(std::vector<std::string> args);

  bool breaker_open() const;

  struct Shared;  // breaker, metrics, deadline: what every connection of this client reports to

 private:
  std::shared_ptr<Connection> pick();

  std::shared_ptr<Locator> locator_;
  std::shared_ptr<Shared> shared_;
  std::vector<std::shared_ptr<Connection>> connections_;
  std::atomic<std::size_t> next_{0};
};

class Subscriber {
 public:
  using OnMessage = std::function<void(std::string_view payload)>;
  using OnSubscribed = std::function<void()>;

  // Both callbacks run on the subscriber's strand and must be thread-safe.
  Subscriber(boost::asio::io_context& ioc, const config::Config& cfg, metrics::Registry& metrics, std::string channel,
             OnMessage on_message, OnSubscribed on_subscribed, std::shared_ptr<Locator> locator = nullptr);
  ~Subscriber();
  Subscriber(const Subscriber&) = delete;
  Subscriber& operator=(const Subscriber&) = delete;

  void start();
  void shutdown() noexcept;
  bool live() const noexcept;  // subscribed right now

 private:
  std::shared_ptr<Locator> locator_;
  std::shared_ptr<Connection> connection_;
};

}  // namespace lagoon::redis
