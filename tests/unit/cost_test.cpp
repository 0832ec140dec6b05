// The pure money decisions on the request path: which cost a row gets and from where, what Venice's
// answers say about money, budget periods, the 402/503 answers, and what an endpoint request may cost.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "lagoon/accounting/cost.hpp"
#include "lagoon/chat/sse.hpp"
#include "lagoon/money/budget.hpp"
#include "lagoon/relay/decisions.hpp"
#include "lagoon/relay/endpoints.hpp"
#include "lagoon/usage/record.hpp"

using namespace lagoon;
namespace chr = std::chrono;

namespace {

money::PriceTable table() {
  money::PriceTable t;
  t.version = 9;
  money::Price p;
  p.tokens = money::TokenRates{700'000'000'000, 2'800'000'000'000, std::nullopt, std::nullopt};  // $0.7 / $2.8
  t.upstream.emplace("llama", p);
  money::Price image;
  image.per_image = 10'000'000'000;  // $0.01
  image.per_image_tier = {{"2x", 20'000'000'000}, {"4x", 80'000'000'000}};
  t.upstream.emplace("upscaler", image);
  return t;
}

usage::Record tokens(std::string model, int prompt, int completion) {
  usage::Record r;
  r.model = std::move(model);
  r.prompt_tokens = prompt;
  r.completion_tokens = completion;
  r.total_tokens = prompt + completion;
  return r;
}

TEST(Cost, ThePriceTableVenicesOwnAndTheOverrideInThatOrderOfTrust) {
  const auto t = table();
  accounting::CostFacts facts;
  auto r = tokens("llama", 1000, 100);
  accounting::set_cost(r, &t, facts);
  EXPECT_EQ(r.cost, 1000LL * 700'000 + 100LL * 2'800'000);
  EXPECT_EQ(r.cost_source, usage::CostSource::price_table);
  EXPECT_EQ(r.price_version, 9);
  EXPECT_FALSE(r.upstream_cost);

  facts.upstream_usd = 123;
  facts.upstream_diem = 0;
  accounting::set_cost(r, &t, facts);
  EXPECT_EQ(r.cost, 123);
  EXPECT_EQ(r.cost_source, usage::CostSource::upstream);
  EXPECT_EQ(r.upstream_cost, 123);

  facts.upstream_diem = 5;  // partly paid in DIEM: Venice's USD is not the whole price
  accounting::set_cost(r, &t, facts);
  EXPECT_EQ(r.cost_source, usage::CostSource::price_table);
  EXPECT_EQ(r.upstream_cost, 123);

  auto overridden = t;
  money::Price mine;
  mine.tokens = money::TokenRates{1'000'000'000'000, 1'000'000'000'000, std::nullopt, std::nullopt};
  overridden.overrides.emplace("llama", mine);
  facts.upstream_diem = 0;
  accounting::set_cost(r, &overridden, facts);
  EXPECT_EQ(r.cost, 1100LL * 1'000'000);
  EXPECT_EQ(r.cost_source, usage::CostSource::override_);
}

TEST(Cost, UnpricedIsNullNeverZeroAndNothingCountedCostsZero) {
  const auto t = table();
  auto r = tokens("unknown", 10, 10);
  accounting::set_cost(r, &t, {});
  EXPECT_FALSE(r.cost);
  EXPECT_EQ(r.cost_source, usage::CostSource::unpriced);
  accounting::set_cost(r, nullptr, {});  // no prices loaded yet
  EXPECT_EQ(r.cost_source, usage::CostSource::unpriced);

  usage::Record refused;  // never reached the upstream: no tokens, no units
  refused.model = "llama";
  accounting::set_cost(refused, &t, {});
  EXPECT_EQ(refused.cost, 0);
  EXPECT_EQ(refused.cost_source, usage::CostSource::none);

  // A price that does not cover what was used (a token price for images) is no price.
  usage::Record images;
  images.model = "llama";
  images.units = 2;
  images.unit = usage::Unit::images;
  accounting::set_cost(images, &t, {});
  EXPECT_EQ(images.cost_source, usage::CostSource::unpriced);
}

TEST(Cost, ARequestWithoutAModelIsPricedAsItsEndpointsDefaultAtItsTier) {
  const auto t = table();
  usage::Record r;
  r.units = 1;
  r.unit = usage::Unit::images;
  accounting::CostFacts facts;
  facts.price_model = "upscaler";
  facts.tier = "4x";
  accounting::set_cost(r, &t, facts);
  EXPECT_EQ(r.cost, 80'000'000'000);
  EXPECT_FALSE(r.model);
}

TEST(Cost, VenicesCostAndCacheDetailsAreReadFromTheAnswersOwnDigits) {
  const auto u = chat::usage_of_object(
      R"({"id":"c","cost":{"diem":0,"usd":0.00042},"choices":[],"usage":{"prompt_tokens":612,)"
      R"("completion_tokens":146,"total_tokens":758,"prompt_tokens_details":{"cached_tokens":128,)"
      R"("cache_creation_input_tokens":64}}})");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->cost_usd, 420'000'000);
  EXPECT_EQ(u->cost_diem, 0);
  EXPECT_EQ(u->cached_tokens, 128);
  EXPECT_EQ(u->cache_write_tokens, 64);
  EXPECT_EQ(u->prompt_tokens, 612);
  // Exponent form, and a cost after usage; a negative cost is no cost.
  const auto e = chat::usage_of_object(R"({"usage":{"prompt_tokens":1},"cost":{"usd":3.15e-05,"diem":0.5}})");
  EXPECT_EQ(e->cost_usd, 31'500'000);
  EXPECT_EQ(e->cost_diem, 500'000'000'000);
  EXPECT_FALSE(chat::usage_of_object(R"({"usage":{},"cost":{"usd":-1}})")->cost_usd);
  // "cost" elsewhere (inside a message) is not Venice's.
  EXPECT_FALSE(chat::usage_of_object(R"({"choices":[{"cost":{"usd":5}}],"usage":{}})")->cost_usd);
}

usage::Record a_record() {
  usage::Record r;
  r.request_id = "req-cost";
  r.api_key_id = 7;
  r.user_id = 3;
  r.session_id = "5b0d8d4e-1f6a-4a57-9a55-0a8e7b7f0c11";
  r.model = "llama-3.3-70b";
  r.status_code = 200;
  r.outcome = "ok";
  r.started_at_us = 1'764'000'000'000'000;
  r.duration_ms = 12.5;
  return r;
}

TEST(Cost, CostsSurviveTheSlotAndTheJournalWithTheLongestStringsAndUnits) {
  std::byte slot[usage::kSlotPayload];
  for (const auto source : {usage::CostSource::none, usage::CostSource::upstream, usage::CostSource::price_table, usage::CostSource::override_,
                            usage::CostSource::unpriced}) {
    usage::Record r = a_record();
    r.request_id = std::string(usage::kMaxRequestId, 'r');
    r.model = std::string(usage::kMaxModel, 'm');
    r.outcome = std::string(usage::kMaxOutcome, 'o');
    r.units = 2;
    r.unit = usage::Unit::images;
    r.cost_source = source;
    // Never-sent rows cost 0 with no source; unpriced ones have no cost.
    if (source != usage::CostSource::unpriced) r.cost = source == usage::CostSource::none ? 0 : 123'456'789'012;
    if (source == usage::CostSource::upstream) r.upstream_cost = 123'456'789'012;
    if (source != usage::CostSource::none) r.price_version = 42;
    usage::encode(r, slot);
    const auto back = usage::decode(slot);
    ASSERT_TRUE(back) << usage::cost_source_name(source);
    EXPECT_EQ(*back, r) << usage::cost_source_name(source);
    EXPECT_EQ(usage::from_json(nlohmann::json::parse(usage::to_json(r).dump())), r) << usage::cost_source_name(source);
  }
  // A cost source no binary wrote is damage, not a guess.
  usage::Record r = a_record();
  r.cost_source = usage::CostSource::price_table;
  r.cost = 1;
  usage::encode(r, slot);
  const auto at = 64 + 1 + r.request_id.size() + 1 + r.session_id->size() + 1 + r.model->size() + 1 + r.outcome.size();
  slot[at] = std::byte{77};
  EXPECT_FALSE(usage::decode(slot));
}

money::SysTime at(int y, unsigned m, unsigned d, int hh) {
  return money::SysTime{chr::sys_days{chr::year{y} / m / d}} + chr::hours{hh};
}

TEST(Budget, PeriodsAreCalendarPeriodsInUtc) {
  const auto now = at(2026, 12, 31, 23);
  const auto daily = money::window(money::Period::daily, now);
  EXPECT_EQ(money::rfc3339(daily.start), "2026-12-31T00:00:00Z");
  EXPECT_EQ(money::rfc3339(*daily.end), "2027-01-01T00:00:00Z");
  const auto monthly = money::window(money::Period::monthly, at(2027, 2, 28, 5));
  EXPECT_EQ(money::period_label(monthly), "2027-02-01");
  EXPECT_EQ(money::rfc3339(*monthly.end), "2027-03-01T00:00:00Z");
  const auto total = money::window(money::Period::total, now);
  EXPECT_FALSE(total.end);
  EXPECT_EQ(money::period_label(total), "1970-01-01");
  EXPECT_EQ(money::counter_key("lagoon:", true, 7, daily), "lagoon:budget:{user:7}:2026-12-31");
  EXPECT_EQ(money::counter_ttl_seconds(daily, now), 3600 + 86'400);
  EXPECT_EQ(money::counter_ttl_seconds(total, now), 0);
  EXPECT_EQ(money::nano_up(1), 1);
  EXPECT_EQ(money::nano_up(1000), 1);
  EXPECT_EQ(money::nano_up(1001), 2);
  EXPECT_EQ(money::nano_down(1999), 1);
  EXPECT_EQ(money::period_from("weekly"), std::nullopt);
}

TEST(Budget, RefusalsNameTheBudgetItsStateAndItsReset) {
  ratelimit::Decision d;
  d.kind = ratelimit::Decision::Kind::over_budget;
  d.asked_nano = 2'800'000;  // $0.0028
  d.exceeded = ratelimit::BudgetState{false, {1'000'000'000, money::Period::daily}, 400'000'000,
                                      money::window(money::Period::daily, at(2026, 12, 2, 10))};
  auto v = relay::admission_refusal(d, "llama");
  EXPECT_EQ(v.reply.status, 402u);
  EXPECT_EQ(v.outcome, accounting::Outcome::budget_exceeded);
  const auto err = nlohmann::json::parse(v.reply.body)["error"];
  EXPECT_EQ(err["type"], "insufficient_quota");
  EXPECT_EQ(err["code"], "budget_exceeded");
  EXPECT_EQ(err["message"],
            "This request may cost up to $0.0028, more than is left of this API key's daily budget: $0.0004 spent of "
            "$0.001. It resets at 2026-12-03T00:00:00Z.");
  d.exceeded->user = true;
  d.exceeded->budget.period = money::Period::total;
  d.exceeded->window = money::window(money::Period::total, at(2026, 12, 2, 10));
  const std::string user = nlohmann::json::parse(relay::admission_refusal(d, "llama").reply.body)["error"]["message"];
  EXPECT_NE(user.find("this API key's user's total budget"), std::string::npos) << user;
  EXPECT_NE(user.find("It does not reset"), std::string::npos) << user;

  d.kind = ratelimit::Decision::Kind::unpriced;
  v = relay::admission_refusal(d, "mystery-model");
  EXPECT_EQ(v.reply.status, 402u);
  EXPECT_EQ(nlohmann::json::parse(v.reply.body)["error"]["code"], "model_unpriced");
  EXPECT_NE(v.reply.body.find("mystery-model"), std::string::npos);

  d.kind = ratelimit::Decision::Kind::budget_unavailable;
  d.retry_after_us = 1'000'000;
  v = relay::admission_refusal(d, "llama");
  EXPECT_EQ(v.reply.status, 503u);
  EXPECT_EQ(v.reply.header("Retry-After"), "1");
  EXPECT_EQ(v.outcome, accounting::Outcome::budget_unavailable);
}

TEST(Budget, WhatAnEndpointRequestMayCostIsReadFromIt) {
  const auto& specs = relay::endpoint_specs();
  const auto spec = [&](std::string_view path) {
    for (const auto& s : specs)
      if (s.path == path) return s;
    throw std::runtime_error("no spec");
  };
  auto generate = std::get<relay::EndpointRequest>(relay::inspect(
      spec("/image/generate"), "application/json",
      R"({"model":"m","prompt":"p","variants":2,"resolution":"2K","quality":"high"})"));
  EXPECT_EQ(generate.tier, "2K/high");
  auto most = relay::at_most(spec("/image/generate"), generate, 1024);
  EXPECT_EQ(most.units, 2);
  EXPECT_EQ(most.unit, usage::Unit::images);
  const auto upscale = spec("/image/upscale");
  EXPECT_EQ(upscale.default_model, "upscaler");
  EXPECT_EQ(std::get<relay::EndpointRequest>(relay::inspect(upscale, "application/json", R"({"image":"x","scale":4})"))
                .tier,
            "4x");
  EXPECT_EQ(std::get<relay::EndpointRequest>(relay::inspect(upscale, "application/json", R"({"image":"x"})")).tier,
            "2x");
  auto speech = std::get<relay::EndpointRequest>(
      relay::inspect(spec("/audio/speech"), "application/json", R"({"model":"tts","input":"héllo"})"));
  most = relay::at_most(spec("/audio/speech"), speech, 1024);
  EXPECT_EQ(most.units, 5);
  EXPECT_EQ(most.unit, usage::Unit::characters);
  auto responses = std::get<relay::EndpointRequest>(
      relay::inspect(spec("/responses"), "application/json", R"({"model":"m","input":"hi"})"));
  most = relay::at_most(spec("/responses"), responses, 1024);
  EXPECT_EQ(most.completion_tokens, 1024);
  EXPECT_GT(most.prompt_tokens, 0);
}

}  // namespace
