// What a key or a user spent in a budget period, summed from usage_records — the durable truth a
// budget's Redis counter is rebuilt from (over the (key or user, started_at) indexes).
// Blocking; call from a blocking pool thread. Not thread-safe on one connection.
#pragma once

#include <cstdint>
#include <optional>

#include <pqxx/connection>

#include "lagoon/money/money.hpp"

namespace lagoon::db {

// Σ cost_usd of the rows of key `id` (or of user `id`) started in [start_s, end_s) (Unix seconds; no
// end: to now), exactly, in pico-dollars.
money::Pico spent(pqxx::connection& c, bool user, std::int64_t id, std::int64_t start_s,
                  std::optional<std::int64_t> end_s);

}  // namespace lagoon::db
