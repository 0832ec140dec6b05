// Prices and what a request costs by them. A Price is one model's rates as Venice's model list gives
// them in model_spec.pricing (or as an operator set them): tokens per million (input, output, cache
// reads and writes, a long-context tier), images (a base price, per resolution, per resolution and
// quality, per upscale factor, per edit), speech per million characters, transcription per second.
// PriceTable is one consistent set of them: Venice's list at one version, the operator's overrides
// above it. Pure; thread-safe for concurrent const use.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "lagoon/money/money.hpp"
#include "lagoon/usage/record.hpp"

namespace lagoon::money {

// Pico-dollars per million tokens.
struct TokenRates {
  Pico input = 0;
  Pico output = 0;
  std::optional<Pico> cache_input;  // cache reads; the input rate when absent
  std::optional<Pico> cache_write;  // cache creation; the input rate when absent
  bool operator==(const TokenRates&) const = default;
};

struct Price {
  std::optional<TokenRates> tokens;
  // Above this many prompt tokens the extended rates apply to the whole request (Venice's rule).
  std::optional<std::int64_t> extended_threshold;
  std::optional<TokenRates> extended;
  std::optional<Pico> per_image;              // pico-dollars per image (generation, edit)
  std::map<std::string, Pico, std::less<>> per_image_tier;  // "1K", "1K/high", "2x" → per image
  std::optional<Pico> per_million_characters;  // speech
  std::optional<Pico> per_second;              // transcription, per second of audio
  bool empty() const noexcept {
    return !tokens && !per_image && per_image_tier.empty() && !per_million_characters && !per_second;
  }
  bool operator==(const Price&) const = default;
};

// One model's model_spec.pricing as Venice writes it (USD in `usd` fields; `diem` ignored), for a
// model of `type` (the model list's "text", "tts" …: a speech model's `input` is per million characters,
// not tokens); nullopt when none of it can be read as a price.
std::optional<Price> from_venice(const nlohmann::json& pricing, std::string_view type);

// The gateway's own form (stored in Postgres, shown by the CLI): decimal strings, USD per million tokens
// or characters, per image, per second. from_json(to_json(p)) == p; from_json throws on a malformed one.
nlohmann::json to_json(const Price& p);
Price from_json(const nlohmann::json& j);

// What one request used, in what its price is written in.
struct Consumed {
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  std::int64_t cached_tokens = 0;       // part of prompt_tokens, read from cache
  std::int64_t cache_write_tokens = 0;  // part of prompt_tokens, written to cache
  std::optional<double> units;          // images, characters, seconds or the upload's bytes
  usage::Unit unit = usage::Unit::none;  // none: the tokens are the measure
  std::string tier;                      // what the request asked for: "1K", "1K/high", "2x"; "" if nothing
};

// Bytes of an upload taken for one second of audio when the upstream does not say how long it was:
// 16 kB/s is 128 kbit/s, a common rate for compressed uploads.
inline constexpr std::int64_t kAudioBytesPerSecond = 16'000;
// The same for a reservation, where the bound must hold for low-rate audio too (32 kbit/s).
inline constexpr std::int64_t kAudioBytesPerSecondAtMost = 4'000;

// The cost of `c` at `p`; nullopt when `p` has no rate for what `c` measures (the row is unpriced).
std::optional<Pico> cost(const Price& p, const Consumed& c);

// The most `c` may cost at `p`, for a reservation: every prompt token at the highest input rate that
// could apply (cache writes, the long-context tier), images at the highest tier when none was asked
// for, audio at kAudioBytesPerSecondAtMost. nullopt as for cost().
std::optional<Pico> most(const Price& p, const Consumed& c);

enum class Source : std::uint8_t { upstream, override_ };

// Venice's table at one version and the operator's overrides above it.
struct PriceTable {
  std::int64_t version = 0;  // of Venice's table as stored in Postgres; 0 when none is known yet
  std::map<std::string, Price, std::less<>> upstream;
  std::map<std::string, Price, std::less<>> overrides;

  struct Found {
    const Price* price = nullptr;
    Source source = Source::upstream;
  };
  // The model's price: an override before Venice's; a model with a ":param=value" suffix is priced
  // as its base model unless it has its own entry. nullopt when it has none.
  std::optional<Found> find(std::string_view model) const;
};

// Venice's model list (GET /models?type=all) as model → Price, for every model with a readable price;
// nullopt when the text is not a model list at all.
std::optional<std::map<std::string, Price, std::less<>>> parse_model_list(std::string_view body);

// A refreshed table is refused when more than this share of the models priced before are missing from it.
inline constexpr double kMaxShrink = 0.2;
bool shrank_too_much(const std::map<std::string, Price, std::less<>>& before,
                     const std::map<std::string, Price, std::less<>>& after) noexcept;

}  // namespace lagoon::money
