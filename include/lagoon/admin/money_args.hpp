// Money as operators write it, read the same way by the CLI (`--budget 12.5`, `--input 0.7`) and the admin
// API (`"budget_usd": "12.5"` or `12.5`): a budget's amount and period, and the rates of a price override.
// Amounts are exact: a budget finer than a micro-dollar is refused rather than rounded, so what the
// operator wrote is what Postgres holds and what every instance enforces.
// Pure; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <nlohmann/json_fwd.hpp>

#include "lagoon/money/budget.hpp"
#include "lagoon/money/price.hpp"

namespace lagoon::admin {

// How every refusal of a budget amount describes what is accepted.
inline constexpr std::string_view kBudgetRule = "a decimal amount of USD from 0 to 1000000 with at most 6 decimals";
inline constexpr std::string_view kPeriodRule = "total, daily or monthly";

// A budget's amount: a decimal as money::parse_usd reads it ("12.5", "0.000001"), 0..money::kMaxBudget, in
// whole micro-dollars. The JSON form takes a string or a number (read through its shortest decimal form).
std::optional<money::Pico> budget_amount(std::string_view text);
std::optional<money::Pico> budget_amount_of(const nlohmann::json& j);

// A rate of a price override, USD per million tokens or characters, per image or per second. Rates are
// not held to micro-dollars (Venice's own per-token prices need twelve decimals once divided), but to
// what one request's cost can be computed with without saturating.
inline constexpr money::Pico kMaxRate = 1'000'000 * money::kPicoPerUsd;
inline constexpr std::string_view kRateRule = "a decimal amount of USD from 0 to 1000000";
std::optional<money::Pico> rate(std::string_view text);
std::optional<money::Pico> rate_of(const nlohmann::json& j);

// The rates `lagoon prices set` and PUT /admin/v1/prices/{model} take, by their API names (the CLI's
// flags are the same with '-' for '_').
struct Rates {
  std::optional<money::Pico> input, output, cache_input, cache_write;  // per million tokens
  std::optional<money::Pico> per_image;
  std::optional<money::Pico> per_million_characters;
  std::optional<money::Pico> per_second;
};
inline constexpr const char* kRateNames[] = {"input",     "output", "cache_input", "cache_write",
                                             "per_image", "per_million_characters", "per_second"};
std::optional<money::Pico>& rate_field(Rates& r, std::string_view name);  // name from kRateNames

// What is wrong with a set of rates, and the field at fault (API name).
struct RatesProblem {
  std::string message;
  std::string field;
};

// The Price the rates make: token rates need both input and output (cache rates only beside them), and at
// least one rate must be given.
std::variant<money::Price, RatesProblem> price_from_rates(const Rates& r);

}  // namespace lagoon::admin
