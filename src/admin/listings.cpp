// The console's operations of admin/operations.hpp: listings and usage series as JSON, and the series
// as CSV.
#include <nlohmann/json.hpp>

#include "lagoon/admin/operations.hpp"

namespace lagoon::admin {
namespace {

json spend_json(const db::Spend& s) { return {{"today_usd", s.today_usd}, {"month_usd", s.month_usd}}; }

// One CSV field: quoted when it holds a separator, a quote or a line end; a leading =, +, -, @, tab or
// carriage return (a formula to a spreadsheet) is neutralised with a ' first.
std::string csv_field(std::string text) {
  if (!text.empty() && std::string_view("=+-@\t\r").find(text[0]) != std::string_view::npos) text.insert(0, 1, '\'');
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + '"';
}

}  // namespace

Outcome list_users(pqxx::connection& conn, const db::UserFilter& filter) {
  json out = json::array();
  for (const auto& u : db::list_users(conn, filter)) {
    json j = user_json(u.user);
    j["keys_active"] = u.keys_active;
    j["spend"] = spend_json(u.spend);
    out.push_back(std::move(j));
  }
  return {std::move(out), {}, {}};
}

Outcome find_keys(pqxx::connection& conn, const db::KeyFilter& filter) {
  json out = json::array();
  for (const auto& k : db::find_keys(conn, filter)) {
    json j = key_json(k.key);
    j["user_name"] = k.user_name;
    j["status"] = db::key_status_name(k.status);
    j["spend"] = spend_json(k.spend);
    out.push_back(std::move(j));
  }
  return {std::move(out), {}, {}};
}

Outcome usage_series(pqxx::connection& conn, const db::SeriesQuery& query) {
  const auto s = db::usage_series(conn, query);
  json series = json::array();
  for (const auto& one : s.series)
    series.push_back(
        {{"name", one.name ? json(*one.name) : json(nullptr)}, {"label", one.label}, {"other", one.other}});
  json rows = json::array();
  for (const auto& p : s.points) {
    json row{{"time", p.time}, {"series", p.series}};
    row.update(usage_totals_json(p.totals));
    rows.push_back(std::move(row));
  }
  json body{{"bucket", db::bucket_name(query.bucket)},
            {"by", query.scope.by ? db::grouping_name(*query.scope.by) : "none"},
            {"from", s.from},
            {"to", s.to},
            {"series", std::move(series)},
            {"rows", std::move(rows)},
            {"totals", usage_totals_json(s.totals)}};
  if (s.key_id) body["key_id"] = *s.key_id;
  if (s.user_id) body["user_id"] = *s.user_id;
  if (!query.scope.tags.empty()) body["tags"] = query.scope.tags;
  return {std::move(body), {}, {}};
}

std::string series_csv(const json& s) {
  std::string out =
      "time,series,label,requests,prompt_tokens,completion_tokens,total_tokens,cost_usd,unpriced_requests\r\n";
  const json& series = s.at("series");
  for (const auto& row : s.at("rows")) {
    const json& one = series.at(row.at("series").get<std::size_t>());
    out += row.at("time").get<std::string>() + ',';
    out += csv_field(one.at("other").get<bool>() ? "other"
                     : one.at("name").is_null()  ? ""
                                                 : one.at("name").get<std::string>());
    out += ',' + csv_field(one.at("label").get<std::string>());
    for (const char* field : {"requests", "prompt_tokens", "completion_tokens", "total_tokens"})
      out += ',' + std::to_string(row.at(field).get<std::int64_t>());
    out += ',' + row.at("cost_usd").get<std::string>() + ',' +
           std::to_string(row.at("unpriced_requests").get<std::int64_t>()) + "\r\n";
  }
  return out;
}

}  // namespace lagoon::admin
