// Usage reports with money, on the real binary and Postgres: rows with known costs, units and days are
// written straight into usage_records, and every report — by key, user, model and day, for everyone, one
// user or one key, and the ungrouped one — must equal the sums this test computes from the same rows,
// to the last digit (costs summed past what a 64-bit count of pico-dollars holds). The admin API must
// answer the CLI's documents.
#include <gtest/gtest.h>

#include <functional>
#include <map>

#include "admin_money_fixture.hpp"

using namespace lagoon::test;
using nlohmann::json;

namespace {

__extension__ typedef __int128 Wide;  // sums past what int64 pico-dollars hold
constexpr Wide kPico = 1'000'000'000'000;

struct Row {
  int key;  // index into the test's keys: 0 and 1 are alice's, 2 is bob's
  std::optional<std::string> model;
  std::string outcome;
  int prompt, completion;
  bool estimated;
  std::string started_at, day;  // the UTC day it falls on
  std::optional<std::string> cost, source;
  std::optional<double> units;
  std::optional<std::string> unit;
};

// Costs as exact decimals of at most 12 places, as the gateway writes them.
const std::vector<Row> kRows = {
    {0, "m1", "ok", 10, 20, false, "2026-11-01T08:00:00Z", "2026-11-01", "0.000000000001", "price_table", {}, {}},
    {0, "m1", "ok", 5, 7, true, "2026-11-01T23:59:59.999Z", "2026-11-01", "1.5", "upstream", {}, {}},
    {0, "m2", "ok", 1, 1, false, "2026-11-02T00:30:00+01:00", "2026-11-01", "0.123456789012", "override", {}, {}},
    {0, {}, "invalid_request", 40, 0, true, "2026-11-02T00:00:00Z", "2026-11-02", {}, "unpriced", {}, {}},
    {1, "m2", "ok", 0, 0, false, "2026-11-02T12:00:00Z", "2026-11-02", "5000000.5", "price_table", 2, "images"},
    {1, "m2", "upstream_error", 3, 0, false, "2026-11-02T13:00:00Z", "2026-11-02", "5000000.5", "price_table", 4, "images"},
    {1, "tts", "ok", 0, 0, false, "2026-11-03T00:00:00Z", "2026-11-03", {}, "unpriced", 1500, "characters"},
    {2, "m1", "ok", 100, 200, false, "2026-11-03T10:00:00Z", "2026-11-03", "0.000999999999", "price_table", {}, {}},
    {2, "whisper", "ok", 0, 0, false, "2026-11-03T11:00:00Z", "2026-11-03", "0.0025", "price_table", 12.5, "seconds"},
    {2, "whisper", "ok", 0, 0, false, "2026-11-03T11:30:00Z", "2026-11-03", {}, {}, 4000, "bytes"},  // before money
    {2, "m1", "client_disconnected", 9, 3, true, "2026-11-04T00:00:00Z", "2026-11-04", "0", "price_table", {}, {}},
};

Wide pico_of(const std::string& decimal) {
  const auto dot = decimal.find('.');
  Wide whole = std::stoll(decimal.substr(0, dot));
  std::string frac = dot == std::string::npos ? "" : decimal.substr(dot + 1);
  frac.resize(12, '0');
  return whole * kPico + std::stoll(frac);
}

std::string decimal_of(Wide pico) {
  std::string whole;
  for (Wide w = pico / kPico; w > 0 || whole.empty(); w /= 10) whole.insert(whole.begin(), char('0' + int(w % 10)));
  std::string frac = std::to_string(static_cast<long long>(pico % kPico));
  frac.insert(0, 12 - frac.size(), '0');
  while (!frac.empty() && frac.back() == '0') frac.pop_back();
  return frac.empty() ? whole : whole + "." + frac;
}

// The document the gateway must show for these rows.
json totals(const std::vector<const Row*>& rows) {
  long long prompt = 0, completion = 0, estimated = 0, unpriced = 0;
  Wide cost = 0;
  json units = json::object();
  for (const Row* r : rows) {
    prompt += r->prompt;
    completion += r->completion;
    estimated += r->estimated;
    unpriced += r->source == "unpriced";
    if (r->cost) cost += pico_of(*r->cost);
    if (r->unit) units[*r->unit] = units.value(*r->unit, 0.0) + *r->units;
  }
  return {{"requests", rows.size()}, {"prompt_tokens", prompt},  {"completion_tokens", completion},
          {"total_tokens", prompt + completion}, {"estimated_requests", estimated}, {"cost_usd", decimal_of(cost)},
          {"unpriced_requests", unpriced}, {"units", units}};
}

class UsageReport : public AdminMoneyTest {
 protected:
  void SetUp() override {
    AdminMoneyTest::SetUp();
    for (const char* user : {"alice", "alice", "bob"}) keys.push_back(create_key(env, user).first);
    users = {std::stoll(db.scalar("SELECT id FROM users WHERE name = 'alice'")),
             std::stoll(db.scalar("SELECT id FROM users WHERE name = 'bob'"))};
    std::string values;
    for (std::size_t i = 0; i < kRows.size(); ++i) {
      const Row& r = kRows[i];
      auto text = [](const std::optional<std::string>& s) { return s ? "'" + *s + "'" : std::string("NULL"); };
      values += std::string(i ? "," : "") + "('r" + std::to_string(i) + "'," + std::to_string(keys[r.key]) + "," +
                std::to_string(user_of(r)) + "," + text(r.model) + ",false,200,'" + r.outcome + "'," +
                std::to_string(r.prompt) + "," + std::to_string(r.completion) + "," +
                std::to_string(r.prompt + r.completion) + "," + (r.estimated ? "true" : "false") + ",'" +
                r.started_at + "',1," + (r.cost ? *r.cost : "NULL") + "," + text(r.source) + "," +
                (r.units ? std::to_string(*r.units) : "NULL") + "," + text(r.unit) + ")";
    }
    db.scalar("INSERT INTO usage_records (request_id, api_key_id, user_id, model, stream, status_code, outcome, "
              "prompt_tokens, completion_tokens, total_tokens, tokens_estimated, started_at, duration_ms, cost_usd, "
              "cost_source, units, unit) VALUES " + values);
  }
  std::int64_t user_of(const Row& r) const { return users[r.key == 2 ? 1 : 0]; }

  // The rows `keep` selects, grouped by `label` (null for a row without one), in the order given.
  json grouped(const std::string& field, const std::function<json(const Row&)>& label,
               const std::function<bool(const Row&)>& keep = [](const Row&) { return true; }) {
    std::map<std::string, std::pair<json, std::vector<const Row*>>> groups;  // ordered by the label's text
    std::vector<const Row*> all;
    for (const Row& r : kRows) {
      if (!keep(r)) continue;
      const json l = label(r);
      // A null model sorts last, as Postgres orders it; ids and days sort as their fixed-width text.
      const std::string order = l.is_null() ? "\x7f" : l.is_number() ? std::string(20 - l.dump().size(), '0') + l.dump()
                                                                      : l.get<std::string>();
      groups[order].first = l;
      groups[order].second.push_back(&r);
      all.push_back(&r);
    }
    json rows = json::array();
    for (const auto& [order, group] : groups) {
      json item = totals(group.second);
      item[field] = group.first;
      rows.push_back(item);
    }
    return {{"totals", totals(all)}, {"rows", rows}};
  }
  json without_scope(json report) {
    for (const char* k : {"by", "from", "to", "key_id", "user_id"}) report.erase(k);
    return report;
  }

  std::vector<std::int64_t> keys, users;
};

json model_of(const Row& r) { return r.model ? json(*r.model) : json(nullptr); }

}  // namespace

TEST_F(UsageReport, EveryGroupingSumsTheRowsExactly) {
  std::map<std::string, std::function<json(const Row&)>> by = {
      {"key", [&](const Row& r) { return json(keys[r.key]); }},
      {"user", [&](const Row& r) { return json(user_of(r)); }},
      {"model", model_of},
      {"day", [](const Row& r) { return json(r.day); }},
  };
  const std::map<std::string, std::string> field = {{"key", "key_id"}, {"user", "user_id"}, {"model", "model"}, {"day", "day"}};
  for (const auto& [name, label] : by) {
    const json everyone = cli({"usage", "--by", name});
    EXPECT_EQ(everyone["by"], name);
    EXPECT_EQ(without_scope(everyone), grouped(field.at(name), label)) << "--by " << name;
    const json alice = cli({"usage", "--user", "alice", "--by", name});
    EXPECT_EQ(alice["user_id"], users[0]);
    EXPECT_EQ(without_scope(alice), grouped(field.at(name), label, [&](const Row& r) { return user_of(r) == users[0]; }))
        << "--user alice --by " << name;
    const json key = cli({"usage", "--key", std::to_string(keys[1]), "--by", name});
    EXPECT_EQ(key["key_id"], keys[1]);
    EXPECT_EQ(without_scope(key), grouped(field.at(name), label, [&](const Row& r) { return r.key == 1; }))
        << "--key --by " << name;
  }
  // [from, to) in UTC, however the bound is written.
  const json ranged = cli({"usage", "--by", "day", "--from", "2026-11-02", "--to", "2026-11-04T01:00:00+01:00"});
  EXPECT_EQ(without_scope(ranged), grouped("day", by["day"], [](const Row& r) {
              return r.day >= "2026-11-02" && r.day < "2026-11-04";
            }));
  EXPECT_EQ(ranged["from"], "2026-11-02");
  // More than $9.2 million, which whole pico-dollars in 64 bits could not hold.
  EXPECT_EQ(cli({"usage", "--by", "model"})["totals"]["cost_usd"], "10000002.626956789012");
}

TEST_F(UsageReport, WithoutAGroupingTheReportKeepsItsShapeAndGainsMoney) {
  const json alice = cli({"usage", "--user", "alice"});
  std::vector<const Row*> rows;
  for (const Row& r : kRows)
    if (user_of(r) == users[0]) rows.push_back(&r);
  json expected = totals(rows);
  for (const auto& [k, v] : expected.items()) EXPECT_EQ(alice[k], v) << k;
  EXPECT_EQ(alice["user_id"], users[0]);
  const auto model_rows = grouped("model", model_of, [&](const Row& r) { return user_of(r) == users[0]; })["rows"];
  ASSERT_EQ(alice["by_model"].size(), model_rows.size());
  for (const auto& m : model_rows) {
    const auto it = std::find_if(alice["by_model"].begin(), alice["by_model"].end(),
                                 [&](const json& g) { return g["model"] == m["model"]; });
    ASSERT_NE(it, alice["by_model"].end()) << m;
    EXPECT_EQ(*it, m);
  }
  EXPECT_EQ(alice["by_model"][0]["model"], "m2") << "most requests first";
  json outcomes = json::object();
  for (const auto& g : alice["by_outcome"]) outcomes[g["outcome"].get<std::string>()] = g["cost_usd"];
  EXPECT_EQ(outcomes, json::parse(R"({"ok":"5000002.123456789013","invalid_request":"0","upstream_error":"5000000.5"})"));
  const json bob_key = cli({"usage", "--key", std::to_string(keys[2])});
  EXPECT_EQ(bob_key["cost_usd"], "0.003499999999");
  EXPECT_EQ(bob_key["unpriced_requests"], 0) << "a row from before prices (no cost_source) is not counted unpriced";
  EXPECT_EQ(bob_key["units"], json::parse(R"({"seconds":12.5,"bytes":4000})"));
  EXPECT_EQ(cli({"usage", "--key", std::to_string(keys[1]), "--from", "2030-01-01"})["cost_usd"], "0");
}

TEST_F(UsageReport, BadQueriesAreRefused) {
  cli_fails({"usage"}, 2, "usage needs exactly one of --key ID and --user NAME|ID, or --by");
  cli_fails({"usage", "--key", "1", "--user", "alice"}, 2, "usage needs exactly one of");
  cli_fails({"usage", "--key", "1", "--user", "alice", "--by", "day"}, 2, "usage takes at most one of");
  cli_fails({"usage", "--by", "week"}, 2, "--by: expected key, user, model or day, got \"week\"");
  cli_fails({"usage", "--by", "day", "--from", "yesterday"}, 2, "--from: expected an RFC 3339 date");
  cli_fails({"usage", "--user", "nobody", "--by", "day"}, 1, "no user \"nobody\"");
  cli_fails({"usage", "--key", "999999", "--by", "model"}, 1, "no key with id 999999");
}

TEST_F(UsageReport, TheAdminApiAnswersTheCliSDocuments) {
  start_server();
  const std::string alice_key = std::to_string(keys[0]);
  EXPECT_EQ(admin("GET", "/admin/v1/usage?by=model"), cli({"usage", "--by", "model"}));
  EXPECT_EQ(admin("GET", "/admin/v1/usage?by=day&user=alice&from=2026-11-02"),
            cli({"usage", "--by", "day", "--user", "alice", "--from", "2026-11-02"}));
  EXPECT_EQ(admin("GET", "/admin/v1/usage?key=" + alice_key), cli({"usage", "--key", alice_key}));
  EXPECT_EQ(admin("GET", "/admin/v1/users/bob/usage?by=key"), cli({"usage", "--user", "bob", "--by", "key"}));
  EXPECT_EQ(admin("GET", "/admin/v1/keys/" + alice_key + "/usage?by=user"), cli({"usage", "--key", alice_key, "--by", "user"}));
  EXPECT_EQ(admin("GET", "/admin/v1/users/alice/usage"), cli({"usage", "--user", "alice"}));

  for (const auto& [target, param] : std::vector<std::pair<std::string, json>>{
           {"/admin/v1/usage", "by"},
           {"/admin/v1/usage?by=week", "by"},
           {"/admin/v1/usage?key=1&user=alice", "user"},
           {"/admin/v1/usage?key=x&by=day", "key"},
           {"/admin/v1/usage?user=&by=day", "user"},
           {"/admin/v1/usage?by=day&limit=5", "limit"},
           {"/admin/v1/users/alice/usage?by=hour", "by"},
           {"/admin/v1/keys/" + alice_key + "/usage?key=1", "key"},
       }) {
    auto r = call("GET", target);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << target << " -> " << r->body;
    EXPECT_EQ(json::parse(r->body)["error"]["param"], param) << target;
  }
  EXPECT_EQ(call("GET", "/admin/v1/usage?user=nobody&by=day")->status, 404);
  EXPECT_EQ(call("POST", "/admin/v1/usage?by=day", "{}")->header("allow"), "GET");
}
