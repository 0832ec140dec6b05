// The chat route's whole flow against in-process fakes (tests/unit/fakes.hpp): no sockets, no servers.
// What it must hold: each upstream status class reaches the client as decided; a retry happens only
// before anything reached the client; a client leaving before or after the first byte is noticed and
// billed; and every way a request can end leaves exactly one usage record with its outcome.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "fakes.hpp"
#include "lagoon/accounting/usage_guard.hpp"
#include "lagoon/relay/chat.hpp"

using namespace lagoon;
using namespace std::chrono_literals;
using fakes::answer;
using fakes::bytes;
using fakes::end_of_body;
using Kind = upstream::Failure::Kind;

namespace {

constexpr const char* kBody = R"({"model":"llama-3.3-70b","messages":[{"role":"user","content":"hi"}]})";
constexpr const char* kStreamBody =
    R"({"model":"llama-3.3-70b","stream":true,"messages":[{"role":"user","content":"hi"}]})";
constexpr const char* kAnswer =
    R"({"id":"c1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hello"}}],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}})";

std::string event(const std::string& data) { return "data: " + data + "\n\n"; }
std::string content_chunk(const std::string& text) {
  return event(R"({"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":")" + text +
               R"("}}],"usage":null})");
}
const std::string kUsageChunk =
    event(R"({"id":"c1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}})");

class ChatRouteTest : public ::testing::Test, protected fakes::RelayFakes {
 protected:
  ChatRouteTest() { cfg_.upstream_api_key = "sk-upstream-secret"; }

  routes::Served serve(const std::string& body) {
    routes::Call call;
    call.method = "POST";
    call.target = "/api/v1/chat/completions";
    call.body = body;
    call.key = &key_;
    call.request_id = "req-1";
    call.forward_headers = forward_;
    return fakes::run_awaitable(ioc_, route_->serve(call, client_));
  }
  // A new request on a new route (its retry budget full again) and fresh fakes.
  void fresh() {
    upstream_ = {};
    sink_ = {};
    client_ = {};
    route_.reset();
    relay_.emplace(relay_deps());
    route_.emplace(*relay_);
  }
  const usage::Record& only_record() {
    EXPECT_EQ(sink_.opened, 1);
    EXPECT_EQ(sink_.pushed.size(), 1u);
    return sink_.pushed.back();
  }
  std::string error_code() const {
    return nlohmann::json::parse(client_.reply->body)["error"]["code"].get<std::string>();
  }
  std::uint64_t retries() { return registry_.counter("lagoon_upstream_retries_total", "").value(); }

  boost::asio::io_context ioc_;
  std::optional<relay::Relay> relay_{std::in_place,
                                     relay_deps()};
  std::optional<relay::ChatRoute> route_{std::in_place, *relay_};
  auth::AuthResult key_ = fakes::authenticated(7, 3, "sk-lgn_abcd");
  http::Headers forward_;
  fakes::FakeDownstream client_;
};

TEST_F(ChatRouteTest, AWholeAnswerPassesByteForByteWithTheUpstreamsUsage) {
  upstream_.script.push_back(answer(200, kAnswer));
  const auto served = serve(kBody);
  EXPECT_EQ(served.status, 200u);
  EXPECT_FALSE(served.close);
  EXPECT_EQ(client_.reply->body, kAnswer);
  EXPECT_EQ(upstream_.sent, std::vector<std::string>{std::string("POST /chat/completions ") + kBody});
  const auto& r = only_record();
  EXPECT_EQ(r.outcome, "ok");
  EXPECT_EQ(r.status_code, 200);
  EXPECT_EQ(r.total_tokens, 12);
  EXPECT_FALSE(r.tokens_estimated);
  EXPECT_EQ(r.model, "llama-3.3-70b");
  EXPECT_TRUE(r.session_id.has_value());
  EXPECT_EQ(r.request_id, "req-1");
  EXPECT_EQ(served.facts.outcome, accounting::Outcome::ok);
}

TEST_F(ChatRouteTest, TheClientsForwardableHeadersGoUpAndTheAnswersRelayableOnesComeBack) {
  fakes::Scripted whole = answer(200, kAnswer);
  whole.head.relayed = {{"x-venice-model-id", "llama-3.3-70b"}};
  upstream_.script.push_back(std::move(whole));
  forward_ = {{"X-Venice-TEE-Client-Pub-Key", "pub"}};
  serve(kBody);
  EXPECT_EQ(upstream_.last_headers, forward_);
  EXPECT_EQ(client_.reply->header("x-venice-model-id"), "llama-3.3-70b");

  fresh();
  fakes::Scripted streamed = fakes::stream({bytes(content_chunk("Hel")), end_of_body()});
  streamed.head.relayed = {{"x-venice-model-id", "llama-3.3-70b"}};
  upstream_.script.push_back(std::move(streamed));
  serve(kStreamBody);
  EXPECT_EQ(client_.head->header("x-venice-model-id"), "llama-3.3-70b");
}

TEST_F(ChatRouteTest, AModelsVeniceSuffixGoesUpstreamButTheSessionIsTheBaseModels) {
  upstream_.script.push_back(answer(200, kAnswer));
  const std::string body =
      R"({"model":"venice-uncensored:enable_web_search=on&character_slug=x","messages":[{"role":"user","content":"hi"}]})";
  EXPECT_EQ(serve(body).status, 200u);
  EXPECT_EQ(sessions_.last_model, "venice-uncensored");
  EXPECT_EQ(upstream_.sent.back(), "POST /chat/completions " + body);
  EXPECT_EQ(only_record().model, "venice-uncensored:enable_web_search=on&character_slug=x");
}

TEST_F(ChatRouteTest, EachUpstreamStatusClassIsAnsweredAsDecidedWithOneRecord) {
  struct Case {
    unsigned upstream;
    int sends;  // retryable statuses are asked twice
    unsigned client;
    const char* code;
  };
  for (const Case c : {Case{400, 1, 400, "bad_request"}, Case{401, 1, 502, "upstream_auth_error"},
                       Case{402, 1, 503, "service_unavailable"}, Case{403, 1, 502, "upstream_auth_error"},
                       Case{404, 1, 404, "bad_request"}, Case{429, 2, 429, "rate_limit_exceeded"},
                       Case{500, 1, 502, "upstream_error"}, Case{502, 2, 502, "upstream_error"},
                       Case{503, 2, 503, "service_unavailable"}, Case{504, 2, 502, "upstream_error"}}) {
    SCOPED_TRACE(c.upstream);
    fresh();
    for (int i = 0; i < c.sends; ++i) upstream_.script.push_back(answer(c.upstream, "upstream words"));
    const auto served = serve(kBody);
    EXPECT_EQ(upstream_.sent.size(), static_cast<std::size_t>(c.sends));
    EXPECT_EQ(served.status, c.client);
    EXPECT_EQ(error_code(), c.code);
    EXPECT_EQ(client_.reply->body.find("upstream words"), std::string::npos);
    const auto& r = only_record();
    EXPECT_EQ(r.outcome, "upstream_error");
    EXPECT_EQ(r.status_code, static_cast<int>(c.client));
  }
}

TEST_F(ChatRouteTest, AConnectFailureOrARetryableStatusIsRetriedOnceBeforeAnythingReachedTheClient) {
  upstream_.script.push_back(fakes::send_fails(Kind::connect));
  upstream_.script.push_back(answer(200, kAnswer));
  EXPECT_EQ(serve(kBody).status, 200u);
  EXPECT_EQ(upstream_.sent.size(), 2u);
  EXPECT_EQ(retries(), 1u);

  fresh();
  upstream_.script.push_back(answer(503, "busy", "text/plain", "0.01"));
  upstream_.script.push_back(answer(200, kAnswer));
  EXPECT_EQ(serve(kBody).status, 200u);
  EXPECT_EQ(upstream_.sent.size(), 2u);
  EXPECT_EQ(only_record().outcome, "ok");
}

TEST_F(ChatRouteTest, NoRetryAfterTheRequestWasSentAndNotMoreThanOne) {
  upstream_.script.push_back(fakes::send_fails(Kind::first_byte));
  upstream_.script.push_back(answer(200, kAnswer));
  EXPECT_EQ(serve(kBody).status, 504u);
  EXPECT_EQ(upstream_.sent.size(), 1u);
  EXPECT_EQ(only_record().outcome, "upstream_timeout");

  fresh();
  for (int i = 0; i < 3; ++i) upstream_.script.push_back(fakes::send_fails(Kind::connect));
  EXPECT_EQ(serve(kBody).status, 502u);
  EXPECT_EQ(upstream_.sent.size(), 2u);
  EXPECT_EQ(only_record().outcome, "upstream_unavailable");
}

TEST_F(ChatRouteTest, AStreamThatBreaksAfterItsFirstByteIsNeverRetriedAndEndsWithAnErrorEvent) {
  upstream_.script.push_back(fakes::stream({bytes(content_chunk("Hel")), fakes::fails(Kind::broken)}));
  upstream_.script.push_back(answer(200, kAnswer));
  const auto served = serve(kStreamBody);
  EXPECT_EQ(upstream_.sent.size(), 1u);
  EXPECT_EQ(served.status, 200u);
  EXPECT_TRUE(served.close);
  EXPECT_NE(client_.streamed().find("Hel"), std::string::npos);
  EXPECT_NE(client_.chunks.back().find("\"code\":\"upstream_error\""), std::string::npos);
  EXPECT_TRUE(client_.ended);
  const auto& r = only_record();
  EXPECT_EQ(r.outcome, "upstream_error");
  EXPECT_TRUE(r.tokens_estimated);
}

TEST_F(ChatRouteTest, AWholeAnswerThatBreaksOffInItsBodyIsNotRetried) {
  fakes::Scripted s = answer(200, "{\"partial");
  s.pieces = {bytes("{\"partial"), fakes::fails(Kind::gap)};
  upstream_.script.push_back(std::move(s));
  upstream_.script.push_back(answer(200, kAnswer));
  EXPECT_EQ(serve(kBody).status, 504u);
  EXPECT_EQ(upstream_.sent.size(), 1u);
  EXPECT_EQ(only_record().outcome, "upstream_timeout");
}

TEST_F(ChatRouteTest, AStreamIsRelayedEventByEventAndItsUsageChunkCountedButNotShownUnasked) {
  upstream_.script.push_back(fakes::stream(
      {bytes(content_chunk("Hel")), bytes(content_chunk("lo") + kUsageChunk), bytes(event("[DONE]")), end_of_body()}));
  const auto served = serve(kStreamBody);
  EXPECT_EQ(served.status, 200u);
  EXPECT_FALSE(served.close);
  EXPECT_EQ(client_.head->content_type, "text/event-stream");
  const std::string all = client_.streamed();
  EXPECT_NE(all.find("Hel"), std::string::npos);
  EXPECT_EQ(all.find("\"usage\""), std::string::npos);  // neither the null members nor the usage chunk
  EXPECT_NE(all.find("[DONE]"), std::string::npos);
  EXPECT_TRUE(client_.ended);
  const auto& r = only_record();
  EXPECT_EQ(r.outcome, "ok");
  EXPECT_EQ(r.total_tokens, 7);
  EXPECT_FALSE(r.tokens_estimated);
}

TEST_F(ChatRouteTest, AClientGoneBeforeTheFirstByteIsBilledForThePromptAndTheUpstreamDropped) {
  upstream_.script.push_back(fakes::stream({bytes(content_chunk("Hel")), end_of_body()}));
  client_.fail_at = 0;  // the stream's head cannot be written
  const auto served = serve(kStreamBody);
  EXPECT_TRUE(served.close);
  EXPECT_TRUE(*upstream_.last_aborted);
  const auto& r = only_record();
  EXPECT_EQ(r.outcome, "client_disconnected");
  EXPECT_TRUE(r.tokens_estimated);
  EXPECT_GT(r.prompt_tokens.value_or(0), 0);
}

TEST_F(ChatRouteTest, AClientGoneAfterTheFirstByteIsBilledAtLeastWhatItReceived) {
  const std::string text(400, 'x');
  upstream_.script.push_back(fakes::stream({bytes(content_chunk(text)), bytes(content_chunk("more")), end_of_body()}));
  client_.fail_at = 2;  // head and first chunk written; the second chunk fails
  const auto served = serve(kStreamBody);
  EXPECT_TRUE(served.close);
  EXPECT_TRUE(*upstream_.last_aborted);
  const auto& r = only_record();
  EXPECT_EQ(r.outcome, "client_disconnected");
  EXPECT_GE(r.completion_tokens.value_or(0), 100);
}

TEST_F(ChatRouteTest, AClientResettingWhileTheUpstreamIsSilentIsNoticedAtOnce) {
  fakes::Piece silent = bytes(content_chunk("late"));
  silent.before = [this] { client_.reset(); };
  upstream_.script.push_back(fakes::stream({bytes(content_chunk("Hel")), std::move(silent), end_of_body()}));
  const auto served = serve(kStreamBody);
  EXPECT_TRUE(served.close);
  EXPECT_TRUE(*upstream_.last_aborted);
  EXPECT_FALSE(client_.ended);
  EXPECT_EQ(client_.streamed().find("late"), std::string::npos);
  EXPECT_EQ(only_record().outcome, "client_disconnected");
}

TEST_F(ChatRouteTest, TheDrainCutsAStreamWithAFinalEventAndAWholeAnswerWith503) {
  cuts_.cut_all();  // the deadline has passed: requests reaching the upstream now are cut at once
  upstream_.script.push_back(fakes::stream({bytes(content_chunk("Hel")), end_of_body()}));
  const auto streamed = serve(kStreamBody);
  EXPECT_TRUE(streamed.close);
  EXPECT_NE(client_.streamed().find("shutting down"), std::string::npos);
  EXPECT_EQ(only_record().outcome, "shutdown");

  sink_ = {};
  client_ = {};
  upstream_.script.push_back(answer(200, kAnswer));
  const auto whole = serve(kBody);
  EXPECT_EQ(whole.status, 503u);
  EXPECT_TRUE(whole.close);
  EXPECT_EQ(only_record().outcome, "shutdown");
}

TEST_F(ChatRouteTest, EveryRefusalBeforeTheUpstreamLeavesOneRecordAndNoUpstreamCall) {
  EXPECT_EQ(serve("{not json").status, 400u);
  EXPECT_EQ(only_record().outcome, "invalid_request");

  sink_ = {};
  gate_.decision.kind = ratelimit::Decision::Kind::limited_requests;
  gate_.decision.requests = ratelimit::Window{10, 0, 1'500'000};
  gate_.decision.retry_after_us = 1'500'000;
  const auto limited = serve(kBody);
  EXPECT_EQ(limited.status, 429u);
  EXPECT_EQ(client_.reply->header("Retry-After"), "2");
  EXPECT_EQ(client_.reply->header("x-ratelimit-limit-requests"), "10");
  EXPECT_EQ(only_record().outcome, "rate_limited");

  sink_ = {};
  gate_.decision = {};
  sessions_.available = false;
  EXPECT_EQ(serve(kBody).status, 503u);
  EXPECT_EQ(only_record().outcome, "session_unavailable");
  EXPECT_TRUE(upstream_.sent.empty());
}

TEST_F(ChatRouteTest, ATokenLimitedKeysEstimateIsSettledOnceWithItsRealUsage) {
  gate_.decision.kind = ratelimit::Decision::Kind::allowed;
  gate_.decision.tokens = ratelimit::Window{10000, 9000, 60'000'000};
  upstream_.script.push_back(fakes::stream(
      {bytes(content_chunk("Hel")), bytes(kUsageChunk), bytes(event("[DONE]")), end_of_body()}));
  serve(kStreamBody);
  EXPECT_EQ(gate_.settled, std::vector<std::int64_t>{7});
  EXPECT_EQ(client_.head->header("x-ratelimit-limit-tokens"), "10000");
}

TEST(UsageGuard, ARequestEndedByNothingIsRecordedAsAborted) {
  fakes::FakeSink sink;
  auth::KeyRecord key;
  key.key_id = 1;
  { accounting::UsageGuard guard(sink, key, "client-chosen", true, usage::Endpoint::models); }
  ASSERT_EQ(sink.pushed.size(), 1u);
  EXPECT_EQ(sink.pushed[0].outcome, "aborted");
  EXPECT_EQ(sink.pushed[0].endpoint, usage::Endpoint::models);
  EXPECT_NE(sink.pushed[0].request_id, "client-chosen");  // a client's id is not unique: the row gets its own
}

}  // namespace
