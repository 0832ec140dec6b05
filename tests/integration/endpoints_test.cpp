// Venice's endpoints besides chat on the real binary against the mock upstream, Redis and Postgres: what
// reaches the upstream, what comes back (binary bodies byte for byte, compared by SHA-256 with what the
// mock's generator makes), streams arriving before the upstream has finished, and the usage row each
// request makes with its measure. Errors, disconnects, limits, the catalog and the SDK are in
// endpoints_flow_test.cpp.
#include <gtest/gtest.h>

#include <functional>
#include <thread>

#include <nlohmann/json.hpp>

#include "integration/endpoints_fixture.hpp"
#include "lagoon/mock/media.hpp"
#include "lagoon/mock/responses.hpp"

using namespace lagoon::test;
using namespace std::chrono_literals;
using nlohmann::json;

TEST_F(Endpoints, EmbeddingsAreRelayedByteForByteAndCountedInTheUpstreamsTokens) {
  start();
  const std::string body = R"({"model":"text-embedding-bge-m3","input":["first text","second"],"dimensions":8,"x_mock":{"record":1}})";
  auto r = post("/embeddings", body);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const auto j = json::parse(r->body);
  EXPECT_EQ(j["data"].size(), 2u);
  const auto tokens = lagoon::mock::embedding_tokens_for({"first text", "second"});
  EXPECT_EQ(j["usage"]["prompt_tokens"], tokens);
  const auto seen = mock.last_request();
  EXPECT_EQ(seen["body"], body);
  EXPECT_EQ(seen["path"], "/embeddings");
  EXPECT_EQ(seen["headers"]["Content-Type"], "application/json");
  ASSERT_EQ(usage_rows(1), 1);
  EXPECT_EQ(last_row("endpoint, model, status_code, outcome, prompt_tokens, total_tokens, tokens_estimated, "
                     "coalesce(unit, '-'), session_id IS NOT NULL"),
            "embeddings,text-embedding-bge-m3,200,ok," + std::to_string(tokens) + "," + std::to_string(tokens) +
                ",f,-,t");
}

TEST_F(Endpoints, ImagesAreCountedByWhatCameBack) {
  start();
  auto r = post("/images/generations", R"({"model":"venice-sd35","prompt":"a lagoon","n":2})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["data"].size(), 2u);
  ASSERT_EQ(usage_rows(1), 1);
  EXPECT_EQ(last_row("endpoint, outcome, units, unit, total_tokens IS NULL"), "images,ok,2,images,t");

  auto g = post("/image/generate", R"({"model":"venice-sd35","prompt":"a lagoon","variants":3})");
  ASSERT_TRUE(g);
  ASSERT_EQ(g->status, 200) << g->body;
  EXPECT_EQ(json::parse(g->body)["images"].size(), 3u);
  ASSERT_EQ(usage_rows(2), 2);
  EXPECT_EQ(last_row("endpoint, units, unit"), "images,3,images");
}

TEST_F(Endpoints, ABinaryImageArrivesByteForByte) {
  start();
  auto r = post("/image/generate",
                R"({"model":"venice-sd35","prompt":"a lagoon at dawn","return_binary":true,"format":"png","x_mock":{"bytes":300000}})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->header("content-type"), "image/png");
  EXPECT_EQ(r->body.size(), 300000u);
  EXPECT_EQ(sha256(r->body), sha256(lagoon::mock::mock_bytes(300000, lagoon::mock::image_key("a lagoon at dawn", 0))));
  ASSERT_EQ(usage_rows(1), 1);
  EXPECT_EQ(last_row("endpoint, outcome, units, unit"), "images,ok,1,images");
}

TEST_F(Endpoints, AnUploadedImageGoesUpAsAMultipartBodyWithItsBoundaryAndComesBackEdited) {
  start();
  const std::string image = lagoon::mock::mock_bytes(200000, "the uploaded picture");
  Form form;
  form.file("image", "in.png", "image/png", image).field("scale", "2").field("x_mock", R"({"record":1})");
  const std::string body = form.done();
  auto r = post("/image/upscale", body, form.content_type());
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(sha256(r->body),
            sha256(lagoon::mock::mock_bytes(lagoon::mock::kDefaultBinaryBytes, lagoon::mock::edit_key("upscale", image))));
  const auto seen = mock.last_request();
  EXPECT_EQ(seen["headers"]["Content-Type"], form.content_type());
  EXPECT_EQ(lagoon::mock::base64_decode(seen["body_base64"].get<std::string>()), body);  // byte for byte
  ASSERT_EQ(usage_rows(1), 1);
  EXPECT_EQ(last_row("endpoint, outcome, units, unit, model IS NULL, session_id IS NULL"), "images,ok,1,images,t,t");
}

TEST_F(Endpoints, SpeechIsRelayedAsItComesAndCountedInCharacters) {
  start();
  const std::string input = "Hello from the lagoon, où l'eau est calme.";
  auto r = post("/audio/speech", json{{"model", "tts-kokoro"}, {"voice", "af_sky"}, {"input", input}}.dump());
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->header("content-type"), "audio/mpeg");
  EXPECT_EQ(sha256(r->body), sha256(lagoon::mock::mock_bytes(lagoon::mock::kDefaultBinaryBytes, input)));
  ASSERT_EQ(usage_rows(1), 1);
  EXPECT_EQ(last_row("endpoint, outcome, units, unit, stream"), "audio,ok,42,characters,f");
}

TEST_F(Endpoints, StreamedSpeechReachesTheClientBeforeTheUpstreamHasFinished) {
  start();
  // The mock sends the first piece and then nothing, ever: whatever arrives was relayed as it came.
  const std::string input = "A sentence, then silence.";
  const std::string body =
      json{{"model", "tts-kokoro"}, {"input", input}, {"streaming", true}, {"x_mock", {{"stall", "body"}}}}.dump();
  RawClient c(server->port());
  c.send("POST /api/v1/audio/speech HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + key +
         "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
  const std::string first = lagoon::mock::mock_bytes(lagoon::mock::kDefaultBinaryBytes, input).substr(0, 64);
  const std::string seen = c.read_until(first, 10s);
  EXPECT_NE(seen.find("HTTP/1.1 200"), std::string::npos) << seen.substr(0, 200);
  EXPECT_NE(seen.find("audio/mpeg"), std::string::npos);
  ASSERT_NE(seen.find(first), std::string::npos) << "the first piece did not come through";
  c.reset();  // the client leaves; the upstream is still "speaking"
  ASSERT_EQ(usage_rows(1), 1);
  // Counted in full: what was asked was made upstream.
  EXPECT_EQ(last_row("endpoint, outcome, units, unit, stream"), "audio,client_disconnected,25,characters,t");
}

TEST_F(Endpoints, ATranscriptionIsCountedInTheSecondsTheAnswerSaysElseInTheUploadsBytes) {
  start();
  const std::string wav = lagoon::mock::pcm_wav(16000, 1, 16, 40000);  // 2.5 s
  Form form;
  form.file("file", "hello.wav", "audio/wav", wav).field("model", "openai/whisper-large-v3");
  auto r = post("/audio/transcriptions", form.done(), form.content_type());
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["duration"], 2.5);
  ASSERT_EQ(usage_rows(1), 1);
  EXPECT_EQ(last_row("endpoint, model, outcome, units, unit"), "audio,openai/whisper-large-v3,ok,2.5,seconds");

  Form text;
  text.file("file", "hello.wav", "audio/wav", wav).field("model", "openai/whisper-large-v3");
  text.field("response_format", "text").field("x_mock", R"({"no-duration":1})");
  auto t = post("/audio/transcriptions", text.done(), text.content_type());
  ASSERT_TRUE(t);
  ASSERT_EQ(t->status, 200) << t->body;
  ASSERT_EQ(usage_rows(2), 2);
  EXPECT_EQ(last_row("units, unit"), std::to_string(wav.size()) + ",bytes");
}

TEST_F(Endpoints, UploadsMayBeLargerThanOtherBodiesUpToTheirOwnLimit) {
  start({{"LAGOON_MAX_BODY_BYTES", "65536"}, {"LAGOON_MAX_UPLOAD_BYTES", "1048576"}});
  const std::string wav = lagoon::mock::pcm_wav(16000, 1, 16, 300000);  // 600 KB: past the body limit
  Form ok;
  ok.file("file", "long.wav", "audio/wav", wav).field("model", "openai/whisper-large-v3");
  auto r = post("/audio/transcriptions", ok.done(), ok.content_type());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  const std::string big_json = json{{"model", "e"}, {"input", std::string(100000, 'x')}}.dump();
  auto e = post("/embeddings", big_json);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->status, 413);
  Form too_big;
  too_big.file("file", "long.wav", "audio/wav", lagoon::mock::pcm_wav(16000, 1, 16, 600000));
  auto u = post("/audio/transcriptions", too_big.done(), too_big.content_type());
  ASSERT_TRUE(u);
  EXPECT_EQ(u->status, 413);
  EXPECT_NE(u->body.find("1048576"), std::string::npos) << u->body;
  // Refused before their bodies were read: no usage row (nothing passed authentication's request).
  ASSERT_EQ(usage_rows(1), 1);
}

TEST_F(Endpoints, AResponseIsCountedFromItsUsageWholeOrStreamed) {
  start();
  auto r = post("/responses", R"({"model":"venice-uncensored","input":"Say hi","x_mock":{"chunks":3}})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const auto j = json::parse(r->body);
  ASSERT_EQ(usage_rows(1), 1);
  EXPECT_EQ(last_row("endpoint, outcome, prompt_tokens, completion_tokens, tokens_estimated"),
            "responses,ok," + std::to_string(j["usage"]["input_tokens"].get<int>()) + "," +
                std::to_string(j["usage"]["output_tokens"].get<int>()) + ",f");

  auto s = post("/responses", R"({"model":"venice-uncensored","input":"Say hi","stream":true,"x_mock":{"chunks":4}})");
  ASSERT_TRUE(s);
  ASSERT_EQ(s->status, 200) << s->body;
  EXPECT_EQ(s->header("content-type"), "text/event-stream");
  const auto events = data_lines(s->body);
  ASSERT_GE(events.size(), 2u);
  const auto completed = json::parse(events.back());
  EXPECT_EQ(completed["type"], "response.completed");
  EXPECT_NE(s->body.find("event: response.output_text.delta\n"), std::string::npos);
  ASSERT_EQ(usage_rows(2), 2);
  EXPECT_EQ(last_row("outcome, stream, total_tokens, tokens_estimated"),
            "ok,t," + std::to_string(completed["response"]["usage"]["total_tokens"].get<int>()) + ",f");
}
