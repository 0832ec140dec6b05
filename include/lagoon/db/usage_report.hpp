// Usage reports from usage_records, behind `lagoon usage` and the admin API's usage routes: over [from, to),
// for one key, one user or every row, the requests, tokens, units and money — whole (with the split by
// model and by outcome) or grouped by key, user, model or UTC day. Postgres does every sum in one
// statement, money over numeric, so a report's totals equal its rows' sums exactly however large they are.
// Blocking; call from the CLI or a blocking pool thread. Not thread-safe on one connection.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <pqxx/connection>

namespace lagoon::db {

enum class Grouping { key, user, model, day };
std::string_view grouping_name(Grouping g) noexcept;  // "key", "user", "model", "day"
std::optional<Grouping> grouping_from(std::string_view name) noexcept;

struct UsageQuery {
  std::optional<std::int64_t> key_id;
  std::optional<std::string> user_ref;
  std::optional<std::string> from;  // timestamps Postgres understands (validated by the caller); none = unbounded
  std::optional<std::string> to;
  std::optional<Grouping> by;       // none: usage_summary's shape
  // Only the rows of keys whose tags hold every one of these (tags @> {name: value}), as the keys are
  // tagged now — a tag added today covers the key's past usage too. Empty: no filter.
  std::map<std::string, std::string> tags;
};

struct UsageTotals {
  std::int64_t requests = 0;
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  std::int64_t total_tokens = 0;
  std::int64_t estimated_requests = 0;  // requests whose tokens were estimated (no usage from upstream)
  std::string cost_usd = "0";           // exact decimal: the sum of the priced rows' cost_usd
  std::int64_t unpriced_requests = 0;   // rows whose cost_source is 'unpriced' (cost NULL)
  std::map<std::string, double> units;  // unit ("images", "characters", "seconds", "bytes") → the sum, where any
};

struct UsageGroup {
  // The model, outcome or day; a key's or user's id in decimal. A model is null for requests that named
  // none (and a key or user for rows that had none).
  std::optional<std::string> name;
  UsageTotals totals;
};

// usage_summary's answer: one key's or one user's usage, split by model and by outcome.
struct UsageSummary {
  std::optional<std::int64_t> key_id;
  std::optional<std::int64_t> user_id;
  UsageTotals totals;
  std::vector<UsageGroup> by_model;    // most requests first
  std::vector<UsageGroup> by_outcome;  // most requests first
};

// usage_report's answer: the rows of one grouping, and their totals.
struct UsageReport {
  std::optional<std::int64_t> key_id;  // the key or the user the report is limited to, if any
  std::optional<std::int64_t> user_id;
  Grouping by = Grouping::model;
  UsageTotals totals;
  std::vector<UsageGroup> rows;  // by key or user id, model name (null last) or day, ascending
};

// One key's or one user's usage (at most one of query.key_id and query.user_ref; neither: every key
// the tags select). Throws
// AccountsError: not_found for an unknown key or user, invalid for an unreadable timestamp.
UsageSummary usage_summary(pqxx::connection& conn, const UsageQuery& query);

// query.by's rows over one key, one user or (neither given) every row. Throws as usage_summary.
UsageReport usage_report(pqxx::connection& conn, const UsageQuery& query);

// Postgres' text of a numeric, without the trailing zeros its scale adds: "0.001500000000" → "0.0015",
// "12.000" → "12". Pure.
std::string trim_decimal(std::string text);

}  // namespace lagoon::db
