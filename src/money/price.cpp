#include "lagoon/money/price.hpp"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

namespace lagoon::money {
namespace {

using nlohmann::json;
__extension__ typedef unsigned __int128 Wide;  // products of two int64s
constexpr std::int64_t kMillion = 1'000'000;

// {"usd": n, …} → its usd amount times 10^shift.
std::optional<Pico> usd_of(const json& obj, const char* field, int shift = 0) {
  if (!obj.is_object()) return std::nullopt;
  const auto it = obj.find(field);
  if (it == obj.end() || !it->is_object()) return std::nullopt;
  const auto usd = it->find("usd");
  if (usd == it->end()) return std::nullopt;
  return from_json_usd(*usd, shift);
}

std::optional<TokenRates> token_rates(const json& obj) {
  const auto input = usd_of(obj, "input");
  const auto output = usd_of(obj, "output");
  if (!input || !output) return std::nullopt;
  return TokenRates{*input, *output, usd_of(obj, "cache_input"), usd_of(obj, "cache_write")};
}

void read_tiers(const json& pricing, Price& p) {
  if (auto it = pricing.find("resolutions"); it != pricing.end() && it->is_object())
    for (const auto& [tier, v] : it->items())
      if (auto usd = v.is_object() && v.contains("usd") ? from_json_usd(v["usd"]) : std::nullopt)
        p.per_image_tier[tier] = *usd;
  if (auto it = pricing.find("quality"); it != pricing.end() && it->is_object())
    for (const auto& [tier, levels] : it->items())
      if (levels.is_object())
        for (const auto& [level, v] : levels.items())
          if (auto usd = v.is_object() && v.contains("usd") ? from_json_usd(v["usd"]) : std::nullopt)
            p.per_image_tier[tier + "/" + level] = *usd;
  if (auto it = pricing.find("upscale"); it != pricing.end() && it->is_object())
    for (const auto& [factor, v] : it->items())
      if (auto usd = v.is_object() && v.contains("usd") ? from_json_usd(v["usd"]) : std::nullopt)
        p.per_image_tier[factor] = *usd;
}

Price read_venice(const json& pricing, std::string_view type) {
  Price p;
  if (type == "tts") {
    p.per_million_characters = usd_of(pricing, "input");
  } else {
    p.tokens = token_rates(pricing);
    if (auto ext = pricing.find("extended"); p.tokens && ext != pricing.end() && ext->is_object()) {
      const auto threshold = ext->find("context_token_threshold");
      if (threshold != ext->end() && threshold->is_number() && threshold->get<double>() >= 0) {
        p.extended_threshold = static_cast<std::int64_t>(threshold->get<double>());
        p.extended = token_rates(*ext);
        if (!p.extended) p.extended_threshold.reset();
      }
    }
  }
  p.per_image = usd_of(pricing, "generation");
  if (!p.per_image) p.per_image = usd_of(pricing, "inpaint");
  read_tiers(pricing, p);
  if (!p.per_million_characters) p.per_million_characters = usd_of(pricing, "per_thousand_characters", 3);
  p.per_second = usd_of(pricing, "per_audio_second");
  return p;
}

json rates_json(const TokenRates& r) {
  json j = {{"input", format_usd(r.input)}, {"output", format_usd(r.output)}};
  if (r.cache_input) j["cache_input"] = format_usd(*r.cache_input);
  if (r.cache_write) j["cache_write"] = format_usd(*r.cache_write);
  return j;
}

Pico decimal(const json& j) {
  const auto v = from_json_amount(j);
  if (!v) throw json::type_error::create(302, "a price must be a non-negative decimal", &j);
  return *v;
}

std::optional<Pico> optional_decimal(const json& obj, const char* field) {
  const auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return std::nullopt;
  return decimal(*it);
}

TokenRates rates_from(const json& j) {
  return TokenRates{decimal(j.at("input")), decimal(j.at("output")), optional_decimal(j, "cache_input"),
                    optional_decimal(j, "cache_write")};
}

const TokenRates& rates_for(const Price& p, std::int64_t prompt_tokens) {
  if (p.extended && p.extended_threshold && prompt_tokens > *p.extended_threshold) return *p.extended;
  return *p.tokens;
}

Pico capped(Wide v) { return v > static_cast<Wide>(kMaxPico) ? kMaxPico : static_cast<Pico>(v); }

// A sum of count × rate-per-million products, rounded up to the pico-dollar.
Pico per_million(Wide sum) { return capped((sum + kMillion - 1) / kMillion); }

Wide times(std::int64_t count, Pico rate) {
  return count <= 0 ? 0 : static_cast<Wide>(count) * static_cast<Wide>(rate);
}

std::optional<Pico> token_cost(const Price& p, const Consumed& c) {
  if (!p.tokens) return std::nullopt;
  const TokenRates& r = rates_for(p, c.prompt_tokens);
  const std::int64_t prompt = std::max<std::int64_t>(c.prompt_tokens, 0);
  const std::int64_t cached = std::clamp<std::int64_t>(c.cached_tokens, 0, prompt);
  const std::int64_t written = std::clamp<std::int64_t>(c.cache_write_tokens, 0, prompt - cached);
  const Wide sum = times(prompt - cached - written, r.input) + times(cached, r.cache_input.value_or(r.input)) +
                   times(written, r.cache_write.value_or(r.input)) + times(c.completion_tokens, r.output);
  return per_million(sum);
}

std::optional<Pico> token_most(const Price& p, const Consumed& c) {
  if (!p.tokens) return std::nullopt;
  const TokenRates& r = rates_for(p, c.prompt_tokens);
  const Pico input = std::max({r.input, r.cache_write.value_or(0), r.cache_input.value_or(0)});
  return per_million(times(c.prompt_tokens, input) + times(c.completion_tokens, r.output));
}

// The price of one image: the tier asked for, else the base price, else (nothing to go by) the highest tier.
std::optional<Pico> image_rate(const Price& p, const std::string& tier, bool at_most) {
  if (!tier.empty())
    if (auto it = p.per_image_tier.find(tier); it != p.per_image_tier.end()) return it->second;
  std::optional<Pico> highest;
  for (const auto& [name, rate] : p.per_image_tier) highest = std::max(highest.value_or(0), rate);
  if (p.per_image && (!at_most || !highest)) return p.per_image;
  if (p.per_image && highest) return std::max(*p.per_image, *highest);
  return highest;
}

std::int64_t whole_units(const std::optional<double>& units) {
  if (!units || !std::isfinite(*units) || *units <= 0) return 0;
  // No request makes a trillion of anything; the bound keeps every product below 2^128.
  return *units >= 1e12 ? 1'000'000'000'000 : static_cast<std::int64_t>(std::ceil(*units));
}

std::optional<Pico> unit_cost(const Price& p, const Consumed& c, bool at_most) {
  switch (c.unit) {
    case usage::Unit::images: {
      const auto rate = image_rate(p, c.tier, at_most);
      if (!rate) return std::nullopt;
      return capped(times(whole_units(c.units), *rate));
    }
    case usage::Unit::characters:
      if (!p.per_million_characters) return std::nullopt;
      return per_million(times(whole_units(c.units), *p.per_million_characters));
    case usage::Unit::seconds: {
      if (!p.per_second) return std::nullopt;
      const double us = c.units && std::isfinite(*c.units) && *c.units > 0 ? std::ceil(*c.units * 1e6) : 0;
      return per_million(times(us >= 1e18 ? 1'000'000'000'000'000'000 : static_cast<std::int64_t>(us), *p.per_second));
    }
    case usage::Unit::bytes: {
      if (!p.per_second) return std::nullopt;
      const std::int64_t per = at_most ? kAudioBytesPerSecondAtMost : kAudioBytesPerSecond;
      return mul_div_up(whole_units(c.units), *p.per_second, per);
    }
    case usage::Unit::none: break;
  }
  return std::nullopt;
}

}  // namespace

std::optional<Price> from_venice(const json& pricing, std::string_view type) {
  if (!pricing.is_object()) return std::nullopt;
  Price p = read_venice(pricing, type);
  if (p.empty()) return std::nullopt;
  return p;
}

json to_json(const Price& p) {
  json j = json::object();
  if (p.tokens) j["tokens"] = rates_json(*p.tokens);
  if (p.extended && p.extended_threshold) {
    j["extended"] = rates_json(*p.extended);
    j["extended"]["threshold"] = *p.extended_threshold;
  }
  if (p.per_image) j["per_image"] = format_usd(*p.per_image);
  if (!p.per_image_tier.empty()) {
    json tiers = json::object();
    for (const auto& [tier, rate] : p.per_image_tier) tiers[tier] = format_usd(rate);
    j["per_image_tier"] = std::move(tiers);
  }
  if (p.per_million_characters) j["per_million_characters"] = format_usd(*p.per_million_characters);
  if (p.per_second) j["per_second"] = format_usd(*p.per_second);
  return j;
}

Price from_json(const json& j) {
  Price p;
  if (!j.is_object()) throw json::type_error::create(302, "a price must be an object", &j);
  if (auto it = j.find("tokens"); it != j.end()) p.tokens = rates_from(*it);
  if (auto it = j.find("extended"); it != j.end()) {
    p.extended = rates_from(*it);
    p.extended_threshold = it->at("threshold").get<std::int64_t>();
  }
  p.per_image = optional_decimal(j, "per_image");
  if (auto it = j.find("per_image_tier"); it != j.end())
    for (const auto& [tier, rate] : it->items()) p.per_image_tier[tier] = decimal(rate);
  p.per_million_characters = optional_decimal(j, "per_million_characters");
  p.per_second = optional_decimal(j, "per_second");
  return p;
}

std::optional<Pico> cost(const Price& p, const Consumed& c) {
  return c.unit == usage::Unit::none ? token_cost(p, c) : unit_cost(p, c, false);
}

std::optional<Pico> most(const Price& p, const Consumed& c) {
  return c.unit == usage::Unit::none ? token_most(p, c) : unit_cost(p, c, true);
}

std::optional<PriceTable::Found> PriceTable::find(std::string_view model) const {
  for (std::string_view name : {model, model.substr(0, model.find(':'))}) {
    if (auto it = overrides.find(name); it != overrides.end()) return Found{&it->second, Source::override_};
    if (auto it = upstream.find(name); it != upstream.end()) return Found{&it->second, Source::upstream};
  }
  return std::nullopt;
}

std::optional<std::map<std::string, Price, std::less<>>> parse_model_list(std::string_view body) {
  const json doc = json::parse(body, nullptr, false);
  if (!doc.is_object()) return std::nullopt;
  const auto data = doc.find("data");
  if (data == doc.end() || !data->is_array()) return std::nullopt;
  std::map<std::string, Price, std::less<>> out;
  for (const auto& m : *data) {
    if (!m.is_object() || !m.contains("id") || !m["id"].is_string()) continue;
    const auto spec = m.find("model_spec");
    if (spec == m.end() || !spec->is_object() || !spec->contains("pricing")) continue;
    const std::string type = m.contains("type") && m["type"].is_string() ? m["type"].get<std::string>() : "";
    if (auto p = from_venice((*spec)["pricing"], type)) out.emplace(m["id"].get<std::string>(), std::move(*p));
  }
  return out;
}

bool shrank_too_much(const std::map<std::string, Price, std::less<>>& before,
                     const std::map<std::string, Price, std::less<>>& after) noexcept {
  if (before.empty()) return false;
  std::size_t gone = 0;
  for (const auto& [model, price] : before) gone += after.count(model) == 0 ? 1 : 0;
  return static_cast<double>(gone) > kMaxShrink * static_cast<double>(before.size());
}

}  // namespace lagoon::money
