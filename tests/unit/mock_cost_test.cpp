// lagoon-mock-upstream's usage and "cost" of a chat completion, priced from its own catalog.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "lagoon/mock/catalog.hpp"
#include "lagoon/mock/cost.hpp"

namespace mock = lagoon::mock;
using nlohmann::json;

namespace {

mock::Plan plan(std::map<std::string, std::string> h) {
  return mock::plan_from([&](std::string_view n) -> std::string_view {
    auto it = h.find(std::string(n));
    return it == h.end() ? std::string_view{} : std::string_view(it->second);
  });
}

mock::Usage usage(std::uint64_t prompt, std::uint64_t completion, std::optional<std::uint64_t> cached = std::nullopt,
                  std::optional<std::uint64_t> written = std::nullopt) {
  mock::Usage u{prompt, completion};
  u.cached_tokens = cached;
  u.cache_write_tokens = written;
  return u;
}

const json& pricing_of(std::string_view model) {
  const json* pricing = mock::model_pricing(mock::default_models(), model);
  EXPECT_TRUE(pricing) << model;
  static const json none;
  return pricing ? *pricing : none;
}

std::optional<std::uint64_t> picousd(std::string_view model, const mock::Usage& u) {
  return mock::cost_picousd(pricing_of(model), u);
}

// The "usd" as written on the wire.
std::string usd_text(std::string_view model, const mock::Usage& u) {
  const auto cost = mock::chat_cost(mock::Plan{}, &pricing_of(model), u);
  EXPECT_TRUE(cost);
  return cost ? json(cost->usd).dump() : "";
}

}  // namespace

TEST(MockCost, InputAndOutputAtTheCatalogsPricePerMillionTokens) {
  // llama-3.3-70b: 0.7 in, 2.8 out.
  EXPECT_EQ(picousd("llama-3.3-70b", usage(100, 5)), 100 * 700'000u + 5 * 2'800'000u);
  EXPECT_EQ(usd_text("llama-3.3-70b", usage(1000, 50)), "0.00084");
  // The model's parameters after ':' name the same model and price.
  EXPECT_EQ(picousd("llama-3.3-70b:enable_web_search=on", usage(100, 5)), 84'000'000u);
}

TEST(MockCost, IsTheExactDecimalNotASumOfDoubles) {
  // 123 × 3 / 1e6 + 7 × 15 / 1e6 in doubles is 0.00047400000000000003.
  EXPECT_EQ(picousd("claude-mock-sonnet", usage(123, 7)), 474'000'000u);
  EXPECT_EQ(usd_text("claude-mock-sonnet", usage(123, 7)), "0.000474");
  // … and 200001 × 6 / 1e6 + 10 × 22.5 / 1e6 is 1.2002309999999998.
  EXPECT_EQ(usd_text("claude-mock-sonnet", usage(200'001, 10)), "1.200231");
}

TEST(MockCost, CachedTokensAtTheCacheRatesOrTheInputRateWhenThereAreNone) {
  // claude-mock-sonnet: 200 uncached × 3 + 600 read × 0.3 + 200 written × 3.75 + 50 out × 15.
  EXPECT_EQ(picousd("claude-mock-sonnet", usage(1000, 50, 600, 200)),
            200 * 3'000'000u + 600 * 300'000u + 200 * 3'750'000u + 50 * 15'000'000u);
  EXPECT_EQ(usd_text("claude-mock-sonnet", usage(1000, 50, 600, 200)), "0.00228");
  EXPECT_EQ(picousd("claude-mock-sonnet", usage(1000, 50, 600)), 400 * 3'000'000u + 600 * 300'000u + 750'000'000u);
  // llama-3.3-70b lists no cache prices: cached and written tokens cost what input does.
  EXPECT_EQ(picousd("llama-3.3-70b", usage(100, 5, 40, 10)), picousd("llama-3.3-70b", usage(100, 5)));
}

TEST(MockCost, AbovetheThresholdTheExtendedRatesPriceTheWholeRequest) {
  // At 200000 prompt tokens the standard rates still apply; one more and every token is at extended's.
  EXPECT_EQ(usd_text("claude-mock-sonnet", usage(200'000, 10)), "0.60015");
  EXPECT_EQ(picousd("claude-mock-sonnet", usage(200'001, 10)), 200'001 * 6'000'000ull + 10 * 22'500'000ull);
  // 100000 uncached × 6 + 100000 read × 0.6 + 50000 written × 7.5 + 1000 out × 22.5.
  EXPECT_EQ(usd_text("claude-mock-sonnet", usage(250'000, 1000, 100'000, 50'000)), "1.0575");
}

TEST(MockCost, AModelTheCatalogDoesNotPriceByTokenHasNoCost) {
  EXPECT_FALSE(mock::model_pricing(mock::default_models(), "no-such-model"));
  EXPECT_FALSE(mock::chat_cost(mock::Plan{}, nullptr, usage(100, 5)));
  EXPECT_FALSE(mock::cost_picousd(pricing_of("venice-sd35"), usage(100, 5)));  // priced per image
  const auto body = json::parse(mock::completion_body("i", "no-such-model", mock::Plan{}, usage(100, 5),
                                                      mock::chat_cost(mock::Plan{}, nullptr, usage(100, 5))));
  EXPECT_FALSE(body.contains("cost"));
  EXPECT_FALSE(body["usage"].contains("prompt_tokens_details"));
}

TEST(MockCost, DirectivesOmitOrSetTheCost) {
  const json& llama = pricing_of("llama-3.3-70b");
  EXPECT_FALSE(mock::chat_cost(plan({{"x-mock-cost", "none"}}), &llama, usage(100, 5)));
  const auto fixed = mock::chat_cost(plan({{"x-mock-cost", "0.5"}}), nullptr, usage(100, 5));
  ASSERT_TRUE(fixed);
  EXPECT_EQ(fixed->usd, 0.5);
  EXPECT_EQ(fixed->diem, 0);
  const auto diem = mock::chat_cost(plan({{"x-mock-cost-diem", "0.25"}}), &llama, usage(100, 5));
  ASSERT_TRUE(diem);
  EXPECT_EQ(diem->usd, 0.000084);
  EXPECT_EQ(diem->diem, 0.25);
  // What is not a finite number is ignored, as every directive's bad value is.
  for (const char* bad : {"abc", "inf", "nan", "1e999", ""})
    EXPECT_EQ(mock::chat_cost(plan({{"x-mock-cost", bad}}), &llama, usage(100, 5))->usd, 0.000084) << bad;
}

TEST(MockCost, CacheDirectivesArePartsOfThePrompt) {
  const auto p = plan({{"x-mock-cached-tokens", "600"}, {"x-mock-cache-write-tokens", "200"}, {"x-mock-chunks", "3"}});
  EXPECT_EQ(p.cached_tokens, 600u);
  EXPECT_EQ(p.cache_write_tokens, 200u);
  const auto small = mock::chat_usage(400, p);  // 100 tokens of body: the prompt grows to hold 800
  EXPECT_EQ(small.prompt_tokens, 800u);
  EXPECT_EQ(small.completion_tokens, 3u);
  EXPECT_EQ(mock::chat_usage(4000, p).prompt_tokens, 1000u);
  EXPECT_FALSE(mock::chat_usage(4000, plan({})).cached_tokens);
  EXPECT_FALSE(plan({{"x-mock-cached-tokens", "-1"}}).cached_tokens);
  EXPECT_FALSE(plan({{"x-mock-cached-tokens", "100000001"}}).cached_tokens);  // over kMaxDirectiveTokens
}

TEST(MockCost, CompletionAndUsageChunkCarryTheCostAndTheCacheDetails) {
  const auto u = usage(1000, 50, 600, 200);
  const auto cost = mock::chat_cost(mock::Plan{}, &pricing_of("claude-mock-sonnet"), u);
  const std::string body = mock::completion_body("i", "claude-mock-sonnet", mock::Plan{}, u, cost);
  EXPECT_NE(body.find(R"("cost":{"diem":0,"usd":0.00228})"), std::string::npos) << body;
  EXPECT_NE(body.find(R"("usage":{"completion_tokens":50,"prompt_tokens":1000,)"
                      R"("prompt_tokens_details":{"cache_creation_input_tokens":200,"cached_tokens":600},)"
                      R"("total_tokens":1050})"),
            std::string::npos)
      << body;
  const std::string chunk = mock::usage_event("i", "claude-mock-sonnet", usage(10, 2, 4), mock::Cost{0.5, 0.25});
  EXPECT_NE(chunk.find(R"("cost":{"diem":0.25,"usd":0.5})"), std::string::npos) << chunk;
  EXPECT_NE(chunk.find(R"("prompt_tokens_details":{"cached_tokens":4})"), std::string::npos) << chunk;
  EXPECT_EQ(mock::usage_event("i", "m", usage(10, 2)).find("cost"), std::string::npos);
}
