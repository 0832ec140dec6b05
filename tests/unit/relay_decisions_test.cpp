// The relay's decisions without any I/O: each upstream status class, failures before and inside an
// answer, when a retry is allowed, how long it waits, and the outcome labels every metric and usage row
// use.
#include <gtest/gtest.h>

#include <set>

#include <nlohmann/json.hpp>

#include "lagoon/accounting/outcome.hpp"
#include "lagoon/accounting/tokens.hpp"
#include "lagoon/relay/decisions.hpp"
#include "lagoon/relay/venice_headers.hpp"

using namespace lagoon;
using namespace std::chrono_literals;
using accounting::Outcome;
using Kind = upstream::Failure::Kind;

namespace {
std::string code_of(const http::Reply& r) {
  return nlohmann::json::parse(r.body)["error"]["code"].get<std::string>();
}
}  // namespace

TEST(RelayDecisions, EachUpstreamStatusClassMapsToItsReply) {
  struct Case {
    unsigned upstream;
    unsigned client;
    const char* code;
    relay::Alert alert;
  };
  for (const Case c : {Case{401, 502, "upstream_auth_error", relay::Alert::credential_refused},
                       Case{403, 502, "upstream_auth_error", relay::Alert::credential_refused},
                       Case{402, 503, "service_unavailable", relay::Alert::payment_required},
                       Case{429, 429, "rate_limit_exceeded", relay::Alert::none},
                       Case{500, 502, "upstream_error", relay::Alert::none},
                       Case{503, 503, "service_unavailable", relay::Alert::none},
                       Case{504, 502, "upstream_error", relay::Alert::none},
                       Case{404, 404, "bad_request", relay::Alert::none},
                       Case{422, 422, "bad_request", relay::Alert::none}}) {
    SCOPED_TRACE(c.upstream);
    const auto v = relay::upstream_status(c.upstream, "not json", std::nullopt);
    EXPECT_EQ(v.outcome, Outcome::upstream_error);
    EXPECT_EQ(v.reply.status, c.client);
    EXPECT_EQ(code_of(v.reply), c.code);
    EXPECT_EQ(v.alert, c.alert);
    // The upstream's words never reach the client for the gateway's own troubles.
    EXPECT_EQ(v.reply.body.find("not json"), std::string::npos);
  }
}

TEST(RelayDecisions, AnOpenAiShapedClientErrorPassesOnByteForByte) {
  const std::string body = R"({"error":{"message":"bad temperature","type":"invalid_request_error","param":"temperature","code":null}})";
  const auto v = relay::upstream_status(400, body, std::nullopt);
  EXPECT_EQ(v.reply.status, 400u);
  EXPECT_EQ(v.reply.body, body);
}

TEST(RelayDecisions, AnUpstream429PassesASanitizedRetryAfter) {
  EXPECT_EQ(relay::upstream_status(429, "", std::string("7")).reply.header("Retry-After"), "7");
  EXPECT_EQ(relay::upstream_status(429, "", std::string("0.2")).reply.header("Retry-After"), "1");
  EXPECT_EQ(relay::upstream_status(429, "", std::string("99999")).reply.header("Retry-After"), "3600");
  for (const char* junk : {"1e400", "nan", "-3", "Wed, 21 Oct 2015 07:28:00 GMT"})
    EXPECT_EQ(relay::upstream_status(429, "", std::string(junk)).reply.header("Retry-After"), "1") << junk;
  EXPECT_EQ(relay::upstream_status(429, "", std::nullopt).reply.header("Retry-After"), "1");
  EXPECT_EQ(relay::upstream_status(503, "", std::string("30")).reply.header("Retry-After"), "30");
  EXPECT_EQ(relay::upstream_status(503, "", std::nullopt).reply.header("Retry-After"), "1");
}

TEST(RelayDecisions, FailuresBeforeTheHeadAndInsideTheBody) {
  EXPECT_EQ(relay::failed_before_head(Kind::first_byte).outcome, Outcome::upstream_timeout);
  EXPECT_EQ(relay::failed_before_head(Kind::first_byte).reply.status, 504u);
  for (const Kind k : {Kind::connect, Kind::broken}) {
    EXPECT_EQ(relay::failed_before_head(k).outcome, Outcome::upstream_unavailable);
    EXPECT_EQ(relay::failed_before_head(k).reply.status, 502u);
  }
  EXPECT_EQ(relay::failed_in_body(Kind::gap, false).reply.status, 504u);
  EXPECT_EQ(relay::failed_in_body(Kind::gap, false).outcome, Outcome::upstream_timeout);
  EXPECT_EQ(relay::failed_in_body(Kind::broken, false).outcome, Outcome::upstream_unavailable);
  const auto cut = relay::failed_in_body(Kind::broken, true);
  EXPECT_EQ(cut.outcome, Outcome::shutdown);
  EXPECT_EQ(cut.reply.status, 503u);
  EXPECT_TRUE(cut.reply.close);
  EXPECT_NE(relay::stream_failure_message(Kind::gap, false), relay::stream_failure_message(Kind::broken, false));
  EXPECT_NE(relay::stream_failure_message(Kind::broken, true).find("shutting down"), std::string_view::npos);
}

TEST(RelayDecisions, ARetryOnlyAfterAConnectFailureOrARetryableStatusAndOnlyOnce) {
  EXPECT_TRUE(relay::worth_retrying(1, std::nullopt, Kind::connect));
  for (const Kind k : {Kind::first_byte, Kind::gap, Kind::broken}) EXPECT_FALSE(relay::worth_retrying(1, std::nullopt, k));
  for (const unsigned s : {429u, 502u, 503u, 504u}) EXPECT_TRUE(relay::worth_retrying(1, s, std::nullopt)) << s;
  for (const unsigned s : {200u, 400u, 401u, 402u, 404u, 500u}) EXPECT_FALSE(relay::worth_retrying(1, s, std::nullopt)) << s;
  EXPECT_FALSE(relay::worth_retrying(2, 503u, std::nullopt));
  EXPECT_FALSE(relay::worth_retrying(2, std::nullopt, Kind::connect));
}

TEST(RelayDecisions, TheRetryWaitsForAUsableRetryAfterUpToTwoSeconds) {
  EXPECT_EQ(relay::retry_delay(std::nullopt), 200ms);
  EXPECT_EQ(relay::retry_delay(std::string("0.05")), 50ms);
  EXPECT_EQ(relay::retry_delay(std::string("1")), 1000ms);
  EXPECT_EQ(relay::retry_delay(std::string("120")), 2000ms);
  EXPECT_EQ(relay::retry_delay(std::string("soon")), 200ms);
  EXPECT_EQ(relay::retry_delay(std::string("1e400"), 0ms), 0ms);
}

TEST(RelayDecisions, LoggedErrorBodiesAreBoundedAndNeverQuoteTheCredential) {
  const std::string body = "key sk-upstream-secret was refused " + std::string(2000, 'x');
  const auto e = relay::log_excerpt(body, "sk-upstream-secret");
  EXPECT_EQ(e.find("sk-upstream-secret"), std::string::npos);
  EXPECT_LT(e.size(), 600u);
}

TEST(Outcome, EveryOutcomeHasItsOwnLabelAndStatusesFoldIntoFew) {
  std::set<std::string_view> labels;
  for (int i = 0; i <= static_cast<int>(Outcome::server_error); ++i) labels.insert(accounting::label(static_cast<Outcome>(i)));
  EXPECT_EQ(labels.size(), static_cast<std::size_t>(Outcome::server_error) + 1);
  EXPECT_EQ(accounting::outcome_of_status(200), Outcome::ok);
  EXPECT_EQ(accounting::outcome_of_status(401), Outcome::unauthorized);
  EXPECT_EQ(accounting::outcome_of_status(429), Outcome::rate_limited);
  EXPECT_EQ(accounting::outcome_of_status(503), Outcome::unavailable);
  EXPECT_EQ(accounting::outcome_of_status(404), Outcome::client_error);
  EXPECT_EQ(accounting::outcome_of_status(502), Outcome::server_error);
}

TEST(Tokens, AClientLeavingEarlyPaysAtLeastWhatWasCertainlySpent) {
  usage::Record r;
  accounting::set_tokens(r, 100, 40, std::nullopt);  // the upstream's running totals so far
  accounting::estimate_at_least(r, 40, 400);         // prompt 10 by estimate, completion 100
  EXPECT_EQ(r.prompt_tokens, 100);
  EXPECT_EQ(r.completion_tokens, 100);
  EXPECT_EQ(r.total_tokens, 200);
  EXPECT_TRUE(r.tokens_estimated);
  accounting::set_tokens(r, -1, 1LL << 40, std::nullopt);
  EXPECT_EQ(r.prompt_tokens, std::nullopt);
  EXPECT_EQ(r.completion_tokens, INT32_MAX);
}

TEST(VeniceHeaders, OnlyTheEncryptionKeysGoUpAndOnlyWhatDescribesTheAnswerComesBack) {
  for (const char* n : {"X-Venice-TEE-Client-Pub-Key", "x-venice-tee-model-pub-key", "X-VENICE-TEE-SIGNING-ALGO"})
    EXPECT_TRUE(relay::forwarded_request_header(n)) << n;
  for (const char* n : {"Authorization", "Cookie", "X-Forwarded-For", "X-Venice-TEE", "x-venice-tee-client-pub-key2",
                        "X-Request-Id", "Host"})
    EXPECT_FALSE(relay::forwarded_request_header(n)) << n;
  for (const char* n : {"x-venice-model-id", "X-Venice-Model-Name", "x-venice-model-deprecation-warning",
                        "x-venice-model-deprecation-date", "x-venice-is-blurred", "x-venice-is-content-violation",
                        "x-venice-version", "Content-Disposition"})
    EXPECT_TRUE(relay::relayed_response_header(n)) << n;
  for (const char* n : {"x-venice-balance-usd", "x-venice-balance-diem", "X-Balance-Remaining",
                        "x-ratelimit-remaining-requests", "x-ratelimit-limit-tokens", "Set-Cookie", "Content-Length",
                        "Connection", "Transfer-Encoding", "Content-Type"})
    EXPECT_FALSE(relay::relayed_response_header(n)) << n;
}

TEST(RelayDecisions, VenicesOwnErrorShapeReachesTheClientInOpenAisWithItsMessageAndStatus) {
  const auto v = relay::upstream_status(
      415, R"({"error":"Invalid request parameters","details":{"_errors":[],"voice":{"_errors":["Invalid"]}}})",
      std::nullopt);
  EXPECT_EQ(v.reply.status, 415u);
  const auto j = nlohmann::json::parse(v.reply.body);
  EXPECT_EQ(j["error"]["message"], "Invalid request parameters");
  EXPECT_EQ(j["error"]["param"], "voice");
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  const auto missing = relay::upstream_status(404, R"({"error":"Model not found"})", std::nullopt);
  EXPECT_EQ(missing.reply.status, 404u);
  EXPECT_EQ(nlohmann::json::parse(missing.reply.body)["error"]["message"], "Model not found");
  const auto huge = relay::upstream_status(400, R"({"error":")" + std::string(5000, 'x') + R"("})", std::nullopt);
  EXPECT_LE(nlohmann::json::parse(huge.reply.body)["error"]["message"].get<std::string>().size(),
            relay::kMaxPassedMessage);
}
