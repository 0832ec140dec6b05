// relay::Request: one relayed request's state as it moves through a route (chat.cpp, endpoint.cpp) and
// the relay they share (relay.cpp, pieces.cpp). Internal to src/relay; one request's coroutine.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "lagoon/accounting/usage_guard.hpp"
#include "lagoon/chat/request.hpp"
#include "lagoon/chat/sse.hpp"
#include "lagoon/ratelimit/limiter.hpp"
#include "lagoon/relay/chat.hpp"
#include "lagoon/relay/relay.hpp"

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

struct Request {
  Request(const routes::Call& c, Downstream& d, usage::Sink& sink, usage::Endpoint endpoint)
      : call(c), client(d), usage(sink, c.key->key(), c.request_id, c.client_request_id, endpoint, started) {}
  const auth::KeyRecord& key() const noexcept { return call.key->key(); }

  const routes::Call& call;
  Downstream& client;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  accounting::UsageGuard usage;
  http::Headers ratelimit_headers;  // x-ratelimit-*, on every answer
  Settlement settle;
  routes::Served out;
};

struct ChatRoute::Request : relay::Request {
  Request(const routes::Call& c, Downstream& d, usage::Sink& sink)
      : relay::Request(c, d, sink, usage::Endpoint::chat) {}
  chat::ChatRequest body;
};

// An event stream's Pieces: scanned event by event (an event larger than the scanner takes ends the
// stream), what the client gets decided per batch of whole events by on_events().
class EventPieces : public Pieces {
 public:
  bool pass(std::string_view piece, std::string& out) final {
    events_.clear();
    if (!scanner_.feed(piece, events_)) return false;
    out = on_events(events_);
    return true;
  }
  // A last event without its blank line is still upstream's.
  void finish(std::string& out) final { out = scanner_.take_pending(); }
  std::string_view refusal() const noexcept final {
    return "The upstream provider sent an event larger than the gateway accepts.";
  }
  std::size_t content_bytes() const noexcept final { return content_bytes_; }

 protected:
  // The bytes the client gets for these events (their `raw`, as they came, unless changed).
  virtual std::string on_events(std::vector<chat::SseEvent>& events) = 0;
  std::size_t content_bytes_ = 0;  // data that is not usage, for estimates

 private:
  chat::SseScanner scanner_;
  std::vector<chat::SseEvent> events_;
};

// An event stream's head as the gateway sends it: no caching, no proxy buffering.
http::Reply event_stream_head();

// The chat route's event stream (stream.cpp).
boost::asio::awaitable<void> relay_chat_stream(Relay& relay, ChatRoute::Request& r, upstream::Exchange& ex,
                                               const Cuts::Registration& registration);

}  // namespace lagoon::relay
