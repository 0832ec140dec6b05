// Pure parts of rate limiting (policy.hpp) and of the admin API (request parsing, token check).
#include <gtest/gtest.h>

#include "lagoon/admin/api.hpp"
#include "lagoon/admin/operations.hpp"
#include "lagoon/ratelimit/policy.hpp"

namespace rl = lagoon::ratelimit;
namespace admin = lagoon::admin;
using lagoon::redis::Reply;

namespace {
Reply integers(std::initializer_list<long long> values) {
  Reply r;
  r.type = Reply::Type::array;
  for (auto v : values) {
    Reply e;
    e.type = Reply::Type::integer;
    e.integer = v;
    r.elements.push_back(e);
  }
  return r;
}
}  // namespace

TEST(RateLimitPolicy, ResetTimesAreWrittenAsOpenAIWritesThem) {
  const std::pair<long long, const char*> cases[] = {
      {0, "0s"},           {1, "1ms"},        {999, "1ms"},         {20'000, "20ms"},   {999'000, "999ms"},
      {999'001, "1s"},     {1'000'000, "1s"}, {8'640'000, "8.64s"}, {12'000'000, "12s"}, {59'999'000, "59.999s"},
      {60'000'000, "1m0s"}, {86'400'000, "1m26.4s"}, {360'000'000, "6m0s"}, {3'600'000'000, "1h0m0s"},
  };
  for (const auto& [us, text] : cases) EXPECT_EQ(rl::format_reset(us), text) << us;
  EXPECT_EQ(rl::retry_after_seconds(1), "1");
  EXPECT_EQ(rl::retry_after_seconds(1'000'000), "1");
  EXPECT_EQ(rl::retry_after_seconds(1'000'001), "2");
  EXPECT_EQ(rl::retry_after_seconds(0), "1");
}

TEST(RateLimitPolicy, KeyLimitsOverrideTheDefaultsAndZeroIsUnlimited) {
  lagoon::config::Config cfg;
  cfg.rate_limit_rpm = 100;
  cfg.rate_limit_tpm = 5000;
  lagoon::auth::KeyRecord k;
  EXPECT_EQ(rl::limits_for(k, cfg), (rl::Limits{100, 5000}));
  k.rpm_limit = 0;
  k.tpm_limit = 70;
  EXPECT_EQ(rl::limits_for(k, cfg), (rl::Limits{0, 70}));
  EXPECT_TRUE(rl::limits_for(k, cfg).any());
  k.tpm_limit = 0;
  EXPECT_FALSE(rl::limits_for(k, cfg).any());
}

TEST(RateLimitPolicy, TokenEstimatesAndWhatAdmissionCharges) {
  EXPECT_EQ(rl::estimate_tokens(0, std::nullopt, 1024), 1024);
  EXPECT_EQ(rl::estimate_tokens(5, 10, 1024), 2 + 10);
  EXPECT_EQ(rl::estimate_tokens(400, 0, 1024), 100);
  EXPECT_EQ(rl::estimate_tokens(8, INT64_MAX, 1024), INT64_MAX);  // no overflow
  EXPECT_EQ(rl::admission_cost(500, {0, 1000}), 500);
  EXPECT_EQ(rl::admission_cost(5000, {0, 1000}), 1000);  // never more than a whole minute's budget
  EXPECT_EQ(rl::admission_cost(0, {0, 1000}), 1);
  EXPECT_EQ(rl::admission_cost(500, {60, 0}), 0);  // tokens not limited
}

TEST(RateLimitPolicy, TheScriptsAnswerBecomesADecisionAndHeaders) {
  auto allowed = rl::parse_admit_reply(integers({1, 59, 1'000'000, 988, 720'000, 0}), {60, 1000}, 12);
  ASSERT_TRUE(allowed);
  EXPECT_EQ(allowed->kind, rl::Decision::Kind::allowed);
  EXPECT_EQ(allowed->tokens_charged, 12);
  const auto h = rl::headers(*allowed);
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"x-ratelimit-limit-requests", "60"}, {"x-ratelimit-remaining-requests", "59"},
      {"x-ratelimit-reset-requests", "1s"}, {"x-ratelimit-limit-tokens", "1000"},
      {"x-ratelimit-remaining-tokens", "988"}, {"x-ratelimit-reset-tokens", "720ms"}};
  EXPECT_EQ(h, expected);

  auto by_requests = rl::parse_admit_reply(integers({0, 0, 60'000'000, 500, 0, 1'000'000}), {60, 1000}, 12);
  ASSERT_TRUE(by_requests);
  EXPECT_EQ(by_requests->kind, rl::Decision::Kind::limited_requests);
  EXPECT_TRUE(by_requests->refused());
  EXPECT_EQ(by_requests->tokens_charged, 0);
  EXPECT_EQ(by_requests->retry_after_us, 1'000'000);
  EXPECT_NE(rl::refusal_message(*by_requests).find("requests per min (RPM): Limit 60"), std::string::npos);

  auto by_tokens = rl::parse_admit_reply(integers({0, -1, 0, 3, 59'000'000, 540'000}), {0, 100}, 62);
  ASSERT_TRUE(by_tokens);
  EXPECT_EQ(by_tokens->kind, rl::Decision::Kind::limited_tokens);
  EXPECT_FALSE(by_tokens->requests);
  EXPECT_EQ(rl::headers(*by_tokens).size(), 3u);
  EXPECT_NE(rl::refusal_message(*by_tokens).find("Requested 62"), std::string::npos);

  EXPECT_FALSE(rl::parse_admit_reply(integers({1, 2, 3}), {60, 0}, 0));
  Reply error;
  error.type = Reply::Type::error;
  EXPECT_FALSE(rl::parse_admit_reply(error, {60, 0}, 0));
  EXPECT_TRUE(rl::headers(rl::Decision{}).empty());
}

TEST(RateLimitPolicy, BothCountersOfAKeyShareOneClusterSlot) {
  const auto [r, t] = rl::redis_keys("lagoon:", 42);
  EXPECT_EQ(r, "lagoon:rl:{42}:rpm");
  EXPECT_EQ(t, "lagoon:rl:{42}:tpm");
  EXPECT_EQ(rl::script_sha1().size(), 40u);
  EXPECT_NE(rl::script().find("redis.call('TIME')"), std::string::npos);
}

TEST(AdminApi, CallsAreParsedFromMethodPathAndBody) {
  auto c = std::get<admin::Call>(admin::parse_call("POST", "/admin/v1/keys", R"({"user":7,"rpm":0,"tpm":null})"));
  EXPECT_EQ(c.op, admin::Call::Op::create_key);
  EXPECT_EQ(c.user_ref, "7");
  EXPECT_EQ(c.key_options.rpm_limit, 0);
  EXPECT_EQ(c.key_options.tpm_limit, std::nullopt);
  EXPECT_EQ(c.success_status, 201u);

  c = std::get<admin::Call>(admin::parse_call("PATCH", "/admin/v1/keys/12", R"({"rpm_limit":null})"));
  EXPECT_EQ(c.op, admin::Call::Op::update_key);
  EXPECT_EQ(c.key_id, 12);
  ASSERT_TRUE(c.key_changes.rpm_limit.has_value());
  EXPECT_FALSE(c.key_changes.rpm_limit->has_value());  // back to the configured default
  EXPECT_FALSE(c.key_changes.tpm_limit.has_value());    // left alone

  c = std::get<admin::Call>(admin::parse_call("GET", "/admin/v1/users/bob%20smith/usage?to=2026-11-27T00:00:00Z", ""));
  EXPECT_EQ(c.op, admin::Call::Op::usage);
  EXPECT_EQ(c.usage.user_ref, "bob smith");
  EXPECT_EQ(c.usage.to, "2026-11-27T00:00:00Z");
  EXPECT_FALSE(c.usage.from);

  auto e = std::get<admin::ApiError>(admin::parse_call("GET", "/admin/v1/users/a%2", ""));
  EXPECT_EQ(e.kind, lagoon::http::ErrorKind::not_found);
  e = std::get<admin::ApiError>(admin::parse_call("DELETE", "/admin/v1/keys", ""));
  EXPECT_EQ(e.kind, lagoon::http::ErrorKind::method_not_allowed);
  EXPECT_EQ(e.allow, "GET, POST");
  e = std::get<admin::ApiError>(admin::parse_call("POST", "/admin/v1/keys", R"({"user":"a","tpm":9007199254740993})"));
  EXPECT_EQ(e.param, "tpm");
}

TEST(AdminApi, TheTokenIsABearerComparedWhole) {
  const std::string token = "0123456789abcdef-token";
  EXPECT_TRUE(admin::admin_token_matches(token, "Bearer " + token));
  EXPECT_TRUE(admin::admin_token_matches(token, "bearer " + token));
  EXPECT_FALSE(admin::admin_token_matches(token, "Bearer " + token.substr(0, token.size() - 1)));
  EXPECT_FALSE(admin::admin_token_matches(token, "Bearer " + token + "0"));
  EXPECT_FALSE(admin::admin_token_matches(token, token));
  EXPECT_FALSE(admin::admin_token_matches(token, "Basic " + token));
  EXPECT_FALSE(admin::admin_token_matches(token, ""));
}

TEST(AdminApi, TimestampsAreRfc3339) {
  for (auto ok : {"2026-11-27", "2026-11-27T10:00:00Z", "2026-11-27T10:00:00.123456+01:00", "2026-11-27 10:00",
                  "2026-11-27T10:00:00-0530"})
    EXPECT_TRUE(admin::valid_timestamp(ok)) << ok;
  for (auto bad : {"", "yesterday", "now", "2026-11", "27/11/2026", "2026-11-27T10", "2026-11-27T10:00:00Zjunk",
                   "2026-11-27'; DROP TABLE users; --"})
    EXPECT_FALSE(admin::valid_timestamp(bad)) << bad;
}
