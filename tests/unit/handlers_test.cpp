// The routes outside the relay's chat flow, against fakes: the one dispatch (404, 405, a route without
// a handler), the models list cache, and the calling key's record — each authenticated request with
// exactly one usage record.
#include <gtest/gtest.h>

#include "fakes.hpp"
#include "lagoon/relay/models.hpp"
#include "lagoon/routes/handlers.hpp"
#include "lagoon/routes/router.hpp"

using namespace lagoon;

namespace {

constexpr const char* kList = R"({"object":"list","data":[{"id":"llama-3.3-70b","object":"model"}]})";

auth::AuthResult a_key() {
  auth::CacheEntry e;
  e.record.key_id = 5;
  e.record.user_id = 9;
  e.record.prefix = "sk-lgn_wxyz";
  e.record.key_active = e.record.user_active = true;
  auth::AuthResult a;
  a.outcome = auth::AuthResult::Outcome::ok;
  a.entry = std::make_shared<const auth::CacheEntry>(e);
  return a;
}

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

TEST(ModelsRoute, TheListIsFetchedOnceAndCachedAndAFailureBeforeAnyListIsAnError) {
  config::Config cfg;
  fakes::FakeSender upstream;
  fakes::FakeSink sink;
  metrics::Registry registry;
  relay::ModelsRoute route(cfg, upstream, sink, registry);
  Authenticated request;

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
}

TEST(KeyInfo, TheKeysOwnRecordIsAnsweredAndMeteredOnce) {
  fakes::FakeSink sink;
  routes::KeyInfo route(sink);
  Authenticated request;
  fakes::FakeDownstream client;
  const auto served = request.run(route, client);
  EXPECT_EQ(served.status, 200u);
  EXPECT_NE(client.reply->body.find("\"prefix\":\"sk-lgn_wxyz\""), std::string::npos);
  ASSERT_EQ(sink.pushed.size(), 1u);
  EXPECT_EQ(sink.pushed[0].outcome, "ok");
  EXPECT_EQ(sink.pushed[0].api_key_id, 5);
}

}  // namespace
