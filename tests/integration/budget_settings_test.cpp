// Budgets on keys and users through the CLI and the admin API, on the real binary and Postgres: what is
// stored and shown, what is refused, and that a change reaches the Redis cache every instance reads.
#include <gtest/gtest.h>

#include "admin_money_fixture.hpp"

using namespace lagoon::test;
using nlohmann::json;
using lagoon::money::Budget;
using lagoon::money::Period;
using lagoon::money::kPicoPerUsd;

namespace {

class CliBudget : public AdminMoneyTest {
 protected:
  std::string budget_columns(const std::string& table, std::int64_t id) {
    return db.scalar("SELECT coalesce(budget_usd::text, 'NULL') || '/' || coalesce(budget_period, 'NULL') FROM " +
                     table + " WHERE id = " + std::to_string(id));
  }
};
class AdminBudget : public AdminMoneyTest {};

std::string id_of(const json& j) { return std::to_string(j["id"].get<std::int64_t>()); }

}  // namespace

TEST_F(CliBudget, KeysAndUsersCarryABudgetShownWhereverTheyAppear) {
  const json u = cli({"users", "create", "--name", "alice"});
  EXPECT_EQ(u["budget_usd"], nullptr);
  EXPECT_EQ(u["budget_period"], nullptr);
  const json k = cli({"keys", "create", "--user", "alice", "--budget", "12.5", "--period", "daily"});
  EXPECT_EQ(k["budget_usd"], "12.5");
  EXPECT_EQ(k["budget_period"], "daily");
  const std::string id = id_of(k);
  EXPECT_EQ(budget_columns("api_keys", k["id"]), "12.5/daily");
  EXPECT_EQ(cli({"keys", "get", id})["budget_usd"], "12.5");
  EXPECT_EQ(cli({"keys", "list", "--user", "alice"})[0]["budget_period"], "daily");
  // Without a period the key's stays; a period alone changes only the period.
  EXPECT_EQ(cli({"keys", "update", id, "--budget", "0.000001"})["budget_period"], "daily");
  EXPECT_EQ(budget_columns("api_keys", k["id"]), "0.000001/daily");
  const json monthly = cli({"keys", "update", id, "--period", "monthly"});
  EXPECT_EQ(monthly["budget_usd"], "0.000001");
  EXPECT_EQ(monthly["budget_period"], "monthly");
  const json none = cli({"keys", "update", id, "--budget", "none"});
  EXPECT_EQ(none["budget_usd"], nullptr);
  EXPECT_EQ(none["budget_period"], nullptr);
  EXPECT_EQ(budget_columns("api_keys", k["id"]), "NULL/NULL");
  // A key without a budget gets `total` unless told otherwise; so does a new key.
  EXPECT_EQ(cli({"keys", "update", id, "--budget", "1000000"})["budget_period"], "total");
  EXPECT_EQ(cli({"keys", "create", "--user", "alice", "--budget", "0"})["budget_period"], "total");

  const json user = cli({"users", "update", "alice", "--budget", "100", "--period", "monthly"});
  EXPECT_EQ(user["budget_usd"], "100");
  EXPECT_EQ(user["budget_period"], "monthly");
  EXPECT_EQ(cli({"users", "get", "alice"}), user);
  EXPECT_EQ(cli({"users", "update", id_of(u), "--budget", "99.99"})["budget_period"], "monthly");
  EXPECT_EQ(budget_columns("users", u["id"]), "99.99/monthly");
  EXPECT_EQ(cli({"users", "update", "alice", "--budget", "none"})["budget_usd"], nullptr);
  EXPECT_EQ(budget_columns("users", u["id"]), "NULL/NULL");
}

TEST_F(CliBudget, WhatIsNotABudgetIsABadUsageAndChangesNothing) {
  cli({"users", "create", "--name", "alice"});
  const std::string id = id_of(cli({"keys", "create", "--user", "alice"}));
  const std::string rule = "expected a decimal amount of USD from 0 to 1000000 with at most 6 decimals";
  for (const std::string amount : {"-1", "abc", "", "0.0000001", "1000000.000001", "1e7", "+5", "5 USD", "1,5"})
    cli_fails({"keys", "update", id, "--budget", amount}, 2, "--budget: " + rule);
  cli_fails({"keys", "update", id, "--budget", "5", "--period", "weekly"}, 2, "--period: expected total, daily or monthly");
  cli_fails({"keys", "update", id, "--period", "daily"}, 2, "there is no budget to set the period of");
  cli_fails({"keys", "update", id, "--budget", "none", "--period", "daily"}, 2, "--budget none removes the budget");
  cli_fails({"keys", "create", "--user", "alice", "--period", "daily"}, 2, "--period needs --budget");
  cli_fails({"keys", "create", "--user", "alice", "--budget", "-3"}, 2, "--budget: " + rule);
  cli_fails({"users", "update", "alice", "--period", "total"}, 2, "there is no budget to set the period of");
  cli_fails({"users", "update", "alice"}, 2, "users update needs --budget or --period");
  cli_fails({"users", "update", "alice", "--rpm", "5"}, 2, "users update does not take --rpm");
  EXPECT_EQ(db.scalar("SELECT count(*) FROM api_keys"), "1");
  EXPECT_EQ(db.scalar("SELECT count(*) FROM api_keys WHERE budget_usd IS NOT NULL OR budget_period IS NOT NULL"), "0");
  EXPECT_EQ(db.scalar("SELECT count(*) FROM users WHERE budget_usd IS NOT NULL OR budget_period IS NOT NULL"), "0");
  // Unknown key or user: a runtime failure, as for any other change.
  cli_fails({"keys", "update", "999999", "--budget", "1"}, 1, "no key with id 999999");
  cli_fails({"users", "update", "nobody", "--budget", "1"}, 1, "no user \"nobody\"");
}

// The budget travels in the key's cached record (its own and its user's), so a change must rewrite the
// Redis entry of every key it touches — the same invalidation as a limit change.
TEST_F(CliBudget, AChangeRewritesTheCachedRecordOfEveryKeyItTouches) {
  auto [id1, key1] = create_key(env, "alice");
  auto [id2, key2] = create_key(env, "alice");
  auto [other_id, other] = create_key(env, "bob");
  cli({"keys", "update", std::to_string(id1), "--budget", "5"});
  auto first = cached_record(key1);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->key_budget, (Budget{5 * kPicoPerUsd, Period::total}));
  EXPECT_FALSE(first->user_budget);
  EXPECT_FALSE(cached_record(key2)) << "a key the change did not touch keeps its entry (here: none)";

  cli({"users", "update", "alice", "--budget", "50", "--period", "monthly"});
  for (const auto& key : {key1, key2}) {
    auto r = cached_record(key);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->user_budget, (Budget{50 * kPicoPerUsd, Period::monthly}));
  }
  EXPECT_EQ(cached_record(key1)->key_budget, (Budget{5 * kPicoPerUsd, Period::total}));
  EXPECT_FALSE(cached_record(other));

  cli({"users", "update", "alice", "--budget", "none"});
  cli({"keys", "update", std::to_string(id1), "--period", "daily"});
  EXPECT_FALSE(cached_record(key2)->user_budget);
  EXPECT_EQ(cached_record(key1)->key_budget, (Budget{5 * kPicoPerUsd, Period::daily}));
}

TEST_F(CliBudget, WhenRedisCannotBeToldTheChangeIsMadeAndTheCommandExitsOne) {
  auto [id, key] = create_key(env, "alice");
  Env away = env;
  away["LAGOON_REDIS_URL"] = "redis://127.0.0.1:" + std::to_string(free_port()) + "/0";  // nothing listens
  auto r = lagoon_cli({"users", "update", "alice", "--budget", "3"}, away);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("user \"alice\" is updated in Postgres, but the running instances could not be told"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(json::parse(r.out)["budget_usd"], "3");
  EXPECT_EQ(db.scalar("SELECT budget_usd::text FROM users WHERE name = 'alice'"), "3");
  // Repeating it once Redis is reachable completes the invalidation.
  cli({"users", "update", "alice", "--budget", "3"});
  EXPECT_EQ(cached_record(key)->user_budget, (Budget{3 * kPicoPerUsd, Period::total}));
}

TEST_F(AdminBudget, KeysAndUsersTakeBudgetsOverHttpAsTheCliDoes) {
  start_server();
  admin("POST", "/admin/v1/users", R"({"name":"alice"})", 201);
  const json created = admin("POST", "/admin/v1/keys", R"({"user":"alice","budget_usd":"2.5","budget_period":"monthly"})", 201);
  EXPECT_EQ(created["budget_usd"], "2.5");
  EXPECT_EQ(created["budget_period"], "monthly");
  const std::string path = "/admin/v1/keys/" + id_of(created);
  const json number = admin("PATCH", path, R"({"budget_usd":3.75})");  // a JSON number is read as its decimal
  EXPECT_EQ(number["budget_usd"], "3.75");
  EXPECT_EQ(number["budget_period"], "monthly");
  EXPECT_EQ(admin("PATCH", path, R"({"period":"daily"})")["budget_period"], "daily");
  EXPECT_EQ(cached_record(created["key"])->key_budget, (Budget{3'750'000'000'000, Period::daily}));
  const json removed = admin("PATCH", path, R"({"budget_usd":null})");
  EXPECT_EQ(removed["budget_usd"], nullptr);
  EXPECT_EQ(removed["budget_period"], nullptr);
  EXPECT_EQ(admin("POST", "/admin/v1/keys", R"({"user":"alice","budget":1})", 201)["budget_period"], "total");

  const json user = admin("PATCH", "/admin/v1/users/alice", R"({"budget":"7.25","budget_period":"total"})");
  EXPECT_EQ(user["budget_usd"], "7.25");
  EXPECT_EQ(user["budget_period"], "total");
  EXPECT_EQ(cached_record(created["key"])->user_budget, (Budget{7'250'000'000'000, Period::total}));
  EXPECT_EQ(cli({"users", "get", "alice"}), user);
  EXPECT_EQ(cli({"keys", "get", id_of(created)}), admin("GET", path));
  EXPECT_EQ(admin("PATCH", "/admin/v1/users/" + id_of(user), R"({"budget_usd":null})")["budget_usd"], nullptr);
  EXPECT_EQ(call("PATCH", "/admin/v1/users/nobody", R"({"budget_usd":1})")->status, 404);
  EXPECT_EQ(call("PATCH", "/admin/v1/keys/99999", R"({"budget_usd":1})")->status, 404);
}

TEST_F(AdminBudget, BadBudgetsAre400NamingTheFieldAndChangeNothing) {
  start_server();
  admin("POST", "/admin/v1/users", R"({"name":"alice"})", 201);
  const std::string kp = "/admin/v1/keys/" + id_of(admin("POST", "/admin/v1/keys", R"({"user":"alice"})", 201));
  const std::string up = "/admin/v1/users/alice";
  const std::vector<std::tuple<std::string, std::string, std::string, std::string>> cases = {
      {"PATCH", kp, R"({"budget_usd":-1})", "budget_usd"},
      {"PATCH", kp, R"({"budget_usd":"-1"})", "budget_usd"},
      {"PATCH", kp, R"({"budget_usd":"ten"})", "budget_usd"},
      {"PATCH", kp, R"({"budget_usd":0.0000001})", "budget_usd"},
      {"PATCH", kp, R"({"budget_usd":1000000.01})", "budget_usd"},
      {"PATCH", kp, R"({"budget_usd":true})", "budget_usd"},
      {"PATCH", kp, R"({"budget":[1]})", "budget"},
      {"PATCH", kp, R"({"budget_usd":1,"budget":1})", "budget"},
      {"PATCH", kp, R"({"budget_usd":1,"budget_period":"weekly"})", "budget_period"},
      {"PATCH", kp, R"({"budget_usd":1,"period":7})", "period"},
      {"PATCH", kp, R"({"budget_usd":null,"budget_period":"daily"})", "budget_period"},
      {"PATCH", kp, R"({"budget_period":"daily"})", "budget_period"},  // the key has no budget
      {"POST", "/admin/v1/keys", R"({"user":"alice","budget_period":"daily"})", "budget_period"},
      {"POST", "/admin/v1/keys", R"({"user":"alice","budget_usd":"1.0000001"})", "budget_usd"},
      {"PATCH", up, R"({})", ""},
      {"PATCH", up, R"({"name":"bob"})", "name"},
      {"PATCH", up, R"({"budget_usd":"1e9"})", "budget_usd"},
      {"PATCH", up, R"({"period":"monthly"})", "budget_period"},  // the user has no budget
  };
  for (const auto& [method, target, body, param] : cases) {
    auto r = call(method, target, body);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << method << " " << target << " " << body << " -> " << r->body;
    const json err = json::parse(r->body, nullptr, false);
    EXPECT_EQ(err["error"]["param"], param.empty() ? json(nullptr) : json(param)) << body;
  }
  EXPECT_EQ(db.scalar("SELECT count(*) FROM api_keys"), "1");
  EXPECT_EQ(db.scalar("SELECT count(*) FROM api_keys WHERE budget_usd IS NOT NULL"), "0");
  EXPECT_EQ(db.scalar("SELECT count(*) FROM users WHERE budget_usd IS NOT NULL"), "0");
  EXPECT_EQ(call("PUT", up, R"({"budget_usd":1})")->header("allow"), "GET, PATCH, DELETE");
}
