// Key policy without servers: the globs and the readings of each field (policy.hpp), the policy's trip
// through the Redis cache, the catalog a limited key sees, expiry at its exact microsecond in the
// authenticator (an injected wall clock), and the relay's refusals — each leaving one usage row — with
// a fake slot source standing for Redis.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "endpoint_support.hpp"
#include "fakes.hpp"
#include "lagoon/auth/authenticator.hpp"
#include "lagoon/auth/policy.hpp"
#include "lagoon/relay/catalog.hpp"
#include "lagoon/relay/chat.hpp"
#include "lagoon/relay/endpoint.hpp"

using namespace lagoon;
using namespace std::chrono_literals;

namespace {

TEST(KeyPolicyGlobs, StarMatchesAnyRunAndCaseIsIgnored) {
  EXPECT_TRUE(auth::glob_match("llama-*", "llama-3.3-70b"));
  EXPECT_TRUE(auth::glob_match("llama-*", "llama-"));
  EXPECT_TRUE(auth::glob_match("*", "anything"));
  EXPECT_TRUE(auth::glob_match("*-70b", "llama-3.3-70b"));
  EXPECT_TRUE(auth::glob_match("l*3*b", "llama-3.3-70b"));
  EXPECT_TRUE(auth::glob_match("Venice-Uncensored", "venice-uncensored"));
  EXPECT_FALSE(auth::glob_match("llama-*", "qwen3-4b"));
  EXPECT_FALSE(auth::glob_match("llama", "llama-3.3-70b"));  // no implied star
  EXPECT_FALSE(auth::glob_match("*-70b", "llama-3.3-70b-x"));
  // Many stars over a long non-match: answered (one backtrack point), not exponential.
  EXPECT_FALSE(auth::glob_match("*a*a*a*a*a*a*a*a*a*a*b", std::string(5000, 'a')));
}

TEST(KeyPolicyGlobs, TheBaseModelIsMatchedWithoutVeniceSuffix) {
  auth::KeyPolicy p;
  EXPECT_TRUE(p.allows_model("anything"));  // no list: every model
  p.models = {"llama-*", "venice-uncensored"};
  EXPECT_TRUE(p.allows_model("llama-3.3-70b:enable_web_search=on"));
  EXPECT_TRUE(p.allows_model("venice-uncensored"));
  EXPECT_FALSE(p.allows_model("qwen3-4b"));
  EXPECT_FALSE(p.allows_model(":llama-3"));  // an empty base is no model
  EXPECT_FALSE(p.allows_model("qwen3-4b:llama-x"));  // the suffix never counts
}

TEST(KeyPolicyFields, ModelListsAreCheckedAndDeduplicated) {
  auto globs = auth::split_list(" llama-* , venice-uncensored,,llama-* ");
  EXPECT_FALSE(auth::check_models(globs));
  EXPECT_EQ(globs, (std::vector<std::string>{"llama-*", "venice-uncensored"}));
  std::vector<std::string> suffix{"llama-3:x=y"};
  EXPECT_TRUE(auth::check_models(suffix));
  std::vector<std::string> blank{std::string(201, 'a')};
  EXPECT_TRUE(auth::check_models(blank));
  std::vector<std::string> many;
  for (int i = 0; i < 257; ++i) many.push_back("m" + std::to_string(i));
  EXPECT_TRUE(auth::check_models(many));
}

TEST(KeyPolicyFields, EndpointNamesAreRouteGroups) {
  std::uint8_t bits = 0;
  EXPECT_FALSE(auth::parse_groups({"chat", "embeddings"}, bits));
  EXPECT_EQ(bits, static_cast<std::uint8_t>(auth::Group::chat) | static_cast<std::uint8_t>(auth::Group::embeddings));
  EXPECT_EQ(auth::group_names(bits), (std::vector<std::string>{"chat", "embeddings"}));
  EXPECT_EQ(auth::group_names(auth::kAllGroups).size(), 5u);
  const auto bad = auth::parse_groups({"chat", "video"}, bits);
  ASSERT_TRUE(bad);
  EXPECT_NE(bad->message.find("video"), std::string::npos);
}

TEST(KeyPolicyFields, TagsAreASmallObject) {
  EXPECT_FALSE(auth::check_tags(nlohmann::json{{"team", "search"}, {"env", "prod"}}));
  EXPECT_TRUE(auth::check_tags(nlohmann::json::array()));
  EXPECT_TRUE(auth::check_tags(nlohmann::json("team")));
  EXPECT_TRUE(auth::check_tags(nlohmann::json{{"big", std::string(5000, 'x')}}));
}

TEST(KeyPolicyFields, TimesAndDurations) {
  EXPECT_EQ(auth::parse_rfc3339_us("2027-01-01T00:00:00Z"), 1798761600LL * 1'000'000);
  EXPECT_EQ(auth::parse_rfc3339_us("2027-01-01T01:00:00+01:00"), 1798761600LL * 1'000'000);
  EXPECT_EQ(auth::parse_rfc3339_us("2027-01-01T00:00:00.25Z"), 1798761600LL * 1'000'000 + 250'000);
  EXPECT_FALSE(auth::parse_rfc3339_us("2027-02-30T00:00:00Z"));
  EXPECT_FALSE(auth::parse_rfc3339_us("2027-01-01T24:00:00Z"));
  EXPECT_FALSE(auth::parse_rfc3339_us("2027-01-01"));
  EXPECT_FALSE(auth::parse_rfc3339_us("2027-01-01T00:00:00"));  // a time without its zone is ambiguous
  EXPECT_EQ(auth::format_rfc3339_us(1798761600LL * 1'000'000), "2027-01-01T00:00:00Z");
  EXPECT_EQ(auth::format_rfc3339_us(1798761600LL * 1'000'000 + 250'000), "2027-01-01T00:00:00.25Z");
  EXPECT_EQ(auth::parse_duration_s("24h"), 86400);
  EXPECT_EQ(auth::parse_duration_s("1h30m"), 5400);
  EXPECT_EQ(auth::parse_duration_s("0"), 0);
  EXPECT_EQ(auth::parse_duration_s("7d"), 7 * 86400);
  EXPECT_FALSE(auth::parse_duration_s("400d"));
  EXPECT_FALSE(auth::parse_duration_s("5"));
  EXPECT_FALSE(auth::parse_duration_s("1h0"));  // not "1 h" and not 0: refused
  EXPECT_FALSE(auth::parse_duration_s("00"));
  EXPECT_FALSE(auth::parse_duration_s("h"));
  EXPECT_FALSE(auth::parse_duration_s("-1h"));
}

TEST(KeyPolicyCache, ThePolicyTravelsInTheCachedRecord) {
  auth::CacheEntry e;
  e.record.key_id = 9;
  e.record.lineage_id = 4;
  e.record.key_active = e.record.user_active = true;
  e.record.policy.models = {"llama-*"};
  e.record.policy.groups = static_cast<std::uint8_t>(auth::Group::chat);
  e.record.policy.max_concurrent = 20;
  e.record.policy.expires_at_us = 1798761600LL * 1'000'000;
  e.record.policy.revokes_at_us = 1798761700LL * 1'000'000;
  const auto back = auth::from_cache_json(auth::to_cache_json(e, e.record.digest), e.record.digest);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->record, e.record);
  EXPECT_EQ(back->record.limit_id(), 4);
}

TEST(KeyPolicyCatalog, ALimitedKeySeesOnlyItsModels) {
  auth::KeyPolicy p;
  p.models = {"llama-*"};
  const std::string list =
      R"({"object":"list","data":[{"id":"llama-3.3-70b","type":"text"},{"id":"qwen3-4b","type":"text"}]})";
  const auto seen = nlohmann::json::parse(relay::visible_catalog("/models", list, p));
  ASSERT_EQ(seen["data"].size(), 1u);
  EXPECT_EQ(seen["data"][0]["id"], "llama-3.3-70b");
  EXPECT_EQ(seen["object"], "list");
  const std::string traits = R"({"object":"list","data":{"default":"llama-3.3-70b","fastest":"qwen3-4b"}})";
  const auto t = nlohmann::json::parse(relay::visible_catalog("/models/traits", traits, p));
  EXPECT_EQ(t["data"], (nlohmann::json{{"default", "llama-3.3-70b"}}));
  // A compatibility name is what the client sends: listed when the key may send it.
  auth::KeyPolicy compat;
  compat.models = {"gpt-4o"};
  const std::string mapping = R"({"data":{"gpt-4o":"llama-3.3-70b","gpt-4o-mini":"qwen3-4b"}})";
  EXPECT_EQ(nlohmann::json::parse(relay::visible_catalog("/models/compatibility_mapping", mapping, compat))["data"],
            (nlohmann::json{{"gpt-4o", "llama-3.3-70b"}}));
  // Image styles name no models; a key with every model gets the bytes as they came.
  EXPECT_EQ(relay::visible_catalog("/image/styles", R"({"data":["a"]})", p), R"({"data":["a"]})");
  EXPECT_EQ(relay::visible_catalog("/models", list, auth::KeyPolicy{}), list);
}

// The authenticator decides expiry on every request from its wall clock, cached record or not.
class KeyExpiryTest : public ::testing::Test {
 protected:
  static constexpr std::int64_t kExpires = 1798761600LL * 1'000'000;
  KeyExpiryTest() {
    cfg_.key_pepper = "unit-test-pepper-unit-test-pepper";
    key_ = keys::generate(cfg_.key_pepper);
    auth::CacheEntry e;
    e.record.digest = keys::digest(cfg_.key_pepper, key_);
    e.record.key_id = 11;
    e.record.key_active = e.record.user_active = true;
    e.record.policy.expires_at_us = kExpires;
    source_.keys[e.record.digest] = e;
    auth_.emplace(cfg_, source_, registry_, [] { return true; },
                  [this] { return std::chrono::system_clock::time_point(std::chrono::microseconds(now_us_)); });
  }
  auth::AuthResult authenticate() { return fakes::run_awaitable(ioc_, auth_->authenticate("Bearer " + key_)); }

  config::Config cfg_;
  metrics::Registry registry_;
  fakes::FakeKeySource source_;
  std::optional<auth::Authenticator> auth_;
  boost::asio::io_context ioc_;
  std::string key_;
  std::int64_t now_us_ = kExpires - 1;
};

TEST_F(KeyExpiryTest, AKeyWorksUntilItsExpiryAndNotAMicrosecondLonger) {
  EXPECT_TRUE(authenticate().ok());
  now_us_ = kExpires;
  const auto expired = authenticate();  // from L1: the clock, not the cache, decides
  EXPECT_EQ(expired.outcome, auth::AuthResult::Outcome::denied);
  EXPECT_EQ(expired.reason, "expired");
  EXPECT_EQ(source_.fetched, 1);
  now_us_ = kExpires - 1;  // a clock set back (the test's) finds it valid again: nothing was stored
  EXPECT_TRUE(authenticate().ok());
}

TEST_F(KeyExpiryTest, ARotatedKeyStopsAtTheEndOfItsGraceAsRevoked) {
  auto& e = source_.keys.begin()->second;
  e.record.policy.expires_at_us.reset();
  e.record.policy.revokes_at_us = kExpires;
  EXPECT_TRUE(authenticate().ok());
  now_us_ = kExpires;
  EXPECT_EQ(authenticate().reason, "revoked");
}

// A SlotSource that counts what it lends, standing for Redis.
class FakeSlots final : public ratelimit::SlotSource {
 public:
  std::int64_t open = 0;
  std::int64_t taken = 0;
  std::int64_t max_seen = 0;
  boost::asio::awaitable<ratelimit::Slot> acquire(std::int64_t owner, std::int64_t max) override {
    max_seen = max;
    if (open >= max) co_return ratelimit::Slot{};
    ++open;
    ++taken;
    co_return ratelimit::Slot{this, owner, "m" + std::to_string(open), true};
  }

 protected:
  void release(std::int64_t, const std::string&, bool) noexcept override { --open; }
};

class PolicyRouteTest : public ::testing::Test, protected fakes::RelayFakes {
 protected:
  auth::KeyRecord& record() { return const_cast<auth::KeyRecord&>(key_.key()); }
  routes::Served chat(const std::string& body) {
    relay::ChatRoute route(relay_);
    return fakes::run_awaitable(ioc_, route.serve(call("/api/v1/chat/completions", body), client_));
  }
  routes::Served endpoint(std::string_view path, const std::string& body) {
    relay::EndpointRoute route(relay_, test::spec(path));
    return fakes::run_awaitable(ioc_, route.serve(call(path, body), client_));
  }
  routes::Call call(std::string_view path, const std::string& body) {
    routes::Call c;
    c.method = "POST";
    c.target = path;
    c.body = body_ = body;
    c.content_type = "application/json";
    c.key = &key_;
    c.request_id = "req-1";
    return c;
  }
  std::string code() const { return nlohmann::json::parse(client_.reply->body)["error"]["code"].get<std::string>(); }

  FakeSlots slots_;
  boost::asio::io_context ioc_;
  relay::RelayDeps deps_ = relay_deps();
  relay::Relay relay_{with_slots(deps_, slots_)};
  static relay::RelayDeps& with_slots(relay::RelayDeps& d, FakeSlots& s) {
    d.slots = &s;
    return d;
  }
  auth::AuthResult key_ = fakes::authenticated(7, 3, "sk-lgn_abcd");
  std::string body_;
  fakes::FakeDownstream client_;
};

constexpr const char* kChat = R"({"model":"qwen3-4b","messages":[{"role":"user","content":"hi"}]})";
constexpr const char* kAnswer =
    R"({"id":"c1","object":"chat.completion","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}})";

TEST_F(PolicyRouteTest, ARouteGroupNotListedIs403AndOneUsageRow) {
  record().policy.groups = static_cast<std::uint8_t>(auth::Group::embeddings);
  const auto served = chat(kChat);
  EXPECT_EQ(served.status, 403u);
  EXPECT_EQ(code(), "endpoint_not_allowed");
  EXPECT_TRUE(upstream_.sent.empty());
  ASSERT_EQ(sink_.pushed.size(), 1u);
  EXPECT_EQ(sink_.pushed[0].outcome, "forbidden");
  EXPECT_EQ(sink_.pushed[0].status_code, 403);
}

TEST_F(PolicyRouteTest, AModelNotListedIs403BeforeAnyLimitIsCharged) {
  record().policy.models = {"llama-*"};
  EXPECT_EQ(chat(kChat).status, 403u);
  EXPECT_EQ(code(), "model_not_allowed");
  EXPECT_EQ(nlohmann::json::parse(client_.reply->body)["error"]["param"], "model");
  EXPECT_TRUE(gate_.estimates.empty());
  EXPECT_TRUE(upstream_.sent.empty());
  ASSERT_EQ(sink_.pushed.size(), 1u);
  EXPECT_EQ(sink_.pushed[0].outcome, "forbidden");
}

TEST_F(PolicyRouteTest, AnEndpointWithoutAModelIsJudgedByItsDefaultOrRefusedUnderAList) {
  record().policy.models = {"llama-*"};
  // image/upscale without a model is Venice's upscaler, which the list does not name.
  EXPECT_EQ(endpoint("/image/upscale", R"({"image":"aGk=","scale":2})").status, 403u);
  EXPECT_EQ(code(), "model_not_allowed");
  record().policy.models = {"llama-*", "upscaler"};
  upstream_.script.push_back(fakes::answer(200, R"({"ok":true})"));
  EXPECT_NE(endpoint("/image/upscale", R"({"image":"aGk=","scale":2})").status, 403u);
}

TEST_F(PolicyRouteTest, ImageEditIsJudgedByModelIdOrItsDefaultAndBackgroundRemovalByItsGroupAlone) {
  record().policy.models = {"firered-*"};
  EXPECT_EQ(endpoint("/image/edit", R"({"image":"aGk=","prompt":"p","modelId":"qwen-edit-uncensored"})").status, 403u);
  EXPECT_EQ(code(), "model_not_allowed");
  EXPECT_EQ(endpoint("/image/edit", R"({"image":"aGk=","prompt":"p","model":"firered-image-edit","modelId":"x-edit"})")
                .status,
            400u);
  upstream_.script.push_back(fakes::answer(200, R"({"ok":true})"));
  EXPECT_NE(endpoint("/image/edit", R"({"image":"aGk=","prompt":"p"})").status, 403u);  // firered-image-edit
  upstream_.script.push_back(fakes::answer(200, R"({"ok":true})"));
  EXPECT_NE(endpoint("/image/background-remove", R"({"image":"aGk="})").status, 403u);
  record().policy.groups = static_cast<std::uint8_t>(auth::Group::chat);
  EXPECT_EQ(endpoint("/image/background-remove", R"({"image":"aGk="})").status, 403u);
  EXPECT_EQ(code(), "endpoint_not_allowed");
}

TEST_F(PolicyRouteTest, TheConcurrencyCapRefusesWith429AndASlotIsHeldOnlyWhileTheRequestIsOpen) {
  record().policy.max_concurrent = 1;
  upstream_.script.push_back(fakes::answer(200, kAnswer));
  EXPECT_EQ(chat(kChat).status, 200u);
  EXPECT_EQ(slots_.max_seen, 1);
  EXPECT_EQ(slots_.open, 0);  // given back when the request ended

  slots_.open = 1;  // another request holds the only slot
  const auto served = chat(kChat);
  EXPECT_EQ(served.status, 429u);
  EXPECT_EQ(code(), "concurrency_limit");
  EXPECT_EQ(client_.reply->header("Retry-After"), "1");
  ASSERT_EQ(sink_.pushed.size(), 2u);
  EXPECT_EQ(sink_.pushed[1].outcome, "concurrency_limited");
  EXPECT_EQ(upstream_.sent.size(), 1u);
}

TEST_F(PolicyRouteTest, ASlotTakenForARequestTheRateLimitRefusesIsGivenBack) {
  record().policy.max_concurrent = 3;
  gate_.decision.kind = ratelimit::Decision::Kind::limited_requests;
  gate_.decision.retry_after_us = 1'000'000;
  EXPECT_EQ(chat(kChat).status, 429u);
  EXPECT_EQ(code(), "rate_limit_exceeded");
  EXPECT_EQ(slots_.taken, 1);
  EXPECT_EQ(slots_.max_seen, 3);
  EXPECT_EQ(slots_.open, 0);
}

}  // namespace
