#include "lagoon/admin/money_args.hpp"

#include <nlohmann/json.hpp>

namespace lagoon::admin {
namespace {

constexpr money::Pico kPicoPerMicro = 1'000'000;

std::optional<money::Pico> as_budget(std::optional<money::Pico> v) {
  if (!v || *v > money::kMaxBudget || *v % kPicoPerMicro != 0) return std::nullopt;
  return v;
}

std::optional<money::Pico> as_rate(std::optional<money::Pico> v) {
  if (!v || *v > kMaxRate) return std::nullopt;
  return v;
}

}  // namespace

std::optional<money::Pico> budget_amount(std::string_view text) { return as_budget(money::parse_usd(text)); }
std::optional<money::Pico> budget_amount_of(const nlohmann::json& j) { return as_budget(money::from_json_amount(j)); }
std::optional<money::Pico> rate(std::string_view text) { return as_rate(money::parse_usd(text)); }
std::optional<money::Pico> rate_of(const nlohmann::json& j) { return as_rate(money::from_json_amount(j)); }

std::optional<money::Pico>& rate_field(Rates& r, std::string_view name) {
  if (name == "input") return r.input;
  if (name == "output") return r.output;
  if (name == "cache_input") return r.cache_input;
  if (name == "cache_write") return r.cache_write;
  if (name == "per_image") return r.per_image;
  if (name == "per_million_characters") return r.per_million_characters;
  if (name == "per_second") return r.per_second;
  throw std::logic_error("no rate named " + std::string(name));
}

std::variant<money::Price, RatesProblem> price_from_rates(const Rates& r) {
  if (r.input.has_value() != r.output.has_value())
    return RatesProblem{"token prices need both input and output", r.input ? "output" : "input"};
  if (!r.input && (r.cache_input || r.cache_write))
    return RatesProblem{"cache prices need input and output beside them", "input"};
  money::Price p;
  if (r.input) p.tokens = money::TokenRates{*r.input, *r.output, r.cache_input, r.cache_write};
  p.per_image = r.per_image;
  p.per_million_characters = r.per_million_characters;
  p.per_second = r.per_second;
  if (p.empty())
    return RatesProblem{"give at least one price: input and output, per_image, per_million_characters or per_second",
                        "input"};
  return p;
}

}  // namespace lagoon::admin
