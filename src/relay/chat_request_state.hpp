// ChatRoute::Request: one chat request's state as it moves through the route (chat.cpp, stream.cpp).
// Internal to src/relay; one request's coroutine.
#pragma once

#include <chrono>

#include "lagoon/accounting/usage_guard.hpp"
#include "lagoon/chat/request.hpp"
#include "lagoon/ratelimit/limiter.hpp"
#include "lagoon/relay/chat.hpp"

namespace lagoon::relay {

// Charges a token-limited request's real usage in place of its estimate, once, as soon as it is known
// and before the client can see the end of the answer — so a client's next request already meets the
// corrected budget.
struct Settlement {
  ratelimit::Gate* gate = nullptr;  // null: nothing to settle
  const auth::KeyRecord* key = nullptr;
  ratelimit::Decision decision;
  const usage::Record* record = nullptr;
  void operator()() {
    if (!gate) return;
    gate->settle(*key, decision, record->total_tokens.value_or(0));
    gate = nullptr;
  }
};

struct ChatRoute::Request {
  Request(const routes::Call& c, Downstream& d, usage::Sink& sink)
      : call(c),
        client(d),
        usage(sink, c.key->key(), c.request_id, c.client_request_id, usage::Endpoint::chat, started) {}
  const auth::KeyRecord& key() const noexcept { return call.key->key(); }

  const routes::Call& call;
  Downstream& client;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  accounting::UsageGuard usage;
  chat::ChatRequest body;
  http::Headers ratelimit_headers;  // x-ratelimit-*, on every answer
  Settlement settle;
  routes::Served out;
};

}  // namespace lagoon::relay
