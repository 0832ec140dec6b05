// Usage over time for the console's charts and the admin API (GET /admin/v1/usage/series): requests,
// tokens and money per UTC hour or day, split into the `top` keys, users or models with the most
// requests over the range and one "other" series for the rest, so a chart stays readable with
// thousands of keys. One statement: the rows are summed per (bucket, group) first, and only those sums
// are ranked and folded, so the cost is one pass over the range (by the started_at index) whatever the
// number of groups. Money is summed over numeric: every row's, the series' and the totals agree exactly.
// Blocking; call from the CLI or a blocking pool thread. Not thread-safe on one connection.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <pqxx/connection>

#include "lagoon/db/usage_report.hpp"

namespace lagoon::db {

enum class Bucket { hour, day };
std::string_view bucket_name(Bucket b) noexcept;  // "hour", "day"
std::optional<Bucket> bucket_from(std::string_view name) noexcept;

inline constexpr int kDefaultSeries = 8;
inline constexpr int kMaxSeries = 50;
// A range of at most this many buckets (a year of days; 93 days of hours).
inline constexpr std::int64_t kMaxBuckets = 2232;

struct SeriesQuery {
  UsageQuery scope;  // key or user, from, to, tags (scope.by: the split, none for one series)
  Bucket bucket = Bucket::hour;
  int top = kDefaultSeries;
};

struct Series {
  std::optional<std::string> name;  // the model, or the key's or user's id; nullopt: no model, or `other`
  std::string label;                // the model; a key's name (or display prefix); a user's name
  bool other = false;               // the groups after the top ones, summed
};

struct SeriesPoint {
  std::string time;  // the bucket's start, RFC 3339 UTC
  int series = 0;    // index into UsageSeries::series
  UsageTotals totals;
};

struct UsageSeries {
  std::optional<std::int64_t> key_id;
  std::optional<std::int64_t> user_id;
  std::string from, to;  // as Postgres read them, RFC 3339 UTC
  std::vector<Series> series;
  std::vector<SeriesPoint> points;  // only (bucket, series) pairs with requests; by time, then series
  UsageTotals totals;
};

// Throws AccountsError: not_found for an unknown key or user; invalid for an unreadable timestamp, a
// range that ends before it starts, or one of more than kMaxBuckets buckets. An open `from` is 24 hours
// (hour buckets) or 30 days (day buckets) before `to`; an open `to` is now.
UsageSeries usage_series(pqxx::connection& conn, const SeriesQuery& query);

}  // namespace lagoon::db
