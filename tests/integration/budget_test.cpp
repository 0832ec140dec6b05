// Budgets on the real binary: a request is held at the most it may cost against the key's and its
// user's budgets and refused (402) when that does not fit; 50 parallel requests on a nearly spent key
// overspend by at most one reservation; spend lost from Redis is rebuilt from the usage rows; a model
// without a price is refused under a budget; Redis away fails closed unless configured otherwise.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "integration/money_fixture.hpp"
#include "support/fault_proxy.hpp"

using namespace lagoon::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

std::string ask(int max_tokens, int chunks = 3, const std::string& model = "llama-3.3-70b") {
  return json{{"model", model},
              {"max_tokens", max_tokens},
              {"messages", {{{"role", "user"}, {"content", "Hello"}}}},
              {"x_mock", {{"chunks", chunks}}}}
      .dump();
}

json key_info(MoneyFlow& t, unsigned short port, const std::string& key) {
  auto r = request(port, "GET", "/api/v1/key", "", "Authorization: Bearer " + key + "\r\n");
  EXPECT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  (void)t;
  return json::parse(r->body)["data"];
}

TEST_F(MoneyFlow, ARequestThatMayCostMoreThanIsLeftIsRefusedWith402AndCostsNothing) {
  set_key_budget("0.001", "daily");
  start_priced();
  // 1000 completion tokens at $2.8 per million may cost $0.0028: more than the budget.
  auto r = chat(ask(1000));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 402) << r->body;
  const auto err = json::parse(r->body)["error"];
  EXPECT_EQ(err["type"], "insufficient_quota");
  EXPECT_EQ(err["code"], "budget_exceeded");
  const std::string message = err["message"];
  EXPECT_NE(message.find("this API key's daily budget: $0 spent of $0.001"), std::string::npos) << message;
  EXPECT_NE(message.find("It resets at "), std::string::npos) << message;
  EXPECT_NE(message.find("T00:00:00Z"), std::string::npos) << message;
  ASSERT_EQ(usage_rows(1), 1);
  EXPECT_EQ(last_row("status_code, outcome, cost_usd::text"), "402,budget_exceeded,0");
  EXPECT_EQ(mock.stats()["requests_by_path"].value("/chat/completions", 0), 0);

  // What fits is served, and its real cost is what the key has spent (the hold settled).
  r = chat(ask(10));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  ASSERT_EQ(usage_rows(2), 2);
  const std::string spent = db.scalar("SELECT sum(cost_usd)::text FROM usage_records");
  ASSERT_TRUE(wait_until([&] { return key_info(*this, server->port(), key)["budget"]["spent_usd"] == spent; }, 5s))
      << key_info(*this, server->port(), key).dump();
  const auto budget = key_info(*this, server->port(), key)["budget"];
  EXPECT_EQ(budget["scope"], "key");
  EXPECT_EQ(budget["amount_usd"], "0.001");
  EXPECT_EQ(budget["period"], "daily");
}

TEST_F(MoneyFlow, FiftyParallelRequestsOnANearlySpentKeyOverspendByAtMostOneReservation) {
  set_key_budget("0.01", "total");
  start_priced();
  // Each may cost up to ~$0.00028 (100 completion tokens) and costs about that: ~35 fit in $0.01.
  std::atomic<int> served{0}, refused{0}, other{0};
  std::mutex others_mutex;
  std::string others;  // what the other answers were, so that a failure says which
  std::vector<std::thread> clients;
  for (int i = 0; i < 50; ++i)
    clients.emplace_back([&] {
      std::string what;
      try {
        const auto r = chat(ask(100, 100));
        if (r && r->status == 200) return void(served++);
        if (r && r->status == 402) return void(refused++);
        what = r ? std::to_string(r->status) + " " + r->body : "no answer";
      } catch (const std::exception& e) {
        what = e.what();
      }
      other++;
      const std::lock_guard lock(others_mutex);
      others += what + "\n";
    });
  for (auto& c : clients) c.join();
  EXPECT_EQ(other.load(), 0) << others;
  EXPECT_GT(served.load(), 0);
  EXPECT_GT(refused.load(), 0);
  ASSERT_EQ(usage_rows(50), 50);
  const double spent = std::stod(spent_by_key());
  const double reservation = std::stod(db.scalar(
      "SELECT max(ceil(length('" + ask(100, 100) + "') / 4.0) * 0.7 + 100 * 2.8) / 1000000"));
  std::cout << "[ measured ] 50 parallel on $0.01: served " << served << ", refused " << refused << ", spent $"
            << spent_by_key() << " (bound $0.01 + one reservation $" << reservation << ")\n";
  EXPECT_LE(spent, 0.01 + reservation);
}

TEST_F(MoneyFlow, SpendRedisDoesNotHaveIsSummedFromTheUsageRows) {
  set_key_budget("0.001", "monthly");
  const std::string key_id = db.scalar("SELECT id FROM api_keys LIMIT 1");
  const std::string user_id = db.scalar("SELECT user_id FROM api_keys LIMIT 1");
  // Spent this month by an earlier instance whose Redis is gone: $0.0009.
  db.scalar("INSERT INTO usage_records (request_id, api_key_id, user_id, stream, status_code, outcome, started_at, "
            "duration_ms, cost_usd, cost_source) VALUES ('earlier', " + key_id + ", " + user_id +
            ", false, 200, 'ok', now(), 1, 0.0009, 'price_table')");
  start_priced();
  auto r = chat(ask(100));  // may cost ~$0.00028: more than the $0.0001 left
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 402) << r->body;
  EXPECT_EQ(server->metric("lagoon_budget_seeds_total"), 1);
  EXPECT_EQ(key_info(*this, server->port(), key)["budget"]["spent_usd"], "0.0009");
  r = chat(ask(10));  // ~$0.00003: fits
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
}

TEST_F(MoneyFlow, AUsersBudgetHoldsAcrossItsKeys) {
  db.scalar("UPDATE users SET budget_usd = 0.0005, budget_period = 'total'");
  const std::string second = create_key(env).second;
  start_priced();
  auto r = chat(ask(100));  // up to ~$0.00028
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  auto s = request(server->port(), "POST", "/api/v1/chat/completions", ask(100),
                   "Authorization: Bearer " + second + "\r\nContent-Type: application/json\r\n");
  ASSERT_TRUE(s);
  // Unless the first one's settlement already gave most of its hold back, the second does not fit.
  ASSERT_TRUE(wait_until([&] { return key_info(*this, server->port(), second)["budget"]["scope"] == "user"; }, 5s));
  const auto third = request(server->port(), "POST", "/api/v1/chat/completions", ask(1000),
                             "Authorization: Bearer " + second + "\r\nContent-Type: application/json\r\n");
  ASSERT_TRUE(third);
  EXPECT_EQ(third->status, 402) << third->body;
  EXPECT_NE(third->body.find("this API key's user's total budget"), std::string::npos) << third->body;
  EXPECT_NE(third->body.find("It does not reset"), std::string::npos) << third->body;
}

TEST_F(MoneyFlow, AModelWithoutAPriceIsRefusedUnderABudgetUnlessUnpricedRequestsAreServed) {
  set_key_budget("5", "monthly");
  start_priced();
  auto r = chat(ask(10, 3, "no-such-price"));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 402) << r->body;
  EXPECT_EQ(json::parse(r->body)["error"]["code"], "model_unpriced");
  EXPECT_NE(r->body.find("no-such-price"), std::string::npos);
  server.reset();
  start_priced({{"LAGOON_UNPRICED", "serve"}});
  r = chat(ask(10, 3, "no-such-price"));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  ASSERT_EQ(usage_rows(2), 2);
  EXPECT_EQ(last_row("cost_usd IS NULL, cost_source"), "t,unpriced");
}

TEST_F(MoneyFlow, WithRedisAwayABudgetedKeyGets503UnlessBudgetsFailOpen) {
  set_key_budget("5", "monthly");
  FaultProxy redis(port_of_url(env.at("LAGOON_REDIS_URL")));
  Env e{{"LAGOON_REDIS_URL", url_with_port(env.at("LAGOON_REDIS_URL"), redis.port())}};
  start_priced(e);
  ASSERT_EQ(chat(ask(10))->status, 200);  // the key is cached in L1 now
  redis.set_mode(FaultProxy::Mode::refuse);
  redis.reset_all();
  ASSERT_TRUE(wait_until([&] { return chat(ask(10))->status == 503; }, 5s));
  const auto r = chat(ask(10));
  EXPECT_EQ(r->status, 503);
  EXPECT_NE(r->header("retry-after"), "");
  EXPECT_NE(r->body.find("budget"), std::string::npos) << r->body;

  redis.set_mode(FaultProxy::Mode::pass);
  server.reset();
  e["LAGOON_BUDGETS_FAIL_OPEN"] = "true";
  start_priced(e);
  ASSERT_EQ(chat(ask(10))->status, 200);
  redis.set_mode(FaultProxy::Mode::refuse);
  redis.reset_all();
  std::this_thread::sleep_for(200ms);  // not a condition: the answer must stay 200 throughout
  for (int i = 0; i < 5; ++i) EXPECT_EQ(chat(ask(10))->status, 200);
}

}  // namespace
