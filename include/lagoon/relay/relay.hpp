// Relay: what every relaying route does the same way, written once — the key's rate limits, its
// session, the upstream request with its one retry, the answer to a refusing upstream, a whole reply,
// and a body relayed piece by piece with backpressure. A route (ChatRoute, EndpointRoute) decides what
// its body means and what its usage row counts; the Relay does the rest.
//
// Every dependency is a seam (upstream::Sender, session::SessionSource, ratelimit::Gate, usage::Sink,
// relay::Downstream), so each route's whole flow runs in unit tests with fakes. No Postgres lease is
// taken here. One Relay serves every route: the retry budget is the upstream's, not a route's.
// Thread-safety: any number of requests at once, from any reactor thread.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "lagoon/config/config.hpp"
#include "lagoon/metrics/registry.hpp"
#include "lagoon/money/book.hpp"
#include "lagoon/ratelimit/concurrency.hpp"
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

struct RelayDeps {
  const config::Config& cfg;
  upstream::Sender& upstream;
  session::SessionSource& sessions;
  ratelimit::Gate& limits;
  usage::Sink& usage;
  Cuts& cuts;
  metrics::Registry& metrics;
  money::PriceBook& prices;
  std::chrono::milliseconds retry_delay = kRetryDelay;  // without the upstream's Retry-After
  ratelimit::SlotSource* slots = nullptr;  // keys' concurrency caps; the gateway always sets it
};

struct Request;  // one request's state (src/relay/request_state.hpp)

// What a body relayed piece by piece does with its bytes: an event stream scanned for its usage, or
// audio and images passed as they come.
class Pieces {
 public:
  virtual ~Pieces() = default;
  // Appends what the client gets for one upstream piece to `out`; false when the piece cannot be
  // relayed (the stream then ends with `refusal()`).
  virtual bool pass(std::string_view piece, std::string& out) = 0;
  // The upstream's body is over: anything held back.
  virtual void finish(std::string& out) { (void)out; }
  virtual std::string_view refusal() const noexcept { return "The upstream sent more than the gateway accepts."; }
  // Content seen so far, for the in-flight estimate of a request the process may not live to finish.
  virtual std::size_t content_bytes() const noexcept = 0;
  // The stream is over (`gone`: the client left before its end): the usage record's counts.
  virtual void account(bool gone) = 0;
  // What tells a client that the stream broke off: an event stream's error event. Empty for a body
  // that has no such thing (audio, an image) — its connection is closed before the last chunk instead,
  // which any HTTP client reads as a truncated body.
  virtual std::string failure_tail(std::string_view message) const = 0;
};

class Relay {
 public:
  explicit Relay(const RelayDeps& deps);
  const RelayDeps& deps() const noexcept { return deps_; }

  // Whether the key's policy lets it use this route group at all; false when refused: the 403 is
  // answered. First thing every relaying route does, before it reads the body's meaning.
  boost::asio::awaitable<bool> permitted(Request& r);
  // The key's model list (the request's model, or the route's default), its concurrency cap (a slot
  // held until the request is over), then its rate limits and budgets — one Redis round trip for
  // each of cap and limits that the key has, none otherwise.
  // `estimate`: the request's tokens for a token limit; nullopt where tokens do not apply
  // (requests-per-minute only). `most`: the most the request may consume, priced from the table in
  // force (which the request keeps to its end) as what a budget holds. False when refused: the 429,
  // 402 or 503 is answered.
  boost::asio::awaitable<bool> admit(Request& r, std::optional<std::int64_t> estimate, const money::Consumed& most);
  // The key's session for `model` (its base name); false when unavailable: the 503 is answered.
  boost::asio::awaitable<bool> open_session(Request& r, std::string_view model);
  // send(), then either the exchange with its head arrived (time to first byte noted), or null when
  // the send failed — logged and answered.
  boost::asio::awaitable<std::unique_ptr<upstream::Exchange>> open(Request& r, std::string_view path,
                                                                   std::string_view body,
                                                                   const http::Headers& headers);
  // A non-2xx answer: its body read whole, then the client told what decisions.hpp says.
  boost::asio::awaitable<void> refused(Request& r, upstream::Exchange& ex, const Cuts::Registration& registration);
  // A 2xx answer read whole into `body`; false when it broke off (answered).
  boost::asio::awaitable<bool> read_whole(Request& r, upstream::Exchange& ex, const Cuts::Registration& registration,
                                          std::string& body);
  // The upstream's 2xx body as the client's answer, with the upstream's relayable headers.
  boost::asio::awaitable<void> pass_whole(Request& r, const upstream::Head& head, std::string body);
  // A 2xx body relayed piece by piece (the next upstream read waits for the client's write) under
  // `head`; a client that resets its connection is noticed while the upstream is silent.
  boost::asio::awaitable<void> pass_pieces(Request& r, upstream::Exchange& ex, const Cuts::Registration& registration,
                                           const http::Reply& head, Pieces& pieces);
  // Writes a verdict's reply as the request's answer.
  boost::asio::awaitable<void> reply(Request& r, Verdict& verdict);
  // What the access log and the request metrics learn once a request is over.
  static routes::Served finished(Request& r);

 private:
  // Upstream, with one retry while nothing has reached the client (decisions.hpp says when).
  boost::asio::awaitable<upstream::Result<std::unique_ptr<upstream::Exchange>>> send(std::string_view path,
                                                                                     std::string_view body,
                                                                                     const http::Headers& headers);

  RelayDeps deps_;
  RetryBudget budget_;
  metrics::Counter& retries_;
  metrics::Histogram& ttfb_;
  metrics::Gauge& streams_active_;
  std::array<metrics::Counter*, 7> unpriced_{};  // by usage::Endpoint
};

}  // namespace lagoon::relay
