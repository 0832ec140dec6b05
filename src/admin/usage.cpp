// The usage operation of admin/operations.hpp: db/usage_report's sums as JSON.
#include <nlohmann/json.hpp>

#include "lagoon/admin/operations.hpp"

namespace lagoon::admin {
namespace {

json optional_json(const auto& v) { return v ? json(*v) : json(nullptr); }

json groups_json(const std::vector<db::UsageGroup>& groups, const char* label) {
  json out = json::array();
  for (const auto& g : groups) {
    json item = usage_totals_json(g.totals);
    item[label] = optional_json(g.name);
    out.push_back(std::move(item));
  }
  return out;
}

// A key or user id arrives as text (one column holds every grouping's name); shown as the number it is.
json group_name(db::Grouping by, const std::optional<std::string>& name) {
  if (name && (by == db::Grouping::key || by == db::Grouping::user)) return std::stoll(*name);
  return optional_json(name);
}

json report_json(const db::UsageReport& r, const db::UsageQuery& query) {
  static const char* const labels[] = {"key_id", "user_id", "model", "day"};
  const char* label = labels[static_cast<int>(r.by)];
  json rows = json::array();
  for (const auto& g : r.rows) {
    json item = usage_totals_json(g.totals);
    item[label] = group_name(r.by, g.name);
    rows.push_back(std::move(item));
  }
  json body{{"by", db::grouping_name(r.by)},
            {"from", optional_json(query.from)},
            {"to", optional_json(query.to)},
            {"totals", usage_totals_json(r.totals)},
            {"rows", std::move(rows)}};
  if (r.key_id) body["key_id"] = *r.key_id;
  if (r.user_id) body["user_id"] = *r.user_id;
  if (!query.tags.empty()) body["tags"] = query.tags;
  return body;
}

}  // namespace

json usage_totals_json(const db::UsageTotals& t) {
  return {{"requests", t.requests},
          {"prompt_tokens", t.prompt_tokens},
          {"completion_tokens", t.completion_tokens},
          {"total_tokens", t.total_tokens},
          {"estimated_requests", t.estimated_requests},
          {"cost_usd", t.cost_usd},
          {"unpriced_requests", t.unpriced_requests},
          {"units", t.units.empty() ? json::object() : json(t.units)}};
}

Outcome usage(pqxx::connection& conn, const db::UsageQuery& query) {
  if (query.by) return {report_json(db::usage_report(conn, query), query), {}, {}};
  const auto s = db::usage_summary(conn, query);
  json body = usage_totals_json(s.totals);
  if (s.key_id) body["key_id"] = *s.key_id;
  if (s.user_id) body["user_id"] = *s.user_id;
  body["from"] = optional_json(query.from);
  body["to"] = optional_json(query.to);
  if (!query.tags.empty()) body["tags"] = query.tags;
  body["by_model"] = groups_json(s.by_model, "model");
  body["by_outcome"] = groups_json(s.by_outcome, "outcome");
  return {std::move(body), {}, {}};
}

}  // namespace lagoon::admin
