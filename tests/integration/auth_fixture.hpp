// The Auth fixture shared by auth_test.cpp and auth_revocation_test.cpp: a migrated database and the
// environment `lagoon` needs against it; GET /api/v1/key (the cheapest authenticated route) with a given
// Authorization header, and the counters that show what a request cost.
// Not thread-safe; each test owns its fixture.
#pragma once

#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "support/environment.hpp"

namespace lagoon::test {

inline std::optional<HttpResponse> get_key(unsigned short port, const std::string& authorization) {
  return request(port, "GET", "/api/v1/key", "",
                 authorization.empty() ? "" : "Authorization: " + authorization + "\r\n");
}

inline int status_with(unsigned short port, const std::string& key) {
  auto r = get_key(port, "Bearer " + key);
  return r ? r->status : 0;
}

inline double redis_commands(LagoonServer& s) {
  double n = 0;
  for (const char* r : {"ok", "error", "timeout", "unavailable", "skipped"})
    n += s.metric(std::string("lagoon_redis_commands_total{result=\"") + r + "\"}");
  return n;
}

inline const std::string kAuthLeases = R"(lagoon_db_leases_total{purpose="auth"})";

class Auth : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(lagoon_cli({"migrate"}, env).code, 0); }
  TestDatabase db;
  Env env = lagoon_env(db);
};

}  // namespace lagoon::test
