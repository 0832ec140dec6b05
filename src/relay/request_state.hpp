// relay::Request: one relayed request's state as it moves through a route (chat.cpp, endpoint.cpp) and
// the relay they share (relay.cpp, pieces.cpp). Internal to src/relay; one request's coroutine.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "lagoon/accounting/cost.hpp"
#include "lagoon/accounting/usage_guard.hpp"
#include "lagoon/chat/request.hpp"
#include "lagoon/chat/sse.hpp"
#include "lagoon/ratelimit/limiter.hpp"
#include "lagoon/relay/chat.hpp"
#include "lagoon/relay/relay.hpp"

namespace lagoon::relay {

// Once a request's usage is final, and before the client can see the end of the answer: its cost on
// the record (from the prices it was admitted with), and its real tokens and cost in place of what
// admission charged to the key's token limit and held against its budgets — so a client's next request
// already meets the corrected figures. Runs once; later calls do nothing.
struct Settlement {
  ratelimit::Gate* gate = nullptr;  // null: no limit or budget to settle
  const auth::KeyRecord* key = nullptr;
  ratelimit::Decision decision;
  usage::Record* record = nullptr;
  std::shared_ptr<const money::PriceTable> prices;  // null until admission took the table in force
  accounting::CostFacts facts;
  metrics::Counter* unpriced = nullptr;  // lagoon_unpriced_requests_total of the request's endpoint
  bool done = false;
  void operator()() {
    if (done || !record) return;
    done = true;
    accounting::set_cost(*record, prices.get(), facts);
    if (unpriced && record->cost_source == usage::CostSource::unpriced) unpriced->inc();
    if (gate) gate->settle(*key, decision, record->total_tokens.value_or(0), record->cost);
  }
};

// What a chat answer's usage says about money beyond its tokens.
inline void note_cost_facts(accounting::CostFacts& f, const chat::ChunkUsage& u) {
  if (u.cached_tokens) f.cached_tokens = *u.cached_tokens;
  if (u.cache_write_tokens) f.cache_write_tokens = *u.cache_write_tokens;
  if (u.cost_usd) f.upstream_usd = u.cost_usd;
  if (u.cost_diem) f.upstream_diem = u.cost_diem;
}

struct Request {
  Request(const routes::Call& c, Downstream& d, usage::Sink& sink, usage::Endpoint endpoint)
      : call(c), client(d), usage(sink, c.key->key(), c.request_id, c.client_request_id, endpoint, started) {
    settle.record = &*usage;
  }
  const auth::KeyRecord& key() const noexcept { return call.key->key(); }

  const routes::Call& call;
  Downstream& client;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  accounting::UsageGuard usage;
  http::Headers ratelimit_headers;  // x-ratelimit-*, on every answer
  Settlement settle;
  routes::Served out;
  bool takes_model = true;  // false: the endpoint takes none, and a key's model list does not apply
  ratelimit::Slot slot;  // the key's concurrency slot, while the request is open (last: released first)
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
