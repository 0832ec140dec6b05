// Record: one row of usage_records — what one authenticated request cost and how it ended. Its
// identity is request_id: writing the same record twice stores it once.
//
// Two encodings: a fixed-size binary slot for the crash-safe ring (no allocation, a few memcpys on the
// request path) and one JSON line for the journal and dead-letter files (readable by operators).
// Pure value code; thread-compatible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace lagoon::usage {

// What a request asked for, as the usage row's `endpoint`. A new value is added at the end: the ring and
// the in-flight table keep the number.
// `models` and `key` are the two small metered routes of the gateway itself (the catalog, the key's own
// record); the others are INTERFACE.md's five.
enum class Endpoint : std::uint8_t { chat, models, key, embeddings, images, audio, responses };
std::string_view endpoint_name(Endpoint e) noexcept;
std::optional<Endpoint> endpoint_from(std::string_view name) noexcept;

// What `units` counts on a row where tokens do not apply (images made, characters spoken, seconds
// transcribed — or the upload's bytes when the upstream does not say how long the audio was). `none`:
// the row has no units (its tokens, if any, are the measure).
enum class Unit : std::uint8_t { none, images, characters, seconds, bytes };
std::string_view unit_name(Unit u) noexcept;  // "" for none
std::optional<Unit> unit_from(std::string_view name) noexcept;

// How a row's cost_usd was arrived at. `none`: no cost was decided — rows of the gateway's own routes,
// and requests that never reached the upstream (their cost_usd is 0). `unpriced`: the upstream was used
// but no price applies; cost_usd is NULL, never 0.
enum class CostSource : std::uint8_t { none, upstream, price_table, override_, unpriced };
std::string_view cost_source_name(CostSource s) noexcept;  // "" for none
std::optional<CostSource> cost_source_from(std::string_view name) noexcept;

struct Record {
  std::string request_id;
  std::int64_t api_key_id = 0;
  std::int64_t user_id = 0;
  std::optional<std::string> session_id;  // uuid text
  std::optional<std::string> model;
  bool stream = false;
  std::int32_t status_code = 0;
  std::string outcome;  // ok, upstream_error, client_disconnected, … interrupted (recovered after a crash)
  std::optional<std::int32_t> prompt_tokens;
  std::optional<std::int32_t> completion_tokens;
  std::optional<std::int32_t> total_tokens;
  bool tokens_estimated = false;
  std::int64_t started_at_us = 0;  // Unix time, microseconds, UTC
  double duration_ms = 0;
  std::optional<double> ttfb_ms;
  Endpoint endpoint = Endpoint::chat;
  std::optional<double> units;  // set exactly when unit != none
  Unit unit = Unit::none;
  // Pico-dollars (money/money.hpp): cost_usd, and what the upstream's answer said it cost (its `cost`).
  std::optional<std::int64_t> cost;
  CostSource cost_source = CostSource::none;
  std::optional<std::int64_t> upstream_cost;
  std::optional<std::int64_t> price_version;  // of Venice's price table the cost was computed with

  bool operator==(const Record&) const = default;
};

// Longest strings a slot keeps; longer ones are cut (request ids and outcomes are ours and fit;
// model names come from clients).
inline constexpr std::size_t kMaxRequestId = 128;
inline constexpr std::size_t kMaxSessionId = 36;
inline constexpr std::size_t kMaxModel = 200;
inline constexpr std::size_t kMaxOutcome = 32;

// Bytes of payload in one ring slot; encode() always fits.
inline constexpr std::size_t kSlotPayload = 504;

// Writes `r` into `out` (kSlotPayload bytes), cutting over-long strings.
void encode(const Record& r, std::span<std::byte, kSlotPayload> out) noexcept;
// Reads a slot written by encode(); nullopt when the bytes are not a record (a torn or foreign slot).
std::optional<Record> decode(std::span<const std::byte, kSlotPayload> in);

nlohmann::json to_json(const Record& r);
// Throws nlohmann::json::exception on a malformed line.
Record from_json(const nlohmann::json& j);

}  // namespace lagoon::usage
