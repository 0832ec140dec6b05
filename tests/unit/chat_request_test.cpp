// The chat body: what is refused (and names which field), and that the body sent upstream is the
// client's bytes, changed only to ask for the usage chunk of a stream.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "lagoon/chat/request.hpp"

using namespace lagoon::chat;

namespace {

ChatRequest ok(std::string_view body) {
  auto r = parse_chat_request(body);
  if (auto* bad = std::get_if<InvalidRequest>(&r)) ADD_FAILURE() << bad->message << " in " << body;
  return std::holds_alternative<ChatRequest>(r) ? std::get<ChatRequest>(r) : ChatRequest{};
}

InvalidRequest bad(std::string_view body) {
  auto r = parse_chat_request(body);
  EXPECT_TRUE(std::holds_alternative<InvalidRequest>(r)) << body;
  return std::holds_alternative<InvalidRequest>(r) ? std::get<InvalidRequest>(r) : InvalidRequest{};
}

}  // namespace

TEST(ChatRequest, NonStreamBodiesPassThroughByteForByte) {
  const std::string body =
      "{ \"model\" : \"llama-3.3-70b\",\n \"messages\":[{\"role\":\"user\",\"content\":\"Hi \\u00e9\"}],"
      "\"venice_parameters\":{\"include_venice_system_prompt\":false},\"tools\":[],\"x\":1.50}";
  auto r = ok(body);
  EXPECT_EQ(r.upstream_body, body);
  EXPECT_EQ(r.model, "llama-3.3-70b");
  EXPECT_FALSE(r.stream);
  EXPECT_EQ(r.prompt_chars, 5u);  // "Hi é" decoded: é is two UTF-8 bytes
}

TEST(ChatRequest, AStreamGetsIncludeUsageAndNothingElseChanges) {
  const std::string body = R"({"model":"m","messages":[],"stream":true, "temperature":0.70})";
  auto r = ok(body);
  EXPECT_TRUE(r.stream);
  EXPECT_FALSE(r.client_wants_usage);
  EXPECT_EQ(r.upstream_body, R"({"stream_options":{"include_usage":true},"model":"m","messages":[],"stream":true, "temperature":0.70})");
  EXPECT_TRUE(nlohmann::json::parse(r.upstream_body)["stream_options"]["include_usage"].get<bool>());
}

TEST(ChatRequest, ExistingStreamOptionsAreKeptAndCompleted) {
  auto r = ok(R"({"model":"m","messages":[],"stream":true,"stream_options":{"x":"}\"{"} ,"n":1})");
  EXPECT_EQ(r.upstream_body, R"({"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":true,"x":"}\"{"} ,"n":1})");
  auto asked = ok(R"({"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":true}})");
  EXPECT_TRUE(asked.client_wants_usage);
  EXPECT_EQ(asked.upstream_body, R"({"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":true}})");
  auto null_options = ok(R"({"model":"m","messages":[],"stream":true,"stream_options":null})");
  EXPECT_EQ(null_options.upstream_body, R"({"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":true}})");
  auto escaped_key = ok(R"({"model":"m","messages":[],"stream":true,"stream\u005foptions":{"include_usage":false}})");
  EXPECT_EQ(escaped_key.upstream_body, R"({"model":"m","messages":[],"stream":true,"stream\u005foptions":{"include_usage":true}})");
}

TEST(ChatRequest, ReadsMaxTokensAndPromptLength) {
  auto r = ok(R"({"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"abcd"},{"type":"image_url"}]},
                 {"role":"system","content":"xy"}],"max_tokens":100})");
  EXPECT_EQ(r.max_tokens, 100);
  EXPECT_EQ(r.prompt_chars, 6u);
  EXPECT_EQ(ok(R"({"model":"m","messages":[],"max_completion_tokens":7,"max_tokens":9})").max_tokens, 7);
}

TEST(ChatRequest, RefusesWhatTheGatewayCannotWorkWith) {
  EXPECT_EQ(bad("not json").param, std::nullopt);
  EXPECT_EQ(bad("[1,2]").param, std::nullopt);
  EXPECT_EQ(bad(R"({"messages":[]})").param, "model");
  EXPECT_EQ(bad(R"({"model":7,"messages":[]})").param, "model");
  EXPECT_EQ(bad(R"({"model":"","messages":[]})").param, "model");
  EXPECT_EQ(bad(R"({"model":"m"})").param, "messages");
  EXPECT_EQ(bad(R"({"model":"m","messages":{}})").param, "messages");
  EXPECT_EQ(bad(R"({"model":"m","messages":[],"stream":"yes"})").param, "stream");
  bad(R"({"model":"m","messages":[],"max_tokens":1e309})");  // out of range: nlohmann refuses the number
  EXPECT_EQ(bad(R"({"model":"m","messages":[],"max_tokens":1.5})").param, "max_tokens");
  EXPECT_EQ(bad(R"({"model":"m","messages":[],"max_tokens":-1})").param, "max_tokens");
  EXPECT_EQ(bad(R"({"model":"m","messages":[],"stream":true,"stream_options":3})").param, "stream_options");
  EXPECT_EQ(bad("{\"model\":\"m\",\"messages\":[\"\xff\"]}").param, std::nullopt);  // invalid UTF-8
}

TEST(ChatRequest, DeepNestingIsRefusedWithoutParsing) {
  std::string deep = R"({"model":"m","messages":[)" + std::string(100'000, '[') + std::string(100'000, ']') + "]}";
  EXPECT_NE(bad(deep).message.find("nests deeper"), std::string::npos);
  std::string fine = R"({"model":"m","messages":[)" + std::string(100, '[') + std::string(100, ']') + "]}";
  ok(fine);
}

TEST(ChatRequest, NullMembersCanBeRemovedWithTheirComma) {
  EXPECT_EQ(without_null_member(R"({"a":1,"usage":null,"b":2})", "usage"), R"({"a":1,"b":2})");
  EXPECT_EQ(without_null_member(R"({"a":1,"usage":null})", "usage"), R"({"a":1})");
  EXPECT_EQ(without_null_member(R"({"usage" : null , "a":1})", "usage"), R"({ "a":1})");
  EXPECT_EQ(without_null_member(R"({"a":{"usage":null},"usage":{"x":1}})", "usage"), R"({"a":{"usage":null},"usage":{"x":1}})");
  EXPECT_EQ(without_null_member(R"({"a":"usage\":null"})", "usage"), R"({"a":"usage\":null"})");
}
