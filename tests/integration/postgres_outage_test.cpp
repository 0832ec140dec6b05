// Stops and restarts the shared test Postgres (commands exported by `make test`), so it runs alone.
#include <gtest/gtest.h>

#include <cstdlib>
#include <thread>

#include <nlohmann/json.hpp>

#include "lagoon/keys/api_key.hpp"
#include "support/environment.hpp"

using namespace lagoon::test;
using namespace std::chrono_literals;

TEST(PostgresOutage, ReadyzIs503WhilePostgresIsStoppedAndRecovers) {
  const std::string stop = required_env("LAGOON_TEST_PG_STOP");
  const std::string start = required_env("LAGOON_TEST_PG_START");
  TestDatabase db;
  auto env = lagoon_env(db);
  ASSERT_EQ(lagoon_cli({"migrate"}, env).code, 0);
  LagoonServer s(env);
  ASSERT_EQ(s.wait_ready_status(200, 5s), 200);

  ASSERT_EQ(std::system(stop.c_str()), 0);
  const int during = s.wait_ready_status(503, 10s);
  auto r = request(s.port(), "GET", "/readyz");
  const int restarted = std::system(start.c_str());
  ASSERT_EQ(restarted, 0) << "could not restart the test Postgres";

  EXPECT_EQ(during, 503);
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->header("retry-after").empty());
  EXPECT_NE(r->body.find("postgres unavailable"), std::string::npos) << r->body;
  EXPECT_EQ(request(s.port(), "GET", "/healthz")->status, 200);  // alive, just not ready
  EXPECT_EQ(s.wait_ready_status(200, 15s), 200);
}

// Cached keys keep working while Postgres is down; a key no cache knows gets 503, never 401.
TEST(PostgresOutage, CachedKeysWorkAndUncachedOnesGet503) {
  const std::string stop = required_env("LAGOON_TEST_PG_STOP");
  const std::string start = required_env("LAGOON_TEST_PG_START");
  TestDatabase db;
  auto env = lagoon_env(db);
  ASSERT_EQ(lagoon_cli({"migrate"}, env).code, 0);
  auto [warm_id, warm] = create_key(env);
  auto [cold_id, cold] = create_key(env);
  env["LAGOON_AUTH_CACHE_TTL_MS"] = "200";  // so the warm key is soon served by Redis, not L1
  LagoonServer s(env);
  auto status = [&](const std::string& key) {
    auto r = request(s.port(), "GET", "/api/v1/key", "", "Authorization: Bearer " + key + "\r\n");
    return r ? r->status : 0;
  };
  ASSERT_EQ(status(warm), 200);

  ASSERT_EQ(std::system(stop.c_str()), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const int warm_during = status(warm);
  auto cold_during = request(s.port(), "GET", "/api/v1/key", "", "Authorization: Bearer " + cold + "\r\n");
  const int unknown_during = status(lagoon::keys::generate());
  const int restarted = std::system(start.c_str());
  ASSERT_EQ(restarted, 0) << "could not restart the test Postgres";

  EXPECT_EQ(warm_during, 200);
  ASSERT_TRUE(cold_during);
  EXPECT_EQ(cold_during->status, 503) << cold_during->body;
  EXPECT_FALSE(cold_during->header("retry-after").empty());
  EXPECT_EQ(nlohmann::json::parse(cold_during->body)["error"]["code"], "service_unavailable");
  EXPECT_EQ(unknown_during, 503);
  EXPECT_GE(s.metric(R"(lagoon_auth_lookups_total{layer="redis",result="hit"})"), 1);

  // Back: the pool reconnects on the next lease.
  int cold_after = 0;
  for (int i = 0; i < 100 && cold_after != 200; ++i) {
    cold_after = status(cold);
    if (cold_after != 200) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(cold_after, 200);
}
