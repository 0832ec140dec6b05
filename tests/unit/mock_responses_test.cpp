#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <nlohmann/json.hpp>

#include "lagoon/mock/media.hpp"
#include "lagoon/mock/responses.hpp"

namespace mock = lagoon::mock;
using nlohmann::json;

namespace {
mock::Plan plan(std::map<std::string, std::string> h) {
  return mock::plan_from([&](std::string_view n) -> std::string_view {
    auto it = h.find(std::string(n));
    return it == h.end() ? std::string_view{} : std::string_view(it->second);
  });
}
json data_of(const std::string& event) {
  EXPECT_EQ(event.rfind("data: ", 0), 0u);
  EXPECT_EQ(event.substr(event.size() - 2), "\n\n");
  return json::parse(event.substr(6, event.size() - 8));
}
}  // namespace

TEST(MockResponses, PlanFromHeaders) {
  auto p = plan({{"x-mock-status", "503"}, {"x-mock-chunks", "7"}, {"x-mock-gap-ms", "20"}, {"x-mock-stall", "body"},
                 {"x-mock-reset-after", "3"}, {"x-mock-bytes", "1000"}});
  EXPECT_EQ(p.status, 503u);
  EXPECT_EQ(p.chunks, 7u);
  EXPECT_EQ(p.gap, std::chrono::milliseconds(20));
  EXPECT_EQ(p.stall, mock::Plan::Stall::body);
  EXPECT_EQ(p.reset_after, 3u);
  EXPECT_EQ(p.bytes, 1000u);
  auto d = plan({{"x-mock-status", "abc"}, {"x-mock-chunks", "-1"}});
  EXPECT_EQ(d.status, 200u);
  EXPECT_EQ(d.chunks, 5u);
}

TEST(MockResponses, ContentBytesAddUp) {
  auto p = plan({{"x-mock-bytes", "1003"}, {"x-mock-chunks", "10"}});
  std::size_t total = 0;
  for (unsigned i = 0; i < p.chunks; ++i) total += mock::chunk_content(p, i).size();
  EXPECT_EQ(total, 1003u);
}

TEST(MockResponses, CompletionHasOpenAiShapeAndUsage) {
  auto p = plan({{"x-mock-chunks", "3"}});
  auto b = json::parse(mock::completion_body("id1", "m", p, {10, 3}));
  EXPECT_EQ(b["object"], "chat.completion");
  EXPECT_EQ(b["model"], "m");
  EXPECT_EQ(b["choices"][0]["message"]["content"], "tok0 tok1 tok2 ");
  EXPECT_EQ(b["usage"]["total_tokens"], 13);
}

TEST(MockResponses, StreamEventsAreSseWithUsageChunkLast) {
  auto role = data_of(mock::role_event("i", "m", true));
  EXPECT_EQ(role["choices"][0]["delta"]["role"], "assistant");
  EXPECT_TRUE(role.contains("usage") && role["usage"].is_null());
  auto content = data_of(mock::content_event("i", "m", "hi", false));
  EXPECT_EQ(content["choices"][0]["delta"]["content"], "hi");
  EXPECT_FALSE(content.contains("usage"));
  auto fin = data_of(mock::finish_event("i", "m", false));
  EXPECT_EQ(fin["choices"][0]["finish_reason"], "stop");
  auto usage = data_of(mock::usage_event("i", "m", {5, 2}));
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["completion_tokens"], 2);
  EXPECT_EQ(mock::kDoneEvent, "data: [DONE]\n\n");
}

TEST(MockResponses, ErrorsHaveOpenAiShapeAndA402NamesTheBalance) {
  auto e = json::parse(mock::error_body(429, "slow down"));
  EXPECT_EQ(e["error"]["type"], "rate_limit_error");
  EXPECT_NE(mock::error_message_for(402).find("balance"), std::string::npos);
  EXPECT_EQ(mock::error_message_for(503), "mock upstream error 503");
}

TEST(MockResponses, NoDurationDirective) {
  EXPECT_TRUE(plan({{"x-mock-no-duration", "1"}}).no_duration);
  EXPECT_FALSE(plan({{"x-mock-no-duration", "0"}}).no_duration);
}

// ---- Binary answers ----

TEST(MockResponses, MockBytesAreAFunctionOfSizeAndKey) {
  EXPECT_EQ(mock::fnv1a64(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(mock::fnv1a64("a"), 0xaf63dc4c8601ec8cull);  // the published FNV-1a 64 test vector
  EXPECT_EQ(mock::mock_bytes(1000, "cat#0"), mock::mock_bytes(1000, "cat#0"));
  EXPECT_EQ(mock::mock_bytes(1001, "k").size(), 1001u);
  EXPECT_EQ(mock::mock_bytes(0, "k"), "");
  EXPECT_NE(mock::mock_bytes(64, "cat#0"), mock::mock_bytes(64, "cat#1"));
  // The size is part of the seed: a longer body is not the shorter one extended.
  EXPECT_NE(mock::mock_bytes(64, "k"), mock::mock_bytes(65, "k").substr(0, 64));
  EXPECT_EQ(mock::image_key("a cat", 2), "a cat#2");
  EXPECT_EQ(mock::edit_key("upscale", "PNG"), "upscale:PNG");
  EXPECT_EQ(mock::binary_size(plan({})), mock::kDefaultBinaryBytes);
  EXPECT_EQ(mock::binary_size(plan({{"x-mock-bytes", "10"}})), 10u);
}

// ---- Embeddings ----

TEST(MockResponses, EmbeddingsHaveVeniceShapeAndPredictableUsage) {
  const std::vector<std::string> inputs = {"hello", "a longer second input"};
  auto b = json::parse(mock::embeddings_body(inputs, "text-embedding-bge-m3", 8, false));
  EXPECT_EQ(b["object"], "list");
  EXPECT_EQ(b["model"], "text-embedding-bge-m3");
  ASSERT_EQ(b["data"].size(), 2u);
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    EXPECT_EQ(b["data"][i]["object"], "embedding");
    EXPECT_EQ(b["data"][i]["index"], i);
    const auto expected = mock::embedding_vector(inputs[i], 8);
    ASSERT_EQ(b["data"][i]["embedding"].size(), 8u);
    for (std::size_t k = 0; k < 8; ++k) {
      EXPECT_EQ(b["data"][i]["embedding"][k].get<float>(), expected[k]);
      EXPECT_GE(expected[k], -1.0f);
      EXPECT_LT(expected[k], 1.0f);
    }
  }
  EXPECT_EQ(mock::embedding_tokens_for(inputs), mock::prompt_tokens_for(5) + mock::prompt_tokens_for(21));
  EXPECT_EQ(b["usage"]["prompt_tokens"], mock::embedding_tokens_for(inputs));
  EXPECT_EQ(b["usage"]["total_tokens"], b["usage"]["prompt_tokens"]);
}

TEST(MockResponses, Base64EmbeddingsAreLittleEndianFloat32s) {
  auto b = json::parse(mock::embeddings_body({"x"}, "m", 4, true));
  auto raw = mock::base64_decode(b["data"][0]["embedding"].get<std::string>());
  ASSERT_TRUE(raw);
  ASSERT_EQ(raw->size(), 16u);
  const auto expected = mock::embedding_vector("x", 4);
  for (std::size_t k = 0; k < 4; ++k) {
    std::uint32_t u = 0;
    for (unsigned i = 0; i < 4; ++i)
      u |= static_cast<std::uint32_t>(static_cast<unsigned char>((*raw)[4 * k + i])) << (8 * i);
    float f;
    std::memcpy(&f, &u, 4);
    EXPECT_EQ(f, expected[k]);
  }
}

// ---- Images ----

TEST(MockResponses, OpenAiImageGenerationsCarryNImagesOfTheGenerator) {
  auto b = json::parse(mock::images_generations_body("a cat", 3, 100, false, "image/png"));
  EXPECT_EQ(b["created"].get<std::int64_t>(), 1767225600);
  ASSERT_EQ(b["data"].size(), 3u);
  for (unsigned i = 0; i < 3; ++i)
    EXPECT_EQ(mock::base64_decode(b["data"][i]["b64_json"].get<std::string>()),
              mock::mock_bytes(100, mock::image_key("a cat", i)));
  auto u = json::parse(mock::images_generations_body("a cat", 1, 10, true, "image/webp"));
  EXPECT_EQ(u["data"][0]["url"], "data:image/webp;base64," + mock::base64_encode(mock::mock_bytes(10, "a cat#0")));
}

TEST(MockResponses, VeniceImageGenerateHasIdImagesTimingAndTheRequest) {
  const json request = {{"model", "venice-sd35"}, {"prompt", "p"}, {"variants", 2}};
  auto b = json::parse(mock::image_generate_body("generate-image-1", "p", 2, 50, request));
  EXPECT_EQ(b["id"], "generate-image-1");
  ASSERT_EQ(b["images"].size(), 2u);
  EXPECT_EQ(mock::base64_decode(b["images"][1].get<std::string>()), mock::mock_bytes(50, "p#1"));
  for (const char* k : {"inferenceDuration", "inferencePreprocessingTime", "inferenceQueueTime", "total"})
    EXPECT_TRUE(b["timing"][k].is_number()) << k;
  EXPECT_EQ(b["request"], request);
}

// ---- Audio ----

TEST(MockResponses, TranscriptionCarriesDurationWhenKnown) {
  auto p = plan({{"x-mock-chunks", "3"}});
  EXPECT_EQ(mock::transcript_text(p), "tok0 tok1 tok2");
  auto with = json::parse(mock::transcription_body("a b", 2.5, false));
  EXPECT_EQ(with["text"], "a b");
  EXPECT_EQ(with["duration"], 2.5);
  EXPECT_FALSE(with.contains("timestamps"));
  auto without = json::parse(mock::transcription_body("a b", std::nullopt, false));
  EXPECT_FALSE(without.contains("duration"));
  auto stamped = json::parse(mock::transcription_body("a b", 2.0, true));
  ASSERT_EQ(stamped["timestamps"]["word"].size(), 2u);
  EXPECT_EQ(stamped["timestamps"]["word"][1]["word"], "b");
  EXPECT_EQ(stamped["timestamps"]["word"][1]["end"], 2.0);
  EXPECT_EQ(stamped["timestamps"]["segment"][0]["text"], "a b");
}

// ---- Responses API ----

TEST(MockResponses, ResponseObjectHasOutputTextAndUsage) {
  auto b = json::parse(mock::response_body("resp_1", "m", "hello", {7, 3}));
  EXPECT_EQ(b["id"], "resp_1");
  EXPECT_EQ(b["object"], "response");
  EXPECT_EQ(b["status"], "completed");
  EXPECT_EQ(b["model"], "m");
  EXPECT_TRUE(b["created_at"].is_number_integer());
  EXPECT_EQ(b["output"][0]["type"], "message");
  EXPECT_EQ(b["output"][0]["role"], "assistant");
  EXPECT_EQ(b["output"][0]["content"][0]["type"], "output_text");
  EXPECT_EQ(b["output"][0]["content"][0]["text"], "hello");
  EXPECT_EQ(b["usage"]["input_tokens"], 7);
  EXPECT_EQ(b["usage"]["output_tokens"], 3);
  EXPECT_EQ(b["usage"]["total_tokens"], 10);
}

TEST(MockResponses, ResponseStreamIsTypedSseInOpenAisOrder) {
  std::string sse = mock::response_opening_events("resp_1", "m");
  sse += mock::response_delta_event("resp_1", mock::kResponseOpeningEvents, "he");
  sse += mock::response_delta_event("resp_1", mock::kResponseOpeningEvents + 1, "llo");
  sse += mock::response_closing_events("resp_1", "m", "hello", {7, 2}, mock::kResponseOpeningEvents + 2);
  std::vector<std::string> types;
  std::vector<json> data;
  for (std::size_t at = 0; at < sse.size();) {
    const auto end = sse.find("\n\n", at);
    ASSERT_NE(end, std::string::npos);
    const std::string event = sse.substr(at, end - at);
    at = end + 2;
    ASSERT_EQ(event.rfind("event: ", 0), 0u) << event;
    const auto nl = event.find('\n');
    types.push_back(event.substr(7, nl - 7));
    ASSERT_EQ(event.substr(nl + 1, 6), "data: ");
    data.push_back(json::parse(event.substr(nl + 7)));
  }
  const std::vector<std::string> expected = {"response.created",           "response.in_progress",
                                             "response.output_item.added", "response.content_part.added",
                                             "response.output_text.delta", "response.output_text.delta",
                                             "response.output_text.done",  "response.content_part.done",
                                             "response.output_item.done",  "response.completed"};
  EXPECT_EQ(types, expected);
  for (std::size_t i = 0; i < data.size(); ++i) {
    EXPECT_EQ(data[i]["type"], types[i]);
    EXPECT_EQ(data[i]["sequence_number"], i);
  }
  EXPECT_EQ(data[0]["response"]["status"], "in_progress");
  EXPECT_EQ(data[2]["item"]["type"], "message");
  const std::string item = data[2]["item"]["id"];
  EXPECT_EQ(data[4]["item_id"], item);
  EXPECT_EQ(data[4]["delta"].get<std::string>() + data[5]["delta"].get<std::string>(), "hello");
  EXPECT_EQ(data[6]["text"], "hello");
  EXPECT_EQ(data[7]["part"]["text"], "hello");
  EXPECT_EQ(data[8]["item"]["status"], "completed");
  EXPECT_EQ(data[9]["response"]["status"], "completed");
  EXPECT_EQ(data[9]["response"]["output"][0]["content"][0]["text"], "hello");
  EXPECT_EQ(data[9]["response"]["usage"]["total_tokens"], 9);
}
