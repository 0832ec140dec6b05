// The routes outside the relay's chat flow, against fakes: the one dispatch (404, 405, a route without
// a handler), the models list cache, and the calling key's record — each authenticated request with
// exactly one usage record.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "fakes.hpp"
#include "lagoon/relay/catalog.hpp"
#include "lagoon/routes/handlers.hpp"
#include "lagoon/routes/router.hpp"

using namespace lagoon;

namespace {

constexpr const char* kList = R"({"object":"list","data":[{"id":"llama-3.3-70b","object":"model"}]})";

auth::AuthResult a_key() { return fakes::authenticated(5, 9, "sk-lgn_wxyz"); }

// An authenticated request to one handler.
struct Authenticated {
  Authenticated() {
    call.key = &key;
    call.request_id = "r";
  }
  routes::Served run(routes::Handler& h, fakes::FakeDownstream& client) {
    return fakes::run_awaitable(ioc, h.serve(call, client));
  }
  auth::AuthResult key = a_key();
  routes::Call call;
  boost::asio::io_context ioc;
};

TEST(Router, UnknownPathsAre404AndWrongMethods405WithAllow) {
  boost::asio::io_context ioc;
  routes::Router router;
  fakes::FakeDownstream client;
  routes::Call call;
  call.method = "DELETE";
  call.target = "/healthz";
  const auto m405 = fakes::run_awaitable(ioc, router.dispatch(http::match_route("DELETE", "/healthz"), call, client));
  EXPECT_EQ(m405.status, 405u);
  EXPECT_EQ(client.reply->header("Allow"), "GET");
  call.target = "/nope?secret=1";
  const auto m404 = fakes::run_awaitable(ioc, router.dispatch(http::match_route("GET", "/nope"), call, client));
  EXPECT_EQ(m404.status, 404u);
  EXPECT_EQ(client.reply->body.find("secret"), std::string::npos);  // the query is never echoed
  const auto unwired = fakes::run_awaitable(ioc, router.dispatch(http::match_route("GET", "/healthz"), call, client));
  EXPECT_EQ(unwired.status, 500u);
}

// The catalog route with a fake upstream and usage sink.
class CatalogRouteTest : public ::testing::Test {
 protected:
  config::Config cfg;
  fakes::FakeSender upstream;
  fakes::FakeSink sink;
  metrics::Registry registry;
  relay::CatalogRoute route{cfg, upstream, sink, registry};
};

TEST_F(CatalogRouteTest, TheListIsFetchedOnceAndCachedAndAFailureBeforeAnyListIsAnError) {
  Authenticated request;
  request.call.target = "/api/v1/models";

  fakes::FakeDownstream first;
  upstream.script.push_back(fakes::send_fails(upstream::Failure::Kind::first_byte));
  EXPECT_EQ(request.run(route, first).status, 504u);  // nothing cached yet
  fakes::FakeDownstream second;
  upstream.script.push_back(fakes::answer(200, kList));
  EXPECT_EQ(request.run(route, second).status, 200u);
  EXPECT_EQ(second.reply->body, kList);
  fakes::FakeDownstream third;
  EXPECT_EQ(request.run(route, third).status, 200u);  // fresh: not asked again
  EXPECT_EQ(upstream.sent.size(), 2u);
  ASSERT_EQ(sink.pushed.size(), 3u);
  EXPECT_EQ(sink.pushed[0].outcome, "upstream_error");
  EXPECT_EQ(sink.pushed[2].outcome, "ok");
  EXPECT_EQ(sink.pushed[2].endpoint, usage::Endpoint::models);
}

TEST_F(CatalogRouteTest, EachPathAndTypeIsCachedApartAndOnlyTheTypeIsPassedOn) {
  Authenticated request;
  auto get = [&](const std::string& target, const std::string& answer) {
    if (!answer.empty()) upstream.script.push_back(fakes::answer(200, answer));
    request.call.target = target;
    fakes::FakeDownstream client;
    request.run(route, client);
    return client.reply ? *client.reply : http::Reply{};
  };
  const std::string images = R"({"object":"list","type":"image","data":[{"id":"flux"}]})";
  const std::string traits = R"({"object":"list","data":{"default":"venice-uncensored"}})";
  EXPECT_EQ(get("/api/v1/models?type=image&utm=x", images).body, images);
  EXPECT_EQ(get("/v1/models?type=image", "").body, images);  // the same entry under either prefix
  EXPECT_EQ(get("/api/v1/models/traits?type=text", traits).body, traits);
  EXPECT_EQ(get("/api/v1/image/styles?type=text", R"({"data":["Anime"]})").body, R"({"data":["Anime"]})");
  ASSERT_EQ(upstream.sent.size(), 3u);
  EXPECT_EQ(upstream.sent[0], "GET /models?type=image ");
  EXPECT_EQ(upstream.sent[1], "GET /models/traits?type=text ");
  EXPECT_EQ(upstream.sent[2], "GET /image/styles ");
  // An unknown type is the client's mistake, and no cache entry of its own.
  const auto bad = get("/api/v1/models?type=nonsense", "");
  EXPECT_EQ(bad.status, 400u);
  EXPECT_EQ(nlohmann::json::parse(bad.body)["error"]["param"], "type");
  EXPECT_EQ(get("/api/v1/models/traits?type=all", "").status, 400u);  // "all" only lists models
  EXPECT_EQ(upstream.sent.size(), 3u);
}

TEST_F(CatalogRouteTest, APublicCatalogServesRequestsWithoutAKeyAndMetersNone) {
  boost::asio::io_context ioc;
  routes::Call call;
  call.target = "/api/v1/models";
  call.request_id = "r";
  upstream.script.push_back(fakes::answer(200, kList));
  fakes::FakeDownstream client;
  EXPECT_EQ(fakes::run_awaitable(ioc, route.serve(call, client)).status, 200u);
  EXPECT_TRUE(sink.pushed.empty());
}

TEST(CatalogRoute, AStaleAnswerIsServedWhileTheUpstreamCannotBeAskedAndReplacedOnceItCan) {
  config::Config cfg;
  fakes::FakeSender upstream;
  fakes::FakeSink sink;
  metrics::Registry registry;
  auto now = std::chrono::steady_clock::now();
  relay::CatalogRoute route(cfg, upstream, sink, registry, [&now] { return now; });
  Authenticated request;
  request.call.target = "/api/v1/image/styles";
  auto get = [&] {
    fakes::FakeDownstream client;
    request.run(route, client);
    return client.reply ? *client.reply : http::Reply{};
  };
  upstream.script.push_back(fakes::answer(200, R"({"data":["Anime"]})"));
  EXPECT_EQ(get().body, R"({"data":["Anime"]})");
  now += std::chrono::minutes(4);
  EXPECT_EQ(get().body, R"({"data":["Anime"]})");  // fresh: not asked
  EXPECT_EQ(upstream.sent.size(), 1u);
  now += std::chrono::minutes(2);  // stale now; the upstream cannot be asked
  upstream.script.push_back(fakes::send_fails(upstream::Failure::Kind::connect));
  const auto stale = get();
  EXPECT_EQ(stale.status, 200u);
  EXPECT_EQ(stale.body, R"({"data":["Anime"]})");
  EXPECT_EQ(registry.counter("lagoon_catalog_requests_total", "", {{"result", "stale"}}).value(), 1u);
  upstream.script.push_back(fakes::answer(200, R"({"data":["Anime","Noir"]})"));
  EXPECT_EQ(get().body, R"({"data":["Anime","Noir"]})");  // asked again at the next request, and kept
  EXPECT_EQ(get().body, R"({"data":["Anime","Noir"]})");
  EXPECT_EQ(upstream.sent.size(), 3u);
  ASSERT_EQ(sink.pushed.size(), 5u);
  for (const auto& r : sink.pushed) EXPECT_EQ(r.outcome, "ok");
}

TEST_F(CatalogRouteTest, TheTypeIsCheckedPerPathAndAMalformedAnswerIsNeverCached) {
  EXPECT_EQ(relay::catalog_query("/api/v1/models?type=code").upstream, "/models?type=code");
  EXPECT_EQ(relay::catalog_query("/v1/models/compatibility_mapping?type=tts").upstream,
            "/models/compatibility_mapping?type=tts");
  EXPECT_FALSE(relay::catalog_query("/v1/models/compatibility_mapping?type=code").problem.empty());
  // A malformed list is not cached: it would be served for five minutes.
  Authenticated request;
  request.call.target = "/api/v1/models";
  upstream.script.push_back(fakes::answer(200, R"({"object":"list"})"));
  fakes::FakeDownstream first;
  EXPECT_EQ(request.run(route, first).status, 502u);
}

TEST(KeyInfo, TheKeysOwnRecordIsAnsweredAndMeteredOnce) {
  fakes::FakeSink sink;
  fakes::FakeGate gate;
  routes::KeyInfo route(sink, gate);
  Authenticated request;
  fakes::FakeDownstream client;
  const auto served = request.run(route, client);
  EXPECT_EQ(served.status, 200u);
  EXPECT_NE(client.reply->body.find("\"prefix\":\"sk-lgn_wxyz\""), std::string::npos);
  ASSERT_EQ(sink.pushed.size(), 1u);
  EXPECT_EQ(sink.pushed[0].outcome, "ok");
  EXPECT_EQ(sink.pushed[0].api_key_id, 5);
  const auto body = nlohmann::json::parse(client.reply->body);
  EXPECT_TRUE(body["data"]["budget"].is_null());
  EXPECT_EQ(body["data"]["budgets"], nlohmann::json::array());
}

TEST(KeyInfo, ShowsTheBudgetWithTheLeastLeftAndBoth) {
  fakes::FakeSink sink;
  fakes::FakeGate gate;
  routes::KeyInfo route(sink, gate);
  Authenticated request;
  auth::CacheEntry e = *request.key.entry;
  const money::Budget monthly{25 * money::kPicoPerUsd, money::Period::monthly};
  const money::Budget total{100 * money::kPicoPerUsd, money::Period::total};
  e.record.key_budget = monthly;
  e.record.user_budget = total;
  request.key.entry = std::make_shared<const auth::CacheEntry>(e);
  const auto now = money::SysTime{std::chrono::sys_days{std::chrono::year{2026} / 12 / 2}};
  gate.budget_states = std::vector<ratelimit::BudgetState>{
      {false, monthly, 5 * money::kPicoPerUsd, money::window(money::Period::monthly, now)},
      {true, total, 99'500'000'000'000, money::window(money::Period::total, now)}};
  fakes::FakeDownstream client;
  EXPECT_EQ(request.run(route, client).status, 200u);
  const auto data = nlohmann::json::parse(client.reply->body)["data"];
  EXPECT_EQ(data["budget"], (nlohmann::json{{"scope", "user"},
                                            {"amount_usd", "100"},
                                            {"period", "total"},
                                            {"spent_usd", "99.5"},
                                            {"remaining_usd", "0.5"},
                                            {"resets_at", nullptr}}));
  ASSERT_EQ(data["budgets"].size(), 2u);
  EXPECT_EQ(data["budgets"][0]["remaining_usd"], "20");
  EXPECT_EQ(data["budgets"][0]["resets_at"], "2027-01-01T00:00:00Z");

  // Redis cannot say what was spent: the budgets are shown, their spend unknown — never "all left".
  gate.budget_states.reset();
  fakes::FakeDownstream again;
  EXPECT_EQ(request.run(route, again).status, 200u);
  const auto unknown = nlohmann::json::parse(again.reply->body)["data"];
  EXPECT_TRUE(unknown["budget"]["spent_usd"].is_null());
  EXPECT_TRUE(unknown["budget"]["remaining_usd"].is_null());
}

}  // namespace
