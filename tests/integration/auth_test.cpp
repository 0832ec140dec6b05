// Authentication on the real binary, against real Redis and Postgres: the layers (L1, Redis, Postgres),
// what each costs (asserted through /metrics), single-flight, and keys that are malformed, unknown, made
// up without the pepper or of the format before tags. Revocation and Redis faults: auth_revocation_test.cpp.
#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>

#include <boost/crc.hpp>
#include <nlohmann/json.hpp>

#include "integration/auth_fixture.hpp"
#include "lagoon/keys/api_key.hpp"
#include "support/environment.hpp"

using namespace lagoon::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

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
