#include "lagoon/db/usage_report.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "lagoon/db/accounts.hpp"
#include "usage_rows.hpp"

namespace lagoon::db {
namespace {

// Every sum a report shows, from the column after a row's GROUPING() and group names on.
#define LAGOON_USAGE_SUMS                                                                                       \
  "count(*), COALESCE(sum(prompt_tokens), 0), COALESCE(sum(completion_tokens), 0), "                          \
  "COALESCE(sum(total_tokens), 0), count(*) FILTER (WHERE tokens_estimated), COALESCE(sum(cost_usd), 0)::text, " \
  "count(*) FILTER (WHERE cost_source = 'unpriced'), sum(units) FILTER (WHERE unit = 'images'), "               \
  "sum(units) FILTER (WHERE unit = 'characters'), sum(units) FILTER (WHERE unit = 'seconds'), "                 \
  "sum(units) FILTER (WHERE unit = 'bytes') "
// A key, a user or neither, and the keys with some tags or all: an unnamed statement is planned with its
// parameters' values, so the test on a NULL one folds away and the (key or user, started_at) index serves.
#define LAGOON_USAGE_ROWS                                                                              \
  "FROM usage_records WHERE ($1::bigint IS NULL OR api_key_id = $1) AND ($2::bigint IS NULL OR user_id = $2) " \
  "AND started_at >= COALESCE($3::timestamptz, '-infinity'::timestamptz) "                             \
  "AND started_at < COALESCE($4::timestamptz, 'infinity'::timestamptz) "                             \
  "AND ($5::jsonb IS NULL OR api_key_id IN (SELECT id FROM api_keys WHERE tags @> $5::jsonb)) "

// One pass: the model groups, the outcome groups and the whole, told apart by GROUPING() — 1 for a
// model's row, 2 for an outcome's, 3 for the total.
constexpr const char* kSummary = "SELECT GROUPING(model, outcome), model, outcome, " LAGOON_USAGE_SUMS LAGOON_USAGE_ROWS
                                 "GROUP BY GROUPING SETS ((model), (outcome), ())";
// One grouping's rows and their total (GROUPING() 1), in one pass, the rows in order.
#define LAGOON_USAGE_GROUPED(expr)                                                                        \
  "SELECT GROUPING(" expr "), (" expr ")::text, NULL, " LAGOON_USAGE_SUMS LAGOON_USAGE_ROWS               \
  "GROUP BY GROUPING SETS ((" expr "), ()) ORDER BY 1, " expr " NULLS LAST"
constexpr const char* kByKey = LAGOON_USAGE_GROUPED("api_key_id");
constexpr const char* kByUser = LAGOON_USAGE_GROUPED("user_id");
constexpr const char* kByModel = LAGOON_USAGE_GROUPED("model");
constexpr const char* kByDay = LAGOON_USAGE_GROUPED("to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')");
constexpr const char* kKeyExists = "SELECT 1 FROM api_keys WHERE id = $1";

void most_requests_first(std::vector<UsageGroup>& g) {
  std::stable_sort(g.begin(), g.end(), [](const UsageGroup& a, const UsageGroup& b) {
    return a.totals.requests != b.totals.requests ? a.totals.requests > b.totals.requests : a.name < b.name;
  });
}

}  // namespace

namespace usage_rows {

UsageTotals totals_from(const pqxx::row& r) {
  UsageTotals t;
  t.requests = r[kFirstSum].as<std::int64_t>();
  t.prompt_tokens = r[kFirstSum + 1].as<std::int64_t>();
  t.completion_tokens = r[kFirstSum + 2].as<std::int64_t>();
  t.total_tokens = r[kFirstSum + 3].as<std::int64_t>();
  t.estimated_requests = r[kFirstSum + 4].as<std::int64_t>();
  t.cost_usd = trim_decimal(r[kFirstSum + 5].as<std::string>());
  t.unpriced_requests = r[kFirstSum + 6].as<std::int64_t>();
  for (int i = 0; i < 4; ++i)
    if (!r[kFirstSum + 7 + i].is_null()) t.units[kUnits[i]] = r[kFirstSum + 7 + i].as<double>();
  return t;
}

std::optional<std::string> name_at(const pqxx::row& r, int column) {
  if (r[column].is_null()) return std::nullopt;
  return r[column].as<std::string>();
}

// Checks the timestamps and finds the key or user, in the report's transaction.
Scope resolve(pqxx::dbtransaction& t, const UsageQuery& q) {
  // Timestamps without an offset are read as UTC, whatever the server's TimeZone; so are the days.
  t.exec("SET LOCAL TimeZone = 'UTC'");
  for (const auto& [what, value] : {std::pair{"from", &q.from}, std::pair{"to", &q.to}}) {
    if (!*value) continue;
    try {
      pqxx::subtransaction s(t, "check_time");
      s.exec_params("SELECT $1::timestamptz", **value);
    } catch (const pqxx::data_exception&) {
      throw AccountsError(AccountsError::Kind::invalid, std::string(what) + ": not a timestamp", what);
    }
  }
  Scope scope;
  if (q.key_id) {
    if (t.exec_params(kKeyExists, *q.key_id).empty())
      throw AccountsError(AccountsError::Kind::not_found, "no key with id " + std::to_string(*q.key_id));
    scope.key_id = q.key_id;
  }
  if (q.user_ref) scope.user_id = find_user(t, *q.user_ref).id;
  return scope;
}

// The tag filter as the statements take it: a JSON object, or NULL for none.
std::optional<std::string> tags_param(const UsageQuery& q) {
  if (q.tags.empty()) return std::nullopt;
  return nlohmann::json(q.tags).dump();
}

}  // namespace usage_rows

using usage_rows::name_at;
using usage_rows::resolve;
using usage_rows::Scope;
using usage_rows::tags_param;
using usage_rows::totals_from;

std::string_view grouping_name(Grouping g) noexcept {
  switch (g) {
    case Grouping::key: return "key";
    case Grouping::user: return "user";
    case Grouping::model: return "model";
    case Grouping::day: return "day";
  }
  return "";
}

std::optional<Grouping> grouping_from(std::string_view name) noexcept {
  for (auto g : {Grouping::key, Grouping::user, Grouping::model, Grouping::day})
    if (grouping_name(g) == name) return g;
  return std::nullopt;
}

std::string trim_decimal(std::string text) {
  if (text.find('.') == std::string::npos) return text;
  while (text.back() == '0') text.pop_back();
  if (text.back() == '.') text.pop_back();
  return text;
}

UsageSummary usage_summary(pqxx::connection& conn, const UsageQuery& q) {
  pqxx::read_transaction t(conn);
  const Scope scope = resolve(t, q);
  UsageSummary out;
  out.key_id = scope.key_id;
  out.user_id = scope.user_id;
  for (const auto& row : t.exec_params(kSummary, scope.key_id, scope.user_id, q.from, q.to, tags_param(q))) {
    const auto set = row[0].as<int>();
    if (set == 3) out.totals = totals_from(row);
    else if (set == 1) out.by_model.push_back(UsageGroup{name_at(row, 1), totals_from(row)});
    else out.by_outcome.push_back(UsageGroup{name_at(row, 2), totals_from(row)});
  }
  most_requests_first(out.by_model);
  most_requests_first(out.by_outcome);
  return out;
}

UsageReport usage_report(pqxx::connection& conn, const UsageQuery& q) {
  pqxx::read_transaction t(conn);
  const Scope scope = resolve(t, q);
  UsageReport out;
  out.key_id = scope.key_id;
  out.user_id = scope.user_id;
  out.by = q.by.value_or(Grouping::model);
  const char* sql = out.by == Grouping::key ? kByKey : out.by == Grouping::user ? kByUser
                    : out.by == Grouping::model ? kByModel : kByDay;
  for (const auto& row : t.exec_params(sql, scope.key_id, scope.user_id, q.from, q.to, tags_param(q))) {
    if (row[0].as<int>() == 1) out.totals = totals_from(row);
    else out.rows.push_back(UsageGroup{name_at(row, 1), totals_from(row)});
  }
  return out;
}

}  // namespace lagoon::db
