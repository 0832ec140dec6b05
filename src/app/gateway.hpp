// Gateway: one `lagoon serve` process's parts, wired — the reactors (one io_context per thread), Redis, the
// Postgres blocking pool, the authenticator and its revocation subscription, sessions, the upstream client,
// the rate limiter, the admin API, the routes and the listener — and its life: start, serve until
// SIGTERM/SIGINT, drain (stop accepting, let requests finish until drain_timeout, then cut what is left),
// tear down.
// Internal to src/app. Thread-safety: run() once, from the thread that constructed it.
#pragma once

#include <memory>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "lagoon/admin/api.hpp"
#include "lagoon/app/readiness.hpp"
#include "lagoon/auth/authenticator.hpp"
#include "lagoon/db/async_pool.hpp"
#include "lagoon/db/pool.hpp"
#include "lagoon/money/book.hpp"
#include "lagoon/ratelimit/concurrency.hpp"
#include "lagoon/ratelimit/limiter.hpp"
#include "lagoon/redis/client.hpp"
#include "lagoon/redis/locator.hpp"
#include "lagoon/relay/chat.hpp"
#include "lagoon/relay/endpoint.hpp"
#include "lagoon/relay/catalog.hpp"
#include "lagoon/routes/handlers.hpp"
#include "lagoon/routes/router.hpp"
#include "lagoon/session/store.hpp"
#include "lagoon/transport/listener.hpp"
#include "lagoon/upstream/client.hpp"
#include "lagoon/util/wall_clock.hpp"
#include "lagoon/usage/pipeline.hpp"

namespace lagoon::app {

class Gateway {
 public:
  Gateway(const config::Config& cfg, metrics::Registry& registry, Readiness& readiness, db::Pool& pool,
          usage::Pipeline& usage);
  // Serves until the drain is over; the process exit code.
  int run();

 private:
  std::vector<boost::asio::io_context*> reactors();
  void wait_for_signal();
  void begin_drain(int signo);
  boost::asio::awaitable<void> wait_for_connections(std::chrono::steady_clock::time_point until);
  boost::asio::awaitable<void> finish_drain();
  int active() const noexcept;  // connections open on every listener

  const config::Config& cfg_;
  Readiness& readiness_;
  // The first reactor: the accept loop, Redis, the timers of every service, and its share of the
  // connections. Destroyed last, with the other reactors just before it, so that what their pending
  // handlers still hold goes while every part they point to is gone (pending handlers are destroyed,
  // never invoked).
  boost::asio::io_context ioc_;
  // LAGOON_THREADS - 1 more, each run by its own thread and serving its share of the connections alone.
  std::vector<std::unique_ptr<boost::asio::io_context>> workers_;
  boost::asio::signal_set signals_;
  util::WallClock wall_;  // what expiry and budget periods read
  // Where the Redis primary is, for the command connections and the subscription alike: with Sentinel,
  // both move together when it names another.
  std::shared_ptr<redis::Locator> redis_primary_;
  redis::Client redis_;
  db::AsyncPool db_;
  auth::StoredKeys stored_keys_;
  auth::Authenticator auth_;
  redis::Subscriber revocations_;
  session::SessionStore sessions_;
  upstream::Client upstream_;
  money::PriceBook prices_;
  money::PriceRefresher price_refresher_;
  ratelimit::Limiter limiter_;
  ratelimit::ConcurrencyLimiter concurrency_;
  admin::Api admin_;
  relay::Cuts cuts_;
  relay::Relay relay_;
  relay::ChatRoute chat_;
  relay::CatalogRoute catalog_;
  std::vector<std::unique_ptr<relay::EndpointRoute>> endpoints_;  // endpoint_specs(), in order
  routes::Health health_;
  routes::Ready ready_;
  routes::Metrics metrics_;
  routes::KeyInfo key_info_;
  routes::Admin admin_route_;
  routes::Console console_;  // on the main listener unless the console has its own
  routes::Router router_;
  transport::Listener listener_;
  // LAGOON_CONSOLE_LISTEN: the console and the admin API on a listener of their own (else null).
  routes::Console own_console_;
  routes::Router console_router_;
  std::unique_ptr<transport::Listener> console_listener_;
};

}  // namespace lagoon::app
