// The MoneyFlow fixture shared by money_test.cpp and budget_test.cpp: the Endpoints fixture (a migrated
// database, a key, the mock upstream, `lagoon serve`) plus prices loaded, budgets set, the mock's model
// list controlled, and the exact SQL checks of a row's cost. Not thread-safe; each test owns its fixture.
#pragma once

#include <string>

#include <gtest/gtest.h>

#include "integration/endpoints_fixture.hpp"
#include "support/usage_support.hpp"

namespace lagoon::test {

class MoneyFlow : public Endpoints {
 protected:
  // Serves with prices: waits until the first refresh has stored Venice's (the mock's) table.
  LagoonServer& start_priced(Env extra = {}) {
    auto& s = start(std::move(extra));
    EXPECT_TRUE(wait_until([&] { return s.metric("lagoon_price_table_version") > 0; }, std::chrono::seconds(10)))
        << "no price table was loaded";
    return s;
  }
  // Replaces the mock's model list control (POST /mock/catalog); "{}" restores it.
  void control_catalog(const std::string& body) {
    const auto r = request(mock.port(), "POST", "/mock/catalog", body, "Content-Type: application/json\r\n");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
  }
  void set_key_budget(const std::string& usd, const std::string& period, std::int64_t key_id = 0) {
    db.scalar("UPDATE api_keys SET budget_usd = " + usd + ", budget_period = '" + period + "' WHERE " +
              (key_id ? "id = " + std::to_string(key_id) : std::string("true")));
  }
  // Whether the newest row's cost_usd equals `expected` (an SQL numeric expression over the row's columns).
  std::string cost_check(const std::string& expected) {
    return db.scalar("SELECT concat_ws(',', cost_usd = (" + expected +
                     "), cost_source, cost_usd::text) FROM usage_records ORDER BY started_at DESC LIMIT 1");
  }
  std::string spent_by_key() { return db.scalar("SELECT COALESCE(sum(cost_usd), 0)::text FROM usage_records"); }
};

}  // namespace lagoon::test
