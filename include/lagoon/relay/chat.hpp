// ChatRoute: POST /api/v1/chat/completions (and /v1/…) for a key the transport has already
// authenticated from the request head. In data-flow order:
//   check   the body (400 naming the field, no upstream call) and the key's rate limits (429 with
//           Retry-After; x-ratelimit-* headers on every answer to a limited key);
//   relay   find the key's session, send upstream (one retry, before anything reached the client, after
//           a connect failure or 429/502/503/504, within a retry budget), then a whole answer as one
//           reply or an event stream event by event with backpressure (stream.cpp);
//   account one usage record through a UsageGuard, whatever happens — tokens from the upstream, or
//           estimated, and a token-limited key's estimate settled as soon as its real usage is known.
// Every dependency is a seam (upstream::Sender, session::SessionSource, ratelimit::Gate, usage::Sink,
// relay::Downstream), so the whole flow runs in unit tests with fakes. No Postgres lease is taken here.
// Thread-safety: serve() from any number of connection coroutines at once.
#pragma once

#include <chrono>
#include <mutex>

#include "lagoon/config/config.hpp"
#include "lagoon/metrics/registry.hpp"
#include "lagoon/ratelimit/limiter.hpp"
#include "lagoon/relay/cuts.hpp"
#include "lagoon/relay/decisions.hpp"
#include "lagoon/routes/route.hpp"
#include "lagoon/session/store.hpp"
#include "lagoon/upstream/exchange.hpp"
#include "lagoon/usage/sink.hpp"

namespace lagoon::relay {

// At most one retry per request, and retries at most ~20 % of requests: a failing upstream must not
// be hit twice as hard. A token bucket: each request earns 0.2 tokens (up to 10), a retry spends one.
class RetryBudget {
 public:
  void on_request();
  bool try_spend();

 private:
  std::mutex mutex_;
  double tokens_ = 1.0;
};

struct ChatDeps {
  const config::Config& cfg;
  upstream::Sender& upstream;
  session::SessionSource& sessions;
  ratelimit::Gate& limits;
  usage::Sink& usage;
  Cuts& cuts;
  metrics::Registry& metrics;
  std::chrono::milliseconds retry_delay = kRetryDelay;  // without the upstream's Retry-After
};

class ChatRoute final : public routes::Handler {
 public:
  explicit ChatRoute(const ChatDeps& deps);
  boost::asio::awaitable<routes::Served> serve(const routes::Call& call, Downstream& client) override;

  struct Request;  // one request's state, in chat.cpp

 private:
  boost::asio::awaitable<void> forward(Request& r);
  boost::asio::awaitable<upstream::Result<std::unique_ptr<upstream::Exchange>>> send_with_retry(Request& r);
  boost::asio::awaitable<void> relay_whole(Request& r, upstream::Exchange& ex, const Cuts::Registration& reg);
  boost::asio::awaitable<void> relay_stream(Request& r, upstream::Exchange& ex, const Cuts::Registration& reg);
  // Writes a verdict's reply as the request's answer.
  boost::asio::awaitable<void> reply(Request& r, Verdict& verdict);

  ChatDeps deps_;
  RetryBudget budget_;
  metrics::Counter& retries_;
  metrics::Histogram& ttfb_;
  metrics::Gauge& streams_active_;
};

}  // namespace lagoon::relay
