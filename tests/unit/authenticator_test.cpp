// The authenticator's own layers against a fake KeySource: what is refused before any lookup, what L1
// and the negative cache answer, that an unavailable source is a 503 and never cached, that concurrent
// misses share one lookup, and that an invalidation racing a lookup wins.
#include <gtest/gtest.h>

#include "fakes.hpp"
#include "lagoon/auth/authenticator.hpp"

using namespace lagoon;
using Outcome = auth::AuthResult::Outcome;

namespace {

class AuthenticatorTest : public ::testing::Test {
 protected:
  AuthenticatorTest() {
    cfg_.key_pepper = "unit-test-pepper-unit-test-pepper";
    good_ = keys::generate(cfg_.key_pepper);
    auth::CacheEntry e;
    e.record.digest = keys::digest(cfg_.key_pepper, good_);
    e.record.key_id = 11;
    e.record.user_id = 2;
    e.record.key_active = e.record.user_active = true;
    source_.keys[e.record.digest] = e;
    auth_.emplace(cfg_, source_, registry_, [this] { return live_; });
  }
  auth::AuthResult authenticate(const std::string& header) {
    return fakes::run_awaitable(ioc_, auth_->authenticate(header));
  }

  config::Config cfg_;
  metrics::Registry registry_;
  fakes::FakeKeySource source_;
  bool live_ = true;
  std::optional<auth::Authenticator> auth_;
  boost::asio::io_context ioc_;
  std::string good_;
};

TEST_F(AuthenticatorTest, AKnownKeyIsLookedUpOnceThenServedFromL1) {
  EXPECT_EQ(authenticate("Bearer " + good_).outcome, Outcome::ok);
  const auto again = authenticate("Bearer " + good_);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again.key().key_id, 11);
  EXPECT_EQ(source_.fetched, 1);
}

TEST_F(AuthenticatorTest, MissingMalformedAndForgedKeysCostNoLookup) {
  EXPECT_EQ(authenticate("").reason, "missing");
  EXPECT_EQ(authenticate("Bearer sk-nonsense").reason, "malformed");
  std::string forged = keys::generate("another-pepper-another-pepper-xx");
  EXPECT_EQ(authenticate("Bearer " + forged).reason, "forged");
  EXPECT_EQ(source_.fetched, 0);
}

TEST_F(AuthenticatorTest, AnUnknownKeyIsDeniedAndThenRefusedFromTheNegativeCache) {
  const std::string unknown = keys::generate(cfg_.key_pepper);
  EXPECT_EQ(authenticate("Bearer " + unknown).reason, "unknown");
  EXPECT_EQ(authenticate("Bearer " + unknown).reason, "unknown");
  EXPECT_EQ(source_.fetched, 1);
}

TEST_F(AuthenticatorTest, AnUnavailableSourceIsA503AndNothingIsCached) {
  source_.available = false;
  EXPECT_EQ(authenticate("Bearer " + good_).outcome, Outcome::unavailable);
  source_.available = true;
  EXPECT_EQ(authenticate("Bearer " + good_).outcome, Outcome::ok);
  EXPECT_EQ(source_.fetched, 2);
}

TEST_F(AuthenticatorTest, RevokedKeysAndInactiveUsersAreDenied) {
  auto& e = source_.keys.begin()->second;
  e.record.key_active = false;
  EXPECT_EQ(authenticate("Bearer " + good_).reason, "revoked");
  auth_->invalidate_all();
  e.record.key_active = true;
  e.record.user_active = false;
  EXPECT_EQ(authenticate("Bearer " + good_).reason, "user_inactive");
}

TEST_F(AuthenticatorTest, ConcurrentMissesOnOneKeyShareOneLookup) {
  std::vector<auth::AuthResult> results;
  const std::string header = "Bearer " + good_;  // outlives the coroutines, which only view it
  for (int i = 0; i < 5; ++i)
    boost::asio::co_spawn(ioc_, auth_->authenticate(header),
                          [&results](std::exception_ptr, auth::AuthResult r) { results.push_back(std::move(r)); });
  ioc_.run();
  ASSERT_EQ(results.size(), 5u);
  for (const auto& r : results) EXPECT_TRUE(r.ok());
  EXPECT_EQ(source_.fetched, 1);
}

TEST_F(AuthenticatorTest, AnInvalidationThatOvertakesALookupKeepsItsResultOutOfL1) {
  source_.during = [this] { auth_->invalidate(keys::to_hex(keys::digest(cfg_.key_pepper, good_))); };
  EXPECT_TRUE(authenticate("Bearer " + good_).ok());
  source_.during = nullptr;
  EXPECT_TRUE(authenticate("Bearer " + good_).ok());
  EXPECT_EQ(source_.fetched, 2);  // the first result was not trusted to stay
}

}  // namespace

// A connection's memo: the same key again is recalled (no checksum, no HMAC) with the same format and
// digest; another key replaces it and a near miss is not recalled; keys judged through a memo are judged
// exactly as without one (a forged or malformed key after a good one too).
TEST_F(AuthenticatorTest, AConnectionsKeyMemoGivesTheSameDigestsAndTheSameAnswers) {
  auth::KeyMemo memo;
  EXPECT_EQ(memo.recall(good_), nullptr);
  const auto& first = memo.remember(cfg_.key_pepper, good_, keys::format_of(good_));
  EXPECT_TRUE(keys::digests_equal(first.digest, keys::digest(cfg_.key_pepper, good_)));
  EXPECT_EQ(first.format, keys::Format::tagged);
  EXPECT_EQ(memo.recall(good_), &first);
  std::string almost = good_;
  almost.back() = almost.back() == 'a' ? 'b' : 'a';
  EXPECT_EQ(memo.recall(almost), nullptr);
  EXPECT_EQ(memo.recall(good_.substr(1)), nullptr);
  const std::string other = keys::generate(cfg_.key_pepper);
  const auto& second = memo.remember(cfg_.key_pepper, other, keys::format_of(other));
  EXPECT_TRUE(keys::digests_equal(second.digest, keys::digest(cfg_.key_pepper, other)));
  EXPECT_EQ(memo.recall(good_), nullptr);
  EXPECT_NE(memo.recall(other), nullptr);

  auth::KeyMemo conn;
  auto with_memo = [&](const std::string& header) {
    return fakes::run_awaitable(ioc_, auth_->authenticate(header, &conn));
  };
  EXPECT_EQ(with_memo("Bearer " + good_).outcome, Outcome::ok);
  EXPECT_EQ(with_memo("Bearer " + good_).key().key_id, 11);
  EXPECT_EQ(with_memo("Bearer " + keys::generate("another-pepper-another-pepper-xx")).reason, "forged");
  EXPECT_EQ(with_memo("Bearer " + almost).outcome, Outcome::denied);
  EXPECT_EQ(with_memo("Bearer " + good_).outcome, Outcome::ok);
  EXPECT_EQ(with_memo("Bearer " + almost).reason, "malformed");  // its checksum, checked again
  EXPECT_EQ(with_memo("Bearer " + good_).outcome, Outcome::ok);
  EXPECT_EQ(source_.fetched, 1);
}
