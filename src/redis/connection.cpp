// hiredis on Asio. Every touch of a redisAsyncContext happens on its connection's strand (or, at
// shutdown, on the one thread left), because hiredis is not thread-safe.
#include "connection.hpp"

#include <random>

#include <boost/asio/append.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <hiredis/hiredis.h>

#include "lagoon/log/log.hpp"

namespace lagoon::redis {

namespace asio = boost::asio;

// A connection gets this long to connect, authenticate and answer its first PING.
constexpr std::chrono::milliseconds kConnectTimeout{1000};
constexpr std::chrono::milliseconds kMinBackoff{50};
constexpr std::chrono::milliseconds kMaxBackoff{2000};

Connection::Connection(asio::io_context& ioc, std::shared_ptr<Locator> locator, Mode mode,
                       std::shared_ptr<Client::Shared> shared, ConnectionMetrics metrics)
    : strand_(asio::make_strand(ioc)),
      locator_(std::move(locator)),
      mode_(mode),
      shared_(std::move(shared)),
      metrics_(metrics),
      resolver_(strand_),
      retry_(strand_),
      connect_deadline_(strand_),
      sweep_(strand_),
      heartbeat_(strand_),
      backoff_(kMinBackoff) {}

void Connection::subscribe_to(std::string channel, Subscriber::OnMessage on_message,
                              Subscriber::OnSubscribed on_subscribed, std::chrono::milliseconds heartbeat_interval) {
  heartbeat_channel_ = channel + ":heartbeat";
  heartbeat_interval_ = heartbeat_interval;
  channel_ = std::move(channel);
  on_message_ = std::move(on_message);
  on_subscribed_ = std::move(on_subscribed);
}

void Connection::start() {
  asio::post(strand_, [self = shared_from_this()] { self->connect(); });
}

void Connection::shutdown() noexcept {
  stopping_ = true;
  abandoning_ = true;
  if (ctx_) redisAsyncFree(ctx_);  // runs on_cleanup
}

void Connection::issue(const std::shared_ptr<Op>& op) {
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

// --- completion ---------------------------------------------------------------------------------
// `op` by value: callers pass pending_.front(), which the pop below destroys; a reference would
// dangle for the handler read after it (an ASan-reported use-after-free on every timeout).
void Connection::complete(std::shared_ptr<Op> op, Result result, bool collateral) {
  if (op->done) return;
  op->done = true;
  while (!pending_.empty() && pending_.front()->done) pending_.pop_front();
  shared_->account(result, collateral);
  auto handler = std::move(op->handler);
  if (abandoning_ || !handler) return;  // shutting down: the waiter is being destroyed with the io_context
  // To the waiter's own executor (its strand), never inline inside hiredis's callback.
  asio::dispatch(asio::append(std::move(handler), std::move(result)));
}

void Connection::on_reply(redisAsyncContext* ac, void* reply, void* privdata) {
  std::unique_ptr<std::shared_ptr<Op>> holder(static_cast<std::shared_ptr<Op>*>(privdata));
  auto* self = static_cast<Connection*>(ac->data);
  if (!reply)  // the context is being freed
    return self->complete(*holder, Result{Status::unavailable, {}}, self->tearing_down_);
  Result result{Status::ok, Reply::from(static_cast<redisReply*>(reply))};
  const bool replica = result.reply.is_readonly();
  self->complete(*holder, std::move(result));
  // A demoted primary: every write here would fail until someone points us elsewhere.
  if (replica) self->not_primary("the server answers READONLY: it is a replica now");
}

// The commands still pending on this context fail with it; they are this one finding's consequence, so
// the breaker does not count them (tearing_down_ stays set until on_cleanup has answered them).
void Connection::not_primary(const char* why) {
  if (!ctx_) return;
  locator_->suspect();
  tearing_down_ = true;
  drop(why);
}

void Connection::primary_moved(const Locator::Primary& primary) {
  if (stopping_) return;
  if (ctx_ && target_.host == primary.host && target_.port == primary.port) return;
  backoff_ = kMinBackoff;
  if (ctx_) {
    tearing_down_ = true;
    drop("the Redis primary moved");  // on_cleanup reconnects after the shortest backoff
    tearing_down_ = false;
  } else if (waiting_retry_) {
    ++retry_generation_;  // the pending retry, even one already due, no longer connects
    waiting_retry_ = false;
    retry_.cancel();
    connect();
  }
  // Otherwise a resolve is under way: on_resolved sees the new epoch and starts over.
}

// --- connection life ----------------------------------------------------------------------------
void Connection::connect() {
  if (stopping_) return;
  auto primary = locator_->primary();
  if (!primary) {
    log_failure("no Redis primary known yet", "no sentinel has answered");
    return schedule_reconnect();
  }
  target_ = std::move(*primary);
  resolver_.async_resolve(
      target_.host, std::to_string(target_.port),
      [self = shared_from_this()](const boost::system::error_code& ec, asio::ip::tcp::resolver::results_type results) {
        self->on_resolved(ec, std::move(results));
      });
}

void Connection::on_resolved(const boost::system::error_code& ec, asio::ip::tcp::resolver::results_type results) {
  if (stopping_) return;
  if (locator_->epoch() != target_.epoch) return connect();  // the primary moved while we resolved
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
  ctx_->ev.addRead = [](void* p) { static_cast<Connection*>(p)->want_read(true); };
  ctx_->ev.delRead = [](void* p) { static_cast<Connection*>(p)->want_read(false); };
  ctx_->ev.addWrite = [](void* p) { static_cast<Connection*>(p)->want_write(true); };
  ctx_->ev.delWrite = [](void* p) { static_cast<Connection*>(p)->want_write(false); };
  ctx_->ev.cleanup = [](void* p) { static_cast<Connection*>(p)->on_cleanup(); };
  redisAsyncSetDisconnectCallback(ctx_, [](const redisAsyncContext*, int) {});
  // Setting the connect callback arms the first write wait, which reports the connect.
  redisAsyncSetConnectCallback(ctx_, &Connection::on_connect);
  connect_deadline_.expires_after(kConnectTimeout);
  connect_deadline_.async_wait([self = shared_from_this(), gen = generation_](const boost::system::error_code& e) {
    if (!e && gen == self->generation_ && self->ctx_ && !self->up()) self->drop("connect timed out");
  });
}

void Connection::on_connect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<Connection*>(ac->data);
  if (status != REDIS_OK) {
    self->log_failure("cannot connect to Redis", ac->errstr);
    return;  // hiredis frees the context now, which runs on_cleanup
  }
  self->setup();
}

// AUTH, SELECT, then PING (commands) or SUBSCRIBE (subscriber); ready when that answers.
void Connection::setup() {
  auto send = [this](const std::vector<std::string>& args, redisCallbackFn* fn) {
    ArgvView v(args);
    redisAsyncCommandArgv(ctx_, fn, nullptr, v.argc(), v.argv.data(), v.lens.data());
  };
  const auto& credentials = locator_->credentials();
  if (!credentials.password.empty()) {
    std::vector<std::string> auth{"AUTH"};
    if (!credentials.username.empty()) auth.push_back(credentials.username);
    auth.push_back(credentials.password);
    send(auth, &Connection::on_setup_reply);
  }
  if (credentials.db != 0) send({"SELECT", std::to_string(credentials.db)}, &Connection::on_setup_reply);
  // A sentinel's answer can be stale (it may not have seen the failover yet): ask the server itself, as
  // Sentinel's client guidelines say. Its reply comes before the PING's, so a replica is never ready.
  if (locator_->discovers()) send({"ROLE"}, &Connection::on_role);
  if (mode_ == Mode::command)
    send({"PING"}, &Connection::on_ping);
  else
    send({"SUBSCRIBE", channel_}, &Connection::on_subscription);
}

void Connection::on_setup_reply(redisAsyncContext* ac, void* reply, void*) {
  auto* r = static_cast<redisReply*>(reply);
  if (r && r->type == REDIS_REPLY_ERROR) {
    auto* self = static_cast<Connection*>(ac->data);
    self->log_failure("Redis refused the connection setup", std::string(r->str, r->len));
    self->drop("setup refused");
  }
}

void Connection::on_role(redisAsyncContext* ac, void* reply, void*) {
  if (!reply || Reply::from(static_cast<redisReply*>(reply)).says_primary()) return;
  auto* self = static_cast<Connection*>(ac->data);
  self->log_failure("the Redis server Sentinel named is not the primary", "ROLE did not say master");
  self->not_primary("not the primary");
}

void Connection::on_ping(redisAsyncContext* ac, void* reply, void*) {
  auto* r = static_cast<redisReply*>(reply);
  if (r && r->type != REDIS_REPLY_ERROR) static_cast<Connection*>(ac->data)->became_ready();
}

namespace {
// Raises `value` to `to`; true when this call did. Never lowers it: a connection finishing its handshake
// with the old primary after another was ready at the new one must not make the next look like the first.
bool raise_to(std::atomic<std::uint64_t>& value, std::uint64_t to) {
  std::uint64_t seen = value.load();
  while (seen < to)
    if (value.compare_exchange_weak(seen, to)) return true;
  return false;
}
}  // namespace

void Connection::became_ready() {
  if (up()) return;
  up_.store(true);
  metrics_.up.add(1);
  connect_deadline_.cancel();
  if (mode_ == Mode::subscriber) arm_heartbeat(generation_);
  // The first connection ready at a new primary: what opened the breaker was the old one's death, and
  // keeping Redis skipped for the rest of the cool-down would only stretch the failover.
  if (mode_ == Mode::command && raise_to(shared_->ready_epoch, target_.epoch) && shared_->breaker.reset()) {
    shared_->breaker_open.set(0);
    log::info("redis breaker closed: connected to the new primary");
  }
  if (had_failure_) log::info("redis connected", {{"role", role()}, {"host", target_.host}, {"port", target_.port}});
  had_failure_ = false;
  backoff_ = kMinBackoff;
}

// Tear the context down; on_cleanup schedules the reconnect.
void Connection::drop(const char* why) {
  if (!ctx_) return;
  log_failure("dropping Redis connection", why);
  redisAsyncFree(ctx_);  // deferred by hiredis when inside one of its callbacks
}

// hiredis is freeing the context (our drop, a connection error, or EOF); it closes the fd itself.
void Connection::on_cleanup() {
  if (descriptor_) {
    descriptor_->release();  // also cancels our waits; their handlers see another generation
    descriptor_.reset();
  }
  ctx_ = nullptr;
  ++generation_;
  tearing_down_ = false;
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

void Connection::schedule_reconnect() {
  if (stopping_) return;
  metrics_.reconnects.inc();
  static thread_local std::minstd_rand rng{std::random_device{}()};
  const auto jitter = std::chrono::milliseconds(rng() % (backoff_.count() / 2 + 1));
  retry_.expires_after(backoff_ + jitter);
  backoff_ = std::min(backoff_ * 2, kMaxBackoff);
  waiting_retry_ = true;
  retry_.async_wait([self = shared_from_this(), gen = ++retry_generation_](const boost::system::error_code& ec) {
    if (gen != self->retry_generation_) return;
    self->waiting_retry_ = false;
    if (!ec) self->connect();
  });
}

// --- the adapter: hiredis says what it wants to wait for; Asio waits and calls it back -----------

void Connection::want(Interest& which, bool on) {
  which.wanted = on;
  // A write wanted while a command is being queued is done by issue()'s flush (flush_writes).
  if (on && !which.armed && !(issuing_ && &which == &writing_)) arm(which);
}

// Writes what hiredis buffered without first asking the reactor whether the socket is writable: it
// nearly always is, and being told so cost two epoll_ctl calls and a wake-up per command. Only what
// the kernel does not take is left to the write wait.
void Connection::flush_writes() {
  if (!writing_.wanted || writing_.armed || !ctx_) return;
  const auto gen = generation_;
  redisAsyncHandleWrite(ctx_);  // may fail and free the context (generation moves on)
  if (gen == generation_ && ctx_ && writing_.wanted && !writing_.armed) arm(writing_);
}

// Deadlines: replies come in order, so only the oldest pending command's deadline matters. One timer
// per connection follows it, instead of a timer per command (each of which reprogrammed the
// reactor's timerfd).
void Connection::arm_sweep() {
  if (sweep_armed_ || pending_.empty()) return;
  sweep_armed_ = true;
  sweep_.expires_at(pending_.front()->deadline);
  sweep_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    self->sweep_armed_ = false;
    if (!ec) self->sweep();
    self->arm_sweep();
  });
}

void Connection::sweep() {
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

void Connection::arm(Interest& which) {
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

void Connection::log_failure(const char* what, const std::string& detail) {
  // One line per outage, not one per retry.
  if (!had_failure_ && !stopping_)
    log::warn(what, {{"role", role()}, {"host", target_.host}, {"port", target_.port}, {"error", detail}});
  had_failure_ = true;
}

void follow_primary(Locator& locator, const std::vector<std::shared_ptr<Connection>>& connections) {
  std::vector<std::weak_ptr<Connection>> weak(connections.begin(), connections.end());
  locator.add_listener([weak = std::move(weak)](const Locator::Primary& primary) {
    for (const auto& w : weak)
      if (auto c = w.lock()) asio::post(c->strand(), [c, primary] { c->primary_moved(primary); });
  });
}

}  // namespace lagoon::redis
