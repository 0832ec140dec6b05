// EndpointRoute (endpoint.hpp): the endpoints besides chat, on the Relay they share with it.
#include "lagoon/relay/endpoint.hpp"

#include <vector>

#include <boost/asio/this_coro.hpp>
#include <nlohmann/json.hpp>

#include "lagoon/accounting/tokens.hpp"
#include "lagoon/chat/sse.hpp"
#include "lagoon/http/ascii.hpp"
#include "lagoon/ratelimit/policy.hpp"
#include "request_state.hpp"

namespace lagoon::relay {

namespace asio = boost::asio;
using asio::awaitable;
using accounting::Outcome;

struct EndpointRoute::Request : relay::Request {
  Request(const routes::Call& c, Downstream& d, usage::Sink& sink, usage::Endpoint endpoint)
      : relay::Request(c, d, sink, endpoint) {}
  EndpointRequest body;
};

namespace {

// A Responses-API event stream: relayed event by event as it came; its usage is the one in
// response.completed, the last word.
class ResponsesPieces final : public EventPieces {
 public:
  explicit ResponsesPieces(EndpointRoute::Request& r) : r_(r) {}

  void account(bool gone) override {
    if (usage_) return;
    if (gone)
      accounting::estimate_at_least(*r_.usage, r_.body.body_bytes, content_bytes_);
    else
      accounting::estimate(*r_.usage, r_.body.body_bytes, content_bytes_);
  }
  // The Responses API's own error event, so a client's SDK reports it as the stream's error.
  std::string failure_tail(std::string_view message) const override {
    const nlohmann::json event{{"type", "error"},
                               {"code", "upstream_error"},
                               {"message", std::string(message)},
                               {"param", nullptr},
                               {"sequence_number", events_seen_}};
    return "event: error\ndata: " + event.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n\n";
  }

 private:
  std::string on_events(std::vector<chat::SseEvent>& events) override {
    std::string out;
    for (const auto& ev : events) {
      if (ev.has_data) {
        ++events_seen_;
        // Only the completed event is parsed; every other event is counted by its size.
        if (ev.data.find("response.completed") != std::string_view::npos) {
          if (const auto u = responses_usage(ev.data)) {
            apply(*u, *r_.usage);
            usage_ = true;
            r_.settle();
          }
        } else {
          content_bytes_ += ev.data.size();
        }
      }
      out += ev.raw;
    }
    return out;
  }

  EndpointRoute::Request& r_;
  std::size_t events_seen_ = 0;
  bool usage_ = false;
};

// Audio or an image: passed on as it comes, counted by what the request asked for.
class BinaryPieces final : public Pieces {
 public:
  BinaryPieces(EndpointRoute::Request& r, const EndpointSpec& spec) : r_(r), spec_(spec) {}
  bool pass(std::string_view piece, std::string& out) override {
    bytes_ += piece.size();
    out.assign(piece);
    return true;
  }
  std::size_t content_bytes() const noexcept override { return bytes_; }
  // What was asked was made upstream, whether or not the client stayed for all of it.
  void account(bool) override { apply(count_binary(spec_, r_.body), *r_.usage); }
  std::string failure_tail(std::string_view) const override { return {}; }

 private:
  EndpointRoute::Request& r_;
  const EndpointSpec& spec_;
  std::size_t bytes_ = 0;
};

}  // namespace

awaitable<routes::Served> EndpointRoute::serve(const routes::Call& call, Downstream& client) {
  const RelayDeps& deps = relay_.deps();
  Request r(call, client, deps.usage, spec_.endpoint);
  r.takes_model = spec_.names_model;
  if (!co_await relay_.permitted(r)) co_return Relay::finished(r);

  // Check: the fields the gateway needs.
  auto inspected = inspect(spec_, call.content_type, call.body);
  if (auto* bad = std::get_if<chat::InvalidRequest>(&inspected)) {
    Verdict invalid = invalid_request(*bad);
    co_await relay_.reply(r, invalid);
    co_return Relay::finished(r);
  }
  r.body = std::move(std::get<EndpointRequest>(inspected));
  r.usage->model = r.body.model;
  r.usage->stream = r.body.stream;
  r.usage.in_flight().note(*r.usage);

  // Check: the key's limits; tokens only where the endpoint has them.
  std::optional<std::int64_t> estimate;
  if (spec_.meter == Meter::embeddings) estimate = accounting::estimate_tokens(r.body.input_bytes);
  if (spec_.meter == Meter::responses)
    estimate = ratelimit::estimate_tokens(r.body.body_bytes, r.body.max_tokens, deps.cfg.rate_limit_default_max_tokens);
  if (estimate) r.usage.in_flight().note_prompt(accounting::estimate_tokens(r.body.body_bytes));
  r.settle.facts.tier = r.body.tier;
  if (!spec_.default_model.empty()) r.settle.facts.price_model = std::string(spec_.default_model);
  if (co_await relay_.admit(r, estimate, at_most(spec_, r.body, deps.cfg.rate_limit_default_max_tokens))) {
    co_await forward(r);
    r.settle();  // if no write did (the client went away)
  }
  co_return Relay::finished(r);
}

awaitable<void> EndpointRoute::forward(Request& r) {
  if (r.body.model && !co_await relay_.open_session(r, *r.body.model)) co_return;
  http::Headers headers = r.call.forward_headers;
  if (!r.call.content_type.empty()) headers.emplace_back("Content-Type", std::string(r.call.content_type));
  if (!r.call.accept.empty()) headers.emplace_back("Accept", std::string(r.call.accept));
  const auto sent = co_await relay_.open(r, spec_.path, r.call.body, headers);
  if (!sent) co_return;
  upstream::Exchange& ex = *sent;
  const upstream::Head& head = ex.head();
  const Cuts::Registration registration(relay_.deps().cuts, co_await asio::this_coro::executor, ex);

  if (head.status / 100 != 2) {
    co_await relay_.refused(r, ex, registration);
  } else if (http::istarts_with(head.content_type, "text/event-stream")) {
    ResponsesPieces pieces(r);
    const http::Reply stream_head = event_stream_head();
    co_await relay_.pass_pieces(r, ex, registration, stream_head, pieces);
  } else if (head.content_type.empty() || http::istarts_with(head.content_type, "application/json") ||
             http::istarts_with(head.content_type, "text/")) {
    std::string answer;
    if (!co_await relay_.read_whole(r, ex, registration, answer)) co_return;
    apply(count_whole(spec_, r.body, head.content_type, answer), *r.usage);
    co_await relay_.pass_whole(r, head, std::move(answer));
  } else {
    BinaryPieces pieces(r, spec_);
    http::Reply binary_head;
    binary_head.status = head.status;
    binary_head.content_type = head.content_type;
    binary_head.set("X-Accel-Buffering", "no");  // speech is heard as it comes
    co_await relay_.pass_pieces(r, ex, registration, binary_head, pieces);
  }
}

}  // namespace lagoon::relay
