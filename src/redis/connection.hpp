// Connection: one hiredis async context on Asio — connect with backoff to where the Locator says the
// primary is, AUTH/SELECT (and ROLE when Sentinel named it), then either commands (each with a deadline)
// or one subscription kept alive by a heartbeat (that mode's part is in subscriber.cpp). A server that is
// not the primary (ROLE, a READONLY reply) is dropped and the locator told; a primary that moved drops the
// connection and it reconnects at once. Client::Shared is what every connection of a Client (or a
// Subscriber) reports each finished command to: breaker, metrics, deadline. Private to src/redis:
// client.cpp and subscriber.cpp build on it.
//
// Thread-safety: a Connection is touched only on its own strand (hiredis is not thread-safe); issue()
// must be posted there. up() and strand() may be read from any thread. shutdown() (also run by the
// destructor) only when no thread runs the io_context any more. Client::Shared::account() may be called
// from any connection's strand at once: the breaker and metrics it updates are thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <hiredis/async.h>

#include "lagoon/config/url.hpp"
#include "lagoon/redis/breaker.hpp"
#include "lagoon/redis/client.hpp"
#include "lagoon/redis/locator.hpp"

namespace lagoon::redis {

using Strand = boost::asio::strand<boost::asio::io_context::executor_type>;
using Clock = std::chrono::steady_clock;

struct Client::Shared {
  Shared(const config::Config& cfg, metrics::Registry& m)
      : timeout(cfg.redis_timeout),
        cooldown(cfg.redis_breaker_cooldown),
        breaker(cfg.redis_breaker_failures, cfg.redis_breaker_cooldown, cfg.redis_breaker_window),
        ok(m.counter("lagoon_redis_commands_total", "Redis commands, by result", {{"result", "ok"}})),
        error(m.counter("lagoon_redis_commands_total", "Redis commands, by result", {{"result", "error"}})),
        timeout_count(m.counter("lagoon_redis_commands_total", "Redis commands, by result", {{"result", "timeout"}})),
        unavailable(
            m.counter("lagoon_redis_commands_total", "Redis commands, by result", {{"result", "unavailable"}})),
        skipped(m.counter("lagoon_redis_commands_total", "Redis commands, by result", {{"result", "skipped"}})),
        breaker_open(m.gauge("lagoon_redis_breaker_open", "1 while the Redis circuit breaker skips Redis")),
        breaker_opened(m.counter("lagoon_redis_breaker_opened_total", "Times the Redis circuit breaker opened")) {}

  // Runs on a connection strand when a command ends. `collateral`: failed only because another
  // command's timeout tore the connection down.
  void account(const Result& r, bool collateral);
  long long breaker_cooldown_ms() const { return cooldown.count(); }
  // An error reply about the command itself, which the caller handles: not Redis failing.
  static bool is_request_error(std::string_view reply) { return reply.rfind("NOSCRIPT", 0) == 0; }

  const std::chrono::milliseconds timeout;
  const std::chrono::milliseconds cooldown;
  Breaker breaker;
  metrics::Counter &ok, &error, &timeout_count, &unavailable, &skipped;
  metrics::Gauge& breaker_open;
  metrics::Counter& breaker_opened;
  std::atomic<bool> logged_error_reply{false};  // one warning per process, not one per command
  std::atomic<std::uint64_t> ready_epoch{0};    // the locator epoch a connection was last ready at
};

struct ConnectionMetrics {
  explicit ConnectionMetrics(metrics::Registry& m, const char* role)
      : up(m.gauge("lagoon_redis_connections_up", "Redis connections connected and ready", {{"role", role}})),
        reconnects(m.counter("lagoon_redis_reconnects_total", "Redis connection attempts after the first",
                             {{"role", role}})),
        heartbeats_missed(m.counter("lagoon_redis_heartbeats_missed_total",
                                    "Subscriptions dropped because Redis did not confirm a heartbeat in time",
                                    {{"role", role}})) {}
  metrics::Gauge& up;
  metrics::Counter& reconnects;
  metrics::Counter& heartbeats_missed;
};

// One pending command: completes exactly once, by reply, deadline or teardown.
struct Op {
  Op(boost::asio::any_completion_handler<void(Result)> h, std::vector<std::string> a)
      : handler(std::move(h)), args(std::move(a)) {}
  boost::asio::any_completion_handler<void(Result)> handler;
  std::vector<std::string> args;
  Clock::time_point deadline{};
  bool done = false;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  enum class Mode { command, subscriber };

  Connection(boost::asio::io_context& ioc, std::shared_ptr<Locator> locator, Mode mode,
             std::shared_ptr<Client::Shared> shared, ConnectionMetrics metrics);
  ~Connection() { shutdown(); }

  // Subscriber mode only.
  void subscribe_to(std::string channel, Subscriber::OnMessage on_message, Subscriber::OnSubscribed on_subscribed,
                    std::chrono::milliseconds heartbeat_interval);

  void start();

  // Only when no thread runs the io_context: frees the context without posting completions.
  void shutdown() noexcept;

  bool up() const noexcept { return up_.load(std::memory_order_relaxed); }
  const Strand& strand() const noexcept { return strand_; }

  // On the strand.
  void issue(const std::shared_ptr<Op>& op);
  // On the strand: the locator names `primary`; a connection elsewhere (or waiting to retry) moves now.
  void primary_moved(const Locator::Primary& primary);

 private:
  // hiredis says what it wants to wait for; Asio waits and calls it back.
  struct Interest {
    bool wanted = false;
    bool armed = false;
  };

  void complete(std::shared_ptr<Op> op, Result result, bool collateral = false);
  static void on_reply(redisAsyncContext* ac, void* reply, void* privdata);

  void connect();
  void on_resolved(const boost::system::error_code& ec, boost::asio::ip::tcp::resolver::results_type results);
  static void on_connect(const redisAsyncContext* ac, int status);
  void setup();
  static void on_setup_reply(redisAsyncContext* ac, void* reply, void*);
  static void on_ping(redisAsyncContext* ac, void* reply, void*);
  static void on_role(redisAsyncContext* ac, void* reply, void*);
  void not_primary(const char* why);
  static void on_subscription(redisAsyncContext* ac, void* reply, void*);
  void became_ready();

  void arm_heartbeat(std::uint64_t gen);
  static void on_heartbeat(redisAsyncContext* ac, void* reply, void*);

  void drop(const char* why);
  void on_cleanup();
  void schedule_reconnect();

  void want(Interest& which, bool on);
  void want_read(bool on) { want(reading_, on); }
  void want_write(bool on) { want(writing_, on); }
  void flush_writes();
  void arm_sweep();
  void sweep();
  void arm(Interest& which);

  const char* role() const { return mode_ == Mode::command ? "command" : "subscriber"; }
  void log_failure(const char* what, const std::string& detail);

  Strand strand_;
  const std::shared_ptr<Locator> locator_;
  Locator::Primary target_;  // where the current (or last) context connects
  const Mode mode_;
  std::shared_ptr<Client::Shared> shared_;
  ConnectionMetrics metrics_;
  boost::asio::ip::tcp::resolver resolver_;
  boost::asio::steady_timer retry_;
  std::uint64_t retry_generation_ = 0;  // a retry wait is current only while this matches its own
  bool waiting_retry_ = false;
  boost::asio::steady_timer connect_deadline_;
  boost::asio::steady_timer sweep_;
  boost::asio::steady_timer heartbeat_;
  bool heartbeat_outstanding_ = false;
  std::string heartbeat_channel_;
  std::chrono::milliseconds heartbeat_interval_{1000};
  std::deque<std::shared_ptr<Op>> pending_;  // commands of the current context, oldest first
  bool sweep_armed_ = false;
  bool issuing_ = false;
  bool tearing_down_ = false;  // inside drop() after a timeout: the pending commands fail with it
  bool flush_posted_ = false;
  std::optional<boost::asio::posix::stream_descriptor> descriptor_;
  redisAsyncContext* ctx_ = nullptr;
  std::uint64_t generation_ = 0;
  Interest reading_, writing_;
  std::atomic<bool> up_{false};
  bool stopping_ = false;
  bool abandoning_ = false;
  bool had_failure_ = false;
  std::chrono::milliseconds backoff_;
  std::string channel_;
  Subscriber::OnMessage on_message_;
  Subscriber::OnSubscribed on_subscribed_;
};

// Tells each connection, on its strand, when the locator names another primary. The connections are held
// weakly: the locator may outlive them.
void follow_primary(Locator& locator, const std::vector<std::shared_ptr<Connection>>& connections);

}  // namespace lagoon::redis
