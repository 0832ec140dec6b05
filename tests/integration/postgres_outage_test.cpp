// Stops and restarts the shared test Postgres (commands exported by `make test`), so it runs alone.
#include <gtest/gtest.h>

#include <cstdlib>

#include <nlohmann/json.hpp>

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
