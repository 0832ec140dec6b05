#include "lagoon/mock/cost.hpp"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

namespace lagoon::mock {
namespace {

using nlohmann::json;

// USD per 1M tokens above this makes a rate unusable, so the sum fits in 64 bits: at most 1e10 per token ×
// (2 × kMaxDirectiveTokens prompt tokens, more than a 64 MiB body counts, + 1e7 completion tokens, the
// most chunks a plan has) < 2.2e18.
constexpr double kMaxRateUsd = 10'000;

// A tier's rate `name` ({"usd": X, "diem": Y}) in 1e-12 USD per token, which is X × 1e6.
std::optional<std::uint64_t> rate(const json& tier, const char* name) {
  auto it = tier.find(name);
  if (it == tier.end() || !it->is_object()) return std::nullopt;
  auto usd = it->find("usd");
  if (usd == it->end() || !usd->is_number()) return std::nullopt;
  const double value = usd->get<double>();
  if (!(value >= 0 && value <= kMaxRateUsd)) return std::nullopt;
  return static_cast<std::uint64_t>(std::llround(value * 1e6));
}

// The tier a request is priced at: extended when its prompt is over the threshold.
const json& tier_for(const json& pricing, std::uint64_t prompt_tokens) {
  auto extended = pricing.find("extended");
  if (extended == pricing.end() || !extended->is_object()) return pricing;
  auto threshold = extended->find("context_token_threshold");
  if (threshold == extended->end() || !threshold->is_number()) return pricing;
  return static_cast<double>(prompt_tokens) > threshold->get<double>() ? *extended : pricing;
}

}  // namespace

Usage chat_usage(std::size_t request_body_bytes, const Plan& plan) {
  const std::uint64_t cache_parts = plan.cached_tokens.value_or(0) + plan.cache_write_tokens.value_or(0);
  Usage u{std::max(prompt_tokens_for(request_body_bytes), cache_parts), plan.chunks};
  u.cached_tokens = plan.cached_tokens;
  u.cache_write_tokens = plan.cache_write_tokens;
  return u;
}

std::optional<std::uint64_t> cost_picousd(const json& pricing, const Usage& usage) {
  if (!pricing.is_object()) return std::nullopt;
  const json& tier = tier_for(pricing, usage.prompt_tokens);
  const auto input = rate(tier, "input");
  const auto output = rate(tier, "output");
  if (!input || !output) return std::nullopt;
  const std::uint64_t cached = usage.cached_tokens.value_or(0);
  const std::uint64_t written = usage.cache_write_tokens.value_or(0);
  if (cached + written > usage.prompt_tokens) return std::nullopt;  // chat_usage never makes one
  return (usage.prompt_tokens - cached - written) * *input + cached * rate(tier, "cache_input").value_or(*input) +
         written * rate(tier, "cache_write").value_or(*input) + usage.completion_tokens * *output;
}

std::optional<Cost> chat_cost(const Plan& plan, const json* pricing, const Usage& usage) {
  if (plan.no_cost) return std::nullopt;
  std::optional<Cost> cost;
  if (pricing)
    if (auto picousd = cost_picousd(*pricing, usage))
      cost = Cost{static_cast<double>(*picousd) / 1e12, 0};  // one rounding below 2^53 (about $9,007)
  if (plan.cost_usd || plan.cost_diem) {
    if (!cost) cost = Cost{};
    if (plan.cost_usd) cost->usd = *plan.cost_usd;
    if (plan.cost_diem) cost->diem = *plan.cost_diem;
  }
  return cost;
}

}  // namespace lagoon::mock
