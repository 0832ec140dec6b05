#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

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

TEST(MockResponses, ModelsAndErrors) {
  auto m = json::parse(mock::models_body());
  EXPECT_EQ(m["object"], "list");
  EXPECT_FALSE(m["data"].empty());
  auto e = json::parse(mock::error_body(429, "slow down"));
  EXPECT_EQ(e["error"]["type"], "rate_limit_error");
}
