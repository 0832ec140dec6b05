// Money as the gateway counts it: whole pico-dollars (1e-12 USD) in a 64-bit integer, never a float.
// Every Venice price (USD per million tokens with at most six decimals) is a whole number of
// pico-dollars per token, so the cost of a request is exact; an int64 holds up to about $9.2 million.
// Decimal text in and out (Postgres numeric, the x-lagoon-cost-usd header, JSON); JSON numbers, which
// arrive as doubles, are read through their shortest round-trip decimal form, which is the text Venice
// wrote for every price of fifteen significant digits or fewer.
// Pure; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace lagoon::money {

using Pico = std::int64_t;
inline constexpr Pico kPicoPerUsd = 1'000'000'000'000;
inline constexpr Pico kMaxPico = INT64_MAX;

// A non-negative decimal ("12.5", "0.000042", "1e-4", "3") times 10^shift, in pico-dollars: "0.7" with
// shift 0 is 700'000'000'000. Digits finer than a pico-dollar round up (money owed is never shaved).
// nullopt for anything else: a sign, no digits, junk, or more than kMaxPico.
std::optional<Pico> parse_usd(std::string_view text, int shift = 0);

// A JSON number (integer or float, ≥ 0) as parse_usd reads its decimal text; nullopt for anything else.
std::optional<Pico> from_json_usd(const nlohmann::json& j, int shift = 0);

// An amount an operator wrote in JSON, as a decimal string ("0.7") or a number (as from_json_usd reads it);
// nullopt for anything else.
std::optional<Pico> from_json_amount(const nlohmann::json& j);

// Exact decimal text, without trailing zeros: 700'000'000'000 → "0.7", 0 → "0", 1 → "0.000000000001".
std::string format_usd(Pico amount);

// a × b / divisor, rounded up, saturating at kMaxPico (all arguments ≥ 0, divisor > 0).
Pico mul_div_up(std::int64_t a, std::int64_t b, std::int64_t divisor) noexcept;

// Saturating sum of non-negative amounts.
Pico add(Pico a, Pico b) noexcept;

}  // namespace lagoon::money
