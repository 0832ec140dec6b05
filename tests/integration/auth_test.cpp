// Authentication on the real binary, against real Redis and Postgres: the layers, what each costs
// (asserted through /metrics), single-flight, revocation across instances, and Redis faults.
// GET /api/v1/key is the cheapest authenticated route.
#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <random>
#include <thread>

#include <boost/crc.hpp>
#include <nlohmann/json.hpp>

#include "lagoon/keys/api_key.hpp"
#include "support/environment.hpp"
#include "support/fault_proxy.hpp"
#include "support/usage_support.hpp"

using namespace lagoon::test;
using namespace std::chrono_literals;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

std::optional<HttpResponse> get_key(unsigned short port, const std::string& authorization) {
  return request(port, "GET", "/api/v1/key", "",
                 authorization.empty() ? "" : "Authorization: " + authorization + "\r\n");
}

int status_with(unsigned short port, const std::string& key) {
  auto r = get_key(port, "Bearer " + key);
  return r ? r->status : 0;
}

// A valid key (tag and checksum right) with the same display prefix, differing only in its random part.
std::string same_prefix_other_key(const std::string& key) {
  std::string random_part = key.substr(lagoon::keys::kKeyMarker.size(), lagoon::keys::kRandomChars);
  char& c = random_part[random_part.size() - 3];
  c = c == 'a' ? 'b' : 'a';
  return lagoon::keys::seal(kTestPepper, random_part);
}

// What anyone can make without the pepper: the current format with a made-up tag and a right checksum.
std::string made_up_key(std::mt19937_64& rng) {
  static constexpr std::string_view kBase62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  std::string body(lagoon::keys::kKeyMarker);
  for (std::size_t i = 0; i < lagoon::keys::kRandomChars + lagoon::keys::kTagChars; ++i) body += kBase62[rng() % 62];
  boost::crc_32_type crc;
  crc.process_bytes(body.data(), body.size());
  return body + lagoon::keys::base62_fixed(crc.checksum(), lagoon::keys::kChecksumChars);
}

// A key of the format before tags: marker, random part, CRC32.
std::string legacy_key(std::mt19937_64& rng) {
  std::mt19937_64 copy = rng;
  std::string k = made_up_key(copy);
  rng = copy;
  std::string body = k.substr(0, lagoon::keys::kKeyMarker.size() + lagoon::keys::kRandomChars);
  boost::crc_32_type crc;
  crc.process_bytes(body.data(), body.size());
  return body + lagoon::keys::base62_fixed(crc.checksum(), lagoon::keys::kChecksumChars);
}

double redis_commands(LagoonServer& s) {
  double n = 0;
  for (const char* r : {"ok", "error", "timeout", "unavailable", "skipped"})
    n += s.metric(std::string("lagoon_redis_commands_total{result=\"") + r + "\"}");
  return n;
}

const std::string kAuthLeases = R"(lagoon_db_leases_total{purpose="auth"})";

class Auth : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(lagoon_cli({"migrate"}, env).code, 0); }
  TestDatabase db;
  Env env = lagoon_env(db);
};

}  // namespace

TEST_F(Auth, ValidKeyIsAcceptedAndItsRecordReturned) {
  auto [id, key] = create_key(env, "alice", {"--name", "laptop", "--rpm", "60"});
  LagoonServer s(env);
  auto r = get_key(s.port(), "Bearer " + key);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  auto j = json::parse(r->body)["data"];
  EXPECT_EQ(j["id"], id);
  EXPECT_EQ(j["prefix"], lagoon::keys::display_prefix(key));
  EXPECT_EQ(j["name"], "laptop");
  EXPECT_EQ(j["rpm_limit"], 60);
  EXPECT_TRUE(j["tpm_limit"].is_null());
  EXPECT_EQ(r->body.find(key), std::string::npos);
  // The scheme is case-insensitive (RFC 9110 §11.1).
  EXPECT_EQ(get_key(s.port(), "bearer " + key)->status, 200);
}

TEST_F(Auth, WrongKeyWithTheSamePrefixIsRefusedWhileTheRightOneIsCached) {
  auto [id, key] = create_key(env);
  LagoonServer s(env);
  ASSERT_EQ(status_with(s.port(), key), 200);
  ASSERT_EQ(status_with(s.port(), key), 200);  // now in L1
  const std::string forged = same_prefix_other_key(key);
  ASSERT_TRUE(lagoon::keys::well_formed(forged));
  ASSERT_EQ(lagoon::keys::display_prefix(forged), lagoon::keys::display_prefix(key));
  auto r = get_key(s.port(), "Bearer " + forged);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(r->header("www-authenticate"), "Bearer");
  EXPECT_EQ(json::parse(r->body)["error"]["code"], "invalid_api_key");
  EXPECT_EQ(r->body.find(forged), std::string::npos);
  EXPECT_EQ(s.metric(R"(lagoon_auth_denied_total{reason="denied"})"), 1);
  EXPECT_EQ(status_with(s.port(), key), 200);
}

TEST_F(Auth, MalformedOrMissingCredentialsCostNoLookup) {
  auto [id, key] = create_key(env);
  LagoonServer s(env);
  const double redis_before = redis_commands(s);
  const double leases_before = s.metric(kAuthLeases);

  std::string bad_checksum = key;
  bad_checksum.back() = bad_checksum.back() == 'A' ? 'B' : 'A';
  for (const std::string& auth : std::vector<std::string>{"Bearer " + bad_checksum, "Bearer sk-lgn_short", "Basic dXNlcjpwYXNz",
                                  "Bearer", std::string("Bearer ") + std::string(4096, 'k'), std::string()}) {
    auto r = get_key(s.port(), auth);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401) << auth.substr(0, 40);
    EXPECT_EQ(r->header("www-authenticate"), "Bearer");
    EXPECT_EQ(json::parse(r->body)["error"]["type"], "invalid_request_error");
  }
  EXPECT_EQ(redis_commands(s), redis_before);
  EXPECT_EQ(s.metric(kAuthLeases), leases_before);
  EXPECT_EQ(s.metric(R"(lagoon_auth_denied_total{reason="malformed"})"), 3);
  EXPECT_EQ(s.metric(R"(lagoon_auth_denied_total{reason="missing"})"), 3);

  auto dup = request(s.port(), "GET", "/api/v1/key", "",
                     "Authorization: Bearer " + key + "\r\nAuthorization: Bearer " + key + "\r\n");
  ASSERT_TRUE(dup);
  EXPECT_EQ(dup->status, 400);
}

TEST_F(Auth, WarmKeyTakesNoLeaseAndNoRedisRoundTrip) {
  auto [id, key] = create_key(env);
  LagoonServer s(env);
  ASSERT_EQ(status_with(s.port(), key), 200);
  EXPECT_EQ(s.metric(kAuthLeases), 1);
  // The first request's GET, and the cache fill (SET) it sent without waiting for the answer.
  for (int i = 0; i < 100 && redis_commands(s) < 2; ++i) std::this_thread::sleep_for(10ms);
  const double redis_before = redis_commands(s);
  EXPECT_EQ(redis_before, 2);
  for (int i = 0; i < 50; ++i) ASSERT_EQ(status_with(s.port(), key), 200);
  EXPECT_EQ(s.metric(kAuthLeases), 1);
  EXPECT_EQ(redis_commands(s), redis_before);
  EXPECT_EQ(s.metric(R"(lagoon_auth_lookups_total{layer="l1",result="hit"})"), 50);
}

TEST_F(Auth, RedisServesWhatL1DoesNotHold) {
  auto [id, key] = create_key(env);
  auto e = env;
  e["LAGOON_AUTH_CACHE_SIZE"] = "0";  // no L1
  LagoonServer s(e);
  ASSERT_EQ(status_with(s.port(), key), 200);
  ASSERT_EQ(status_with(s.port(), key), 200);
  ASSERT_EQ(status_with(s.port(), key), 200);
  EXPECT_EQ(s.metric(kAuthLeases), 1);
  EXPECT_EQ(s.metric(R"(lagoon_auth_lookups_total{layer="redis",result="hit"})"), 2);
}

TEST_F(Auth, UnknownKeyIsRefusedFromTheNegativeCache) {
  LagoonServer s(env);
  const std::string unknown = lagoon::keys::generate(kTestPepper);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(status_with(s.port(), unknown), 401);
  EXPECT_EQ(s.metric(kAuthLeases), 1);
  EXPECT_EQ(s.metric(R"(lagoon_auth_lookups_total{layer="postgres",result="miss"})"), 1);
  EXPECT_EQ(s.metric(R"(lagoon_auth_lookups_total{layer="l1",result="negative"})"), 4);
  // A second instance learns it from Redis's negative entry.
  LagoonServer t(env);
  EXPECT_EQ(status_with(t.port(), unknown), 401);
  EXPECT_EQ(t.metric(R"(lagoon_auth_lookups_total{layer="redis",result="negative"})"), 1);
  EXPECT_EQ(t.metric(kAuthLeases), 0);
}

// Anyone can compute a CRC32, so anyone could mint well-formed keys; each used to cost a Redis GET, a
// Postgres query and a Redis SET, and a few connections of them held the pool so that real cold keys
// got 503. The tag makes a made-up key cost nothing but an HMAC.
TEST_F(Auth, MadeUpKeysCostNoLookupAndDoNotCrowdOutARealColdKey) {
  auto [id, key] = create_key(env);
  LagoonServer s(env);
  const double redis_before = redis_commands(s);
  constexpr int kConnections = 8, kPerConnection = 2500;
  std::atomic<int> refused{0}, other{0};
  std::vector<std::thread> forgers;
  for (int t = 0; t < kConnections; ++t)
    forgers.emplace_back([&, t] {
      std::mt19937_64 rng(1000 + t);
      auto conn = std::make_unique<Connection>(s.port());
      for (int i = 0; i < kPerConnection; ++i) {
        const std::string forged = made_up_key(rng);
        conn->send("GET /api/v1/key HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + forged + "\r\n\r\n");
        auto r = conn->read_response(10s);
        (r && r->status == 401 ? refused : other)++;
        if (!r || r->header("connection") == "close") conn = std::make_unique<Connection>(s.port());
      }
    });
  // A real key nobody has used yet, while the made-up ones arrive.
  std::this_thread::sleep_for(50ms);
  const int cold_status = status_with(s.port(), key);
  for (auto& t : forgers) t.join();

  EXPECT_EQ(cold_status, 200);
  EXPECT_EQ(refused.load(), kConnections * kPerConnection);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(s.metric(R"(lagoon_auth_denied_total{reason="forged"})"), kConnections * kPerConnection);
  // The real key's lookup alone: one Redis GET (and its cache fill), one Postgres query.
  EXPECT_EQ(s.metric(kAuthLeases), 1);
  EXPECT_EQ(s.metric(R"(lagoon_auth_lookups_total{layer="postgres",result="hit"})"), 1);
  EXPECT_EQ(s.metric(R"(lagoon_auth_lookups_total{layer="postgres",result="miss"})"), 0);
  EXPECT_EQ(s.metric(R"(lagoon_auth_lookups_total{layer="redis",result="miss"})"), 1);
  EXPECT_LE(redis_commands(s) - redis_before, 2);
  EXPECT_EQ(status_with(s.port(), key), 200);
}

// Keys made before the tag existed keep working (through the lookup) and are counted, so operators
// know when they can stop accepting them; made-up keys of that format are refused from the negative
// cache, which is bounded on its own and never pushes a known key out.
TEST_F(Auth, KeysOfTheFormatBeforeTagsStillWorkAndAreCounted) {
  auto [id, key] = create_key(env);
  std::mt19937_64 rng(7);
  const std::string legacy = legacy_key(rng);
  ASSERT_EQ(lagoon::keys::format_of(legacy), lagoon::keys::Format::legacy);
  // Give the created key the legacy key's digest: what a key made by an older Lagoon looks like.
  db.scalar("UPDATE api_keys SET digest = decode('" + lagoon::keys::to_hex(lagoon::keys::digest(kTestPepper, legacy)) +
            "', 'hex') WHERE id = " + std::to_string(id));
  auto e = env;
  e["LAGOON_AUTH_CACHE_SIZE"] = "16";  // one known key per shard: easy to push out
  e["LAGOON_AUTH_NEGATIVE_CACHE_SIZE"] = "16";
  LagoonServer s(e);
  ASSERT_EQ(status_with(s.port(), legacy), 200);
  EXPECT_EQ(s.metric("lagoon_auth_legacy_keys_total"), 1);
  // Many unknown legacy-format keys: each costs a lookup once, but the known key stays in L1.
  for (int i = 0; i < 100; ++i) ASSERT_EQ(status_with(s.port(), legacy_key(rng)), 401);
  const double leases = s.metric(kAuthLeases);
  ASSERT_EQ(status_with(s.port(), legacy), 200);
  EXPECT_EQ(s.metric(kAuthLeases), leases) << "the known key was evicted by unknown ones";
  EXPECT_EQ(s.metric(R"(lagoon_auth_lookups_total{layer="l1",result="hit"})"), 1);
}

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

TEST_F(Auth, TwoHundredConcurrentFirstRequestsCauseOnePostgresQuery) {
  auto [id, key] = create_key(env);
  LagoonServer s(env);
  std::vector<std::unique_ptr<Connection>> conns;
  for (int i = 0; i < 200; ++i) conns.push_back(std::make_unique<Connection>(s.port()));
  const std::string req = "GET /api/v1/key HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key + "\r\n\r\n";
  for (auto& c : conns) ASSERT_TRUE(c->send(req));
  int ok = 0;
  for (auto& c : conns) {
    auto r = c->read_response(10s);
    if (r && r->status == 200) ++ok;
  }
  EXPECT_EQ(ok, 200);
  EXPECT_EQ(s.metric(kAuthLeases), 1);
  EXPECT_EQ(s.metric(R"(lagoon_auth_lookups_total{layer="postgres",result="hit"})"), 1);
  EXPECT_EQ(s.metric(R"(lagoon_auth_lookups_total{layer="redis",result="miss"})"), 1);
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
