// The endpoints besides chat: what the gateway reads of their requests and answers (endpoints.hpp,
// pure), and each flow through EndpointRoute with the request path's fakes — no sockets, no servers.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "fakes.hpp"
#include "lagoon/http/routes.hpp"
#include "lagoon/relay/endpoint.hpp"

namespace lagoon {
namespace {

using namespace std::chrono_literals;
using relay::Meter;
using usage::Unit;

const relay::EndpointSpec& spec(std::string_view path) {
  for (const auto& s : relay::endpoint_specs())
    if (s.path == path) return s;
  throw std::logic_error("no spec for " + std::string(path));
}

relay::EndpointRequest inspected(std::string_view path, std::string_view body,
                                 std::string_view content_type = "application/json") {
  auto r = relay::inspect(spec(path), content_type, body);
  if (auto* bad = std::get_if<chat::InvalidRequest>(&r)) ADD_FAILURE() << bad->message;
  return std::get<relay::EndpointRequest>(r);
}

std::optional<std::string> refused_param(std::string_view path, std::string_view body,
                                         std::string_view content_type = "application/json") {
  auto r = relay::inspect(spec(path), content_type, body);
  auto* bad = std::get_if<chat::InvalidRequest>(&r);
  if (!bad) {
    ADD_FAILURE() << "accepted: " << body;
    return std::nullopt;
  }
  return bad->param.value_or("-");
}

std::string form(const std::vector<std::pair<std::string, std::string>>& fields, const std::string& file_name,
                 const std::string& file, const std::string& boundary = "XyZ") {
  std::string b;
  for (const auto& [name, value] : fields)
    b += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" + value + "\r\n";
  if (!file_name.empty())
    b += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + file_name +
         "\"; filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\n" + file + "\r\n";
  return b + "--" + boundary + "--\r\n";
}

TEST(Endpoints, EachIsRoutedUnderBothPrefixesInTheOrderOfItsSpecAndUploadsAreMarked) {
  const auto& specs = relay::endpoint_specs();
  ASSERT_EQ(specs.size(), 9u);
  for (std::size_t i = 0; i < specs.size(); ++i) {
    for (const std::string prefix : {"/api/v1", "/v1"}) {
      const auto m = http::match_route("POST", prefix + std::string(specs[i].path));
      ASSERT_EQ(m.kind, http::RouteMatch::Kind::found) << specs[i].path;
      EXPECT_EQ(static_cast<std::size_t>(m.route), static_cast<std::size_t>(http::Route::embeddings) + i);
      EXPECT_EQ(m.access, http::Access::key);
      EXPECT_EQ(m.upload, specs[i].body != relay::EndpointSpec::Body::json) << specs[i].path;
      EXPECT_EQ(http::match_route("GET", prefix + std::string(specs[i].path)).kind,
                http::RouteMatch::Kind::method_not_allowed);
    }
  }
}

TEST(Endpoints, OnlyTheFieldsTheGatewayNeedsAreChecked) {
  EXPECT_EQ(refused_param("/embeddings", R"({"model":"e"})"), "input");
  EXPECT_EQ(refused_param("/embeddings", R"({"model":"e","input":3})"), "input");
  EXPECT_EQ(refused_param("/embeddings", R"({"model":7,"input":"x"})"), "model");
  EXPECT_EQ(refused_param("/embeddings", R"([1,2])"), "-");
  EXPECT_EQ(refused_param("/images/generations", R"({"prompt":"p","n":0})"), "n");
  EXPECT_EQ(refused_param("/image/generate", R"({"prompt":"p","variants":"2"})"), "variants");
  EXPECT_EQ(refused_param("/audio/speech", R"({"voice":"af_sky"})"), "input");
  EXPECT_EQ(refused_param("/audio/speech", R"({"input":"hi","streaming":"yes"})"), "streaming");
  EXPECT_EQ(refused_param("/responses", R"({"input":"hi","stream":1})"), "stream");
  EXPECT_EQ(refused_param("/audio/transcriptions", R"({"model":"w"})"), "-");  // JSON: not a file upload
  EXPECT_EQ(refused_param("/audio/transcriptions", form({{"model", "w"}}, "", ""),
                          "multipart/form-data; boundary=XyZ"),
            "file");
  EXPECT_EQ(refused_param("/embeddings", form({{"model", "w"}}, "", ""), "multipart/form-data; boundary=XyZ"), "-");
  // A NUL would end nlohmann's parse early: the JSON before it is not the whole body.
  EXPECT_EQ(refused_param("/embeddings", std::string(R"({"model":"e","input":"x"})") + '\0' + "{}"), "-");
  // Nested brackets past the limit are refused before a parse could recurse through them.
  EXPECT_EQ(refused_param("/embeddings", R"({"input":)" + std::string(100000, '[') + std::string(100000, ']') + "}"),
            "-");
  // Whatever else a body says is Venice's to judge.
  const auto e = inspected("/embeddings", R"({"model":"text-embedding-bge-m3","input":["a","bc"],"dimensions":-4})");
  EXPECT_EQ(e.model, "text-embedding-bge-m3");
  EXPECT_EQ(e.input_bytes, std::string(R"(["a","bc"])").size());
}

TEST(Endpoints, WhatEachRequestAsksForIsReadForItsUsageRow) {
  EXPECT_EQ(inspected("/images/generations", R"({"prompt":"p"})").units, 1.0);
  EXPECT_EQ(inspected("/images/generations", R"({"prompt":"p","n":3})").units, 3.0);
  EXPECT_EQ(inspected("/image/generate", R"({"prompt":"p","variants":2})").units, 2.0);
  const auto speech = inspected("/audio/speech", R"({"input":"héllo wörld","streaming":true})");
  EXPECT_EQ(speech.units, 11.0);  // characters, not bytes
  EXPECT_TRUE(speech.stream);
  const auto responses = inspected("/responses", R"({"model":"m","input":"x","stream":true,"max_output_tokens":50})");
  EXPECT_TRUE(responses.stream);
  EXPECT_EQ(responses.max_tokens, 50);
}

TEST(Endpoints, AMultipartUploadIsReadOnlyForItsModelAndItsFilesSize) {
  const std::string wav(1000, '\x01');
  const auto body = form({{"model", "whisper-large-v3"}, {"language", "en"}}, "file", wav, "----b 7;x");
  const auto r = inspected("/audio/transcriptions", body, R"(multipart/form-data; boundary="----b 7;x")");
  EXPECT_TRUE(r.multipart);
  EXPECT_EQ(r.model, "whisper-large-v3");
  EXPECT_EQ(r.upload_bytes, wav.size());
  // A file that itself holds CRLFs and dashes is cut only at the real delimiter.
  const std::string tricky = "a\r\n--b\r\n--XyZ-not\r\n";
  const std::string tricky_body = form({}, "file", tricky);  // the parts view into it
  const auto parts = relay::form_parts(tricky_body, "XyZ");
  ASSERT_TRUE(parts);
  ASSERT_EQ(parts->size(), 1u);
  EXPECT_EQ((*parts)[0].value, tricky);
  EXPECT_EQ((*parts)[0].filename, "a.wav");
  // A quoted parameter may hold ';' (a browser sends it as it is in a file name): it neither ends the
  // value nor starts a parameter of its own (found by fuzzing: such a file name could rename the part).
  const std::string quoted = "--XyZ\r\nContent-Disposition: form-data; filename=\"a;name=model;\"; name=\"note\"\r\n\r\n"
                             "v\r\n--XyZ\r\nContent-Disposition: form-data; name=\";\"\r\n\r\nw\r\n--XyZ--\r\n";
  const auto q = relay::form_parts(quoted, "XyZ");
  ASSERT_TRUE(q);
  ASSERT_EQ(q->size(), 2u);
  EXPECT_EQ((*q)[0].name, "note");
  EXPECT_EQ((*q)[0].filename, "a;name=model;");
  EXPECT_EQ((*q)[1].name, ";");
  EXPECT_EQ(relay::multipart_boundary(R"(multipart/form-data; charset="x;boundary=y"; boundary=real)"), "real");
  // A part with headers and no body ends where the next delimiter begins (fuzzing found the value ran on).
  const auto empty = relay::form_parts("--b\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\n--b--", "b");
  ASSERT_TRUE(empty);
  ASSERT_EQ(empty->size(), 1u);
  EXPECT_EQ((*empty)[0].value, "");
  // An empty part straight after a delimiter, and a backslash in a quoted name (a character, as browsers
  // send it, not an escape) — both found by fuzzing.
  const auto bare = relay::form_parts("--b\r\n\r\n--b\r\nContent-Disposition: form-data; name=\"a\\\"\r\n\r\nx\r\n--b--", "b");
  ASSERT_TRUE(bare);
  ASSERT_EQ(bare->size(), 2u);
  EXPECT_EQ((*bare)[0].value, "");
  EXPECT_EQ((*bare)[1].name, "a\\");
  EXPECT_EQ((*bare)[1].value, "x");
  // Text that only begins like the first delimiter is preamble.
  const auto preamble = relay::form_parts("--bx\r\n--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--b--", "b");
  ASSERT_TRUE(preamble);
  ASSERT_EQ(preamble->size(), 1u);
  EXPECT_EQ((*preamble)[0].value, "1");
  EXPECT_EQ(refused_param("/audio/transcriptions", "x", "multipart/mixed; boundary=b"), "-");
  // Malformed: no close delimiter, or another boundary.
  EXPECT_FALSE(relay::form_parts("--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv", "XyZ"));
  EXPECT_FALSE(relay::form_parts(form({{"a", "b"}}, "", ""), "Other"));
  EXPECT_FALSE(relay::multipart_boundary("multipart/form-data"));
  EXPECT_FALSE(relay::multipart_boundary("application/json; boundary=x"));
  EXPECT_EQ(relay::multipart_boundary("Multipart/Form-Data; charset=utf-8; boundary=abc"), "abc");
}

TEST(Endpoints, AnAnswersUsageIsTheUpstreamsWhereItSaysElseWhatWasAsked) {
  const relay::EndpointRequest none;
  auto c = relay::count_whole(spec("/embeddings"), none, "application/json",
                              R"({"data":[],"usage":{"prompt_tokens":12,"total_tokens":12}})");
  EXPECT_EQ(c.prompt_tokens, 12);
  EXPECT_EQ(c.total_tokens, 12);
  EXPECT_FALSE(c.tokens_estimated);
  relay::EndpointRequest embed;
  embed.input_bytes = 40;
  c = relay::count_whole(spec("/embeddings"), embed, "application/json", R"({"data":[]})");
  EXPECT_EQ(c.prompt_tokens, 10);
  EXPECT_TRUE(c.tokens_estimated);

  relay::EndpointRequest three;
  three.units = 3;
  c = relay::count_whole(spec("/images/generations"), three, "application/json", R"({"data":[{},{}]})");
  EXPECT_EQ(c.units, 2.0);  // what came back, not what was asked
  EXPECT_EQ(c.unit, Unit::images);
  c = relay::count_whole(spec("/image/generate"), three, "application/json; charset=utf-8",
                         R"({"id":"x","images":["a","b","c"]})");
  EXPECT_EQ(c.units, 3.0);
  EXPECT_EQ(relay::count_binary(spec("/image/generate"), three).units, 1.0);
  EXPECT_EQ(relay::count_binary(spec("/image/upscale"), three).units, 1.0);

  relay::EndpointRequest upload;
  upload.upload_bytes = 64000;
  c = relay::count_whole(spec("/audio/transcriptions"), upload, "application/json", R"({"text":"hi","duration":2.5})");
  EXPECT_EQ(c.units, 2.5);
  EXPECT_EQ(c.unit, Unit::seconds);
  c = relay::count_whole(spec("/audio/transcriptions"), upload, "text/plain", "hi");
  EXPECT_EQ(c.units, 64000.0);
  EXPECT_EQ(c.unit, Unit::bytes);

  relay::EndpointRequest speech;
  speech.units = 11;
  c = relay::count_binary(spec("/audio/speech"), speech);
  EXPECT_EQ(c.units, 11.0);
  EXPECT_EQ(c.unit, Unit::characters);

  c = relay::count_whole(spec("/responses"), none, "application/json",
                         R"({"object":"response","usage":{"input_tokens":5,"output_tokens":7,"total_tokens":12}})");
  EXPECT_EQ(c.prompt_tokens, 5);
  EXPECT_EQ(c.completion_tokens, 7);
  EXPECT_EQ(c.total_tokens, 12);
  const auto completed = relay::responses_usage(
      R"({"type":"response.completed","response":{"usage":{"input_tokens":1,"output_tokens":2,"total_tokens":3}}})");
  ASSERT_TRUE(completed);
  EXPECT_EQ(completed->total_tokens, 3);
  EXPECT_FALSE(relay::responses_usage(R"({"type":"response.output_text.delta","delta":"usage"})"));
}

class EndpointRouteTest : public ::testing::Test {
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

  config::Config cfg_;
  metrics::Registry registry_;
  fakes::FakeSender upstream_;
  fakes::FakeSessions sessions_;
  fakes::FakeGate gate_;
  fakes::FakeSink sink_;
  relay::Cuts cuts_;
  boost::asio::io_context ioc_;
  relay::Relay relay_{relay::RelayDeps{cfg_, upstream_, sessions_, gate_, sink_, cuts_, registry_, 0ms}};
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

}  // namespace
}  // namespace lagoon

namespace lagoon {
namespace {

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
