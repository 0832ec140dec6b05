// Authentication on the real binary, against real Redis and Postgres: revocation and deactivation seen
// by running instances, what an instance that cannot hear them trusts, and Redis gone, hung or unreachable.
// The lookup layers and what each costs: auth_test.cpp.
#include <gtest/gtest.h>

#include <csignal>
#include <thread>

#include <nlohmann/json.hpp>

#include "integration/auth_fixture.hpp"
#include "support/environment.hpp"
#include "support/fault_proxy.hpp"
#include "support/usage_support.hpp"

using namespace lagoon::test;
using namespace std::chrono_literals;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

TEST_F(Auth, DeactivatedUserIsRefused) {
  auto [id, key] = create_key(env, "mallory");
  db.scalar("UPDATE users SET is_active = false WHERE name = 'mallory'");
  LagoonServer s(env);
  EXPECT_EQ(status_with(s.port(), key), 401);
  EXPECT_EQ(s.metric(R"(lagoon_auth_denied_total{reason="denied"})"), 1);
  // /metrics must not tell a key's holder whether it is unknown, revoked or its user deactivated (a
  // leaked key could be probed that way); the operator's access log says which.
  const std::string metrics = request(s.port(), "GET", "/metrics")->body;
  for (const char* reason : {"user_inactive", "revoked", "unknown"})
    EXPECT_EQ(metrics.find(std::string("reason=\"") + reason), std::string::npos) << reason;
  EXPECT_TRUE(wait_until([&] { return s.process().output().find(R"("auth_denied":"user_inactive")") != std::string::npos; },
                         5s))
      << "the access log does not say why";
}

TEST_F(Auth, RevokedKeyIsRefusedByAnotherInstanceWithinOneSecond) {
  auto [id, key] = create_key(env);
  LagoonServer a(env), b(env);
  ASSERT_EQ(b.wait_ready_status(200, 5s), 200);
  ASSERT_EQ(status_with(a.port(), key), 200);
  ASSERT_EQ(status_with(b.port(), key), 200);
  ASSERT_EQ(status_with(b.port(), key), 200);  // cached in b's L1
  const auto revoked_at = Clock::now();
  auto r = lagoon_cli({"keys", "revoke", std::to_string(id)}, env);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto cli_done = Clock::now();
  while (status_with(b.port(), key) != 401 && Clock::now() - revoked_at < 5s) std::this_thread::sleep_for(10ms);
  const auto refused_after = Clock::now() - cli_done;
  EXPECT_EQ(status_with(b.port(), key), 401);
  EXPECT_EQ(status_with(a.port(), key), 401);
  EXPECT_LT(refused_after, 1s) << std::chrono::duration_cast<std::chrono::milliseconds>(refused_after).count()
                               << " ms after the CLI returned";
  EXPECT_EQ(b.metric(R"(lagoon_auth_denied_total{reason="denied"})"), 2);
  // A fresh instance sees the revocation from Redis, without asking Postgres.
  LagoonServer c(env);
  EXPECT_EQ(status_with(c.port(), key), 401);
  EXPECT_EQ(c.metric(kAuthLeases), 0);
}

// While an instance cannot hear revocations (its subscription to Redis is down), it trusts a cached key
// for 1 s at most: a key revoked meanwhile the way `lagoon keys revoke` does it (Postgres, the Redis
// entry, an announcement this instance misses) is refused within that second, not after
// LAGOON_AUTH_CACHE_TTL_MS.
TEST_F(Auth, WhileRevocationsCannotBeHeardACachedKeyIsTrustedForOneSecondAtMost) {
  auto [id, key] = create_key(env);
  FaultProxy redis(port_of_url(env.at("LAGOON_REDIS_URL")));
  auto e = env;
  e["LAGOON_REDIS_URL"] = url_with_port(env.at("LAGOON_REDIS_URL"), redis.port());
  e["LAGOON_AUTH_CACHE_TTL_MS"] = "30000";  // what the cache would trust without the 1 s rule
  LagoonServer s(e);
  const std::string subscribed = R"(lagoon_redis_connections_up{role="subscriber"})";
  ASSERT_TRUE(wait_until([&] { return s.metric(subscribed) == 1; }, 5s));
  ASSERT_EQ(status_with(s.port(), key), 200);

  // Redis goes away for this instance only; the CLI below still reaches it.
  redis.set_mode(FaultProxy::Mode::refuse);
  redis.reset_all();
  ASSERT_TRUE(wait_until([&] { return s.metric(subscribed) == 0; }, 5s)) << "the subscription did not drop";

  // A warm entry: a request answered from L1 just before the revocation (its predecessor may have had
  // to fill L1 again from Postgres, the entry it found being older than 1 s).
  const std::string l1_hits = R"(lagoon_auth_lookups_total{layer="l1",result="hit"})";
  ASSERT_TRUE(wait_until(
      [&] {
        const double hits = s.metric(l1_hits);
        return status_with(s.port(), key) == 200 && status_with(s.port(), key) == 200 && s.metric(l1_hits) > hits;
      },
      5s));
  auto r = lagoon_cli({"keys", "revoke", std::to_string(id)}, env);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto revoked = Clock::now();
  while (status_with(s.port(), key) != 401 && Clock::now() - revoked < 5s) std::this_thread::sleep_for(10ms);
  const auto refused_after = Clock::now() - revoked;
  EXPECT_EQ(status_with(s.port(), key), 401);
  // The entry's second began before the revocation; the margin is for the requests themselves.
  EXPECT_LT(refused_after, 1500ms) << std::chrono::duration_cast<std::chrono::milliseconds>(refused_after).count()
                                   << " ms after the CLI returned";
}

TEST_F(Auth, DeactivatingAUserStopsAllItsKeysOnRunningInstances) {
  auto [id1, key1] = create_key(env, "bob");
  auto [id2, key2] = create_key(env, "bob");
  LagoonServer s(env);
  ASSERT_EQ(status_with(s.port(), key1), 200);
  ASSERT_EQ(status_with(s.port(), key2), 200);
  auto r = lagoon_cli({"users", "deactivate", "bob"}, env);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["is_active"], false);
  const auto cli_done = Clock::now();
  while ((status_with(s.port(), key1) != 401 || status_with(s.port(), key2) != 401) && Clock::now() - cli_done < 5s)
    std::this_thread::sleep_for(10ms);
  EXPECT_LT(Clock::now() - cli_done, 1s);
  EXPECT_EQ(status_with(s.port(), key1), 401);
  EXPECT_EQ(status_with(s.port(), key2), 401);
}

TEST_F(Auth, RevokeSaysSoWhenRedisCannotBeTold) {
  auto [id, key] = create_key(env);
  auto e = env;
  e["LAGOON_REDIS_URL"] = "redis://127.0.0.1:" + std::to_string(free_port()) + "/0";  // nothing listens
  auto r = lagoon_cli({"keys", "revoke", std::to_string(id)}, e);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("revoked in Postgres"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("keys revoke " + std::to_string(id)), std::string::npos) << r.err;
  EXPECT_EQ(db.scalar("SELECT is_active FROM api_keys WHERE id = " + std::to_string(id)), "f");
  // Repeating it once Redis is reachable completes the invalidation.
  auto again = lagoon_cli({"keys", "revoke", std::to_string(id)}, env);
  EXPECT_EQ(again.code, 0) << again.err;
}

TEST_F(Auth, WithRedisGoneKeysAuthenticateThroughPostgres) {
  RedisServer redis;
  auto [id, key] = create_key(env);
  auto e = env;
  e["LAGOON_REDIS_URL"] = redis.url();
  LagoonServer s(e);
  ASSERT_EQ(s.wait_ready_status(200, 5s), 200);
  redis.kill();
  EXPECT_EQ(status_with(s.port(), key), 200);
  EXPECT_EQ(s.metric(kAuthLeases), 1);
  EXPECT_GE(s.metric(R"(lagoon_auth_lookups_total{layer="redis",result="error"})"), 1);
  EXPECT_EQ(s.metric(R"(lagoon_auth_requests_total{outcome="unavailable"})"), 0);
}

TEST_F(Auth, HungRedisCostsAtMostOneDeadlineAndTheBreakerOpensAndCloses) {
  RedisServer redis;
  std::vector<std::string> keys;
  for (int i = 0; i < 9; ++i) keys.push_back(create_key(env, "alice").second);
  auto e = env;
  e["LAGOON_REDIS_URL"] = redis.url();
  e["LAGOON_AUTH_CACHE_TTL_MS"] = "0";  // no L1: every request asks Redis first
  e["LAGOON_REDIS_TIMEOUT_MS"] = "25";  // the default, which this test measures
  LagoonServer s(e);
  ASSERT_EQ(s.wait_ready_status(200, 5s), 200);
  ASSERT_EQ(status_with(s.port(), keys[0]), 200);

  redis.process().signal(SIGSTOP);
  std::vector<long long> ms;
  for (int i = 1; i < 8; ++i) {
    const auto t0 = Clock::now();
    EXPECT_EQ(status_with(s.port(), keys[i]), 200);
    ms.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count());
  }
  const double opened = s.metric("lagoon_redis_breaker_opened_total");
  const double open_now = s.metric("lagoon_redis_breaker_open");
  redis.process().signal(SIGCONT);

  for (auto v : ms) EXPECT_LT(v, 100) << "a request waited " << v << " ms while Redis hung";
  EXPECT_GE(opened, 1);
  EXPECT_EQ(open_now, 1);
  EXPECT_GE(s.metric(R"(lagoon_redis_commands_total{result="skipped"})"), 1);

  // Recovery: after the cool-down one request probes Redis, and the breaker closes.
  const auto deadline = Clock::now() + 8s;
  while (s.metric("lagoon_redis_breaker_open") != 0 && Clock::now() < deadline) {
    EXPECT_EQ(status_with(s.port(), keys[8]), 200);
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(s.metric("lagoon_redis_breaker_open"), 0);
  const double hits = s.metric(R"(lagoon_auth_lookups_total{layer="redis",result="hit"})");
  EXPECT_EQ(status_with(s.port(), keys[0]), 200);
  EXPECT_EQ(s.metric(R"(lagoon_auth_lookups_total{layer="redis",result="hit"})"), hits + 1);
}
