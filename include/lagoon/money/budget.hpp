// Budgets: an amount a key or a user may spend per period — `total` (prepaid: never resets; raising the
// amount tops it up), `daily` or `monthly` (calendar periods in UTC). What is spent in a period lives in
// Redis as one counter per budget and period (its key names the period's start, so a new period starts
// at zero without anything being reset), rebuilt from the usage rows in Postgres when Redis lost it.
// The counters count whole nano-dollars (1e-9 USD): Redis's Lua numbers are doubles, exact for integers
// up to 2^53 — about $9 million of nano-dollars — and amounts are rounded up into them, never down.
// Pure; thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "lagoon/money/money.hpp"

namespace lagoon::money {

enum class Period : std::uint8_t { total, daily, monthly };
std::string_view period_name(Period p) noexcept;
std::optional<Period> period_from(std::string_view name) noexcept;

// The largest budget a key or user may have (the CLI, the admin API and a CHECK in Postgres refuse more).
inline constexpr Pico kMaxBudget = 1'000'000 * kPicoPerUsd;

struct Budget {
  Pico amount = 0;
  Period period = Period::total;
  bool operator==(const Budget&) const = default;
};

using SysTime = std::chrono::system_clock::time_point;

// The period `now` falls in: [start, end); a total budget's period began at the epoch and never ends.
struct Window {
  SysTime start;
  std::optional<SysTime> end;
};
Window window(Period p, SysTime now);

// "1970-01-01" for total, the day's or the month's first day otherwise — in Redis keys and in the SQL
// that sums a period's spend.
std::string period_label(const Window& w);

// Nano-dollars, rounded up (for what is held or spent) or down (for what a budget allows).
std::int64_t nano_up(Pico p) noexcept;
std::int64_t nano_down(Pico p) noexcept;
inline Pico from_nano(std::int64_t n) noexcept { return n * 1000; }

// Redis key of one budget's counter in one period: prefix + "budget:{key:ID}:2026-12-01" (or {user:ID}).
// The owner is the hash tag: one budget's periods stay in one Redis Cluster slot.
std::string counter_key(std::string_view prefix, bool user, std::int64_t id, const Window& w);

// "2026-12-03T00:00:00Z".
std::string rfc3339(SysTime t);

// How long a counter is kept after its period ends (seconds; 0: no expiry, for total budgets).
std::int64_t counter_ttl_seconds(const Window& w, SysTime now);

}  // namespace lagoon::money
