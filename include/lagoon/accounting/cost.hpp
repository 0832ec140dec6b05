// The cost on a usage record, decided once the request's usage is final: the operator's override price
// first (markups, models Venice does not price), then what Venice's answer itself said it cost, then
// Venice's price table; with none of them the row is unpriced — cost NULL, never $0. A request whose
// usage counts nothing (it never reached the upstream, or the upstream refused it) costs 0 with no
// source. Pure; thread-safe.
#pragma once

#include <optional>
#include <string>

#include "lagoon/money/price.hpp"
#include "lagoon/usage/record.hpp"

namespace lagoon::accounting {

// What the request and its answer said about money beyond the record's tokens and units.
struct CostFacts {
  std::int64_t cached_tokens = 0;       // usage.prompt_tokens_details.cached_tokens
  std::int64_t cache_write_tokens = 0;  // usage.prompt_tokens_details.cache_creation_input_tokens
  // Venice's `cost` object: its USD portion, and the portion paid in DIEM (Venice's staked credit).
  std::optional<money::Pico> upstream_usd;
  std::optional<money::Pico> upstream_diem;
  std::string tier;                        // what the request asked for ("1K", "1K/high", "2x")
  std::optional<std::string> price_model;  // priced as this model when the request names none
};

// The model a request is priced as: its own, else the endpoint's default.
std::optional<std::string> priced_model(const usage::Record& r, const CostFacts& facts);

// What `r` consumed, as a price reads it.
money::Consumed consumed(const usage::Record& r, const CostFacts& facts);

// Sets r.cost, r.cost_source, r.upstream_cost and r.price_version. `table` may be null (no prices
// known yet): the row is then unpriced unless it counted nothing.
void set_cost(usage::Record& r, const money::PriceTable* table, const CostFacts& facts);

}  // namespace lagoon::accounting
