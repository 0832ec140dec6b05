// The chat route's event-stream relay: the upstream answered 2xx with text/event-stream to a request
// that asked for a stream. Event by event with backpressure — the next upstream read waits for the
// client's write — counting usage from the stream's own usage chunks, or estimating it.
#include <optional>
#include <vector>

#include "chat_request_state.hpp"
#include "lagoon/accounting/tokens.hpp"
#include "lagoon/chat/sse.hpp"
#include "lagoon/log/log.hpp"

namespace lagoon::relay {

using boost::asio::awaitable;
using accounting::Outcome;

namespace {

// What the relay has learned from the stream so far.
struct Seen {
  std::size_t content_bytes = 0;
  bool usage = false;        // any usage numbers (some upstreams send running totals)
  bool final_usage = false;  // the usage-only chunk: the last word
};

http::Reply stream_head(const http::Headers& ratelimit_headers, const http::Headers& relayed) {
  http::Reply head;
  head.status = 200;
  head.content_type = "text/event-stream";
  head.set("Cache-Control", "no-cache");
  head.set("X-Accel-Buffering", "no");
  for (const auto& [name, value] : relayed) head.set(name, value);
  for (const auto& [name, value] : ratelimit_headers) head.set(name, value);
  return head;
}

// The bytes of `events` the client gets: usage chunks counted (and dropped when the client did not
// ask for them), the "usage":null the client would not have seen from the upstream removed.
std::string client_bytes(std::vector<chat::SseEvent>& events, ChatRoute::Request& r, Seen& seen) {
  std::string out;
  for (auto& ev : events) {
    if (ev.has_data && ev.data != "[DONE]") {
      if (auto u = chat::usage_of_chunk(ev.data)) {
        seen.usage = true;
        accounting::set_tokens(*r.usage, u->prompt_tokens, u->completion_tokens, u->total_tokens);
        // The usage-only chunk is the last word on usage; some upstreams also put running totals in
        // earlier chunks, which must not settle the count.
        if (u->usage_only) {
          seen.final_usage = true;
          r.settle();
        }
        if (u->usage_only && !r.body.client_wants_usage) continue;  // the client did not ask for it
      } else {
        seen.content_bytes += ev.data.size();
        if (!r.body.client_wants_usage) {
          const std::string stripped = chat::without_null_member(ev.data, "usage");
          const auto at = ev.raw.find(ev.data);
          if (stripped.size() != ev.data.size() && at != std::string::npos) ev.raw.replace(at, ev.data.size(), stripped);
        }
      }
    }
    out += ev.raw;
  }
  return out;
}

// The stream's end once the upstream's body is over, broke off, or the client is gone: usage settled,
// then — for a client still there — the final error event if it broke off, and the last chunk.
awaitable<void> finish_stream(ChatRoute::Request& r, std::optional<std::string_view> failure, bool gone, bool cut,
                              const Seen& seen) {
  if (gone && !seen.final_usage)
    accounting::estimate_at_least(*r.usage, r.body.body_bytes, seen.content_bytes);
  else if (!seen.usage)
    accounting::estimate(*r.usage, r.body.body_bytes, seen.content_bytes);
  r.settle();
  if (gone) {
    r.usage.set_outcome(Outcome::client_disconnected);
    r.out.close = true;
    co_return;
  }
  if (failure) {
    r.usage.set_outcome(cut ? Outcome::shutdown : Outcome::upstream_error);
    r.out.close = true;
    const std::string event = error_event(*failure);
    co_await r.client.send_chunk(event);
  } else {
    r.usage.set_outcome(Outcome::ok);
  }
  if (!co_await r.client.end_stream()) r.out.close = true;
}

// How the relaying of events ended.
struct Pumped {
  std::optional<std::string_view> failure;  // the upstream broke off (the message for the final event)
  bool client_lost = false;                 // a write to the client failed
};

// Events from the upstream to the client until the body ends, breaks off, or the client cannot be
// written to. `gone`: set by the reset watcher meanwhile.
awaitable<Pumped> pump(ChatRoute::Request& r, upstream::Exchange& ex, const Cuts::Registration& registration,
                       const bool& gone, Seen& seen) {
  chat::SseScanner scanner;
  std::vector<chat::SseEvent> events;
  for (;;) {
    auto piece = co_await ex.read_some();
    if (!piece) {
      if (!registration.cut() && !gone)
        log::warn("upstream stream failed", {{"request_id", r.call.request_id}, {"error", piece.error().what}});
      co_return Pumped{stream_failure_message(piece.error().kind, registration.cut()), false};
    }
    events.clear();
    std::string out;
    if (piece->empty()) {
      out = scanner.take_pending();  // a last event without its blank line is still upstream's
    } else if (!scanner.feed(*piece, events)) {
      ex.abort();
      co_return Pumped{"The upstream provider sent an event larger than the gateway accepts.", false};
    } else {
      out = client_bytes(events, r, seen);
    }
    r.usage.in_flight().note_completion(accounting::estimate_tokens(seen.content_bytes));
    if (!out.empty() && !co_await r.client.send_chunk(out)) co_return Pumped{std::nullopt, true};
    if (piece->empty()) co_return Pumped{};
  }
}

}  // namespace

awaitable<void> ChatRoute::relay_stream(Request& r, upstream::Exchange& ex, const Cuts::Registration& registration) {
  streams_active_.add(1);
  struct Active {
    metrics::Gauge& g;
    ~Active() { g.add(-1); }
  } active{streams_active_};
  const http::Reply head = stream_head(r.ratelimit_headers, ex.head().relayed);
  const bool head_written = co_await r.client.start_stream(head);
  r.out.status = 200;
  r.usage->status_code = 200;
  r.usage.in_flight().note(*r.usage);  // the session and status, should the process die mid-stream
  Seen seen;
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
    pumped = co_await pump(r, ex, registration, gone, seen);
  }
  if (!head_written || pumped.client_lost) {
    ex.abort();  // the upstream sees the close at once
    gone = true;
  }
  co_await finish_stream(r, pumped.failure, gone, registration.cut(), seen);
}

}  // namespace lagoon::relay
