// The chat route's money against in-process fakes: the most a request may cost is what the gate holds,
// the real cost is what it settles and what the row and x-lagoon-cost-usd say, and a refusal by a
// budget is answered without the upstream.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "fakes.hpp"
#include "lagoon/relay/chat.hpp"

using namespace lagoon;
using namespace std::chrono_literals;

namespace {

constexpr const char* kAnswer =
    R"({"id":"c1","object":"chat.completion","cost":{"usd":0.0001,"diem":0},"choices":[{"index":0,"message":)"
    R"({"role":"assistant","content":"Hello"}}],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}})";

class ChatMoney : public ::testing::Test, protected fakes::RelayFakes {
 protected:
  ChatMoney() {
    money::PriceTable t;
    t.version = 3;
    money::Price p;
    p.tokens = money::TokenRates{700'000'000'000, 2'800'000'000'000, std::nullopt, std::nullopt};
    t.upstream.emplace("llama-3.3-70b", p);
    prices_.install(std::move(t));
    // A budgeted key: only a budget makes the relay price what a request may cost.
    auth::CacheEntry e = *key_.entry;
    e.record.key_budget = money::Budget{money::kPicoPerUsd, money::Period::total};
    key_.entry = std::make_shared<const auth::CacheEntry>(e);
  }
  routes::Served serve(const std::string& body) {
    routes::Call call;
    call.method = "POST";
    call.target = "/api/v1/chat/completions";
    call.body = body;
    call.key = &key_;
    call.request_id = "req-1";
    return fakes::run_awaitable(ioc_, route_.serve(call, client_));
  }

  boost::asio::io_context ioc_;
  relay::Relay relay_{relay_deps()};
  relay::ChatRoute route_{relay_};
  auth::AuthResult key_ = fakes::authenticated(7, 3, "sk-lgn_abcd");
  fakes::FakeDownstream client_;
};

TEST_F(ChatMoney, TheHoldIsTheMostTheRequestMayCostAndTheSettlementItsCost) {
  gate_.decision.kind = ratelimit::Decision::Kind::allowed;
  gate_.decision.held = ratelimit::Decision::Held{1, {"c"}};
  upstream_.script.push_back(fakes::answer(200, kAnswer));
  const std::string body = R"({"model":"llama-3.3-70b","max_tokens":100,"messages":[{"role":"user","content":"hi"}]})";
  EXPECT_EQ(serve(body).status, 200u);
  // ceil(bytes / 4) prompt tokens at $0.7 and 100 completion tokens at $2.8, per million.
  const std::int64_t prompt = static_cast<std::int64_t>((body.size() + 3) / 4);
  ASSERT_EQ(gate_.holds.size(), 1u);
  EXPECT_EQ(gate_.holds[0], prompt * 700'000 + 100 * 2'800'000);
  // Venice's own cost, paid in USD, is the cost: settled, on the row and in the header.
  ASSERT_EQ(gate_.costs.size(), 1u);
  EXPECT_EQ(gate_.costs[0], 100'000'000);
  EXPECT_EQ(client_.reply->header("x-lagoon-cost-usd"), "0.0001");
  ASSERT_EQ(sink_.pushed.size(), 1u);
  EXPECT_EQ(sink_.pushed[0].cost, 100'000'000);
  EXPECT_EQ(sink_.pushed[0].cost_source, usage::CostSource::upstream);
  EXPECT_EQ(sink_.pushed[0].price_version, 3);
}

TEST_F(ChatMoney, AModelWithoutAPriceHoldsNothingKnownAndIsRecordedUnpriced) {
  upstream_.script.push_back(fakes::answer(200, R"({"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1}})"));
  EXPECT_EQ(serve(R"({"model":"mystery","messages":[{"role":"user","content":"hi"}]})").status, 200u);
  ASSERT_EQ(gate_.holds.size(), 1u);
  EXPECT_FALSE(gate_.holds[0]);
  EXPECT_EQ(client_.reply->header("x-lagoon-cost-usd"), "");
  ASSERT_EQ(sink_.pushed.size(), 1u);
  EXPECT_FALSE(sink_.pushed[0].cost);
  EXPECT_EQ(sink_.pushed[0].cost_source, usage::CostSource::unpriced);
  EXPECT_EQ(registry_.counter("lagoon_unpriced_requests_total", "", {{"endpoint", "chat"}}).value(), 1u);
}

TEST_F(ChatMoney, ABudgetRefusalNeverReachesTheUpstreamAndCostsNothing) {
  gate_.decision.kind = ratelimit::Decision::Kind::over_budget;
  EXPECT_EQ(serve(R"({"model":"llama-3.3-70b","messages":[{"role":"user","content":"hi"}]})").status, 402u);
  EXPECT_TRUE(upstream_.sent.empty());
  EXPECT_EQ(nlohmann::json::parse(client_.reply->body)["error"]["code"], "budget_exceeded");
  ASSERT_EQ(sink_.pushed.size(), 1u);
  EXPECT_EQ(sink_.pushed[0].outcome, "budget_exceeded");
  EXPECT_EQ(sink_.pushed[0].cost, 0);
  EXPECT_EQ(sink_.pushed[0].cost_source, usage::CostSource::none);
}

}  // namespace
