// The chat route's event stream: the upstream answered 2xx with text/event-stream to a request that
// asked for a stream. Relayed by Relay::pass_pieces; here is what its bytes mean — usage counted from
// the stream's own usage chunks (and dropped when the client did not ask for them), or estimated.
#include <vector>

#include "lagoon/accounting/tokens.hpp"
#include "lagoon/chat/sse.hpp"
#include "request_state.hpp"

namespace lagoon::relay {

namespace {

class ChatPieces final : public EventPieces {
 public:
  explicit ChatPieces(ChatRoute::Request& r) : r_(r) {}

  void account(bool gone) override {
    if (gone && !final_usage_)
      accounting::estimate_at_least(*r_.usage, r_.body.body_bytes, content_bytes_);
    else if (!usage_)
      accounting::estimate(*r_.usage, r_.body.body_bytes, content_bytes_);
  }
  std::string failure_tail(std::string_view message) const override { return error_event(message); }

 private:
  // The bytes of the events the client gets: usage chunks counted (and dropped when the client did not
  // ask for them), the "usage":null the client would not have seen from the upstream removed.
  std::string on_events(std::vector<chat::SseEvent>& events) override {
    std::string out;
    for (auto& ev : events) {
      if (ev.has_data && ev.data != "[DONE]") {
        if (auto u = chat::usage_of_chunk(ev.data)) {
          usage_ = true;
          accounting::set_tokens(*r_.usage, u->prompt_tokens, u->completion_tokens, u->total_tokens);
          note_cost_facts(r_.settle.facts, *u);
          // The usage-only chunk is the last word on usage; some upstreams also put running totals in
          // earlier chunks, which must not settle the count.
          if (u->usage_only) {
            final_usage_ = true;
            r_.settle();
          }
          if (u->usage_only && !r_.body.client_wants_usage) continue;  // the client did not ask for it
        } else {
          content_bytes_ += ev.data.size();
          if (!r_.body.client_wants_usage) {
            const std::string stripped = chat::without_null_member(ev.data, "usage");
            const auto at = ev.raw.find(ev.data);
            if (stripped.size() != ev.data.size() && at != std::string::npos)
              ev.raw.replace(at, ev.data.size(), stripped);
          }
        }
      }
      out += ev.raw;
    }
    return out;
  }

  ChatRoute::Request& r_;
  bool usage_ = false;        // any usage numbers (some upstreams send running totals)
  bool final_usage_ = false;  // the usage-only chunk: the last word
};

}  // namespace

http::Reply event_stream_head() {
  http::Reply head;
  head.status = 200;
  head.content_type = "text/event-stream";
  head.set("Cache-Control", "no-cache");
  head.set("X-Accel-Buffering", "no");
  return head;
}

boost::asio::awaitable<void> relay_chat_stream(Relay& relay, ChatRoute::Request& r, upstream::Exchange& ex,
                                               const Cuts::Registration& registration) {
  ChatPieces pieces(r);
  const http::Reply head = event_stream_head();
  co_await relay.pass_pieces(r, ex, registration, head, pieces);
}

}  // namespace lagoon::relay
