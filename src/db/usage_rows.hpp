// What the usage reports (usage_report.cpp) and the usage series (usage_series.cpp) share: a report's
// scope checked and found, the tag filter as a parameter, and the sums read back. Every statement that
// totals_from() reads puts its sums from column kFirstSum on, in LAGOON_USAGE_SUMS' order. Internal to
// src/db. Blocking; not thread-safe on one transaction.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <pqxx/pqxx>

#include "lagoon/db/usage_report.hpp"

namespace lagoon::db::usage_rows {

inline constexpr int kFirstSum = 3;
inline constexpr const char* kUnits[] = {"images", "characters", "seconds", "bytes"};

struct Scope {
  std::optional<std::int64_t> key_id;
  std::optional<std::int64_t> user_id;
};

// Sets the transaction's TimeZone to UTC, checks the timestamps (AccountsError invalid) and finds the key
// or user (AccountsError not_found).
Scope resolve(pqxx::dbtransaction& t, const UsageQuery& q);
// The tag filter as the statements take it: a JSON object, or NULL for none.
std::optional<std::string> tags_param(const UsageQuery& q);
UsageTotals totals_from(const pqxx::row& r);
std::optional<std::string> name_at(const pqxx::row& r, int column);

}  // namespace lagoon::db::usage_rows
