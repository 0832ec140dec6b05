// ChatRoute: POST /api/v1/chat/completions (and /v1/…) for a key the transport has already
// authenticated from the request head. In data-flow order:
//   check   the body (400 naming the field, no upstream call) and the key's rate limits (429 with
//           Retry-After; x-ratelimit-* headers on every answer to a limited key);
//   relay   find the key's session, send upstream through the Relay (relay.hpp: one retry within a
//           budget), then a whole answer as one reply or an event stream event by event with
//           backpressure (stream.cpp: the chat stream's Pieces);
//   account one usage record through a UsageGuard, whatever happens — tokens from the upstream, or
//           estimated, and a token-limited key's estimate settled as soon as its real usage is known.
// Thread-safety: serve() from any number of connection coroutines at once.
#pragma once

#include "lagoon/config/config.hpp"
#include "lagoon/metrics/registry.hpp"
#include "lagoon/ratelimit/limiter.hpp"
#include "lagoon/relay/cuts.hpp"
#include "lagoon/relay/decisions.hpp"
#include "lagoon/relay/relay.hpp"
#include "lagoon/routes/route.hpp"
#include "lagoon/session/store.hpp"
#include "lagoon/upstream/exchange.hpp"
#include "lagoon/usage/sink.hpp"

namespace lagoon::relay {

using ChatDeps = RelayDeps;

class ChatRoute final : public routes::Handler {
 public:
  explicit ChatRoute(Relay& relay) : relay_(relay) {}
  boost::asio::awaitable<routes::Served> serve(const routes::Call& call, Downstream& client) override;

  struct Request;  // one request's state (src/relay/request_state.hpp)

 private:
  boost::asio::awaitable<void> forward(Request& r);
  boost::asio::awaitable<void> relay_whole(Request& r, upstream::Exchange& ex, const Cuts::Registration& reg);

  Relay& relay_;
};

}  // namespace lagoon::relay
