// Venice's endpoints besides chat as the gateway reads them (endpoints.hpp, pure): routing, the fields
// checked, multipart bodies, and how an answer's usage is counted. Their flows through EndpointRoute are in
// endpoint_route_test.cpp.
#include <gtest/gtest.h>

#include "endpoint_support.hpp"
#include "lagoon/http/routes.hpp"

namespace lagoon {
namespace {

using relay::Meter;
using test::form;
using test::spec;
using usage::Unit;

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

}  // namespace
}  // namespace lagoon
