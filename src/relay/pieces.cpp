// Relay::pass_pieces: a 2xx body relayed as it comes — an event stream, streamed speech, an image —
// with backpressure: the next upstream read waits for the client's write. What the bytes mean (usage
// in events, characters, images) is the route's Pieces; how the relay starts, watches and ends is here.
#include <optional>

#include "lagoon/accounting/tokens.hpp"
#include "lagoon/log/log.hpp"
#include "lagoon/relay/relay.hpp"
#include "request_state.hpp"

namespace lagoon::relay {

using boost::asio::awaitable;
using accounting::Outcome;

namespace {

// How the relaying of pieces ended.
struct Pumped {
  std::optional<std::string_view> failure;  // the upstream broke off (the message for the client)
  bool client_lost = false;                 // a write to the client failed
};

// Pieces from the upstream to the client until the body ends, breaks off, or the client cannot be
// written to. `gone`: set by the reset watcher meanwhile.
awaitable<Pumped> pump(Request& r, upstream::Exchange& ex, const Cuts::Registration& registration, const bool& gone,
                       Pieces& pieces) {
  for (;;) {
    auto piece = co_await ex.read_some();
    if (!piece) {
      if (!registration.cut() && !gone)
        log::warn("upstream stream failed", {{"request_id", r.call.request_id}, {"error", piece.error().what}});
      co_return Pumped{stream_failure_message(piece.error().kind, registration.cut()), false};
    }
    std::string out;
    if (piece->empty()) {
      pieces.finish(out);
    } else if (!pieces.pass(*piece, out)) {
      ex.abort();
      co_return Pumped{pieces.refusal(), false};
    }
    r.usage.in_flight().note_completion(accounting::estimate_tokens(pieces.content_bytes()));
    if (!out.empty() && !co_await r.client.send_chunk(out)) co_return Pumped{std::nullopt, true};
    if (piece->empty()) co_return Pumped{};
  }
}

// The end once the upstream's body is over, broke off, or the client is gone: usage counted and
// settled, then — for a client still there — how it broke off, and the last chunk.
awaitable<void> finish(Request& r, const Pumped& pumped, bool gone, bool cut, Pieces& pieces) {
  pieces.account(gone);
  r.settle();
  if (gone) {
    r.usage.set_outcome(Outcome::client_disconnected);
    r.out.close = true;
    co_return;
  }
  if (pumped.failure) {
    r.usage.set_outcome(cut ? Outcome::shutdown : Outcome::upstream_error);
    r.out.close = true;
    const std::string tail = pieces.failure_tail(*pumped.failure);
    if (tail.empty()) co_return;  // no last chunk: the client sees the body cut short
    co_await r.client.send_chunk(tail);
  } else {
    r.usage.set_outcome(Outcome::ok);
  }
  if (!co_await r.client.end_stream()) r.out.close = true;
}

}  // namespace

awaitable<void> Relay::pass_pieces(Request& r, upstream::Exchange& ex, const Cuts::Registration& registration,
                                   const http::Reply& head, Pieces& pieces) {
  streams_active_.add(1);
  struct Active {
    metrics::Gauge& g;
    ~Active() { g.add(-1); }
  } active{streams_active_};
  http::Reply with_headers = head;
  for (const auto& [name, value] : ex.head().relayed) with_headers.set(name, value);
  for (const auto& [name, value] : r.ratelimit_headers) with_headers.set(name, value);
  const bool head_written = co_await r.client.start_stream(with_headers);
  r.out.status = head.status;
  r.usage->status_code = static_cast<std::int32_t>(head.status);
  r.usage.in_flight().note(*r.usage);  // the session and status, should the process die mid-stream
  bool gone = false;
  Pumped pumped;
  if (head_written) {
    // A client that resets its connection while the upstream is silent is noticed now, not at the next
    // write: the upstream sees the close at once.
    r.client.watch_reset([&gone, &ex] {
      gone = true;
      ex.abort();
    });
    struct Unwatch {
      Downstream& d;
      ~Unwatch() { d.stop_watching(); }
    } unwatch{r.client};
    pumped = co_await pump(r, ex, registration, gone, pieces);
  }
  if (!head_written || pumped.client_lost) {
    ex.abort();  // the upstream sees the close at once
    gone = true;
  }
  co_await finish(r, pumped, gone, registration.cut(), pieces);
}

}  // namespace lagoon::relay
