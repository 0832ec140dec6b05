// Each flow of an endpoint besides chat through EndpointRoute with the request path's fakes — no sockets,
// no servers. What the gateway reads of requests and answers is in endpoints_test.cpp.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "endpoint_support.hpp"
#include "fakes.hpp"
#include "lagoon/relay/endpoint.hpp"

namespace lagoon {
namespace {

using namespace std::chrono_literals;
using test::form;
using test::spec;
using usage::Unit;

class EndpointRouteTest : public ::testing::Test, protected fakes::RelayFakes {
 protected:
  routes::Served serve(std::string_view path, const std::string& body,
                       std::string_view content_type = "application/json") {
    route_.emplace(relay_, spec(path));
    routes::Call call;
    call.method = "POST";
    call.target = path;
    call.body = body;
    call.content_type = content_type;
    call.key = &key_;
    call.request_id = "req-1";
    return fakes::run_awaitable(ioc_, route_->serve(call, client_));
  }
  const usage::Record& only_record() {
    EXPECT_EQ(sink_.pushed.size(), 1u);
    return sink_.pushed.back();
  }

  boost::asio::io_context ioc_;
  relay::Relay relay_{relay_deps()};
  std::optional<relay::EndpointRoute> route_;
  auth::AuthResult key_ = fakes::authenticated(7, 3, "sk-lgn_abcd");
  fakes::FakeDownstream client_;
};

TEST_F(EndpointRouteTest, EmbeddingsAreRelayedWholeAndCountedInTokensAgainstTheTokenLimit) {
  const std::string answer = R"({"object":"list","data":[],"usage":{"prompt_tokens":9,"total_tokens":9}})";
  upstream_.script.push_back(fakes::answer(200, answer));
  const std::string body = R"({"model":"text-embedding-bge-m3:x=1","input":"twelve bytes"})";
  const auto served = serve("/embeddings", body);
  EXPECT_EQ(served.status, 200u);
  ASSERT_EQ(upstream_.sent.size(), 1u);
  EXPECT_EQ(upstream_.sent[0], "POST /embeddings " + body);  // byte for byte
  EXPECT_EQ(sessions_.last_model, "text-embedding-bge-m3");
  ASSERT_TRUE(client_.reply);
  EXPECT_EQ(client_.reply->body, answer);
  ASSERT_EQ(gate_.estimates.size(), 1u);
  EXPECT_EQ(gate_.estimates[0], 3);  // the input's 12 bytes
  const auto& rec = only_record();
  EXPECT_EQ(rec.endpoint, usage::Endpoint::embeddings);
  EXPECT_EQ(rec.prompt_tokens, 9);
  EXPECT_EQ(rec.total_tokens, 9);
  EXPECT_EQ(rec.unit, Unit::none);
  EXPECT_EQ(rec.outcome, "ok");
  EXPECT_EQ(rec.model, "text-embedding-bge-m3:x=1");
}

TEST_F(EndpointRouteTest, SpeechStreamsPieceByPieceUnderRequestLimitsOnlyAndCountsCharacters) {
  fakes::Scripted audio;
  audio.head = {200, "audio/mpeg", std::nullopt, {{"x-venice-model-id", "tts-kokoro"}}};
  audio.pieces = {fakes::bytes(std::string("\xff\xfb\x00", 3)), fakes::bytes("more"), fakes::end_of_body()};
  upstream_.script.push_back(std::move(audio));
  serve("/audio/speech", R"({"model":"tts-kokoro","input":"Hello","voice":"af_sky","streaming":true})");
  ASSERT_TRUE(client_.head);
  EXPECT_EQ(client_.head->content_type, "audio/mpeg");
  EXPECT_EQ(client_.head->header("x-venice-model-id"), "tts-kokoro");
  ASSERT_EQ(client_.chunks.size(), 2u);  // as they came
  EXPECT_EQ(client_.streamed(), std::string("\xff\xfb\x00more", 7));
  EXPECT_TRUE(client_.ended);
  ASSERT_EQ(gate_.estimates.size(), 1u);
  EXPECT_FALSE(gate_.estimates[0]);  // no tokens in speech
  const auto& rec = only_record();
  EXPECT_EQ(rec.endpoint, usage::Endpoint::audio);
  EXPECT_EQ(rec.units, 5.0);
  EXPECT_EQ(rec.unit, Unit::characters);
  EXPECT_TRUE(rec.stream);
  EXPECT_FALSE(rec.total_tokens);
  EXPECT_EQ(rec.outcome, "ok");
}

TEST_F(EndpointRouteTest, ABinaryAnswerThatBreaksOffEndsWithoutItsLastChunkSoTheClientSeesItCut) {
  fakes::Scripted image;
  image.head = {200, "image/png", std::nullopt, {}};
  image.pieces = {fakes::bytes("\x89PNG"), fakes::fails(upstream::Failure::Kind::gap)};
  upstream_.script.push_back(std::move(image));
  const auto served = serve("/image/upscale", R"({"image":"aGk=","scale":2})");
  EXPECT_TRUE(served.close);
  EXPECT_FALSE(client_.ended);
  EXPECT_EQ(client_.streamed(), "\x89PNG");
  const auto& rec = only_record();
  EXPECT_EQ(rec.outcome, "upstream_error");
  EXPECT_EQ(rec.units, 1.0);
}

TEST_F(EndpointRouteTest, AMultipartUploadGoesUpWithItsOwnContentTypeAndIsCountedInSecondsWhenTheAnswerSays) {
  upstream_.script.push_back(fakes::answer(200, R"({"text":"hello","duration":1.5})"));
  const std::string body = form({{"model", "nvidia/parakeet-tdt-0.6b-v3"}}, "file", std::string(3200, 'w'));
  const std::string type = "multipart/form-data; boundary=XyZ";
  serve("/audio/transcriptions", body, type);
  ASSERT_EQ(upstream_.sent.size(), 1u);
  EXPECT_EQ(upstream_.sent[0], "POST /audio/transcriptions " + body);
  bool typed = false;
  for (const auto& [name, value] : upstream_.last_headers) typed = typed || (name == "Content-Type" && value == type);
  EXPECT_TRUE(typed);
  const auto& rec = only_record();
  EXPECT_EQ(rec.model, "nvidia/parakeet-tdt-0.6b-v3");
  EXPECT_EQ(rec.units, 1.5);
  EXPECT_EQ(rec.unit, Unit::seconds);
}

TEST_F(EndpointRouteTest, AResponsesStreamIsRelayedAsItCameAndCountedFromResponseCompleted) {
  const std::string delta =
      "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"Hi\"}\n\n";
  const std::string completed =
      "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"usage\":"
      "{\"input_tokens\":4,\"output_tokens\":1,\"total_tokens\":5}}}\n\n";
  gate_.decision.tokens = ratelimit::Window{1000, 990, 0};
  upstream_.script.push_back(fakes::stream({fakes::bytes(delta), fakes::bytes(completed), fakes::end_of_body()}));
  serve("/responses", R"({"model":"venice-uncensored","input":"Hi","stream":true})");
  ASSERT_TRUE(client_.head);
  EXPECT_EQ(client_.head->content_type, "text/event-stream");
  EXPECT_EQ(client_.streamed(), delta + completed);
  EXPECT_TRUE(client_.ended);
  ASSERT_TRUE(gate_.estimates[0]);
  EXPECT_EQ(gate_.settled, std::vector<std::int64_t>{5});
  const auto& rec = only_record();
  EXPECT_EQ(rec.endpoint, usage::Endpoint::responses);
  EXPECT_EQ(rec.prompt_tokens, 4);
  EXPECT_EQ(rec.completion_tokens, 1);
  EXPECT_FALSE(rec.tokens_estimated);
}

TEST_F(EndpointRouteTest, AResponsesStreamThatBreaksOffEndsWithTheResponsesApisErrorEvent) {
  upstream_.script.push_back(fakes::stream(
      {fakes::bytes("event: response.created\ndata: {\"type\":\"response.created\"}\n\n"),
       fakes::fails(upstream::Failure::Kind::broken)}));
  serve("/responses", R"({"model":"m","input":"Hi","stream":true})");
  const std::string all = client_.streamed();
  const auto at = all.find("event: error\ndata: ");
  ASSERT_NE(at, std::string::npos) << all;
  const auto event = nlohmann::json::parse(all.substr(at + 19));
  EXPECT_EQ(event["type"], "error");
  EXPECT_EQ(event["sequence_number"], 1);
  EXPECT_TRUE(client_.ended);
  const auto& rec = only_record();
  EXPECT_EQ(rec.outcome, "upstream_error");
  EXPECT_TRUE(rec.tokens_estimated);
}

TEST_F(EndpointRouteTest, AnInvalidBodyIsRefusedWithoutAnUpstreamCallAndStillMakesItsRow) {
  serve("/embeddings", R"({"model":"e"})");
  EXPECT_TRUE(upstream_.sent.empty());
  ASSERT_TRUE(client_.reply);
  EXPECT_EQ(client_.reply->status, 400u);
  EXPECT_EQ(nlohmann::json::parse(client_.reply->body)["error"]["param"], "input");
  EXPECT_EQ(only_record().outcome, "invalid_request");
}

TEST_F(EndpointRouteTest, UpstreamRefusalsAreAnsweredAsForChat) {
  upstream_.script.push_back(fakes::answer(500, R"({"error":"boom"})"));
  upstream_.script.push_back(fakes::answer(500, R"({"error":"boom"})"));
  serve("/images/generations", R"({"prompt":"p"})");
  ASSERT_TRUE(client_.reply);
  EXPECT_EQ(client_.reply->status, 502u);
  const auto& rec = only_record();
  EXPECT_EQ(rec.outcome, "upstream_error");
  EXPECT_FALSE(rec.units);  // nothing was made
}

TEST_F(EndpointRouteTest, ARequestWithoutAModelTakesNoSession) {
  fakes::Scripted image;
  image.head = {200, "image/png", std::nullopt, {}};
  image.pieces = {fakes::bytes("png"), fakes::end_of_body()};
  upstream_.script.push_back(std::move(image));
  serve("/image/background-remove", R"({"image":"aGk="})");
  EXPECT_EQ(sessions_.asked, 0);
  EXPECT_FALSE(only_record().session_id);
}

TEST_F(EndpointRouteTest, AWholeAnswerTheClientNeverReceivedIsRecordedAsItsDeparture) {
  upstream_.script.push_back(fakes::answer(200, R"({"data":[{}]})"));
  client_.fail_at = 0;
  const auto served = serve("/images/generations", R"({"prompt":"p"})");
  EXPECT_TRUE(served.close);
  const auto& rec = only_record();
  EXPECT_EQ(rec.outcome, "client_disconnected");
  EXPECT_EQ(rec.units, 1.0);  // made upstream all the same
}

}  // namespace
}  // namespace lagoon
