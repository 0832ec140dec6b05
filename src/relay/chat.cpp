// The chat route from its checks to the upstream's answer; the event-stream relay is in stream.cpp.
#include "lagoon/relay/chat.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "chat_request_state.hpp"
#include "lagoon/accounting/tokens.hpp"
#include "lagoon/chat/sse.hpp"
#include "lagoon/log/log.hpp"
#include "lagoon/ratelimit/policy.hpp"
#include "lagoon/relay/whole.hpp"

namespace lagoon::relay {

namespace asio = boost::asio;
using asio::awaitable;
using accounting::Outcome;
using Clock = std::chrono::steady_clock;

void RetryBudget::on_request() {
  std::lock_guard lock(mutex_);
  tokens_ = std::min(10.0, tokens_ + 0.2);
}

bool RetryBudget::try_spend() {
  std::lock_guard lock(mutex_);
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

ChatRoute::ChatRoute(const ChatDeps& deps)
    : deps_(deps),
      retries_(deps.metrics.counter("lagoon_upstream_retries_total", "Upstream requests sent a second time")),
      ttfb_(deps.metrics.histogram("lagoon_upstream_ttfb_seconds",
                                   "Time from the request to the upstream's response head",
                                   metrics::latency_buckets())),
      streams_active_(deps.metrics.gauge("lagoon_http_streams_active", "Event streams being relayed now")) {}

namespace {

routes::Served finished(ChatRoute::Request& r) {
  auto& f = r.out.facts;
  f.key_prefix = r.key().prefix;
  f.user_id = r.key().user_id;
  f.outcome = r.usage.outcome().value_or(Outcome::aborted);
  f.model = r.usage->model.value_or("");
  f.stream = r.usage->stream;
  f.total_tokens = r.usage->total_tokens;
  f.ttfb_ms = r.usage->ttfb_ms;
  return std::move(r.out);
}

Verdict rate_limited(const ratelimit::Decision& limit) {
  http::ErrorExtras extras;
  extras.retry_after = ratelimit::retry_after_seconds(limit.retry_after_us);
  return {Outcome::rate_limited,
          http::error_reply(limit.kind == ratelimit::Decision::Kind::limited_tokens ? http::ErrorKind::rate_limited_tokens
                                                                                    : http::ErrorKind::rate_limited,
                            ratelimit::refusal_message(limit), extras)};
}

}  // namespace

awaitable<routes::Served> ChatRoute::serve(const routes::Call& call, Downstream& client) {
  Request r(call, client, deps_.usage);
  budget_.on_request();

  // Check: the body.
  auto parsed = chat::parse_chat_request(call.body);
  if (auto* bad = std::get_if<chat::InvalidRequest>(&parsed)) {
    http::ErrorExtras extras;
    if (bad->param) extras.param = *bad->param;
    Verdict invalid{Outcome::invalid_request, http::error_reply(http::ErrorKind::invalid_request, bad->message, extras)};
    co_await reply(r, invalid);
    co_return finished(r);
  }
  r.body = std::move(std::get<chat::ChatRequest>(parsed));
  r.usage->model = r.body.model;
  r.usage->stream = r.body.stream;
  r.usage.in_flight().note(*r.usage);
  r.usage.in_flight().note_prompt(accounting::estimate_tokens(r.body.body_bytes));

  // Check: the key's limits — one Redis round trip for a key that has any, none otherwise.
  const auto estimate =
      ratelimit::estimate_tokens(r.body.body_bytes, r.body.max_tokens, deps_.cfg.rate_limit_default_max_tokens);
  const ratelimit::Decision limit = co_await deps_.limits.admit(r.key(), estimate);
  r.ratelimit_headers = ratelimit::headers(limit);
  if (limit.refused()) {
    Verdict refused = rate_limited(limit);
    co_await reply(r, refused);
    co_return finished(r);
  }
  // The estimate charged at admission is replaced by what the request really used.
  if (limit.tokens) r.settle = Settlement{&deps_.limits, &r.key(), limit, &*r.usage};

  co_await forward(r);
  r.settle();  // if no write did (the client went away)
  co_return finished(r);
}

awaitable<void> ChatRoute::reply(Request& r, Verdict& verdict) {
  r.settle();  // a whole answer is the last thing written: its tokens are final
  for (const auto& [name, value] : r.ratelimit_headers) verdict.reply.set(name, value);
  r.usage.end(verdict.outcome, verdict.reply.status);
  r.out.status = verdict.reply.status;
  if (verdict.reply.close) r.out.close = true;
  if (!co_await r.client.send(verdict.reply)) r.out.close = true;
}

awaitable<void> ChatRoute::forward(Request& r) {
  // One session per base model: Venice's ":param=value" suffixes ask the same model for other behaviour.
  const std::string model(chat::base_model(r.body.model));
  const auto session = co_await deps_.sessions.session_for(r.key(), model);
  if (!session) {
    Verdict unavailable{Outcome::session_unavailable,
                        http::error_reply(http::ErrorKind::service_unavailable,
                                          "Sessions are temporarily unavailable. Please retry shortly.")};
    co_await reply(r, unavailable);
    co_return;
  }
  r.usage->session_id = session->id;

  auto sent = co_await send_with_retry(r);
  if (!sent) {
    log::warn("upstream request failed", {{"request_id", r.call.request_id}, {"error", sent.error().what}});
    Verdict failed = failed_before_head(sent.error().kind);
    co_await reply(r, failed);
    co_return;
  }
  upstream::Exchange& ex = **sent;
  const upstream::Head& head = ex.head();
  r.out.facts.upstream_status = head.status;
  const Cuts::Registration registration(deps_.cuts, co_await asio::this_coro::executor, ex);
  r.usage->ttfb_ms = std::chrono::duration<double, std::milli>(Clock::now() - r.started).count();
  ttfb_.observe(*r.usage->ttfb_ms / 1000.0);

  const bool event_stream = head.content_type.rfind("text/event-stream", 0) == 0;
  if (head.status / 100 != 2 || !r.body.stream || !event_stream)
    co_await relay_whole(r, ex, registration);
  else
    co_await relay_stream(r, ex, registration);
}

// Upstream, with one retry while nothing has reached the client (decisions.hpp says when).
awaitable<upstream::Result<std::unique_ptr<upstream::Exchange>>> ChatRoute::send_with_retry(Request& r) {
  for (int attempt = 1;; ++attempt) {
    auto sent =
        co_await deps_.upstream.send("POST", "/chat/completions", r.body.upstream_body, r.call.forward_headers);
    std::optional<unsigned> status;
    std::optional<upstream::Failure::Kind> failure;
    if (sent) status = (*sent)->head().status;
    else failure = sent.error().kind;
    if (!worth_retrying(attempt, status, failure) || !budget_.try_spend()) co_return sent;
    const auto delay = failure ? deps_.retry_delay : retry_delay((*sent)->head().retry_after, deps_.retry_delay);
    if (sent) sent->reset();  // not read: the connection is closed, not reused
    retries_.inc();
    asio::steady_timer wait(co_await asio::this_coro::executor, delay);
    co_await wait.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

awaitable<void> ChatRoute::relay_whole(Request& r, upstream::Exchange& ex, const Cuts::Registration& registration) {
  const upstream::Head& head = ex.head();
  std::string body;
  if (const auto broke = co_await read_whole(ex, body)) {
    Verdict failed = failed_in_body(broke->kind, registration.cut());
    co_await reply(r, failed);
    co_return;
  }
  if (head.status / 100 != 2) {
    Verdict refused = upstream_status(head.status, body, head.retry_after);
    log_alert(refused.alert, head.status, r.call.request_id, body, deps_.cfg.upstream_api_key, deps_.metrics);
    co_await reply(r, refused);
    co_return;
  }
  if (const auto u = chat::usage_of_object(body))
    accounting::set_tokens(*r.usage, u->prompt_tokens, u->completion_tokens, u->total_tokens);
  else
    accounting::estimate(*r.usage, r.body.body_bytes, body.size());
  const std::string_view type = head.content_type.empty() ? "application/json" : std::string_view(head.content_type);
  Verdict ok{Outcome::ok, http::body_reply(head.status, std::move(body), type)};
  for (const auto& [name, value] : head.relayed) ok.reply.set(name, value);
  co_await reply(r, ok);
}

}  // namespace lagoon::relay
