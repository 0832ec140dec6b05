// The chat route from its checks to the upstream's answer; its event stream is in stream.cpp, what it
// shares with every relaying route in relay.cpp.
#include "lagoon/relay/chat.hpp"

#include <boost/asio/this_coro.hpp>

#include "lagoon/accounting/tokens.hpp"
#include "lagoon/chat/sse.hpp"
#include "lagoon/ratelimit/policy.hpp"
#include "lagoon/util/recycled.hpp"
#include "request_state.hpp"

namespace lagoon::relay {

namespace asio = boost::asio;
using asio::awaitable;
using accounting::Outcome;

namespace {

// The body, parsed into r.body; else why it cannot be.
std::optional<chat::InvalidRequest> take_body(ChatRoute::Request& r) {
  auto parsed = chat::parse_chat_request(r.call.body);
  if (auto* bad = std::get_if<chat::InvalidRequest>(&parsed)) return std::move(*bad);
  r.body = std::move(std::get<chat::ChatRequest>(parsed));
  return std::nullopt;
}

// In a frame of its own, which only a refused request allocates.
awaitable<void> refuse_body(Relay& relay, ChatRoute::Request& r, const chat::InvalidRequest& bad) {
  Verdict invalid = invalid_request(bad);
  co_await relay.reply(r, invalid);
}

}  // namespace

awaitable<routes::Served> ChatRoute::serve(const routes::Call& call, Downstream& client) {
  const RelayDeps& deps = relay_.deps();
  // Not in this coroutine's frame (1,152 bytes: the frame would be more than Asio recycles).
  const auto state = util::make_recycled<Request>(call, client, deps.usage);
  Request& r = *state;
  if (!co_await relay_.permitted(r)) co_return Relay::finished(r);

  // Check: the body.
  if (auto bad = take_body(r)) {
    co_await refuse_body(relay_, r, *bad);
    co_return Relay::finished(r);
  }
  r.usage->model = r.body.model;
  r.usage->stream = r.body.stream;
  r.usage.in_flight().note(*r.usage);
  r.usage.in_flight().note_prompt(accounting::estimate_tokens(r.body.body_bytes));

  // Check: the key's limits.
  const auto estimate =
      ratelimit::estimate_tokens(r.body.body_bytes, r.body.max_tokens, deps.cfg.rate_limit_default_max_tokens);
  money::Consumed most;
  most.prompt_tokens = accounting::estimate_tokens(r.body.body_bytes);
  most.completion_tokens = r.body.max_tokens && *r.body.max_tokens >= 0
                               ? *r.body.max_tokens
                               : static_cast<std::int64_t>(deps.cfg.rate_limit_default_max_tokens);
  if (co_await relay_.admit(r, estimate, most)) {
    co_await forward(r);
    r.settle();  // if no write did (the client went away)
  }
  co_return Relay::finished(r);
}

awaitable<void> ChatRoute::forward(Request& r) {
  if (!co_await relay_.open_session(r, r.body.model)) co_return;
  const auto sent = co_await relay_.open(r, "/chat/completions", r.body.upstream_body, r.call.forward_headers);
  if (!sent) co_return;
  upstream::Exchange& ex = *sent;
  const upstream::Head& head = ex.head();
  const Cuts::Registration registration(relay_.deps().cuts, co_await asio::this_coro::executor, ex);

  const bool event_stream = head.content_type.rfind("text/event-stream", 0) == 0;
  if (head.status / 100 != 2)
    co_await relay_.refused(r, ex, registration);
  else if (!r.body.stream || !event_stream)
    co_await relay_whole(r, ex, registration);
  else
    co_await relay_chat_stream(relay_, r, ex, registration);
}

awaitable<void> ChatRoute::relay_whole(Request& r, upstream::Exchange& ex, const Cuts::Registration& registration) {
  std::string body;
  if (!co_await relay_.read_whole(r, ex, registration, body)) co_return;
  if (const auto u = chat::usage_of_object(body)) {
    accounting::set_tokens(*r.usage, u->prompt_tokens, u->completion_tokens, u->total_tokens);
    note_cost_facts(r.settle.facts, *u);
  } else
    accounting::estimate(*r.usage, r.body.body_bytes, body.size());
  co_await relay_.pass_whole(r, ex.head(), std::move(body));
}

}  // namespace lagoon::relay
