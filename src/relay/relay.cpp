// The relay every route shares (relay.hpp): limits, session, upstream with its retry, whole answers.
// The piece-by-piece relay is in pieces.cpp.
#include "lagoon/relay/relay.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "lagoon/chat/request.hpp"
#include "lagoon/log/log.hpp"
#include "lagoon/ratelimit/policy.hpp"
#include "lagoon/relay/whole.hpp"
#include "request_state.hpp"

namespace lagoon::relay {

namespace asio = boost::asio;
using asio::awaitable;
using accounting::Outcome;
using Clock = std::chrono::steady_clock;

namespace {

// Refusals answered from frames of their own: a Verdict held in Relay::admit's coroutine frame made the
// frame of every admitted request larger than Asio recycles, a malloc and free each time.
awaitable<bool> refuse_model(Relay& relay, Request& r, const std::optional<std::string>& model) {
  Verdict refused = model_refusal(model);
  co_await relay.reply(r, refused);
  co_return false;
}

awaitable<bool> refuse_concurrency(Relay& relay, Request& r, std::int64_t max) {
  Verdict refused = concurrency_refusal(max);
  co_await relay.reply(r, refused);
  co_return false;
}

awaitable<bool> refuse_admission(Relay& relay, Request& r, const ratelimit::Decision& limit, std::string_view model) {
  r.slot.reset();
  Verdict refused = admission_refusal(limit, model);
  co_await relay.reply(r, refused);
  co_return false;
}

}  // namespace

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

Relay::Relay(const RelayDeps& deps)
    : deps_(deps),
      retries_(deps.metrics.counter("lagoon_upstream_retries_total", "Upstream requests sent a second time")),
      ttfb_(deps.metrics.histogram("lagoon_upstream_ttfb_seconds",
                                   "Time from the request to the upstream's response head",
                                   metrics::latency_buckets())),
      streams_active_(deps.metrics.gauge("lagoon_http_streams_active", "Event streams being relayed now")) {
  for (const auto e : {usage::Endpoint::chat, usage::Endpoint::embeddings, usage::Endpoint::images,
                       usage::Endpoint::audio, usage::Endpoint::responses})
    unpriced_[static_cast<std::size_t>(e)] = &deps.metrics.counter(
        "lagoon_unpriced_requests_total", "Requests served with no price for them (their cost is NULL)",
        {{"endpoint", std::string(usage::endpoint_name(e))}});
}

routes::Served Relay::finished(Request& r) {
  r.settle();  // a request refused before admission, or one whose usage no write settled: its cost
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

awaitable<void> Relay::reply(Request& r, Verdict& verdict) {
  r.settle();  // a whole answer is the last thing written: its tokens are final
  for (const auto& [name, value] : r.ratelimit_headers) verdict.reply.set(name, value);
  r.usage.end(verdict.outcome, verdict.reply.status);
  r.out.status = verdict.reply.status;
  if (verdict.reply.close) r.out.close = true;
  if (!co_await r.client.send(verdict.reply)) {
    r.out.close = true;
    // Served upstream, but never received: the row says so (an error stays the error it was).
    if (verdict.outcome == Outcome::ok) r.usage.set_outcome(Outcome::client_disconnected);
  }
}

awaitable<bool> Relay::permitted(Request& r) {
  // The route groups are named as usage rows name their endpoints.
  const std::string_view group = usage::endpoint_name(r.usage->endpoint);
  const auto bit = auth::group_from(group);
  if (bit && r.key().policy.allows(*bit)) co_return true;
  Verdict refused = endpoint_refusal(group);
  co_await reply(r, refused);
  co_return false;
}

awaitable<bool> Relay::admit(Request& r, std::optional<std::int64_t> estimate, const money::Consumed& most) {
  r.settle.prices = deps_.prices.snapshot();
  r.settle.unpriced = unpriced_[static_cast<std::size_t>(r.usage->endpoint)];
  const auto model = accounting::priced_model(*r.usage, r.settle.facts);
  const auth::KeyPolicy& policy = r.key().policy;
  if (!policy.models.empty() && (model || r.takes_model) && (!model || !policy.allows_model(*model)))
    co_return co_await refuse_model(*this, r, model);
  if (policy.max_concurrent > 0 && deps_.slots) {
    r.slot = co_await deps_.slots->acquire(r.key().limit_id(), policy.max_concurrent);
    if (!r.slot.held()) co_return co_await refuse_concurrency(*this, r, policy.max_concurrent);
  }
  // A key without limits or budgets: nothing to check or charge, no Redis call (Decision{} allows).
  if (!deps_.limits.applies(r.key(), estimate.has_value())) co_return true;
  // Only a budget holds money: a key without one skips the price lookup.
  const auto found = model && r.key().has_budget() ? r.settle.prices->find(*model) : std::nullopt;
  const std::optional<money::Pico> at_most = found ? money::most(*found->price, most) : std::nullopt;
  const ratelimit::Decision limit = co_await deps_.limits.admit(r.key(), estimate, at_most);
  r.ratelimit_headers = ratelimit::headers(limit);
  if (limit.refused()) co_return co_await refuse_admission(*this, r, limit, model.value_or(""));
  // What admission charged is replaced by what the request really used and cost.
  if (!limit.tokens && !limit.held) co_return true;
  r.settle.gate = &deps_.limits;
  r.settle.key = &r.key();
  r.settle.decision = limit;
  co_return true;
}

awaitable<bool> Relay::open_session(Request& r, std::string_view model) {
  // One session per base model: Venice's ":param=value" suffixes ask the same model for other behaviour.
  const std::string base(chat::base_model(model));
  const auto session = co_await deps_.sessions.session_for(r.key(), base);
  if (!session) {
    Verdict unavailable{Outcome::session_unavailable,
                        http::error_reply(http::ErrorKind::service_unavailable,
                                          "Sessions are temporarily unavailable. Please retry shortly.")};
    co_await reply(r, unavailable);
    co_return false;
  }
  r.usage->session_id = session->id;
  co_return true;
}

awaitable<upstream::Result<std::unique_ptr<upstream::Exchange>>> Relay::send(std::string_view path,
                                                                             std::string_view body,
                                                                             const http::Headers& headers) {
  budget_.on_request();
  for (int attempt = 1;; ++attempt) {
    auto sent = co_await deps_.upstream.send("POST", path, body, headers);
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

awaitable<std::unique_ptr<upstream::Exchange>> Relay::open(Request& r, std::string_view path, std::string_view body,
                                                            const http::Headers& headers) {
  auto sent = co_await send(path, body, headers);
  if (!sent) {
    log::warn("upstream request failed", {{"request_id", r.call.request_id}, {"error", sent.error().what}});
    Verdict verdict = failed_before_head(sent.error().kind);
    co_await reply(r, verdict);
    co_return nullptr;
  }
  r.out.facts.upstream_status = (*sent)->head().status;
  r.usage->ttfb_ms = std::chrono::duration<double, std::milli>(Clock::now() - r.started).count();
  ttfb_.observe(*r.usage->ttfb_ms / 1000.0);
  co_return std::move(*sent);
}

awaitable<bool> Relay::read_whole(Request& r, upstream::Exchange& ex, const Cuts::Registration& registration,
                                  std::string& body) {
  if (const auto broke = co_await relay::read_whole(ex, body)) {
    Verdict failed = failed_in_body(broke->kind, registration.cut());
    co_await reply(r, failed);
    co_return false;
  }
  co_return true;
}

awaitable<void> Relay::refused(Request& r, upstream::Exchange& ex, const Cuts::Registration& registration) {
  const upstream::Head& head = ex.head();
  std::string body;
  if (!co_await read_whole(r, ex, registration, body)) co_return;
  Verdict verdict = upstream_status(head.status, body, head.retry_after);
  log_alert(verdict.alert, head.status, r.call.request_id, body, deps_.cfg.upstream_api_key, deps_.metrics);
  co_await reply(r, verdict);
}

awaitable<void> Relay::pass_whole(Request& r, const upstream::Head& head, std::string body) {
  const std::string_view type = head.content_type.empty() ? "application/json" : std::string_view(head.content_type);
  Verdict ok{Outcome::ok, http::body_reply(head.status, std::move(body), type)};
  for (const auto& [name, value] : head.relayed) ok.reply.set(name, value);
  // The answer is whole: its usage, and so its cost, is final before the client sees any of it.
  r.settle();
  if (r.usage->cost) ok.reply.set("x-lagoon-cost-usd", money::format_usd(*r.usage->cost));
  co_await reply(r, ok);
}

}  // namespace lagoon::relay
