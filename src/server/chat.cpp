// The chat relay: the client side (Beast). See chat.hpp.
#include "chat.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>

#include "lagoon/chat/request.hpp"
#include "lagoon/chat/sse.hpp"
#include "lagoon/http/errors.hpp"
#include "lagoon/http/request_id.hpp"
#include "lagoon/log/log.hpp"
#include "lagoon/ratelimit/policy.hpp"
#include "lagoon/upstream/retry_after.hpp"
#include "responses.hpp"

namespace lagoon::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using asio::awaitable;
using Clock = std::chrono::steady_clock;
using Request = bhttp::request<bhttp::string_body>;
constexpr auto as_result = asio::as_tuple(asio::use_awaitable);

namespace {

// A non-stream answer or an upstream error body is read whole; beyond this it is not an answer.
constexpr std::size_t kMaxWholeBody = 64u << 20;
constexpr std::chrono::milliseconds kRetryDelay{200};
constexpr std::chrono::milliseconds kMaxRetryAfter{2000};
// The most an upstream's Retry-After may ask of a client: beyond this it is not a rate limit but an outage.
constexpr std::chrono::seconds kMaxPassedRetryAfter{3600};

// Exactly one usage record per authenticated request: kept in the in-flight table from admission (so a
// killed process still leaves it), pushed when this leaves scope, however it does.
class UsageGuard {
 public:
  UsageGuard(usage::Pipeline& p, usage::Record r, Clock::time_point started)
      : pipeline_(p), record_(std::move(r)), started_(started), in_flight_(pipeline_.open(record_)) {}
  ~UsageGuard() {
    record_.duration_ms = std::chrono::duration<double, std::milli>(Clock::now() - started_).count();
    if (record_.outcome.empty()) record_.outcome = "aborted";  // the server stopped mid-request
    pipeline_.push(record_, in_flight_);
  }
  UsageGuard(const UsageGuard&) = delete;
  UsageGuard& operator=(const UsageGuard&) = delete;
  usage::Record& operator*() { return record_; }
  usage::Record* operator->() { return &record_; }
  // Where what the request learns is noted as it goes (valid until this guard ends).
  usage::InFlight::Entry in_flight() const { return in_flight_; }

 private:
  usage::Pipeline& pipeline_;
  usage::Record record_;
  Clock::time_point started_;
  usage::InFlight::Entry in_flight_;
};

long long estimate_tokens(std::size_t chars) { return static_cast<long long>((chars + 3) / 4); }

void set_tokens(usage::Record& r, std::optional<long long> p, std::optional<long long> c, std::optional<long long> t) {
  auto clamp = [](std::optional<long long> v) -> std::optional<std::int32_t> {
    if (!v || *v < 0) return std::nullopt;
    return static_cast<std::int32_t>(std::min<long long>(*v, INT32_MAX));
  };
  r.prompt_tokens = clamp(p);
  r.completion_tokens = clamp(c);
  r.total_tokens = clamp(t ? t : (p && c ? std::optional<long long>(*p + *c) : std::nullopt));
}

void estimate(usage::Record& r, std::size_t prompt_bytes, std::size_t completion_chars) {
  set_tokens(r, estimate_tokens(prompt_bytes), estimate_tokens(completion_chars), std::nullopt);
  r.tokens_estimated = true;
}

// A client that left before the stream's final usage chunk is billed at least what it certainly cost:
// the whole prompt's estimate and the completion seen so far — or the upstream's running totals where
// they say more. Never less: leaving early must not be a way to pay for less than was spent.
void estimate_at_least(usage::Record& r, std::size_t prompt_bytes, std::size_t completion_chars) {
  const long long p = std::max<long long>(estimate_tokens(prompt_bytes), r.prompt_tokens.value_or(0));
  const long long c = std::max<long long>(estimate_tokens(completion_chars), r.completion_tokens.value_or(0));
  set_tokens(r, p, c, std::nullopt);
  r.tokens_estimated = true;
}

bool retryable_status(unsigned s) { return s == 429 || s == 502 || s == 503 || s == 504; }

// An upstream error body as it may be logged: bounded, so a huge or hostile body cannot flood the log,
// and without the gateway's own credential, should an upstream ever quote it back.
std::string log_excerpt(std::string_view body, std::string_view credential) {
  constexpr std::size_t kMaxLoggedBody = 512;
  std::string out(body.substr(0, kMaxLoggedBody));
  if (!credential.empty())
    for (auto at = out.find(credential); at != std::string::npos; at = out.find(credential, at))
      out.replace(at, credential.size(), "***");
  if (body.size() > kMaxLoggedBody) out += "…";
  return out;
}

// The upstream answered with an error before anything was sent to the client: what the client gets.
Response upstream_error_response(unsigned status, std::string body, const upstream::Head& head,
                                 const std::string& request_id, bool keep_alive, std::string_view credential) {
  if (status == 401 || status == 403) {
    log::error("the upstream refused the gateway's credential", {{"upstream_status", status}});
    return error_response(http::ErrorKind::upstream_auth_error,
                          "The upstream provider refused this gateway's credentials. This is not a problem with "
                          "your API key; the operator has been told.",
                          request_id, keep_alive);
  }
  if (status == 429) {
    ErrorExtras extras;
    extras.retry_after = upstream::retry_after_for_client(head.retry_after, kMaxPassedRetryAfter);
    return error_response(http::ErrorKind::rate_limited, "The upstream provider is rate limiting requests.", request_id,
                          keep_alive, extras);
  }
  if (status == 402) {
    // The operator's upstream account is out of funds: the client can do nothing about it, and the
    // upstream's wording (balances, plan names) is the operator's business, not the key holder's.
    log::error("the upstream refused for payment: the gateway's upstream account needs attention",
               {{"upstream_status", status}, {"request_id", request_id}, {"upstream_body", log_excerpt(body, credential)}});
    return error_response(http::ErrorKind::service_unavailable,
                          "The upstream provider cannot serve requests right now. Please retry later.", request_id,
                          keep_alive);
  }
  if (status >= 500)
    return error_response(http::ErrorKind::upstream_error,
                          "The upstream provider failed (status " + std::to_string(status) + ").", request_id,
                          keep_alive);
  // Other client errors (400, 404, 422…) concern the request: pass them on when OpenAI-shaped.
  const auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("error") && j["error"].is_object())
    return make_response(status, std::move(body), "application/json", request_id, keep_alive);
  return make_response(
      status,
      http::error_body(http::ErrorKind::bad_request,
                       "The upstream provider refused the request (status " + std::to_string(status) + ")."),
      "application/json", request_id, keep_alive);
}

awaitable<std::string> read_whole(upstream::Exchange& ex) {
  std::string body;
  for (;;) {
    auto piece = co_await ex.read_some();
    if (piece.empty()) break;
    if (body.size() + piece.size() > kMaxWholeBody)
      throw upstream::Error(upstream::Error::Kind::broken, "the upstream response is larger than 64 MiB");
    body.append(piece);
  }
  co_return body;
}

std::string error_event(std::string_view message) {
  const nlohmann::json e{
      {"error", {{"message", message}, {"type", "server_error"}, {"param", nullptr}, {"code", "upstream_error"}}}};
  return "data: " + e.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n\n";
}

}  // namespace

ChatHandler::ChatHandler(const config::Config& cfg, session::SessionStore& sessions, upstream::Client& upstream,
                         ratelimit::Limiter& limiter, usage::Pipeline& usage, metrics::Registry& metrics)
    : cfg_(cfg),
      sessions_(sessions),
      upstream_(upstream),
      limiter_(limiter),
      usage_(usage),
      retries_(metrics.counter("lagoon_upstream_retries_total", "Upstream requests sent a second time")),
      ttfb_(metrics.histogram("lagoon_upstream_ttfb_seconds", "Time from the request to the upstream's response head",
                              metrics::latency_buckets())),
      streams_active_(metrics.gauge("lagoon_http_streams_active", "Event streams being relayed now")) {}

// Registers a relay for cut_all() while it reads from the upstream; on the connection's executor.
class ChatHandler::RelayRegistration {
 public:
  RelayRegistration(ChatHandler& h, boost::asio::any_io_executor executor, upstream::Exchange* ex)
      : relays_(h.relays_), relay_(std::make_shared<Relay>()) {
    relay_->executor = std::move(executor);
    relay_->ex = ex;
    std::lock_guard lock(relays_->mutex);
    relays_->set.insert(relay_);
    if (relays_->cutting) {  // reached the upstream after the deadline
      relay_->cut = true;
      ex->abort();
    }
  }
  ~RelayRegistration() {
    relay_->ex = nullptr;  // a cut still queued for this executor finds nothing to abort
    std::lock_guard lock(relays_->mutex);
    relays_->set.erase(relay_);
  }
  RelayRegistration(const RelayRegistration&) = delete;
  RelayRegistration& operator=(const RelayRegistration&) = delete;
  const Relay& relay() const { return *relay_; }

 private:
  std::shared_ptr<Relays> relays_;
  std::shared_ptr<Relay> relay_;
};

void ChatHandler::cut_all() {
  std::lock_guard lock(relays_->mutex);
  relays_->cutting = true;
  for (const auto& r : relays_->set)
    asio::post(r->executor, [r] {
      if (!r->ex) return;
      r->cut = true;
      r->ex->abort();
    });
}

// Plain member coroutines, not lambdas: GCC 12 destroys a coroutine lambda's by-value parameters twice.
awaitable<void> ChatHandler::write_response(beast::tcp_stream& client, Response& res, ChatResult& out) {
  out.settle();  // a whole response is the last thing written: its tokens are final
  for (const auto& [name, value] : out.ratelimit_headers) res.set(name, value);
  out.status = res.result_int();
  out.keep_alive = out.keep_alive && res.keep_alive();
  client.expires_after(cfg_.write_timeout);
  auto [ec, n] = co_await bhttp::async_write(client, res, as_result);
  out.bytes_out += n;
  if (ec) out.keep_alive = false;
}

awaitable<bool> ChatHandler::write_chunk(beast::tcp_stream& client, const std::string& bytes, ChatResult& out) {
  if (bytes.empty()) co_return true;
  client.expires_after(cfg_.write_timeout);
  auto [ec, n] = co_await asio::async_write(client, bhttp::make_chunk(asio::buffer(bytes)), as_result);
  out.bytes_out += n;
  co_return !ec;
}

void ChatHandler::note_key(const auth::AuthResult& a, ChatResult& out) {
  out.facts.key_prefix = a.key().prefix;
  out.facts.user_id = a.key().user_id;
}

ChatResult& ChatHandler::with_facts(ChatResult& out, const usage::Record& rec) {
  out.facts.outcome = rec.outcome;
  out.facts.model = rec.model.value_or("");
  out.facts.stream = rec.stream;
  out.facts.total_tokens = rec.total_tokens;
  out.facts.ttfb_ms = rec.ttfb_ms;
  return out;
}

usage::Record ChatHandler::first_record(const auth::KeyRecord& key, const std::string& request_id,
                                        bool client_request_id) {
  usage::Record r;
  r.request_id = client_request_id ? http::new_request_id() : request_id;
  r.api_key_id = key.key_id;
  r.user_id = key.user_id;
  r.started_at_us =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  return r;
}

awaitable<ChatResult> ChatHandler::serve(beast::tcp_stream& client, const Request& req, const auth::AuthResult& a,
                                         const std::string& request_id, bool client_request_id, bool keep_alive) {
  ChatResult out;
  out.keep_alive = keep_alive;
  const auto started = Clock::now();
  note_key(a, out);
  const auth::KeyRecord& key = a.key();
  budget_.on_request();

  UsageGuard rec(usage_, first_record(key, request_id, client_request_id), started);

  auto parsed = chat::parse_chat_request(req.body());
  if (auto* bad = std::get_if<chat::InvalidRequest>(&parsed)) {
    rec->outcome = "invalid_request";
    rec->status_code = 400;
    {
      ErrorExtras extras;
      if (bad->param) extras.param = *bad->param;
      auto res = error_response(http::ErrorKind::invalid_request, bad->message, request_id, keep_alive, extras);
      co_await write_response(client, res, out);
      co_return with_facts(out, *rec);
    }
  }
  auto& chat_req = std::get<chat::ChatRequest>(parsed);
  rec->model = chat_req.model;
  rec->stream = chat_req.stream;
  out.in_flight = rec.in_flight();
  out.in_flight.note(*rec);
  out.in_flight.note_prompt(estimate_tokens(chat_req.body_bytes));

  // Rate limits: one Redis round trip for a key that has any, none otherwise.
  const auto estimate =
      ratelimit::estimate_tokens(chat_req.body_bytes, chat_req.max_tokens, cfg_.rate_limit_default_max_tokens);
  const ratelimit::Decision limit = co_await limiter_.admit(key, estimate);
  out.ratelimit_headers = ratelimit::headers(limit);
  if (limit.refused()) {
    rec->outcome = "rate_limited";
    ErrorExtras extras;
    extras.retry_after = ratelimit::retry_after_seconds(limit.retry_after_us);
    auto res = error_response(limit.kind == ratelimit::Decision::Kind::limited_tokens
                                  ? http::ErrorKind::rate_limited_tokens
                                  : http::ErrorKind::rate_limited,
                              ratelimit::refusal_message(limit), request_id, keep_alive, extras);
    rec->status_code = res.result_int();
    co_await write_response(client, res, out);
    co_return with_facts(out, *rec);
  }

  // The estimate charged at admission is replaced by what the request really used.
  if (limit.tokens) out.settle = TokenSettlement{&limiter_, &key, limit, &*rec};
  co_await forward(client, chat_req, key, *rec, request_id, keep_alive, started, out);
  out.settle();  // if no write did (the client went away)
  co_return with_facts(out, *rec);
}

awaitable<void> ChatHandler::forward(beast::tcp_stream& client, const chat::ChatRequest& chat_req,
                                     const auth::KeyRecord& key, usage::Record& rec, const std::string& request_id,
                                     bool keep_alive, Clock::time_point started, ChatResult& out) {
  const auto session = co_await sessions_.session_for(key, chat_req.model);
  if (!session) {
    rec.outcome = "session_unavailable";
    auto res = error_response(http::ErrorKind::service_unavailable,
                              "Sessions are temporarily unavailable. Please retry shortly.", request_id, keep_alive);
    rec.status_code = res.result_int();
    co_await write_response(client, res, out);
    co_return;
  }
  rec.session_id = session->id;

  // Upstream, with one retry while nothing has reached the client.
  std::unique_ptr<upstream::Exchange> ex;
  for (int attempt = 1;; ++attempt) {
    std::optional<upstream::Error> failure;
    try {
      ex = co_await upstream_.send("POST", "/chat/completions", chat_req.upstream_body);
    } catch (const upstream::Error& e) {
      failure = e;
    }
    std::chrono::milliseconds delay = kRetryDelay;
    if (!failure) {
      if (!retryable_status(ex->head().status) || attempt == 2 || !budget_.try_spend()) break;
      if (const auto& ra = ex->head().retry_after)
        delay = upstream::retry_after_delay(*ra, kMaxRetryAfter).value_or(kRetryDelay);
      ex.reset();  // not read: the connection is closed, not reused
    } else if (failure->kind() != upstream::Error::Kind::connect || attempt == 2 || !budget_.try_spend()) {
      const bool timeout = failure->kind() == upstream::Error::Kind::first_byte;
      rec.outcome = timeout ? "upstream_timeout" : "upstream_unavailable";
      log::warn("upstream request failed", {{"request_id", request_id}, {"error", failure->what()}});
      auto res = error_response(
          timeout ? http::ErrorKind::upstream_timeout : http::ErrorKind::upstream_error,
          timeout ? "The upstream provider did not answer in time." : "The upstream provider could not be reached.",
          request_id, keep_alive);
      rec.status_code = res.result_int();
      co_await write_response(client, res, out);
      co_return;
    }
    retries_.inc();
    asio::steady_timer wait(co_await asio::this_coro::executor, delay);
    co_await wait.async_wait(as_result);
  }
  const auto head = ex->head();
  out.facts.upstream_status = head.status;
  const auto executor = co_await asio::this_coro::executor;
  const RelayRegistration registration(*this, executor, ex.get());
  rec.ttfb_ms = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
  ttfb_.observe(*rec.ttfb_ms / 1000.0);

  const bool event_stream = head.content_type.rfind("text/event-stream", 0) == 0;
  if (head.status / 100 != 2 || !chat_req.stream || !event_stream) {
    std::string body;
    std::optional<upstream::Error::Kind> broke;
    try {
      body = co_await read_whole(*ex);
    } catch (const upstream::Error& e) {
      broke = e.kind();
    }
    if (broke && registration.relay().cut) {
      rec.outcome = "shutdown";
      auto res = error_response(http::ErrorKind::service_unavailable,
                                "The gateway is shutting down and could not finish this request. Please retry.",
                                request_id, false);
      rec.status_code = res.result_int();
      co_await write_response(client, res, out);
      co_return;
    }
    if (broke) {
      const bool gap = *broke == upstream::Error::Kind::gap;
      rec.outcome = gap ? "upstream_timeout" : "upstream_unavailable";
      auto res = error_response(gap ? http::ErrorKind::upstream_timeout : http::ErrorKind::upstream_error,
                                "The upstream provider's answer broke off.", request_id, keep_alive);
      rec.status_code = res.result_int();
      co_await write_response(client, res, out);
      co_return;
    }
    if (head.status / 100 != 2) {
      rec.outcome = "upstream_error";
      auto res = upstream_error_response(head.status, std::move(body), head, request_id, keep_alive,
                                         cfg_.upstream_api_key);
      rec.status_code = res.result_int();
      co_await write_response(client, res, out);
      co_return;
    }
    if (const auto u = chat::usage_of_object(body)) {
      set_tokens(rec, u->prompt_tokens, u->completion_tokens, u->total_tokens);
    } else {
      estimate(rec, chat_req.body_bytes, body.size());
    }
    rec.outcome = "ok";
    rec.status_code = static_cast<std::int32_t>(head.status);
    {
      auto res =
          make_response(head.status, std::move(body),
                        head.content_type.empty() ? "application/json" : head.content_type, request_id, keep_alive);
      co_await write_response(client, res, out);
      co_return;
    }
  }

  co_await relay_stream(client, *ex, chat_req, rec, request_id, keep_alive, registration.relay(), out);
}

awaitable<void> ChatHandler::relay_stream(beast::tcp_stream& client, upstream::Exchange& ex,
                                          const chat::ChatRequest& chat_req, usage::Record& rec,
                                          const std::string& request_id, bool keep_alive, const Relay& relay,
                                          ChatResult& out) {
  streams_active_.add(1);
  struct Active {
    metrics::Gauge& g;
    ~Active() { g.add(-1); }
  } active{streams_active_};
  // The stream: headers now, then events as they come.
  bhttp::response<bhttp::empty_body> res{bhttp::status::ok, 11};
  res.set(bhttp::field::content_type, "text/event-stream");
  res.set(bhttp::field::cache_control, "no-cache");
  res.set("X-Accel-Buffering", "no");
  res.set("X-Request-Id", request_id);
  for (const auto& [name, value] : out.ratelimit_headers) res.set(name, value);
  res.chunked(true);
  res.keep_alive(keep_alive);
  bhttp::response_serializer<bhttp::empty_body> sr(res);
  client.expires_after(cfg_.write_timeout);
  auto [hec, hn] = co_await bhttp::async_write_header(client, sr, as_result);
  out.status = 200;
  rec.status_code = 200;
  out.in_flight.note(rec);  // the session and status, should the process die mid-stream
  out.bytes_out += hn;
  if (hec) {
    ex.abort();
    rec.outcome = "client_disconnected";
    estimate_at_least(rec, chat_req.body_bytes, 0);
    out.keep_alive = false;
    co_return;
  }

  // Notice a client that hangs up while the upstream is silent (between events, or stalled), not only at
  // the next write: a reset connection. An end of stream is not departure: a client may half-close
  // after its request (shutdown(SHUT_WR), legal HTTP/1.1) and still read the answer, so it gets the
  // whole stream; one that closed for good is noticed at the next write, which fails. The watcher runs
  // on this connection's strand, like this coroutine, and touches nothing once the stream is over.
  struct ClientWatch : std::enable_shared_from_this<ClientWatch> {
    ClientWatch(beast::tcp_stream& c, upstream::Exchange& e) : client(c), exchange(e) {}
    beast::tcp_stream& client;
    upstream::Exchange& exchange;
    bool active = true;
    bool gone = false;
    void arm() {
      client.socket().async_wait(asio::socket_base::wait_read,
                                 [self = shared_from_this()](const boost::system::error_code& ec) { self->readable(ec); });
    }
    void readable(const boost::system::error_code& ec) {
      if (ec || !active) return;
      // Never a blocking receive here: readiness can be stale by the time this runs, and a blocking peek
      // would then hold this reactor thread, and this connection's strand with the stream on it, until
      // the client sends something — which a client waiting for this answer never does. (Found by
      // `make soak`: a reactor thread parked in poll() for good.)
      char byte;
      const auto n = ::recv(client.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n > 0) return;  // the client's next request: it is still there
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return arm();
      // End of stream: half-closed, or gone for good — the next write tells. Not re-armed: the socket
      // stays readable from now on.
      if (n == 0) return;
      gone = true;  // reset
      exchange.abort();
    }
  };
  auto watch = std::make_shared<ClientWatch>(client, ex);
  watch->arm();
  struct EndWatch {
    std::shared_ptr<ClientWatch> w;
    ~EndWatch() {
      if (!w->active) return;
      w->active = false;
      boost::system::error_code ignored;
      w->client.socket().cancel(ignored);
    }
  } end_watch{watch};

  chat::SseScanner scanner;
  std::vector<chat::SseEvent> events;
  std::string outbuf;
  std::size_t content_chars = 0;
  bool saw_usage = false;        // any usage numbers (some upstreams send running totals)
  bool saw_final_usage = false;  // the usage-only chunk: the last word
  std::optional<std::string> failure;
  for (;;) {
    std::string_view piece;
    try {
      piece = co_await ex.read_some();
    } catch (const upstream::Error& e) {
      if (relay.cut) {
        failure = "The gateway is shutting down; the answer is incomplete. Please retry.";
        break;
      }
      failure = e.kind() == upstream::Error::Kind::gap
                    ? "The upstream provider stopped sending; the answer is incomplete."
                    : "The upstream provider's stream broke off.";
      if (!watch->gone) log::warn("upstream stream failed", {{"request_id", request_id}, {"error", e.what()}});
      break;
    }
    outbuf.clear();
    events.clear();
    if (piece.empty()) {
      outbuf = scanner.take_pending();  // a last event without its blank line is still upstream's
    } else if (!scanner.feed(piece, events)) {
      failure = "The upstream provider sent an event larger than the gateway accepts.";
      ex.abort();
      break;
    }
    for (auto& ev : events) {
      if (ev.has_data && ev.data != "[DONE]") {
        if (auto u = chat::usage_of_chunk(ev.data)) {
          saw_usage = true;
          set_tokens(rec, u->prompt_tokens, u->completion_tokens, u->total_tokens);
          // The usage-only chunk is the last word on usage; some upstreams also put running totals in
          // earlier chunks, which must not settle the count.
          if (u->usage_only) {
            saw_final_usage = true;
            out.settle();
          }
          if (u->usage_only && !chat_req.client_wants_usage) continue;  // the client did not ask for it
        } else {
          content_chars += ev.data.size();
          if (!chat_req.client_wants_usage) {
            // Remove the "usage":null the client would not have seen had it talked to the upstream.
            const std::string stripped = chat::without_null_member(ev.data, "usage");
            const auto at = ev.raw.find(ev.data);
            if (stripped.size() != ev.data.size() && at != std::string::npos)
              ev.raw.replace(at, ev.data.size(), stripped);
          }
        }
      }
      outbuf += ev.raw;
    }
    out.in_flight.note_completion(estimate_tokens(content_chars));
    if (!co_await write_chunk(client, outbuf, out)) {
      ex.abort();  // the upstream sees the close at once
      rec.outcome = "client_disconnected";
      out.keep_alive = false;
      if (!saw_final_usage) estimate_at_least(rec, chat_req.body_bytes, content_chars);
      co_return;
    }
    if (piece.empty()) break;
  }
  if (watch->gone && !saw_final_usage)
    estimate_at_least(rec, chat_req.body_bytes, content_chars);
  else if (!saw_usage)
    estimate(rec, chat_req.body_bytes, content_chars);
  out.settle();
  if (watch->gone) {
    rec.outcome = "client_disconnected";
    out.keep_alive = false;
    co_return;
  }
  if (failure) {
    rec.outcome = relay.cut ? "shutdown" : "upstream_error";
    out.keep_alive = false;
    const std::string event = error_event(*failure);
    co_await write_chunk(client, event, out);
  } else {
    rec.outcome = "ok";
  }
  client.expires_after(cfg_.write_timeout);
  auto [lec, ln] = co_await asio::async_write(client, bhttp::make_chunk_last(), as_result);
  out.bytes_out += ln;
  if (lec) out.keep_alive = false;
}

}  // namespace lagoon::server

namespace lagoon::server {

awaitable<ChatResult> ChatHandler::serve_models(beast::tcp_stream& client, const auth::AuthResult& a,
                                                const std::string& request_id, bool client_request_id,
                                                bool keep_alive) {
  constexpr auto kModelsFresh = std::chrono::minutes(5);
  ChatResult out;
  out.keep_alive = keep_alive;
  const auto started = Clock::now();
  note_key(a, out);
  UsageGuard rec(usage_, first_record(a.key(), request_id, client_request_id), started);

  std::string cached;
  bool fresh = false;
  {
    std::lock_guard lock(models_mutex_);
    cached = models_body_;
    fresh = !cached.empty() && Clock::now() - models_fetched_ < kModelsFresh;
  }
  if (!fresh) {
    std::optional<std::string> fetched;
    std::optional<Response> failure;
    try {
      auto ex = co_await upstream_.send("GET", "/models", "");
      const auto head = ex->head();
      std::string body = co_await read_whole(*ex);
      const auto j = nlohmann::json::parse(body, nullptr, false);
      if (head.status == 200 && j.is_object() && j.contains("data") && j["data"].is_array())
        fetched = std::move(body);
      else if (head.status != 200)
        failure = upstream_error_response(head.status, std::move(body), head, request_id, keep_alive,
                                          cfg_.upstream_api_key);
      else
        failure = error_response(http::ErrorKind::upstream_error, "The upstream provider sent no model list.",
                                 request_id, keep_alive);
    } catch (const upstream::Error& e) {
      failure = error_response(e.kind() == upstream::Error::Kind::first_byte ? http::ErrorKind::upstream_timeout
                                                                             : http::ErrorKind::upstream_error,
                               "The upstream provider could not be asked for its models.", request_id, keep_alive);
    }
    if (fetched) {
      std::lock_guard lock(models_mutex_);
      models_body_ = *fetched;
      models_fetched_ = Clock::now();
      cached = std::move(*fetched);
    } else if (cached.empty()) {
      rec->outcome = "upstream_error";
      rec->status_code = failure->result_int();
      co_await write_response(client, *failure, out);
      co_return with_facts(out, *rec);
    } else {
      log::warn("serving the cached model list: the upstream cannot be asked now");
    }
  }
  rec->outcome = "ok";
  rec->status_code = 200;
  auto res = make_response(200, std::move(cached), "application/json", request_id, keep_alive);
  co_await write_response(client, res, out);
  co_return with_facts(out, *rec);
}

}  // namespace lagoon::server
