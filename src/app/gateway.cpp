#include "gateway.hpp"

#include <csignal>
#include <thread>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "lagoon/app/notify.hpp"
#include "lagoon/auth/key_record.hpp"
#include "lagoon/log/log.hpp"
#include "lagoon/util/thread_name.hpp"

namespace lagoon::app {

namespace asio = boost::asio;
using asio::awaitable;
using Clock = std::chrono::steady_clock;
// After the drain deadline, how long cut requests get to write their last words.
constexpr std::chrono::milliseconds kCutGrace{2000};

namespace {

std::vector<std::unique_ptr<asio::io_context>> make_workers(unsigned threads) {
  std::vector<std::unique_ptr<asio::io_context>> out;
  for (unsigned i = 1; i < threads; ++i) out.push_back(std::make_unique<asio::io_context>(1));
  return out;
}

}  // namespace

std::vector<asio::io_context*> Gateway::reactors() {
  std::vector<asio::io_context*> all{&ioc_};
  for (auto& w : workers_) all.push_back(w.get());
  return all;
}

Gateway::Gateway(const config::Config& cfg, metrics::Registry& registry, Readiness& readiness, db::Pool& pool,
                 usage::Pipeline& usage)
    : cfg_(cfg),
      readiness_(readiness),
      ioc_(1),
      workers_(make_workers(cfg.threads)),
      signals_(ioc_, SIGINT, SIGTERM),
      wall_(util::make_wall_clock(cfg.clock_file)),
      redis_primary_(std::make_shared<redis::Locator>(cfg, &registry)),
      redis_(ioc_, cfg, registry, redis_primary_),
      db_(pool, cfg.db_acquire_timeout),
      stored_keys_(cfg, redis_, db_, registry),
      auth_(cfg, stored_keys_, registry, [this] { return revocations_.live(); }, wall_),
      // One subscription for key invalidations and price changes; after it was down (messages lost),
      // every cached key is dropped and the prices are reloaded.
      revocations_(
          ioc_, cfg, registry, auth::invalidation_channel(cfg.redis_prefix),
          [this](std::string_view payload) {
            if (payload == money::kPricesChanged)
              price_refresher_.reload_soon();
            else
              auth_.invalidate(payload);
          },
          [this] {
            auth_.invalidate_all();
            price_refresher_.reload_soon();
          },
          redis_primary_),
      sessions_(cfg, redis_, db_, registry),
      upstream_(cfg, registry),
      price_refresher_(ioc_, cfg, upstream_, db_, prices_, registry),
      limiter_(ioc_, cfg, redis_, db_, registry, wall_),
      concurrency_(ioc_, cfg, redis_, registry),
      admin_(cfg, pool, registry),
      relay_({cfg, upstream_, sessions_, limiter_, usage, cuts_, registry, prices_, relay::kRetryDelay, &concurrency_}),
      chat_(relay_),
      catalog_(cfg, upstream_, usage, registry),
      ready_(readiness),
      metrics_(registry),
      key_info_(usage, limiter_),
      admin_route_(admin_),
      console_(cfg.admin_token && !cfg.console_listen),
      listener_(reactors(), cfg, cfg.listen, registry, readiness, auth_, router_),
      own_console_(true) {
  pool.declare_purpose("auth");
  pool.declare_purpose("session");
  pool.declare_purpose("load prices");
  pool.declare_purpose("store prices");
  pool.declare_purpose("budget");
  router_.set(http::Route::healthz, health_);
  router_.set(http::Route::readyz, ready_);
  router_.set(http::Route::metrics, metrics_);
  router_.set(http::Route::key_info, key_info_);
  router_.set(http::Route::chat_completions, chat_);
  for (const auto r : {http::Route::models, http::Route::models_traits, http::Route::models_compatibility_mapping,
                       http::Route::image_styles})
    router_.set(r, catalog_);
  // The relayed endpoints' routes follow each other in the order of endpoint_specs().
  const auto& specs = relay::endpoint_specs();
  for (std::size_t i = 0; i < specs.size(); ++i) {
    endpoints_.push_back(std::make_unique<relay::EndpointRoute>(relay_, specs[i]));
    router_.set(static_cast<http::Route>(static_cast<std::size_t>(http::Route::embeddings) + i), *endpoints_.back());
  }
  router_.set(http::Route::admin, admin_route_);
  router_.set(http::Route::console, console_);
  if (cfg.console_listen) {
    console_router_.serve_only_what_is_set();
    console_router_.set(http::Route::admin, admin_route_);
    console_router_.set(http::Route::console, own_console_);
    console_listener_ = std::make_unique<transport::Listener>(reactors(), cfg, *cfg.console_listen, registry,
                                                              readiness, auth_, console_router_, &listener_);
  }
}

int Gateway::active() const noexcept {
  return listener_.active() + (console_listener_ ? console_listener_->active() : 0);
}

int Gateway::run() {
  listener_.open();
  if (console_listener_) console_listener_->open();
  readiness_.set_listening(true);
  log::info("listening", {{"address", cfg_.listen.host},
                          {"port", listener_.port()},
                          {"threads", cfg_.threads},
                          {"version", LAGOON_VERSION}});
  if (console_listener_)
    log::info("console listening", {{"address", cfg_.console_listen->host}, {"port", console_listener_->port()}});
  redis_.start();
  revocations_.start();
  limiter_.start();
  concurrency_.start();
  price_refresher_.start();
  notify_service_manager("READY=1\nSTATUS=accepting requests");
  wait_for_signal();
  listener_.start();
  if (console_listener_) console_listener_->start();

  // A worker with no connection yet must not return from run(): the guards hold them until the end.
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  std::vector<std::thread> threads;
  for (auto& w : workers_) {
    guards.push_back(asio::make_work_guard(*w));
    threads.emplace_back([&ioc = *w] {
      util::name_this_thread("lagoon-reactor");
      ioc.run();
    });
  }
  ioc_.run();
  // The first reactor stops at the end of the drain (or on a second signal): so do the others.
  guards.clear();
  for (auto& w : workers_) w->stop();
  for (auto& t : threads) t.join();
  // No reactor thread runs any more: dependencies can be torn down without racing their strands.
  admin_.shutdown();
  limiter_.shutdown();
  concurrency_.shutdown();
  price_refresher_.shutdown();
  revocations_.shutdown();
  redis_.shutdown();
  db_.shutdown();
  readiness_.set_listening(false);
  log::info("stopped", {{"connections_left", active()}});
  return 0;
}

void Gateway::wait_for_signal() {
  signals_.async_wait([this](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    if (readiness_.draining()) {
      log::warn("second signal: stopping without waiting", {{"signal", signo}});
      ioc_.stop();
      return;
    }
    begin_drain(signo);
    wait_for_signal();
  });
}

void Gateway::begin_drain(int signo) {
  readiness_.set_draining();
  notify_service_manager("STOPPING=1\nSTATUS=draining");
  log::info("draining", {{"signal", signo},
                         {"connections", active()},
                         {"drain_timeout_ms", cfg_.drain_timeout.count()}});
  listener_.begin_drain();
  if (console_listener_) console_listener_->begin_drain();
  asio::co_spawn(ioc_, finish_drain(), asio::detached);
}

// A member, not a lambda: GCC 12 mishandles coroutine lambdas' by-value parameters.
awaitable<void> Gateway::wait_for_connections(Clock::time_point until) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  while (active() > 0 && Clock::now() < until) {
    timer.expires_after(std::chrono::milliseconds(10));
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

awaitable<void> Gateway::finish_drain() {
  co_await wait_for_connections(Clock::now() + cfg_.drain_timeout);
  if (active() > 0) {
    // Streams still open get a final error event rather than a cut connection, whole answers a 503.
    log::warn("drain deadline passed; ending what is left", {{"connections", active()}});
    cuts_.cut_all();
    co_await wait_for_connections(Clock::now() + kCutGrace);
    if (active() > 0) log::warn("closing connections", {{"connections", active()}});
  }
  co_await limiter_.flush();  // token corrections not yet sent
  co_await concurrency_.settled(std::chrono::seconds(1));  // the last requests' slots, given back
  ioc_.stop();
}

}  // namespace lagoon::app
