#include "lagoon/db/usage_series.hpp"

#include <algorithm>
#include <map>

#include <pqxx/pqxx>

#include "lagoon/db/accounts.hpp"
#include "usage_rows.hpp"

namespace lagoon::db {
namespace {

using namespace usage_rows;

#define LAGOON_UTC(expr, fmt) "to_char((" expr ") AT TIME ZONE 'UTC', '" fmt "')"
#define LAGOON_EXACT "YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\""

// The range with its open ends closed, and how many buckets it spans. $3: the default length.
constexpr const char* kRange =
    "SELECT " LAGOON_UTC("t0", LAGOON_EXACT) ", " LAGOON_UTC("t1", LAGOON_EXACT) ", t1 > t0, "
    "ceil(extract(epoch FROM t1 - date_trunc($4, t0, 'UTC')) / extract(epoch FROM ('1 ' || $4)::interval))::bigint "
    "FROM (SELECT COALESCE($1::timestamptz, COALESCE($2::timestamptz, now()) - $3::interval) AS t0, "
    "COALESCE($2::timestamptz, now()) AS t1) AS x";

// Sums per (bucket, group) first; the groups ranked by requests (then name, no model last); the ones
// ranked `top` or lower folded into one; then the folded sums and the whole, told apart by GROUPING().
// The join on the group keeps a hash join possible although a model may be NULL.
std::string series_sql(std::string_view group) {
  return std::string(
             "WITH a AS (SELECT date_trunc($7, started_at, 'UTC') AS t, (") +
         std::string(group) +
         ")::text AS g, count(*) AS requests, COALESCE(sum(prompt_tokens), 0) AS prompt, "
         "COALESCE(sum(completion_tokens), 0) AS completion, COALESCE(sum(total_tokens), 0) AS total, "
         "count(*) FILTER (WHERE tokens_estimated) AS estimated, COALESCE(sum(cost_usd), 0) AS cost, "
         "count(*) FILTER (WHERE cost_source = 'unpriced') AS unpriced, "
         "sum(units) FILTER (WHERE unit = 'images') AS images, sum(units) FILTER (WHERE unit = 'characters') AS chars, "
         "sum(units) FILTER (WHERE unit = 'seconds') AS secs, sum(units) FILTER (WHERE unit = 'bytes') AS bytes "
         "FROM usage_records WHERE ($1::bigint IS NULL OR api_key_id = $1) AND ($2::bigint IS NULL OR user_id = $2) "
         "AND started_at >= $3::timestamptz AND started_at < $4::timestamptz "
         "AND ($5::jsonb IS NULL OR api_key_id IN (SELECT id FROM api_keys WHERE tags @> $5::jsonb)) GROUP BY 1, 2), "
         "ranked AS (SELECT g, row_number() OVER (ORDER BY sum(requests) DESC, g NULLS LAST) - 1 AS rank "
         "FROM a GROUP BY g), "
         "folded AS (SELECT a.*, LEAST(ranked.rank, $6) AS s FROM a JOIN ranked "
         "ON COALESCE(a.g, '') = COALESCE(ranked.g, '') AND (a.g IS NULL) = (ranked.g IS NULL)) "
         "SELECT GROUPING(t, s), " LAGOON_UTC("t", "YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"") ", s, "
         "COALESCE(sum(requests), 0)::bigint, COALESCE(sum(prompt), 0)::bigint, COALESCE(sum(completion), 0)::bigint, "
         "COALESCE(sum(total), 0)::bigint, COALESCE(sum(estimated), 0)::bigint, COALESCE(sum(cost), 0)::text, "
         "COALESCE(sum(unpriced), 0)::bigint, sum(images), sum(chars), sum(secs), sum(bytes), min(g) "
         "FROM folded GROUP BY GROUPING SETS ((t, s), ()) ORDER BY 1, t, s";
}

// What a series is called: a key's name (or its display prefix when it has none), a user's name.
constexpr const char* kKeyLabels = "SELECT id::text, COALESCE(name, prefix) FROM api_keys WHERE id = ANY($1::bigint[])";
constexpr const char* kUserLabels = "SELECT id::text, name FROM users WHERE id = ANY($1::bigint[])";

std::string_view group_expr(const std::optional<Grouping>& by) {
  if (!by) return "NULL";
  switch (*by) {
    case Grouping::key: return "api_key_id";
    case Grouping::user: return "user_id";
    case Grouping::model: return "model";
    case Grouping::day: break;
  }
  throw AccountsError(AccountsError::Kind::invalid, "a series is split by key, user or model", "by");
}

// Fills in the labels: a model is its own; keys and users are looked up, all in one statement.
void label(pqxx::dbtransaction& t, const std::optional<Grouping>& by, std::vector<Series>& series) {
  std::map<std::string, std::string> names;
  if (by == Grouping::key || by == Grouping::user) {
    std::string ids = "{";
    for (const auto& s : series)
      if (s.name) ids += (ids.size() > 1 ? "," : "") + *s.name;
    ids += "}";
    for (const auto& row : t.exec_params(by == Grouping::key ? kKeyLabels : kUserLabels, ids))
      names[row[0].as<std::string>()] = row[1].as<std::string>();
  }
  for (auto& s : series) {
    if (s.other)
      s.label = "other";
    else if (!by)
      s.label = "all";
    else if (!s.name)
      s.label = by == Grouping::model ? "(no model)" : "(none)";
    else if (auto it = names.find(*s.name); it != names.end())
      s.label = it->second;
    else
      s.label = *s.name;
  }
}

}  // namespace

std::string_view bucket_name(Bucket b) noexcept { return b == Bucket::hour ? "hour" : "day"; }

std::optional<Bucket> bucket_from(std::string_view name) noexcept {
  if (name == "hour") return Bucket::hour;
  if (name == "day") return Bucket::day;
  return std::nullopt;
}

UsageSeries usage_series(pqxx::connection& conn, const SeriesQuery& q) {
  const std::string_view group = group_expr(q.scope.by);
  pqxx::read_transaction t(conn);
  const Scope scope = resolve(t, q.scope);
  UsageSeries out;
  out.key_id = scope.key_id;
  out.user_id = scope.user_id;
  const std::string unit(bucket_name(q.bucket));
  const auto range =
      t.exec_params1(kRange, q.scope.from, q.scope.to, q.bucket == Bucket::hour ? "24 hours" : "30 days", unit);
  if (!range[2].as<bool>()) throw AccountsError(AccountsError::Kind::invalid, "to: must be after from", "to");
  if (range[3].as<std::int64_t>() > kMaxBuckets)
    throw AccountsError(AccountsError::Kind::invalid,
                        "from: the range spans more than " + std::to_string(kMaxBuckets) + " " + unit + "s", "from");
  out.from = range[0].as<std::string>();
  out.to = range[1].as<std::string>();
  const int top = std::clamp(q.top, 1, kMaxSeries);
  for (const auto& row : t.exec_params(series_sql(group), scope.key_id, scope.user_id, out.from, out.to,
                                       tags_param(q.scope), top, unit)) {
    if (row[0].as<int>() != 0) {
      out.totals = totals_from(row);
      continue;
    }
    const int s = row[2].as<int>();
    if (static_cast<std::size_t>(s) >= out.series.size()) out.series.resize(s + 1);
    if (s == top)
      out.series[s].other = true;
    else
      out.series[s].name = name_at(row, 14);
    out.points.push_back(SeriesPoint{row[1].as<std::string>(), s, totals_from(row)});
  }
  label(t, q.scope.by, out.series);
  return out;
}

}  // namespace lagoon::db
