// The admin endpoints behind the operator console, on the real binary and Postgres: usage series by hour
// and day, split by model, key or user with the rest folded into "other", must equal the sums this test
// computes from rows it writes itself — each point, each series and the totals, to the last digit, in
// JSON and CSV; the user and key listings filter as asked and show what each spent today and this month.
#include <gtest/gtest.h>

#include <map>
#include <sstream>

#include "admin_money_fixture.hpp"

using namespace lagoon::test;
using nlohmann::json;

namespace {

struct Row {
  int key;  // 0, 1: alice's keys ("search" and unnamed); 2: bob's
  std::optional<std::string> model;
  std::string started_at, hour, day;  // the UTC hour and day it falls in
  int prompt, completion;
  std::optional<std::string> cost;  // NULL: unpriced
};

const std::vector<Row> kRows = {
    {0, "m1", "2026-11-01T08:10:00Z", "2026-11-01T08:00:00Z", "2026-11-01T00:00:00Z", 10, 20, "0.000000000001"},
    {0, "m1", "2026-11-01T08:59:59.999Z", "2026-11-01T08:00:00Z", "2026-11-01T00:00:00Z", 5, 7, "1.5"},
    {1, "m2", "2026-11-01T09:30:00+01:00", "2026-11-01T08:00:00Z", "2026-11-01T00:00:00Z", 1, 1, "0.25"},
    {1, {}, "2026-11-01T09:00:00Z", "2026-11-01T09:00:00Z", "2026-11-01T00:00:00Z", 40, 0, {}},
    {2, "m2", "2026-11-01T23:30:00Z", "2026-11-01T23:00:00Z", "2026-11-01T00:00:00Z", 3, 4, "5000000.5"},
    {2, "m3", "2026-11-02T00:00:00Z", "2026-11-02T00:00:00Z", "2026-11-02T00:00:00Z", 100, 200, "0.000999999999"},
    {0, "m3", "2026-11-02T05:00:00Z", "2026-11-02T05:00:00Z", "2026-11-02T00:00:00Z", 9, 3, "0"},
};

// Exact decimal sums, in pico-dollars (every cost above has at most 12 places).
__extension__ typedef __int128 Wide;
Wide pico_of(const std::string& d) {
  const auto dot = d.find('.');
  std::string frac = dot == std::string::npos ? "" : d.substr(dot + 1);
  frac.resize(12, '0');
  return Wide(std::stoll(d.substr(0, dot))) * 1'000'000'000'000 + std::stoll(frac);
}
std::string decimal_of(Wide p) {
  std::string whole = std::to_string(static_cast<long long>(p / 1'000'000'000'000));
  std::string frac = std::to_string(static_cast<long long>(p % 1'000'000'000'000));
  frac.insert(0, 12 - frac.size(), '0');
  while (!frac.empty() && frac.back() == '0') frac.pop_back();
  return frac.empty() ? whole : whole + "." + frac;
}

struct Sums {
  long long requests = 0, prompt = 0, completion = 0, unpriced = 0;
  Wide cost = 0;
  void add(const Row& r) {
    ++requests;
    prompt += r.prompt;
    completion += r.completion;
    if (r.cost)
      cost += pico_of(*r.cost);
    else
      ++unpriced;
  }
  // Compares with a point's or totals' JSON.
  void expect_in(const json& j, const std::string& what) const {
    EXPECT_EQ(j["requests"], requests) << what;
    EXPECT_EQ(j["prompt_tokens"], prompt) << what;
    EXPECT_EQ(j["completion_tokens"], completion) << what;
    EXPECT_EQ(j["total_tokens"], prompt + completion) << what;
    EXPECT_EQ(j["cost_usd"], decimal_of(cost)) << what;
    EXPECT_EQ(j["unpriced_requests"], unpriced) << what;
  }
};

class ConsoleApi : public AdminMoneyTest {
 protected:
  void SetUp() override {
    AdminMoneyTest::SetUp();
    keys.push_back(create_key(env, "alice", {"--name", "search", "--tags", R"({"team":"search"})"}).first);
    keys.push_back(create_key(env, "alice").first);
    keys.push_back(create_key(env, "bob", {"--name", "=cmd|' /C calc'!A0"}).first);
    users = {std::stoll(db.scalar("SELECT id FROM users WHERE name = 'alice'")),
             std::stoll(db.scalar("SELECT id FROM users WHERE name = 'bob'"))};
    std::string values;
    for (std::size_t i = 0; i < kRows.size(); ++i) {
      const Row& r = kRows[i];
      values += std::string(i ? "," : "") + "('c" + std::to_string(i) + "'," + std::to_string(keys[r.key]) + "," +
                std::to_string(user_of(r)) + "," + (r.model ? "'" + *r.model + "'" : "NULL") + ",false,200,'ok'," +
                std::to_string(r.prompt) + "," + std::to_string(r.completion) + "," +
                std::to_string(r.prompt + r.completion) + ",'" + r.started_at + "',1," + (r.cost ? *r.cost : "NULL") +
                "," + (r.cost ? "'price_table'" : "'unpriced'") + ")";
    }
    db.scalar(
        "INSERT INTO usage_records (request_id, api_key_id, user_id, model, stream, status_code, outcome, "
        "prompt_tokens, completion_tokens, total_tokens, started_at, duration_ms, cost_usd, cost_source) VALUES " +
        values);
    start_server();
  }
  std::int64_t user_of(const Row& r) const { return users[r.key == 2 ? 1 : 0]; }

  // The name of a row's series under `by` (as the API writes it: text, or null for no model).
  json name_of(const Row& r, const std::string& by) const {
    if (by == "model") return r.model ? json(*r.model) : json(nullptr);
    if (by == "key") return std::to_string(keys[r.key]);
    if (by == "user") return std::to_string(user_of(r));
    return nullptr;
  }

  // Every point of `s` equals the rows of its bucket and series; the points cover every row once; the
  // totals equal all rows. `top` groups at most are named; the rest are in "other".
  void expect_series(const json& s, const std::string& by, bool hourly, std::size_t top) {
    std::map<std::pair<std::string, std::string>, Sums> expected;  // (time, series name) → sums
    Sums all;
    std::map<std::string, long long> per_name;
    for (const Row& r : kRows) per_name[name_of(r, by).dump()]++;
    for (const Row& r : kRows) {
      all.add(r);
      const std::string name = name_of(r, by).dump();
      bool named = false;
      for (const auto& one : s["series"]) named |= !one["other"].get<bool>() && one["name"].dump() == name;
      expected[{hourly ? r.hour : r.day, named ? name : "other"}].add(r);
    }
    all.expect_in(s["totals"], by + " totals");
    std::size_t named = 0;
    for (const auto& one : s["series"]) named += !one["other"].get<bool>();
    EXPECT_EQ(named, std::min(top, per_name.size())) << s.dump();
    ASSERT_EQ(s["rows"].size(), expected.size()) << s.dump();
    for (const auto& p : s["rows"]) {
      const json& one = s["series"][p["series"].get<std::size_t>()];
      const std::string name = one["other"].get<bool>() ? "other" : one["name"].dump();
      const auto it = expected.find({p["time"].get<std::string>(), name});
      ASSERT_NE(it, expected.end()) << p.dump();
      it->second.expect_in(p, by + " " + p.dump());
    }
  }

  std::vector<std::int64_t> keys, users;
};

}  // namespace

TEST_F(ConsoleApi, SeriesEqualTheRowsByHourAndDayForEverySplit) {
  const std::string range = "from=2026-11-01T00:00:00Z&to=2026-11-03T00:00:00Z";
  for (const std::string by : {"model", "key", "user", "none"}) {
    for (const bool hourly : {true, false}) {
      const json s =
          admin("GET", "/admin/v1/usage/series?" + range + "&by=" + by + "&bucket=" + (hourly ? "hour" : "day"));
      EXPECT_EQ(s["by"], by);
      EXPECT_EQ(s["bucket"], hourly ? "hour" : "day");
      EXPECT_EQ(s["from"], "2026-11-01T00:00:00.000000Z");
      expect_series(s, by, hourly, 8);
    }
  }
  // The same totals as the usage report over the range.
  const json report = admin("GET", "/admin/v1/usage?by=model&" + range);
  EXPECT_EQ(admin("GET", "/admin/v1/usage/series?" + range)["totals"], report["totals"]);
  // More groups than `top`: the most used are named (most requests first), the rest summed as "other".
  const json folded = admin("GET", "/admin/v1/usage/series?" + range + "&by=model&bucket=day&top=1");
  expect_series(folded, "model", false, 1);
  ASSERT_EQ(folded["series"].size(), 2u);
  EXPECT_EQ(folded["series"][0]["name"], "m1") << "m1, m2 and m3 have 2 requests each: by name";
  EXPECT_EQ(folded["series"][1], json::parse(R"({"name":null,"label":"other","other":true})"));
  // Labels: a model is its own; a key its name or, without one, its display prefix; a user its name.
  const json by_key = admin("GET", "/admin/v1/usage/series?" + range + "&by=key");
  std::map<std::string, std::string> labels;
  for (const auto& one : by_key["series"]) labels[one["name"].get<std::string>()] = one["label"].get<std::string>();
  EXPECT_EQ(labels[std::to_string(keys[0])], "search");
  EXPECT_EQ(labels[std::to_string(keys[1])],
            db.scalar("SELECT prefix FROM api_keys WHERE id = " + std::to_string(keys[1])));
  const json by_user = admin("GET", "/admin/v1/usage/series?" + range + "&by=user&user=alice&tag=team:search");
  EXPECT_EQ(by_user["series"][0]["label"], "alice");
  EXPECT_EQ(by_user["totals"]["requests"], 3) << "alice's rows of the key tagged team:search";
  const json no_model = admin("GET", "/admin/v1/usage/series?" + range + "&by=model&key=" + std::to_string(keys[1]));
  EXPECT_EQ(no_model["series"][1], json::parse(R"J({"name":null,"label":"(no model)","other":false
})J"));
}

TEST_F(ConsoleApi, SeriesAsCsvHoldTheSameNumbersAndNoFormula) {
  const std::string q = "/admin/v1/usage/series?from=2026-11-01&to=2026-11-03&by=key&bucket=day";
  const json s = admin("GET", q);
  auto r = call("GET", q + "&format=csv");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("content-type"), "text/csv; charset=utf-8");
  std::istringstream lines(r->body);
  std::string line;
  std::getline(lines, line);
  EXPECT_EQ(line,
            "time,series,label,requests,prompt_tokens,completion_tokens,total_tokens,cost_usd,unpriced_requests\r");
  std::size_t n = 0;
  Wide cost = 0;
  while (std::getline(lines, line)) {
    ASSERT_LT(n, s["rows"].size());
    const json& p = s["rows"][n++];
    EXPECT_EQ(line.substr(0, line.find(',')), p["time"]);
    const auto last = line.rfind(',');
    cost += pico_of(line.substr(line.rfind(',', last - 1) + 1, last - line.rfind(',', last - 1) - 1));
    // bob's key is named like a spreadsheet formula: it arrives as text.
    if (line.find("calc") != std::string::npos) {
      EXPECT_NE(line.find(",'=cmd|' /C calc'!A0,"), std::string::npos) << line;
    }
  }
  EXPECT_EQ(n, s["rows"].size());
  EXPECT_EQ(decimal_of(cost), s["totals"]["cost_usd"]);
}

TEST_F(ConsoleApi, BadSeriesQueriesAreRefusedNamingTheField) {
  for (const auto& [query, param] :
       std::vector<std::pair<std::string, std::string>>{{"bucket=week", "bucket"},
                                                        {"by=day", "by"},
                                                        {"top=0", "top"},
                                                        {"top=51", "top"},
                                                        {"format=xml", "format"},
                                                        {"from=yesterday", "from"},
                                                        {"key=1&user=alice", "user"},
                                                        {"from=2026-11-02&to=2026-11-01", "to"},
                                                        {"from=2020-01-01&to=2026-01-01&bucket=hour", "from"},
                                                        {"tag=team", "tag"},
                                                        {"color=red", "color"}}) {
    const json e = admin("GET", "/admin/v1/usage/series?" + query, "", 400);
    EXPECT_EQ(e["error"]["param"], param) << query << " " << e.dump();
  }
  admin("GET", "/admin/v1/usage/series?user=nobody", "", 404);
  admin("GET", "/admin/v1/usage/series?key=999999", "", 404);
  // An open range: the last 24 hours by the hour (none of this test's rows).
  EXPECT_EQ(admin("GET", "/admin/v1/usage/series")["totals"]["requests"], 0);
}

TEST_F(ConsoleApi, ListingsFilterAndShowTodaysAndThisMonthsSpend) {
  keep_clear_of_utc_midnight(std::chrono::seconds(30));
  // Spend now: alice's first key today, and bob's key earlier this month (or today on the 1st).
  db.scalar(
      "INSERT INTO usage_records (request_id, api_key_id, user_id, model, stream, status_code, outcome, "
      "started_at, duration_ms, cost_usd, cost_source) VALUES ('now1', " +
      std::to_string(keys[0]) + ", " + std::to_string(users[0]) +
      ", 'm1', false, 200, 'ok', now(), 1, 0.75, 'price_table'), ('now2', " + std::to_string(keys[2]) + ", " +
      std::to_string(users[1]) + ", 'm1', false, 200, 'ok', date_trunc('month', now(), 'UTC'), 1, 2, 'price_table')");
  const bool first_of_month =
      db.scalar("SELECT date_trunc('day', now(), 'UTC') = date_trunc('month', now(), 'UTC')") == "t";
  admin("DELETE", "/admin/v1/keys/" + std::to_string(keys[1]));
  const json users_list = admin("GET", "/admin/v1/users");
  ASSERT_EQ(users_list.size(), 2u);
  EXPECT_EQ(users_list[0]["name"], "bob") << "newest first";
  EXPECT_EQ(users_list[0]["spend"], json({{"today_usd", first_of_month ? "2" : "0"}, {"month_usd", "2"}}));
  EXPECT_EQ(users_list[1]["spend"], json({{"today_usd", "0.75"}, {"month_usd", "0.75"}}));
  EXPECT_EQ(users_list[1]["keys_active"], 1) << "one of alice's two keys is revoked";
  EXPECT_EQ(admin("GET", "/admin/v1/users?q=LIC").size(), 1u);
  EXPECT_EQ(admin("GET", "/admin/v1/users?q=" + std::to_string(users[1]))[0]["name"], "bob");
  admin("DELETE", "/admin/v1/users/bob");
  EXPECT_EQ(admin("GET", "/admin/v1/users?status=inactive")[0]["name"], "bob");
  EXPECT_EQ(admin("GET", "/admin/v1/users?limit=1&offset=1")[0]["name"], "alice");

  const json all = admin("GET", "/admin/v1/keys");
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0]["id"], keys[2]);
  EXPECT_EQ(all[0]["user_name"], "bob");
  EXPECT_EQ(all[0]["status"], "user_inactive");
  EXPECT_EQ(all[1]["status"], "revoked");
  EXPECT_EQ(all[2]["status"], "active");
  EXPECT_EQ(all[2]["spend"], json({{"today_usd", "0.75"}, {"month_usd", "0.75"}}));
  EXPECT_EQ(admin("GET", "/admin/v1/keys?status=revoked")[0]["id"], keys[1]);
  EXPECT_EQ(admin("GET", "/admin/v1/keys?user=alice&limit=10").size(), 2u);
  EXPECT_EQ(admin("GET", "/admin/v1/keys?user=alice&limit=10")[0]["id"], keys[1]) << "newest first";
  EXPECT_EQ(admin("GET", "/admin/v1/keys?user=alice")[0]["id"], keys[0]) << "?user= alone: as `keys list`";
  EXPECT_EQ(admin("GET", "/admin/v1/keys?q=SEAR")[0]["id"], keys[0]);
  const std::string prefix = all[1]["prefix"];
  EXPECT_EQ(admin("GET", "/admin/v1/keys?q=" + prefix)[0]["id"], keys[1]);
  EXPECT_EQ(admin("GET", "/admin/v1/keys?tag=team:search")[0]["id"], keys[0]);
  EXPECT_EQ(admin("GET", "/admin/v1/keys?tag=team:other").size(), 0u);
  admin("PATCH", "/admin/v1/keys/" + std::to_string(keys[0]), R"({"expires_at":"2020-01-01T00:00:00Z"})");
  EXPECT_EQ(admin("GET", "/admin/v1/keys?status=expired")[0]["id"], keys[0]);
  EXPECT_EQ(admin("GET", "/admin/v1/keys?status=active").size(), 0u);
  EXPECT_EQ(admin("GET", "/admin/v1/keys?status=gone", "", 400)["error"]["param"], "status");
  EXPECT_EQ(admin("GET", "/admin/v1/keys?limit=1001", "", 400)["error"]["param"], "limit");
  admin("GET", "/admin/v1/keys?user=nobody", "", 404);
}
