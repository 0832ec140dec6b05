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

http::Reply stream_head(const http::Headers& ratelimit_headers) {
  http::Reply head;
  head.status = 200;
  head.content_type = "text/event-stream";
  head.set("Cache-Control", "no-cache");
  head.set("X-Accel-Buffering", "no");
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

}  // namespace

awaitable<void> ChatRoute::relay_stream(Request& r, upstream::Exchange& ex, const Cuts::Registration& registration) {
  streams_active_.add(1);
  struct Active {
    metrics::Gauge& g;
    ~Active() { g.add(-1); }
  } active{streams_active_};
  const http::Reply head = stream_head(r.ratelimit_headers);
  const bool head_written = co_await r.client.start_stream(head);
  r.out.status = 200;
  r.usage->status_code = 200;
  r.usage.in_flight().note(*r.usage);  // the session and status, should the process die mid-stream
  if (!head_written) {
    ex.abort();
    r.usage.set_outcome(Outcome::client_disconnected);
    accounting::estimate_at_least(*r.usage, r.body.body_bytes, 0);
    r.out.close = true;
    co_return;
  }

  // A client that resets its connection while the upstream is silent is noticed now, not at the next
  // write: the upstream sees the close at once.
  bool gone = false;
  r.client.watch_reset([&gone, &ex] {
    gone = true;
    ex.abort();
  });
  struct Unwatch {
    Downstream& d;
    ~Unwatch() { d.stop_watching(); }
  } unwatch{r.client};

  chat::SseScanner scanner;
  std::vector<chat::SseEvent> events;
  Seen seen;
  std::optional<std::string_view> failure;
  for (;;) {
    auto piece = co_await ex.read_some();
    if (!piece) {
      failure = stream_failure_message(piece.error().kind, registration.cut());
      if (!registration.cut() && !gone)
        log::warn("upstream stream failed", {{"request_id", r.call.request_id}, {"error", piece.error().what}});
      break;
    }
    events.clear();
    std::string out;
    if (piece->empty()) {
      out = scanner.take_pending();  // a last event without its blank line is still upstream's
    } else if (!scanner.feed(*piece, events)) {
      failure = "The upstream provider sent an event larger than the gateway accepts.";
      ex.abort();
      break;
    } else {
      out = client_bytes(events, r, seen);
    }
    r.usage.in_flight().note_completion(accounting::estimate_tokens(seen.content_bytes));
    if (!out.empty() && !co_await r.client.send_chunk(out)) {
      ex.abort();  // the upstream sees the close at once
      r.usage.set_outcome(Outcome::client_disconnected);
      r.out.close = true;
      if (!seen.final_usage) accounting::estimate_at_least(*r.usage, r.body.body_bytes, seen.content_bytes);
      co_return;
    }
    if (piece->empty()) break;
  }
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
    r.usage.set_outcome(registration.cut() ? Outcome::shutdown : Outcome::upstream_error);
    r.out.close = true;
    const std::string event = error_event(*failure);
    co_await r.client.send_chunk(event);
  } else {
    r.usage.set_outcome(Outcome::ok);
  }
  if (!co_await r.client.end_stream()) r.out.close = true;
}

}  // namespace lagoon::relay
