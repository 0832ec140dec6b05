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
  // Both given: the larger bounds what the request may cost (the upstream may honour either).
  EXPECT_EQ(ok(R"({"model":"m","messages":[],"max_completion_tokens":7,"max_tokens":9})").max_tokens, 9);
  EXPECT_EQ(ok(R"({"model":"m","messages":[],"max_completion_tokens":9,"max_tokens":7})").max_tokens, 9);
}

// Estimates count the whole body: a 40 KB tool list is not one token.
TEST(ChatRequest, EstimatesCountTheWholeBody) {
  const std::string tools(40000, 'x');
  const std::string body = R"({"model":"m","messages":[{"role":"user","content":"Hi"}],"tools":[{"type":"function","function":{"name":"f","description":")" +
                           tools + R"("}}]})";
  const auto r = ok(body);
  EXPECT_EQ(r.prompt_chars, 2u);
  EXPECT_EQ(r.body_bytes, body.size());
}

// A NUL in the model split libpq's text parameters (a new session per request, and a usage row
// Postgres refused: billing escaped); a 3 MB name went into sessions, Redis and every log line.
TEST(ChatRequest, ModelWithControlCharactersOrTooLongIsRefused) {
  for (const std::string& model : {std::string(R"(m\u0000x)"), std::string(R"(m\nx)"), std::string(R"(m\u001fx)"),
                                  std::string("m\x7fx"), std::string(R"(\t)")}) {
    const auto e = bad(R"({"model":")" + model + R"(","messages":[]})");
    EXPECT_EQ(e.param, "model") << model;
    EXPECT_NE(e.message.find("control"), std::string::npos) << e.message;
  }
  const std::string longest(lagoon::chat::kMaxModelBytes, 'm');
  EXPECT_EQ(ok(R"({"model":")" + longest + R"(","messages":[]})").model, longest);
  const auto e = bad(R"({"model":")" + longest + R"(m","messages":[]})");
  EXPECT_EQ(e.param, "model");
  EXPECT_NE(e.message.find("256"), std::string::npos) << e.message;
  // Venice's own ids, with their ':' suffixes and non-ASCII names, are fine.
  EXPECT_EQ(ok(R"({"model":"qwen3-235b:strip_thinking_response=true","messages":[]})").model,
            "qwen3-235b:strip_thinking_response=true");
  EXPECT_EQ(ok(R"({"model":"m\u00e9","messages":[]})").model, "m\xc3\xa9");
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

TEST(ChatRequest, ANulByteIsRefusedWhereverItIsNotLetTheParserStopThere) {
  // nlohmann's parser takes a NUL for the end of its input: the object before it would pass, and what
  // follows go upstream unread (and a stream's include_usage be spliced into the wrong place).
  using namespace std::string_literals;
  const std::string trailing = R"({"model":"m","messages":[],"stream":true})"s + '\0' + R"({"model":"other"})";
  EXPECT_EQ(bad(trailing).param, std::nullopt);
  EXPECT_EQ(std::get<InvalidRequest>(parse_chat_request_dom(trailing)).param, std::nullopt);
  EXPECT_EQ(bad(R"({"model":"m","messages":[]})"s + std::string(9, '\0')).param, std::nullopt);
}

TEST(ChatRequest, NullMembersCanBeRemovedWithTheirComma) {
  EXPECT_EQ(without_null_member(R"({"a":1,"usage":null,"b":2})", "usage"), R"({"a":1,"b":2})");
  EXPECT_EQ(without_null_member(R"({"a":1,"usage":null})", "usage"), R"({"a":1})");
  EXPECT_EQ(without_null_member(R"({"usage" : null , "a":1})", "usage"), R"({ "a":1})");
  EXPECT_EQ(without_null_member(R"({"a":{"usage":null},"usage":{"x":1}})", "usage"), R"({"a":{"usage":null},"usage":{"x":1}})");
  EXPECT_EQ(without_null_member(R"({"a":"usage\":null"})", "usage"), R"({"a":"usage\":null"})");
}

// Stream chunks come from the upstream: a truncated or garbled one is relayed as it came, never thrown on.
TEST(ChatRequest, RemovingANullMemberLeavesMalformedTextUnchanged) {
  const std::vector<std::string> malformed = {
      R"({"usage")",                 // cut off after the key
      R"({"usage":)",                // … after the colon
      R"({"usage":null)",            // … before the end
      R"({"usage":null,)",
      R"({"usage":null,"a":)",
      R"({"usage":null}trailing)",
      R"({"us\age":null,"usage":null})",  // a bad escape in a key
      R"({"a\)",                          // an unterminated escaped key
      R"({"usage":null,"a":"open)",       // an unterminated string value
      R"({"usage":null,"a":[1,{"b":2}})",  // an unclosed array
      R"({"usage" null})",
      R"({"usage":null "a":1})",
      R"({usage:null})",
      R"({)",
      R"(")",
      R"({")",
      "",
      "not json",
      "[DONE]",
  };
  for (const auto& text : malformed) {
    SCOPED_TRACE(text);
    std::string out;
    ASSERT_NO_THROW(out = without_null_member(text, "usage"));
    EXPECT_EQ(out, text);
  }
  // Escaped keys that decode to the name still count.
  EXPECT_EQ(without_null_member(R"({"a":1,"us\u0061ge":null})", "usage"), R"({"a":1})");
  EXPECT_EQ(without_null_member(" {\"usage\":null}\n", "usage"), " {}\n");
}

// The single-pass reader and the document reader give the same answer for every body, valid or not.
TEST(ChatRequest, FastPathAgreesWithTheDocumentReader) {
  const std::vector<std::string> bodies = {
      R"({"model":"m","messages":[]})",
      R"({"model":"m","messages":[{"role":"user","content":"Hello"}]})",
      R"( { "messages" : [ {"content":"ab"}, {"content":[{"type":"text","text":"cde"},{"type":"image_url","image_url":{"url":"x"}},"s",{"text":7}]}, "x", 5, {"content":null}, {"content":{"text":"zz"}} ] , "model" : "llama" } )",
      R"({"model":"m","messages":[{"content":"first","content":"second!"}]})",
      R"({"model":"m","messages":[{"content":"first","content":null}]})",
      R"({"model":"m","messages":[{"content":[{"text":"a","text":"bbb"}]}]})",
      R"({"model":"m","messages":[],"stream":true})",
      R"({"model":"m","messages":[],"stream":false,"stream_options":{"include_usage":true}})",
      R"({"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":true}})",
      R"({"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":false}})",
      R"({"model":"m","messages":[],"stream":true,"stream_options":{}})",
      R"({"model":"m","messages":[],"stream":true,"stream_options":null})",
      R"({"model":"m","messages":[],"stream":null,"max_tokens":5,"max_completion_tokens":null})",
      R"({"model":"m","messages":[],"max_tokens":5,"max_completion_tokens":9})",
      R"({"model":"m","messages":[],"max_tokens":0})",
      R"({"model":"m","messages":[],"max_tokens":-1})",
      R"({"model":"m","messages":[],"max_tokens":1.5})",
      R"({"model":"m","messages":[],"max_tokens":18446744073709551615})",
      R"({"model":"m","messages":[],"max_tokens":"5"})",
      R"({"model":"m","messages":[],"stream":"yes"})",
      R"({"model":"m","messages":[],"stream_options":true})",
      R"({"model":"m","messages":[],"stream_options":[]})",
      R"({"model":"","messages":[]})",
      R"({"model":7,"messages":[]})",
      R"({"model":{"a":1},"messages":[]})",
      R"({"model":"m","messages":{}})",
      R"({"model":"m","messages":null})",
      R"({"model":"m"})",
      R"({"messages":[]})",
      R"({"model":"a","model":"b","messages":[]})",
      R"({"model":"m","messages":[],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"venice_parameters":{"x":[1,2,{"y":null}]}})",
      R"({"model":"m\u00e9","messages":[{"content":"caf\u00e9 \ud83d\ude00"}]})",
      R"({"model":"m\u0000","messages":[]})",
      "{\"model\":\"" + std::string(300, 'm') + "\",\"messages\":[]}",
      R"([{"model":"m"}])",
      R"("model")",
      R"({"model":"m","messages":[]} trailing)",
      R"({"model":"m","messages":[})",
      "",
      "{}",
  };
  for (const auto& body : bodies) {
    const auto fast = lagoon::chat::parse_chat_request(body);
    const auto dom = lagoon::chat::parse_chat_request_dom(body);
    ASSERT_EQ(fast.index(), dom.index()) << body;
    if (const auto* f = std::get_if<lagoon::chat::ChatRequest>(&fast)) {
      const auto& d = std::get<lagoon::chat::ChatRequest>(dom);
      EXPECT_EQ(f->model, d.model) << body;
      EXPECT_EQ(f->stream, d.stream) << body;
      EXPECT_EQ(f->client_wants_usage, d.client_wants_usage) << body;
      EXPECT_EQ(f->max_tokens, d.max_tokens) << body;
      EXPECT_EQ(f->prompt_chars, d.prompt_chars) << body;
      EXPECT_EQ(f->body_bytes, d.body_bytes) << body;
      EXPECT_EQ(f->upstream_body, d.upstream_body) << body;
    } else {
      const auto& fe = std::get<lagoon::chat::InvalidRequest>(fast);
      const auto& de = std::get<lagoon::chat::InvalidRequest>(dom);
      EXPECT_EQ(fe.message, de.message) << body;
      EXPECT_EQ(fe.param, de.param) << body;
    }
  }
}

TEST(ChatRequest, TheBaseModelIsTheNameBeforeVenicesSuffix) {
  EXPECT_EQ(lagoon::chat::base_model("venice-uncensored:enable_web_search=on"), "venice-uncensored");
  EXPECT_EQ(lagoon::chat::base_model("llama-3.3-70b"), "llama-3.3-70b");
  EXPECT_EQ(lagoon::chat::base_model("m:a=1:b=2"), "m");
  EXPECT_EQ(lagoon::chat::base_model(":x"), "");
}
