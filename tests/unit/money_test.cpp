// Money and prices: exact decimal arithmetic, Venice's pricing shapes, the cost of each kind of usage.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "lagoon/mock/catalog.hpp"
#include "lagoon/money/money.hpp"
#include "lagoon/money/price.hpp"

namespace lagoon::money {
namespace {

using nlohmann::json;
constexpr Pico kUsd = kPicoPerUsd;

Consumed tok(std::int64_t prompt, std::int64_t completion, std::int64_t cached = 0, std::int64_t written = 0) {
  Consumed c;
  c.prompt_tokens = prompt;
  c.completion_tokens = completion;
  c.cached_tokens = cached;
  c.cache_write_tokens = written;
  return c;
}

Consumed units(double n, usage::Unit unit, std::string tier = "") {
  Consumed c;
  c.units = n;
  c.unit = unit;
  c.tier = std::move(tier);
  return c;
}

TEST(Money, ParsesDecimalsExactly) {
  EXPECT_EQ(parse_usd("0.7"), 700'000'000'000);
  EXPECT_EQ(parse_usd("3"), 3 * kUsd);
  EXPECT_EQ(parse_usd("0.000000000001"), 1);
  EXPECT_EQ(parse_usd("1e-4"), 100'000'000);
  EXPECT_EQ(parse_usd("2.5E2"), 250 * kUsd);
  EXPECT_EQ(parse_usd(".5"), kUsd / 2);
  EXPECT_EQ(parse_usd("0.7", -6), 700'000);  // USD per million → per one
  EXPECT_EQ(parse_usd("0.01", 3), 10 * kUsd);
  // Finer than a pico-dollar rounds up: money owed is never shaved.
  EXPECT_EQ(parse_usd("0.0000000000001"), 1);
  EXPECT_EQ(parse_usd("0.0000000000010000000000000000001"), 2);
  EXPECT_EQ(parse_usd("9223372.036854775807"), kMaxPico);
}

TEST(Money, RefusesWhatIsNotAnAmount) {
  for (const char* bad : {"", "-1", "+1", "1.2.3", "abc", "1e", "e5", ".", "1,5", "1 ", "9223372.036854775808",
                          "1e999", "nan", "inf"})
    EXPECT_FALSE(parse_usd(bad)) << bad;
}

TEST(Money, ReadsJsonNumbersByTheirDecimalText) {
  EXPECT_EQ(from_json_usd(json::parse("0.15")), 150'000'000'000);
  EXPECT_EQ(from_json_usd(json::parse("0.0001")), 100'000'000);
  EXPECT_EQ(from_json_usd(json::parse("41.25")), 41'250'000'000'000);
  EXPECT_EQ(from_json_usd(json::parse("7")), 7 * kUsd);
  EXPECT_FALSE(from_json_usd(json::parse("-0.5")));
  EXPECT_FALSE(from_json_usd(json::parse("\"0.5\"")));
  EXPECT_FALSE(from_json_usd(json::parse("null")));
}

TEST(Money, FormatsWithoutTrailingZeros) {
  EXPECT_EQ(format_usd(0), "0");
  EXPECT_EQ(format_usd(700'000'000'000), "0.7");
  EXPECT_EQ(format_usd(1), "0.000000000001");
  EXPECT_EQ(format_usd(12 * kUsd + 340'000'000'000), "12.34");
  EXPECT_EQ(format_usd(kMaxPico), "9223372.036854775807");
  for (Pico p : {Pico{0}, Pico{1}, Pico{999}, kUsd, 123'456'789'012'345, kMaxPico})
    EXPECT_EQ(parse_usd(format_usd(p)), p);
}

TEST(Money, MultipliesAndRoundsUp) {
  EXPECT_EQ(mul_div_up(3, 7, 2), 11);
  EXPECT_EQ(mul_div_up(4, 5, 2), 10);
  EXPECT_EQ(mul_div_up(INT64_MAX, INT64_MAX, 1), kMaxPico);
  EXPECT_EQ(mul_div_up(0, 5, 2), 0);
  EXPECT_EQ(add(kMaxPico, 1), kMaxPico);
}

json venice(const char* text) { return json::parse(text); }

TEST(Price, ReadsEveryPricingShapeVeniceSends) {
  const auto llm = from_venice(venice(R"({"input":{"usd":0.7,"diem":7},"output":{"usd":2.8,"diem":28},
      "cache_input":{"usd":0.35,"diem":3.5},"extended":{"context_token_threshold":200000,
      "input":{"usd":11,"diem":11},"output":{"usd":41.25,"diem":41.25}}})"),
                               "text");
  ASSERT_TRUE(llm && llm->tokens && llm->extended);
  EXPECT_EQ(llm->tokens->input, 700'000'000'000);
  EXPECT_EQ(llm->tokens->cache_input, 350'000'000'000);
  EXPECT_FALSE(llm->tokens->cache_write);
  EXPECT_EQ(llm->extended_threshold, 200000);
  EXPECT_EQ(llm->extended->output, 41'250'000'000'000);

  const auto image = from_venice(venice(R"({"generation":{"usd":0.01},"resolutions":{"1K":{"usd":0.18}},
      "quality":{"2K":{"high":{"usd":0.5}}},"upscale":{"2x":{"usd":0.02},"4x":{"usd":0.08}}})"),
                                 "image");
  ASSERT_TRUE(image);
  EXPECT_FALSE(image->tokens);
  EXPECT_EQ(image->per_image, 10'000'000'000);
  EXPECT_EQ(image->per_image_tier.at("1K"), 180'000'000'000);
  EXPECT_EQ(image->per_image_tier.at("2K/high"), 500'000'000'000);
  EXPECT_EQ(image->per_image_tier.at("4x"), 80'000'000'000);

  EXPECT_EQ(from_venice(venice(R"({"input":{"usd":3.5}})"), "tts")->per_million_characters, 3'500'000'000'000);
  EXPECT_EQ(from_venice(venice(R"({"per_thousand_characters":{"usd":0.01}})"), "tts")->per_million_characters,
            10 * kUsd);
  EXPECT_EQ(from_venice(venice(R"({"per_audio_second":{"usd":0.0001}})"), "asr")->per_second, 100'000'000);
  EXPECT_EQ(from_venice(venice(R"({"inpaint":{"usd":0.04}})"), "inpaint")->per_image, 40'000'000'000);
  // What cannot be read is no price at all, never a price of 0.
  EXPECT_FALSE(from_venice(venice(R"({"durations":{"5s":{"usd":0.87}}})"), "video"));
  EXPECT_FALSE(from_venice(venice(R"({"input":{"usd":-1},"output":{"usd":2}})"), "text"));
  EXPECT_FALSE(from_venice(venice(R"({"input":{"usd":0.7}})"), "text"));
  EXPECT_FALSE(from_venice(venice("[]"), "text"));
}

TEST(Price, OwnFormRoundTrips) {
  const auto p = from_venice(venice(R"({"input":{"usd":0.7},"output":{"usd":2.8},"cache_write":{"usd":7.5},
      "extended":{"context_token_threshold":1000,"input":{"usd":1},"output":{"usd":3}},"generation":{"usd":0.01},
      "resolutions":{"1K":{"usd":0.18}},"per_audio_second":{"usd":0.0001}})"),
                             "text");
  ASSERT_TRUE(p);
  EXPECT_EQ(from_json(to_json(*p)), *p);
  EXPECT_EQ(to_json(*p)["tokens"]["input"], "0.7");
  EXPECT_THROW(from_json(json::parse(R"({"tokens":{"input":"-1","output":"1"}})")), json::exception);
  EXPECT_THROW(from_json(json::parse(R"({"per_image":"x"})")), json::exception);
}

Price tokens(const char* in, const char* out) {
  Price p;
  p.tokens = TokenRates{*parse_usd(in), *parse_usd(out), std::nullopt, std::nullopt};
  return p;
}

TEST(Price, TokenCostIsExact) {
  const Price p = tokens("0.7", "2.8");
  // 612 × 0.7/1M + 146 × 2.8/1M = 0.0004284 + 0.0004088
  EXPECT_EQ(cost(p, tok(612, 146)), 837'200'000);
  EXPECT_EQ(format_usd(*cost(p, tok(612, 146))), "0.0008372");
  EXPECT_EQ(cost(p, tok(0, 0)), 0);
}

TEST(Price, CachedAndWrittenTokensAtTheirRates) {
  Price p = tokens("3", "15");
  p.tokens->cache_input = parse_usd("0.3");
  p.tokens->cache_write = parse_usd("3.75");
  // 1000 prompt: 600 read from cache, 300 written, 100 plain; 10 completion.
  const Consumed c = tok(1000, 10, 600, 300);
  EXPECT_EQ(cost(p, c), 100LL * 3'000'000 + 600 * 300'000 + 300LL * 3'750'000 + 10LL * 15'000'000);
  // Without cache rates, cached tokens cost the input rate; counts beyond the prompt are held to it.
  EXPECT_EQ(cost(tokens("3", "15"), tok(1000, 0, 5000, 5000)), 1000LL * 3'000'000);
}

TEST(Price, LongContextTierAppliesToTheWholeRequest) {
  Price p = tokens("3", "15");
  p.extended_threshold = 1000;
  p.extended = TokenRates{*parse_usd("6"), *parse_usd("22.5"), std::nullopt, std::nullopt};
  EXPECT_EQ(cost(p, tok(1000, 10)), 1000LL * 3'000'000 + 10LL * 15'000'000);
  EXPECT_EQ(cost(p, tok(1001, 10)), 1001LL * 6'000'000 + 10LL * 22'500'000);
}

TEST(Price, UnitsAtTheirRates) {
  const auto image = from_venice(venice(R"({"generation":{"usd":0.01},"resolutions":{"1K":{"usd":0.18},
      "4K":{"usd":0.35}},"upscale":{"2x":{"usd":0.02}}})"),
                                 "image");
  Consumed images = units(3.0, usage::Unit::images, "1K");
  EXPECT_EQ(cost(*image, images), 3LL * 180'000'000'000);
  images.tier = "";
  EXPECT_EQ(cost(*image, images), 3LL * 10'000'000'000);
  EXPECT_EQ(most(*image, images), 3LL * 350'000'000'000);  // nothing asked: the highest the model charges
  images.tier = "2x";
  EXPECT_EQ(cost(*image, images), 3LL * 20'000'000'000);

  Price speech;
  speech.per_million_characters = parse_usd("3.5");
  EXPECT_EQ(cost(speech, units(1000.0, usage::Unit::characters)), 3'500'000'000);

  Price asr;
  asr.per_second = parse_usd("0.0001");
  EXPECT_EQ(cost(asr, units(12.5, usage::Unit::seconds)), 1'250'000'000);
  // The upload's bytes: 160 000 bytes at 16 kB/s are 10 s; a reservation assumes 4 kB/s.
  EXPECT_EQ(cost(asr, units(160'000.0, usage::Unit::bytes)), 1'000'000'000);
  EXPECT_EQ(most(asr, units(160'000.0, usage::Unit::bytes)), 4'000'000'000);
  // A price without the rate a request needs leaves it unpriced, never free.
  EXPECT_FALSE(cost(speech, tok(10, 10)));
  EXPECT_FALSE(cost(tokens("1", "1"), units(1.0, usage::Unit::images)));
}

TEST(Price, MostTakesTheHighestInputRate) {
  Price p = tokens("3", "15");
  p.tokens->cache_write = parse_usd("3.75");
  EXPECT_EQ(most(p, tok(100, 10)), 100LL * 3'750'000 + 10LL * 15'000'000);
  EXPECT_GE(*most(p, tok(100, 10)), *cost(p, tok(100, 10, 50, 50)));
}

TEST(PriceTable, OverridesWinAndSuffixesFindTheBaseModel) {
  PriceTable t;
  t.upstream.emplace("llama", tokens("1", "2"));
  t.upstream.emplace("qwen", tokens("1", "2"));
  t.overrides.emplace("qwen", tokens("5", "6"));
  EXPECT_EQ(t.find("llama")->source, Source::upstream);
  EXPECT_EQ(t.find("qwen")->source, Source::override_);
  EXPECT_EQ(t.find("qwen")->price->tokens->input, 5 * kUsd);
  EXPECT_EQ(t.find("llama:enable_web_search=on")->price, t.find("llama")->price);
  EXPECT_FALSE(t.find("unknown"));
  EXPECT_FALSE(t.find(""));
}

TEST(PriceTable, ReadsTheMockModelList) {
  const auto list = parse_model_list(*mock::models_body("all"));
  ASSERT_TRUE(list);
  EXPECT_EQ(list->at("llama-3.3-70b").tokens->output, 2'800'000'000'000);
  EXPECT_EQ(list->at("tts-kokoro").per_million_characters, 3'500'000'000'000);
  EXPECT_EQ(list->at("openai/whisper-large-v3").per_second, 200'000'000);
  EXPECT_EQ(list->at("venice-sd35").per_image, 10'000'000'000);
  EXPECT_FALSE(list->contains("wan-2.5-preview-text-to-video"));  // video: not a price the gateway applies
  EXPECT_FALSE(parse_model_list("not json"));
  EXPECT_FALSE(parse_model_list(R"({"data":{}})"));
  EXPECT_EQ(parse_model_list(R"({"data":[]})")->size(), 0u);
}

TEST(PriceTable, RefusesATableThatLostMoreThanAFifth) {
  std::map<std::string, Price, std::less<>> before, after;
  for (int i = 0; i < 10; ++i) before.emplace("m" + std::to_string(i), tokens("1", "1"));
  after = before;
  EXPECT_FALSE(shrank_too_much(before, after));
  after.erase("m0");
  after.erase("m1");
  EXPECT_FALSE(shrank_too_much(before, after));  // 20 % gone: allowed
  after.erase("m2");
  EXPECT_TRUE(shrank_too_much(before, after));
  // New models do not hide missing ones.
  for (int i = 0; i < 10; ++i) after.emplace("new" + std::to_string(i), tokens("1", "1"));
  EXPECT_TRUE(shrank_too_much(before, after));
  EXPECT_FALSE(shrank_too_much({}, after));
}

}  // namespace
}  // namespace lagoon::money
