// ChatHandler: POST /api/v1/chat/completions (and /v1/…) from authentication to the last byte relayed.
//
// Takes a request the server has already authenticated from its head (before reading the body), validates
// the body (400 naming the field, with no upstream call), applies the key's rate limits (429 with Retry-After; x-ratelimit-* headers on every
// answer to a limited key), sends it upstream (retrying once, before anything reached the client, on connect
// failures and 429/502/503/504 within a retry budget), then relays: a non-stream answer whole, a stream
// event by event with backpressure (the next upstream read waits for the client's write). Upstream
// errors are mapped to OpenAI-shaped gateway errors; an upstream 401/403 is never passed on.
// Every authenticated request leaves exactly one usage record, whatever happens after — the record is
// pushed by a guard object, so even a request abandoned at shutdown is counted.
// No Postgres lease is ever taken here (authentication, which may take one on a cache miss, is done
// by the server before the body is read).
//
// Internal to the server (Beast types); thread-safety: serve() from any number of connection coroutines.
#pragma once

#include <atomic>
#include <mutex>
#include <optional>
#include <unordered_set>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "lagoon/auth/authenticator.hpp"
#include "lagoon/chat/request.hpp"
#include "lagoon/config/config.hpp"
#include "lagoon/metrics/registry.hpp"
#include "lagoon/ratelimit/limiter.hpp"
#include "lagoon/session/store.hpp"
#include "lagoon/upstream/client.hpp"
#include "lagoon/usage/pipeline.hpp"

namespace lagoon::server {

// Charges a token-limited request's real usage in place of its estimate, once, as soon as it is known
// and before the client can see the end of the answer — so a client's next request already meets the
// corrected budget.
struct TokenSettlement {
  ratelimit::Limiter* limiter = nullptr;  // null: nothing to settle
  const auth::KeyRecord* key = nullptr;
  ratelimit::Decision decision;
  const usage::Record* record = nullptr;
  void operator()() {
    if (!limiter) return;
    limiter->settle(*key, decision, record->total_tokens.value_or(0));
    limiter = nullptr;
  }
};

// What the access log and the request metrics learn while a request is handled (empty/unset when not
// known, e.g. for a request refused before authentication).
struct RequestFacts {
  std::string key_prefix;
  std::int64_t user_id = 0;
  std::string outcome;  // empty: derived from the status
  std::string model;
  bool stream = false;
  std::optional<std::int32_t> total_tokens;
  std::optional<double> ttfb_ms;
  unsigned upstream_status = 0;
  std::string auth_denied;  // why a key was refused: missing, malformed, forged, unknown, revoked, user_inactive
};

struct ChatResult {
  unsigned status = 0;
  std::size_t bytes_out = 0;
  bool keep_alive = false;
  RequestFacts facts;
  std::vector<std::pair<std::string, std::string>> ratelimit_headers;  // x-ratelimit-*, on every response
  TokenSettlement settle;  // only while serve() runs
  usage::InFlight::Entry in_flight;  // the request's in-flight usage; only while serve() runs
};

// At most one retry per request, and retries at most ~20 % of requests: a failing upstream must not
// be hit twice as hard. A token bucket: each request earns 0.2 tokens (up to 10), a retry spends one.
class RetryBudget {
 public:
  void on_request() {
    std::lock_guard lock(mutex_);
    tokens_ = std::min(10.0, tokens_ + 0.2);
  }
  bool try_spend() {
    std::lock_guard lock(mutex_);
    if (tokens_ < 1.0) return false;
    tokens_ -= 1.0;
    return true;
  }

 private:
  std::mutex mutex_;
  double tokens_ = 1.0;
};

class ChatHandler {
 public:
  ChatHandler(const config::Config& cfg, session::SessionStore& sessions, upstream::Client& upstream,
              ratelimit::Limiter& limiter, usage::Pipeline& usage, metrics::Registry& metrics);

  // Answers the request of the authenticated key `a` on `client`. `client_request_id` says whether
  // request_id came from the client (then the usage row gets an id of its own, since a client may repeat
  // its ids).
  boost::asio::awaitable<ChatResult> serve(
      boost::beast::tcp_stream& client,
      const boost::beast::http::request<boost::beast::http::string_body>& req, const auth::AuthResult& a,
      const std::string& request_id, bool client_request_id, bool keep_alive);

  // GET /api/v1/models: the upstream's list with the gateway's credential, cached for 5 minutes (and
  // served stale while the upstream cannot be asked).
  boost::asio::awaitable<ChatResult> serve_models(boost::beast::tcp_stream& client, const auth::AuthResult& a,
                                                  const std::string& request_id, bool client_request_id,
                                                  bool keep_alive);

  // The drain deadline has passed: every request still reading from the upstream ends now — a stream
  // with a final error event, a whole answer with 503 — and any that reaches the upstream later is
  // ended the same way. Thread-safe.
  void cut_all();

  // The usage record of an authenticated request, before anything else is known about it. Its id is
  // request_id unless the client chose that (clients may repeat their ids; usage rows must not).
  static usage::Record first_record(const auth::KeyRecord& key, const std::string& request_id,
                                    bool client_request_id);

 private:
  // A request reading from the upstream, as cut_all() reaches it. Touched only on the connection's
  // executor (ex, cut) or under Relays::mutex (the set).
  struct Relay {
    boost::asio::any_io_executor executor;
    upstream::Exchange* ex = nullptr;
    bool cut = false;
  };
  class RelayRegistration;

  using Response = boost::beast::http::response<boost::beast::http::string_body>;
  using Request = boost::beast::http::request<boost::beast::http::string_body>;
  // Copies what the usage record knows into the result's facts, for the access log.
  static ChatResult& with_facts(ChatResult& out, const usage::Record& rec);
  // The access log's facts about the authenticated key.
  static void note_key(const auth::AuthResult& a, ChatResult& out);

  // An admitted request from its session to the last byte relayed.
  boost::asio::awaitable<void> forward(boost::beast::tcp_stream& client, const chat::ChatRequest& chat_req,
                                       const auth::KeyRecord& key, usage::Record& rec, const std::string& request_id,
                                       bool keep_alive, std::chrono::steady_clock::time_point started,
                                       ChatResult& out);
  boost::asio::awaitable<void> write_response(boost::beast::tcp_stream& client, Response& res, ChatResult& out);
  // The upstream answered 2xx with an event stream: relay it event by event (see above).
  boost::asio::awaitable<void> relay_stream(boost::beast::tcp_stream& client, upstream::Exchange& ex,
                                            const chat::ChatRequest& chat_req, usage::Record& rec,
                                            const std::string& request_id, bool keep_alive, const Relay& relay,
                                            ChatResult& out);
  boost::asio::awaitable<bool> write_chunk(boost::beast::tcp_stream& client, const std::string& bytes,
                                           ChatResult& out);

  const config::Config& cfg_;
  session::SessionStore& sessions_;
  upstream::Client& upstream_;
  ratelimit::Limiter& limiter_;
  usage::Pipeline& usage_;
  RetryBudget budget_;
  std::mutex models_mutex_;
  std::string models_body_;  // the last good list, as the upstream sent it
  std::chrono::steady_clock::time_point models_fetched_{};
  metrics::Counter& retries_;
  metrics::Histogram& ttfb_;
  metrics::Gauge& streams_active_;
  // Shared with the registrations, which may outlive this handler: at shutdown, coroutine frames still
  // suspended are destroyed with the io_context, after the handler.
  struct Relays {
    std::mutex mutex;
    std::unordered_set<std::shared_ptr<Relay>> set;
    bool cutting = false;
  };
  std::shared_ptr<Relays> relays_ = std::make_shared<Relays>();
};

}  // namespace lagoon::server
