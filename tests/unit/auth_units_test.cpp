// Pure parts of authentication: the Bearer parser, the cache entry format, the L1 cache and the
// circuit breaker.
#include <gtest/gtest.h>

#include <thread>

#include "lagoon/auth/bearer.hpp"
#include "lagoon/auth/key_record.hpp"
#include "lagoon/auth/l1_cache.hpp"
#include "lagoon/redis/breaker.hpp"

using namespace lagoon;
using namespace std::chrono_literals;

namespace {

keys::Digest digest_of(std::uint8_t seed) {
  keys::Digest d{};
  for (std::size_t i = 0; i < d.size(); ++i) d[i] = static_cast<std::uint8_t>(seed * 31 + i);
  return d;
}

auth::KeyRecord record(std::uint8_t seed) {
  auth::KeyRecord r;
  r.digest = digest_of(seed);
  r.key_id = 40 + seed;
  r.user_id = 7;
  r.prefix = "sk-lgn_AbCdE";
  r.name = "laptop";
  r.key_active = true;
  r.user_active = true;
  r.rpm_limit = 60;
  return r;
}

}  // namespace

TEST(Bearer, AcceptsTheSchemeInAnyCaseAndTrimsBlanks) {
  EXPECT_EQ(auth::bearer_token("Bearer abc"), "abc");
  EXPECT_EQ(auth::bearer_token("bearer abc"), "abc");
  EXPECT_EQ(auth::bearer_token("BEARER \t abc  "), "abc");
}

TEST(Bearer, RefusesOtherSchemesAndEmptyOrSplitTokens) {
  for (std::string_view h : {"", "Bearer", "Bearer ", "Bearer  ", "Basic abc", "Bearerabc", "Bearer a b", "Token x",
                             "Bear abc"})
    EXPECT_FALSE(auth::bearer_token(h)) << h;
}

TEST(CacheEntry, RoundTripsKnownAndUnknownEntries) {
  const auto r = record(1);
  auto known = auth::from_cache_json(auth::to_cache_json({false, r}, r.digest), r.digest);
  ASSERT_TRUE(known);
  EXPECT_FALSE(known->unknown);
  EXPECT_EQ(known->record, r);

  auth::CacheEntry unknown{true, {}};
  auto back = auth::from_cache_json(auth::to_cache_json(unknown, digest_of(2)), digest_of(2));
  ASSERT_TRUE(back);
  EXPECT_TRUE(back->unknown);
}

TEST(CacheEntry, IsNotTrustedForAnotherDigestOrWhenMalformed) {
  const auto r = record(1);
  const std::string text = auth::to_cache_json({false, r}, r.digest);
  EXPECT_FALSE(auth::from_cache_json(text, digest_of(3)));
  EXPECT_FALSE(auth::from_cache_json("not json", r.digest));
  EXPECT_FALSE(auth::from_cache_json("{}", r.digest));
  EXPECT_FALSE(auth::from_cache_json(R"({"v":99,"digest":")" + keys::to_hex(r.digest) + R"("})", r.digest));
  EXPECT_FALSE(auth::from_cache_json(R"({"v":1,"digest":")" + keys::to_hex(r.digest) + R"(","key_id":"x"})",
                                     r.digest));
  EXPECT_EQ(auth::cache_key("lagoon:", r.digest), "lagoon:key:" + keys::to_hex(r.digest));
  EXPECT_EQ(auth::invalidation_channel("lagoon:"), "lagoon:auth:invalidate");
}

TEST(L1Cache, ServesFreshEntriesAndForgetsStaleOnes) {
  auth::L1Cache c(100);
  const auto t0 = auth::L1Cache::Clock::now();
  auto e = std::make_shared<const auth::CacheEntry>(auth::CacheEntry{false, record(1)});
  auto u = std::make_shared<const auth::CacheEntry>(auth::CacheEntry{true, {}});
  ASSERT_TRUE(c.put(digest_of(1), e, t0, c.generation()));
  ASSERT_TRUE(c.put(digest_of(2), u, t0, c.generation()));
  EXPECT_EQ(c.get(digest_of(1), t0 + 9s, 10s, 1s), e);
  EXPECT_EQ(c.get(digest_of(1), t0 + 10s, 10s, 1s), nullptr);
  EXPECT_EQ(c.get(digest_of(2), t0 + 500ms, 10s, 1s), u);
  EXPECT_EQ(c.get(digest_of(2), t0 + 2s, 10s, 1s), nullptr);  // unknown keys age by their own limit
  EXPECT_EQ(c.get(digest_of(3), t0, 10s, 1s), nullptr);
}

TEST(L1Cache, ALookupOvertakenByAnInvalidationIsNotStored) {
  auth::L1Cache c(100);
  const auto now = auth::L1Cache::Clock::now();
  auto e = std::make_shared<const auth::CacheEntry>(auth::CacheEntry{false, record(1)});
  const auto started = c.generation();
  c.erase(digest_of(1));  // a revocation arrives while the lookup runs
  EXPECT_FALSE(c.put(digest_of(1), e, now, started));
  EXPECT_EQ(c.get(digest_of(1), now, 10s, 10s), nullptr);
  EXPECT_TRUE(c.put(digest_of(1), e, now, c.generation()));
  c.clear();
  EXPECT_EQ(c.get(digest_of(1), now, 10s, 10s), nullptr);
}

TEST(L1Cache, StaysWithinItsCapacity) {
  auth::L1Cache c(64);
  const auto now = auth::L1Cache::Clock::now();
  auto e = std::make_shared<const auth::CacheEntry>(auth::CacheEntry{true, {}});
  for (int i = 0; i < 10'000; ++i) {
    keys::Digest d{};
    for (std::size_t b = 0; b < d.size(); ++b) d[b] = static_cast<std::uint8_t>((i >> (b % 3 * 8)) + b);
    c.put(d, e, now, c.generation());
  }
  EXPECT_LE(c.size(), 64u);
  EXPECT_GT(c.size(), 0u);
}

TEST(L1Cache, ZeroCapacityStoresNothing) {
  auth::L1Cache c(0);
  auto e = std::make_shared<const auth::CacheEntry>(auth::CacheEntry{true, {}});
  EXPECT_FALSE(c.put(digest_of(1), e, auth::L1Cache::Clock::now(), c.generation()));
  EXPECT_EQ(c.size(), 0u);
}

TEST(Breaker, OpensOnAFailureRateInOneWindowAndProbesOnceAfterTheCooldown) {
  redis::Breaker b(3, 1s, 1s);
  const auto t = redis::Breaker::Clock::now();
  EXPECT_TRUE(b.allow(t));
  EXPECT_FALSE(b.failure(t));
  EXPECT_FALSE(b.success(t));  // closed already: nothing to report
  EXPECT_FALSE(b.failure(t));
  EXPECT_TRUE(b.failure(t));  // three failures, three of four calls
  EXPECT_EQ(b.state(), redis::Breaker::State::open);
  EXPECT_FALSE(b.allow(t + 999ms));
  EXPECT_TRUE(b.allow(t + 1s));    // the probe
  EXPECT_FALSE(b.allow(t + 1s));   // only one
  EXPECT_TRUE(b.failure(t + 1s));  // the probe failed: open again
  EXPECT_FALSE(b.allow(t + 1500ms));
  EXPECT_TRUE(b.allow(t + 2s));
  EXPECT_TRUE(b.success(t + 2s));  // the probe succeeded: this closed it
  EXPECT_EQ(b.state(), redis::Breaker::State::closed);
  EXPECT_TRUE(b.allow(t + 2s));
}

// A late reply among good ones is a blip, not an outage (the old breaker opened on three consecutive
// failures, which one timeout produced by failing the commands queued behind it).
TEST(Breaker, AFailureHereAndThereDoesNotOpenIt) {
  redis::Breaker b(3, 1s, 1s);
  const auto t = redis::Breaker::Clock::now();
  for (int i = 0; i < 20; ++i) {
    EXPECT_FALSE(b.failure(t + i * 10ms));
    b.success(t + i * 10ms);
    b.success(t + i * 10ms);
  }
  EXPECT_EQ(b.state(), redis::Breaker::State::closed);
}

// Successes just before an outage do not outvote the failures that follow: half the last six calls.
TEST(Breaker, AnOutageRightAfterManySuccessesOpensItOnTheThirdFailure) {
  redis::Breaker b(3, 1s, 1s);
  const auto t = redis::Breaker::Clock::now();
  for (int i = 0; i < 100; ++i) b.success(t);
  EXPECT_FALSE(b.failure(t + 1ms));
  EXPECT_FALSE(b.failure(t + 2ms));
  EXPECT_TRUE(b.failure(t + 3ms));
}

TEST(Breaker, FailuresOlderThanTheWindowDoNotCount) {
  redis::Breaker b(3, 1s, 1s);
  const auto t = redis::Breaker::Clock::now();
  EXPECT_FALSE(b.failure(t));
  EXPECT_FALSE(b.failure(t + 10ms));
  EXPECT_FALSE(b.failure(t + 1100ms));  // the first two have aged out
  EXPECT_FALSE(b.failure(t + 1150ms));
  EXPECT_EQ(b.state(), redis::Breaker::State::closed);
  EXPECT_TRUE(b.failure(t + 1200ms));   // three within the last second
}

TEST(Breaker, MostlyFailingOpensEvenWithSuccessesInBetween) {
  redis::Breaker b(3, 1s, 1s);
  const auto t = redis::Breaker::Clock::now();
  EXPECT_FALSE(b.failure(t));
  b.success(t);
  EXPECT_FALSE(b.failure(t));
  b.success(t);
  EXPECT_TRUE(b.failure(t));  // 3 of the last 5
}
