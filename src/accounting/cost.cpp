#include "lagoon/accounting/cost.hpp"

namespace lagoon::accounting {

std::optional<std::string> priced_model(const usage::Record& r, const CostFacts& facts) {
  return r.model ? r.model : facts.price_model;
}

money::Consumed consumed(const usage::Record& r, const CostFacts& facts) {
  money::Consumed c;
  c.prompt_tokens = r.prompt_tokens.value_or(0);
  c.completion_tokens = r.completion_tokens.value_or(0);
  c.cached_tokens = facts.cached_tokens;
  c.cache_write_tokens = facts.cache_write_tokens;
  c.units = r.units;
  c.unit = r.unit;
  c.tier = facts.tier;
  return c;
}

void set_cost(usage::Record& r, const money::PriceTable* table, const CostFacts& facts) {
  r.upstream_cost = facts.upstream_usd;
  r.price_version = table && table->version > 0 ? std::optional<std::int64_t>(table->version) : std::nullopt;
  const bool counted = r.prompt_tokens || r.completion_tokens || r.total_tokens || r.units || facts.upstream_usd;
  if (!counted) {
    r.cost = 0;
    r.cost_source = usage::CostSource::none;
    return;
  }
  const auto model = priced_model(r, facts);
  const auto found = table && model ? table->find(*model) : std::nullopt;
  if (found && found->source == money::Source::override_) {
    r.cost = money::cost(*found->price, consumed(r, facts));
    r.cost_source = r.cost ? usage::CostSource::override_ : usage::CostSource::unpriced;
    return;
  }
  // Venice's own figure is the truth when it was paid wholly in USD; a DIEM share has no USD price, so
  // then the table prices the whole request (upstream_cost_usd still keeps what Venice said).
  if (facts.upstream_usd && facts.upstream_diem.value_or(0) == 0) {
    r.cost = facts.upstream_usd;
    r.cost_source = usage::CostSource::upstream;
    return;
  }
  r.cost = found ? money::cost(*found->price, consumed(r, facts)) : std::nullopt;
  r.cost_source = r.cost ? usage::CostSource::price_table : usage::CostSource::unpriced;
}

}  // namespace lagoon::accounting
