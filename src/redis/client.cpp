// hiredis on Asio. Every touch of a redisAsyncContext happens on its connection's strand (or, at
// shutdown, on the one thread left), because hiredis is not thread-safe.
#include "lagoon/redis/client.hpp"

#include <atomic>
#include <deque>
#include <optional>
#include <random>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "lagoon/config/url.hpp"
#include "lagoon/log/log.hpp"
#include "lagoon/redis/breaker.hpp"

namespace lagoon::redis {

namespace asio = boost::asio;
using Strand = asio::strand<asio::io_context::executor_type>;
using Clock = std::chrono::steady_clock;

// A connection gets this long to connect, authenticate and answer its first PING.
constexpr std::chrono::milliseconds kConnectTimeout{1000};
constexpr std::chrono::milliseconds kMinBackoff{50};
constexpr std::chrono::milliseconds kMaxBackoff{2000};

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
  void account(const Result& r, bool collateral) {
    const auto now = Clock::now();
    switch (r.status) {
      case Status::ok:
        if (!r.reply.is_error() || is_request_error(r.reply.str)) {
          (r.reply.is_error() ? error : ok).inc();
          if (breaker.success(now)) {
            breaker_open.set(0);
            log::info("redis breaker closed");
          }
          return;
        }
        // READONLY (a replica after failover), OOM, LOADING, MASTERDOWN…: Redis answered but cannot
        // serve; counting that as success would keep the limits failing open forever behind it.
        error.inc();
        if (!logged_error_reply.exchange(true))
          log::warn("redis answers with errors", {{"reply", r.reply.str.substr(0, 120)}});
        break;
      case Status::timeout: timeout_count.inc(); break;
      case Status::unavailable: unavailable.inc(); break;
      case Status::skipped: skipped.inc(); return;
    }
    if (collateral) return;
    if (breaker.failure(now)) {
      breaker_open.set(1);
      breaker_opened.inc();
      log::warn("redis breaker opened: skipping Redis", {{"cooldown_ms", breaker_cooldown_ms()}});
    }
  }
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
};

namespace {

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
  Op(asio::any_completion_handler<void(Result)> h, std::vector<std::string> a)
      : handler(std::move(h)), args(std::move(a)) {}
  asio::any_completion_handler<void(Result)> handler;
  std::vector<std::string> args;
  Clock::time_point deadline{};
  bool done = false;
};

}  // namespace

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  enum class Mode { command, subscriber };

  Connection(asio::io_context& ioc, config::RedisEndpoint endpoint, Mode mode, std::shared_ptr<Client::Shared> shared,
             ConnectionMetrics metrics)
      : strand_(asio::make_strand(ioc)),
        endpoint_(std::move(endpoint)),
        mode_(mode),
        shared_(std::move(shared)),
        metrics_(metrics),
        resolver_(strand_),
        retry_(strand_),
        connect_deadline_(strand_),
        sweep_(strand_),
        heartbeat_(strand_) {}

  ~Connection() { shutdown(); }

  // Subscriber mode only.
  void subscribe_to(std::string channel, Subscriber::OnMessage on_message, Subscriber::OnSubscribed on_subscribed,
                    std::chrono::milliseconds heartbeat_interval) {
    heartbeat_channel_ = channel + ":heartbeat";
    heartbeat_interval_ = heartbeat_interval;
    channel_ = std::move(channel);
    on_message_ = std::move(on_message);
    on_subscribed_ = std::move(on_subscribed);
  }

  void start() {
    asio::post(strand_, [self = shared_from_this()] { self->connect(); });
  }

  // Only when no thread runs the io_context: frees the context without posting completions.
  void shutdown() noexcept {
    stopping_ = true;
    abandoning_ = true;
    if (ctx_) redisAsyncFree(ctx_);  // runs on_cleanup
  }

  bool up() const noexcept { return up_.load(std::memory_order_relaxed); }
  const Strand& strand() const noexcept { return strand_; }

  // On the strand.
  void issue(const std::shared_ptr<Op>& op) {
    if (!ctx_ || !up()) return complete(op, Result{Status::unavailable, {}});
    ArgvView v(op->args);
    auto* holder = new std::shared_ptr<Op>(op);
    issuing_ = true;
    const int rc = redisAsyncCommandArgv(ctx_, &Connection::on_reply, holder, v.argc(), v.argv.data(), v.lens.data());
    issuing_ = false;
    if (rc != REDIS_OK) {
      delete holder;
      return complete(op, Result{Status::unavailable, {}});
    }
    op->deadline = Clock::now() + shared_->timeout;
    pending_.push_back(op);
    arm_sweep();
    if (!flush_posted_) {
      // After the commands already queued on this strand: they go out together in one write.
      flush_posted_ = true;
      asio::post(strand_, [self = shared_from_this()] {
        self->flush_posted_ = false;
        self->flush_writes();
      });
    }
  }

 private:
  // --- completion ---------------------------------------------------------------------------------
  // `op` by value: callers pass pending_.front(), which the pop below destroys; a reference would
  // dangle for the handler read after it (an ASan-reported use-after-free on every timeout).
  void complete(std::shared_ptr<Op> op, Result result, bool collateral = false) {
    if (op->done) return;
    op->done = true;
    while (!pending_.empty() && pending_.front()->done) pending_.pop_front();
    shared_->account(result, collateral);
    auto handler = std::move(op->handler);
    if (abandoning_ || !handler) return;  // shutting down: the waiter is being destroyed with the io_context
    // To the waiter's own executor (its strand), never inline inside hiredis's callback.
    asio::dispatch(asio::append(std::move(handler), std::move(result)));
  }

  static void on_reply(redisAsyncContext* ac, void* reply, void* privdata) {
    std::unique_ptr<std::shared_ptr<Op>> holder(static_cast<std::shared_ptr<Op>*>(privdata));
    auto* self = static_cast<Connection*>(ac->data);
    if (!reply)  // the context is being freed
      self->complete(*holder, Result{Status::unavailable, {}}, self->tearing_down_);
    else
      self->complete(*holder, Result{Status::ok, Reply::from(static_cast<redisReply*>(reply))});
  }

  // --- connection life ----------------------------------------------------------------------------
  void connect() {
    if (stopping_) return;
    resolver_.async_resolve(endpoint_.host, std::to_string(endpoint_.port),
                            [self = shared_from_this()](const boost::system::error_code& ec,
                                                        asio::ip::tcp::resolver::results_type results) {
                              self->on_resolved(ec, std::move(results));
                            });
  }

  void on_resolved(const boost::system::error_code& ec, asio::ip::tcp::resolver::results_type results) {
    if (stopping_) return;
    if (ec || results.empty()) {
      log_failure("cannot resolve Redis host", ec ? ec.message() : "no address");
      return schedule_reconnect();
    }
    const auto ep = results.begin()->endpoint();
    // A numeric address, so hiredis's blocking getaddrinfo returns at once.
    ctx_ = redisAsyncConnect(ep.address().to_string().c_str(), ep.port());
    if (!ctx_ || ctx_->err) {
      log_failure("cannot connect to Redis", ctx_ ? ctx_->errstr : "out of memory");
      if (ctx_) redisAsyncFree(ctx_);  // no hooks attached yet: nothing else runs
      ctx_ = nullptr;
      return schedule_reconnect();
    }
    ++generation_;
    ctx_->data = this;
    descriptor_.emplace(strand_, ctx_->c.fd);
    ctx_->ev.data = this;
    ctx_->ev.addRead = [](void* p) {
      auto* c = static_cast<Connection*>(p);
      c->want(c->reading_, true);
    };
    ctx_->ev.delRead = [](void* p) {
      auto* c = static_cast<Connection*>(p);
      c->want(c->reading_, false);
    };
    ctx_->ev.addWrite = [](void* p) {
      auto* c = static_cast<Connection*>(p);
      c->want(c->writing_, true);
    };
    ctx_->ev.delWrite = [](void* p) {
      auto* c = static_cast<Connection*>(p);
      c->want(c->writing_, false);
    };
    ctx_->ev.cleanup = [](void* p) { static_cast<Connection*>(p)->on_cleanup(); };
    redisAsyncSetDisconnectCallback(ctx_, [](const redisAsyncContext*, int) {});
    // Setting the connect callback arms the first write wait, which reports the connect.
    redisAsyncSetConnectCallback(ctx_, &Connection::on_connect);
    connect_deadline_.expires_after(kConnectTimeout);
    connect_deadline_.async_wait([self = shared_from_this(), gen = generation_](const boost::system::error_code& e) {
      if (!e && gen == self->generation_ && self->ctx_ && !self->up()) self->drop("connect timed out");
    });
  }

  static void on_connect(const redisAsyncContext* ac, int status) {
    auto* self = static_cast<Connection*>(ac->data);
    if (status != REDIS_OK) {
      self->log_failure("cannot connect to Redis", ac->errstr);
      return;  // hiredis frees the context now, which runs on_cleanup
    }
    self->setup();
  }

  // AUTH, SELECT, then PING (commands) or SUBSCRIBE (subscriber); ready when that answers.
  void setup() {
    auto send = [this](const std::vector<std::string>& args, redisCallbackFn* fn) {
      ArgvView v(args);
      redisAsyncCommandArgv(ctx_, fn, nullptr, v.argc(), v.argv.data(), v.lens.data());
    };
    if (!endpoint_.password.empty()) {
      std::vector<std::string> auth{"AUTH"};
      if (!endpoint_.username.empty()) auth.push_back(endpoint_.username);
      auth.push_back(endpoint_.password);
      send(auth, &Connection::on_setup_reply);
    }
    if (endpoint_.db != 0) send({"SELECT", std::to_string(endpoint_.db)}, &Connection::on_setup_reply);
    if (mode_ == Mode::command)
      send({"PING"}, &Connection::on_ping);
    else
      send({"SUBSCRIBE", channel_}, &Connection::on_subscription);
  }

  static void on_setup_reply(redisAsyncContext* ac, void* reply, void*) {
    auto* r = static_cast<redisReply*>(reply);
    if (r && r->type == REDIS_REPLY_ERROR) {
      auto* self = static_cast<Connection*>(ac->data);
      self->log_failure("Redis refused the connection setup", std::string(r->str, r->len));
      self->drop("setup refused");
    }
  }

  static void on_ping(redisAsyncContext* ac, void* reply, void*) {
    auto* r = static_cast<redisReply*>(reply);
    if (r && r->type != REDIS_REPLY_ERROR) static_cast<Connection*>(ac->data)->became_ready();
  }

  static void on_subscription(redisAsyncContext* ac, void* reply, void*) {
    auto* r = static_cast<redisReply*>(reply);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 3) return;
    auto* self = static_cast<Connection*>(ac->data);
    const std::string_view kind(r->element[0]->str ? r->element[0]->str : "", r->element[0]->len);
    if (kind == "subscribe") {
      self->became_ready();
      if (self->on_subscribed_) self->on_subscribed_();
    } else if (kind == "message" && r->element[2]->str && self->on_message_) {
      self->on_message_(std::string_view(r->element[2]->str, r->element[2]->len));
    }
  }

  void became_ready() {
    if (up()) return;
    up_.store(true);
    metrics_.up.add(1);
    connect_deadline_.cancel();
    if (mode_ == Mode::subscriber) arm_heartbeat(generation_);
    if (had_failure_)
      log::info("redis connected", {{"role", role()}, {"host", endpoint_.host}, {"port", endpoint_.port}});
    had_failure_ = false;
    backoff_ = kMinBackoff;
  }

  // --- subscriber heartbeat -------------------------------------------------------------------------
  // A subscription only listens, so a connection that died silently (a NAT or load balancer dropping
  // an idle flow, a hung Redis) looks exactly like a quiet channel, and revocations would reach this
  // process only by L1 expiry. Every interval the subscriber SUBSCRIBEs once more to a heartbeat
  // channel — one of the few commands a subscribed connection may send, and Redis confirms it each
  // time (a PING's reply is dropped by hiredis 0.14 in subscribed mode). An answer still missing when
  // the next one is due drops the connection: live() turns false (L1 trust falls to one second) and
  // the re-subscription invalidates L1. TCP keepalive would not do: a hung Redis behind a live TCP
  // peer acknowledges every probe.
  void arm_heartbeat(std::uint64_t gen) {
    heartbeat_.expires_after(heartbeat_interval_);
    heartbeat_.async_wait([self = shared_from_this(), gen](const boost::system::error_code& ec) {
      if (ec || gen != self->generation_ || !self->ctx_ || self->stopping_) return;
      if (self->heartbeat_outstanding_) {
        self->metrics_.heartbeats_missed.inc();
        self->drop("subscription heartbeat unanswered");
        return;
      }
      self->heartbeat_outstanding_ = true;
      const std::vector<std::string> args{"SUBSCRIBE", self->heartbeat_channel_};
      ArgvView v(args);
      redisAsyncCommandArgv(self->ctx_, &Connection::on_heartbeat, nullptr, v.argc(), v.argv.data(), v.lens.data());
      self->arm_heartbeat(gen);
    });
  }

  static void on_heartbeat(redisAsyncContext* ac, void* reply, void*) {
    auto* r = static_cast<redisReply*>(reply);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1 || !r->element[0]->str) return;
    if (std::string_view(r->element[0]->str, r->element[0]->len) == "subscribe")
      static_cast<Connection*>(ac->data)->heartbeat_outstanding_ = false;
  }

  // Tear the context down; on_cleanup schedules the reconnect.
  void drop(const char* why) {
    if (!ctx_) return;
    log_failure("dropping Redis connection", why);
    redisAsyncFree(ctx_);  // deferred by hiredis when inside one of its callbacks
  }

  // hiredis is freeing the context (our drop, a connection error, or EOF); it closes the fd itself.
  void on_cleanup() {
    if (descriptor_) {
      descriptor_->release();  // also cancels our waits; their handlers see another generation
      descriptor_.reset();
    }
    ctx_ = nullptr;
    ++generation_;
    heartbeat_.cancel();
    heartbeat_outstanding_ = false;
    pending_.clear();  // hiredis has called every pending callback (with no reply) before this
    reading_.wanted = reading_.armed = writing_.wanted = writing_.armed = false;
    if (up()) {
      up_.store(false);
      metrics_.up.add(-1);
    }
    connect_deadline_.cancel();
    schedule_reconnect();
  }

  void schedule_reconnect() {
    if (stopping_) return;
    metrics_.reconnects.inc();
    static thread_local std::minstd_rand rng{std::random_device{}()};
    const auto jitter = std::chrono::milliseconds(rng() % (backoff_.count() / 2 + 1));
    retry_.expires_after(backoff_ + jitter);
    backoff_ = std::min(backoff_ * 2, kMaxBackoff);
    retry_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) self->connect();
    });
  }

  // --- the adapter: hiredis says what it wants to wait for; Asio waits and calls it back -----------
  struct Interest {
    bool wanted = false;
    bool armed = false;
  };

  void want(Interest& which, bool on) {
    which.wanted = on;
    // A write wanted while a command is being queued is done by issue()'s flush (flush_writes).
    if (on && !which.armed && !(issuing_ && &which == &writing_)) arm(which);
  }

  // Writes what hiredis buffered without first asking the reactor whether the socket is writable: it
  // nearly always is, and being told so cost two epoll_ctl calls and a wake-up per command. Only what
  // the kernel does not take is left to the write wait.
  void flush_writes() {
    if (!writing_.wanted || writing_.armed || !ctx_) return;
    const auto gen = generation_;
    redisAsyncHandleWrite(ctx_);  // may fail and free the context (generation moves on)
    if (gen == generation_ && ctx_ && writing_.wanted && !writing_.armed) arm(writing_);
  }

  // Deadlines: replies come in order, so only the oldest pending command's deadline matters. One timer
  // per connection follows it, instead of a timer per command (each of which reprogrammed the
  // reactor's timerfd).
  void arm_sweep() {
    if (sweep_armed_ || pending_.empty()) return;
    sweep_armed_ = true;
    sweep_.expires_at(pending_.front()->deadline);
    sweep_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      self->sweep_armed_ = false;
      if (!ec) self->sweep();
      self->arm_sweep();
    });
  }

  void sweep() {
    while (!pending_.empty() && pending_.front()->done) pending_.pop_front();
    if (pending_.empty() || pending_.front()->deadline > Clock::now()) return;
    const std::shared_ptr<Op> late = pending_.front();
    complete(late, Result{Status::timeout, {}});
    // Everything queued behind the late one is late too: start afresh. Freeing the context answers
    // the others "unavailable" and schedules the reconnect; those answers are this one failure's
    // consequence, not failures of their own, so the breaker does not count them.
    if (ctx_) {
      tearing_down_ = true;
      drop("command timed out");
      tearing_down_ = false;
    }
  }

  void arm(Interest& which) {
    const bool read = &which == &reading_;
    which.armed = true;
    descriptor_->async_wait(
        read ? asio::posix::stream_descriptor::wait_read : asio::posix::stream_descriptor::wait_write,
        [self = shared_from_this(), read, gen = generation_](const boost::system::error_code& ec) {
          if (gen != self->generation_) return;  // a wait on a context that is gone
          auto& w = read ? self->reading_ : self->writing_;
          w.armed = false;
          if (ec || !w.wanted || !self->ctx_) return;
          if (read)
            redisAsyncHandleRead(self->ctx_);
          else
            redisAsyncHandleWrite(self->ctx_);
          // The handler may have freed the context (generation moved on) or re-armed already.
          if (gen == self->generation_ && self->ctx_ && w.wanted && !w.armed) self->arm(w);
        });
  }

  const char* role() const { return mode_ == Mode::command ? "command" : "subscriber"; }

  void log_failure(const char* what, const std::string& detail) {
    // One line per outage, not one per retry.
    if (!had_failure_ && !stopping_)
      log::warn(what, {{"role", role()}, {"host", endpoint_.host}, {"port", endpoint_.port}, {"error", detail}});
    had_failure_ = true;
  }

  Strand strand_;
  const config::RedisEndpoint endpoint_;
  const Mode mode_;
  std::shared_ptr<Client::Shared> shared_;
  ConnectionMetrics metrics_;
  asio::ip::tcp::resolver resolver_;
  asio::steady_timer retry_;
  asio::steady_timer connect_deadline_;
  asio::steady_timer sweep_;
  asio::steady_timer heartbeat_;
  bool heartbeat_outstanding_ = false;
  std::string heartbeat_channel_;
  std::chrono::milliseconds heartbeat_interval_{1000};
  std::deque<std::shared_ptr<Op>> pending_;  // commands of the current context, oldest first
  bool sweep_armed_ = false;
  bool issuing_ = false;
  bool tearing_down_ = false;  // inside drop() after a timeout: the pending commands fail with it
  bool flush_posted_ = false;
  std::optional<asio::posix::stream_descriptor> descriptor_;
  redisAsyncContext* ctx_ = nullptr;
  std::uint64_t generation_ = 0;
  Interest reading_, writing_;
  std::atomic<bool> up_{false};
  bool stopping_ = false;
  bool abandoning_ = false;
  bool had_failure_ = false;
  std::chrono::milliseconds backoff_ = kMinBackoff;
  std::string channel_;
  Subscriber::OnMessage on_message_;
  Subscriber::OnSubscribed on_subscribed_;
};

// --- Client -----------------------------------------------------------------------------------------

Client::Client(asio::io_context& ioc, const config::Config& cfg, metrics::Registry& metrics)
    : shared_(std::make_shared<Shared>(cfg, metrics)) {
  const auto endpoint = config::parse_redis_url(cfg.redis_url);
  for (unsigned i = 0; i < cfg.redis_connections; ++i)
    connections_.push_back(std::make_shared<Connection>(ioc, endpoint, Connection::Mode::command, shared_,
                                                        ConnectionMetrics(metrics, "command")));
}

Client::~Client() { shutdown(); }

void Client::start() {
  for (auto& c : connections_) c->start();
}

void Client::shutdown() noexcept {
  for (auto& c : connections_) c->shutdown();
}

bool Client::breaker_open() const { return shared_->breaker.state() != Breaker::State::closed; }

std::shared_ptr<Connection> Client::pick() {
  const std::size_t n = connections_.size();
  const std::size_t start = next_.fetch_add(1, std::memory_order_relaxed);
  for (std::size_t i = 0; i < n; ++i) {
    auto& c = connections_[(start + i) % n];
    if (c->up()) return c;
  }
  return connections_[start % n];  // none up: it answers "unavailable" on its strand
}

asio::awaitable<Result> Client::command(std::vector<std::string> args) {
  if (!shared_->breaker.allow(Clock::now())) {
    shared_->account(Result{Status::skipped, {}}, false);
    co_return Result{Status::skipped, {}};
  }
  auto conn = pick();
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(Result)>(
      [&conn, &args](auto handler) {
        auto op = std::make_shared<Op>(std::move(handler), std::move(args));
        asio::post(conn->strand(), [conn, op] { conn->issue(op); });
      },
      asio::use_awaitable);
}

void Client::send(std::vector<std::string> args) {
  if (!shared_->breaker.allow(Clock::now())) {
    shared_->account(Result{Status::skipped, {}}, false);
    return;
  }
  auto conn = pick();
  auto op = std::make_shared<Op>(
      asio::any_completion_handler<void(Result)>(asio::bind_executor(conn->strand(), [](Result) {})), std::move(args));
  asio::post(conn->strand(), [conn, op] { conn->issue(op); });
}

// --- Subscriber -------------------------------------------------------------------------------------

Subscriber::Subscriber(asio::io_context& ioc, const config::Config& cfg, metrics::Registry& metrics,
                       std::string channel, OnMessage on_message, OnSubscribed on_subscribed)
    : connection_(std::make_shared<Connection>(ioc, config::parse_redis_url(cfg.redis_url),
                                               Connection::Mode::subscriber, std::make_shared<Client::Shared>(cfg, metrics),
                                               ConnectionMetrics(metrics, "subscriber"))) {
  connection_->subscribe_to(std::move(channel), std::move(on_message), std::move(on_subscribed),
                            cfg.redis_subscriber_heartbeat);
}

Subscriber::~Subscriber() { shutdown(); }
void Subscriber::start() { connection_->start(); }
void Subscriber::shutdown() noexcept { connection_->shutdown(); }
bool Subscriber::live() const noexcept { return connection_->up(); }

}  // namespace lagoon::redis
