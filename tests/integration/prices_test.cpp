// Prices through the CLI and the admin API, on the real binary, Postgres, Redis and the mock upstream's
// catalog: Venice's table fetched, judged and stored by `lagoon prices refresh`, the operator's overrides
// set, listed and unset, every change announced on the channel the gateways listen to, and every
// refusal storing nothing.
#include <gtest/gtest.h>

#include "lagoon/money/book.hpp"
#include "lagoon/money/price.hpp"
#include "admin_money_fixture.hpp"
#include "support/usage_support.hpp"

using namespace lagoon::test;
using nlohmann::json;

namespace {

const std::string kAnnounced(lagoon::money::kPricesChanged);

class CliPrices : public AdminMoneyTest {
 protected:
  void SetUp() override {
    AdminMoneyTest::SetUp();
    env = mock.with(env);
  }
  std::unique_ptr<ChannelListener> listen() {
    return std::make_unique<ChannelListener>(env.at("LAGOON_REDIS_URL"),
                                             lagoon::money::prices_channel(env.at("LAGOON_REDIS_PREFIX")));
  }
  // The mock's GET /models?type=all, as Venice's list.
  std::string model_list() {
    return request(mock.port(), "GET", "/api/v1/models?type=all", "",
                   std::string("Authorization: Bearer ") + MockUpstream::kKey + "\r\n")
        ->body;
  }
  void control_catalog(const std::string& body) {
    ASSERT_EQ(request(mock.port(), "POST", "/mock/catalog", body)->status, 200) << body;
  }
  std::string tables() { return db.scalar("SELECT count(*) FROM price_tables"); }
};
class AdminPrices : public CliPrices {};

}  // namespace

TEST_F(CliPrices, RefreshStoresVenicesPricesOnceAndAnnouncesEachNewTable) {
  const auto listed = lagoon::money::parse_model_list(model_list());
  ASSERT_TRUE(listed && listed->size() > 5);
  auto listener = listen();
  const json first = cli({"prices", "refresh"});
  EXPECT_EQ(first["result"], "stored");
  EXPECT_EQ(first["models"], listed->size());
  EXPECT_EQ(first["fetched_models"], listed->size());
  EXPECT_EQ(listener->heard(kAnnounced), 1);
  EXPECT_EQ(tables(), "1");
  EXPECT_EQ(first["version"], std::stoll(db.scalar("SELECT version FROM price_tables")));
  const json shown = cli({"prices", "list"});
  EXPECT_EQ(shown["version"], first["version"]);
  EXPECT_TRUE(shown["fetched_at"].is_string());
  ASSERT_EQ(shown["models"].size(), listed->size());
  for (const auto& m : shown["models"]) {
    EXPECT_EQ(m["source"], "upstream");
    EXPECT_EQ(m["in_force"], true);
    EXPECT_EQ(m["price"], lagoon::money::to_json(listed->at(m["model"].get<std::string>()))) << m;
  }

  listener = listen();
  const json again = cli({"prices", "refresh"});
  EXPECT_EQ(again["result"], "unchanged");
  EXPECT_EQ(again["version"], first["version"]);
  EXPECT_EQ(listener->heard(kAnnounced), 0);
  EXPECT_EQ(tables(), "1");

  control_catalog(R"({"pricing":{"llama-3.3-70b":{"input":{"usd":1.25},"output":{"usd":5}}}})");
  const json changed = cli({"prices", "refresh"});
  EXPECT_EQ(changed["result"], "stored");
  EXPECT_GT(changed["version"].get<long long>(), first["version"].get<long long>());
  EXPECT_EQ(tables(), "2");
  const json llama = cli({"prices", "list"})["models"];
  const auto it = std::find_if(llama.begin(), llama.end(), [](const json& m) { return m["model"] == "llama-3.3-70b"; });
  ASSERT_NE(it, llama.end());
  EXPECT_EQ((*it)["price"], json::parse(R"({"tokens":{"input":"1.25","output":"5"}})"));
}

TEST_F(CliPrices, ARefusedOrFailedRefreshStoresNothingAndExitsOne) {
  // Before any table: a list that cannot be read is refused all the same.
  control_catalog(R"({"malformed":true})");
  auto r = lagoon_cli({"prices", "refresh"}, env);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("Venice's model list has no readable prices; nothing was stored"), std::string::npos) << r.err;
  EXPECT_EQ(json::parse(r.out), json::parse(R"({"result":"malformed","version":null,"models":0,"fetched_models":0})"));
  EXPECT_EQ(tables(), "0");

  control_catalog("{}");
  const json stored = cli({"prices", "refresh"});
  const auto listed = lagoon::money::parse_model_list(model_list());
  json drop = json::array();
  for (const auto& [id, price] : *listed)
    if (drop.size() < listed->size() / 2) drop.push_back(id);
  control_catalog(json{{"drop", drop}}.dump());
  auto listener = listen();
  r = lagoon_cli({"prices", "refresh"}, env);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("lost more than a fifth of the " + std::to_string(listed->size()) + " models priced now"),
            std::string::npos)
      << r.err;
  const json shrunk = json::parse(r.out);
  EXPECT_EQ(shrunk["result"], "shrunk");
  EXPECT_EQ(shrunk["version"], stored["version"]);
  EXPECT_EQ(shrunk["models"], listed->size());
  EXPECT_EQ(shrunk["fetched_models"], listed->size() - drop.size());

  control_catalog(R"({"status":503})");
  r = lagoon_cli({"prices", "refresh"}, env);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("could not be fetched (Venice answered 503)"), std::string::npos) << r.err;
  EXPECT_EQ(json::parse(r.out)["result"], "failed");
  EXPECT_EQ(listener->heard(kAnnounced), 0);
  EXPECT_EQ(tables(), "1");

  Env away = env;
  away["LAGOON_UPSTREAM_URL"] = "http://127.0.0.1:" + std::to_string(free_port()) + "/api/v1";
  r = lagoon_cli({"prices", "refresh"}, away);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("cannot connect"), std::string::npos) << r.err;
  EXPECT_EQ(json::parse(r.out)["version"], stored["version"]);
  away = env;
  away.erase("LAGOON_UPSTREAM_API_KEY");
  r = lagoon_cli({"prices", "refresh"}, away);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("LAGOON_UPSTREAM_API_KEY: required to fetch Venice's prices"), std::string::npos) << r.err;
  EXPECT_EQ(tables(), "1");
}

TEST_F(CliPrices, OverridesAreSetAboveVenicesPricesListedAndUnset) {
  cli({"prices", "refresh"});
  auto listener = listen();
  const json set = cli({"prices", "set", "llama-3.3-70b", "--input", "1", "--output", "2.5", "--cache-input", "0.5"});
  EXPECT_EQ(set, json::parse(R"({"model":"llama-3.3-70b","source":"override","in_force":true,
                                 "price":{"tokens":{"input":"1","output":"2.5","cache_input":"0.5"}}})"));
  EXPECT_EQ(listener->heard(kAnnounced), 1) << "every instance is told to reload its prices";
  cli({"prices", "set", "openai/whisper-large-v3", "--per-second", "0.00015"});
  cli({"prices", "set", "my-model", "--per-image", "0.05", "--per-million-characters", "3", "--input", "0.1", "--output",
       "0.2", "--cache-write", "0.125"});
  EXPECT_EQ(db.scalar("SELECT count(*) FROM price_overrides"), "3");

  const json models = cli({"prices", "list"})["models"];
  std::vector<std::string> llama, whisper, mine;
  for (const auto& m : models) {
    const std::string line = m["source"].get<std::string>() + (m["in_force"] == true ? "+" : "-");
    if (m["model"] == "llama-3.3-70b") llama.push_back(line);
    if (m["model"] == "openai/whisper-large-v3") whisper.push_back(line);
    if (m["model"] == "my-model") mine.push_back(line);
  }
  EXPECT_EQ(llama, (std::vector<std::string>{"override+", "upstream-"}));
  EXPECT_EQ(whisper, (std::vector<std::string>{"override+", "upstream-"}));
  EXPECT_EQ(mine, (std::vector<std::string>{"override+"}));
  for (std::size_t i = 1; i < models.size(); ++i)
    EXPECT_LE(models[i - 1]["model"].get<std::string>(), models[i]["model"].get<std::string>());

  listener = listen();
  EXPECT_EQ(cli({"prices", "unset", "openai/whisper-large-v3"}),
            json::parse(R"({"model":"openai/whisper-large-v3","deleted":true})"));
  EXPECT_EQ(listener->heard(kAnnounced), 1);
  cli_fails({"prices", "unset", "openai/whisper-large-v3"}, 1, "no price override for model \"openai/whisper-large-v3\"");
  EXPECT_EQ(db.scalar("SELECT string_agg(model, ',' ORDER BY model) FROM price_overrides"), "llama-3.3-70b,my-model");
}

TEST_F(CliPrices, WhatIsNotAPriceIsABadUsageAndStoresNothing) {
  const std::string rule = "expected a decimal amount of USD from 0 to 1000000";
  cli_fails({"prices", "set", "m"}, 2, "give at least one price");
  cli_fails({"prices", "set", "m", "--input", "1"}, 2, "token prices need both input and output (--output)");
  cli_fails({"prices", "set", "m", "--output", "1"}, 2, "token prices need both input and output (--input)");
  cli_fails({"prices", "set", "m", "--cache-input", "1", "--per-second", "1"}, 2, "cache prices need input and output");
  cli_fails({"prices", "set", "m", "--input", "-1", "--output", "1"}, 2, "--input: " + rule + ", got \"-1\"");
  cli_fails({"prices", "set", "m", "--per-image", "abc"}, 2, "--per-image: " + rule);
  cli_fails({"prices", "set", "m", "--per-second", "1000001"}, 2, "--per-second: " + rule);
  cli_fails({"prices", "set", "m", "--price", "1"}, 2, "prices set does not take --price");
  cli_fails({"prices", "set", "--per-second", "1"}, 2, "prices set takes 1 argument");
  cli_fails({"prices", "set", "a model", "--per-second", "1"}, 2, "a model id must not contain spaces");
  cli_fails({"prices", "unset"}, 2, "prices unset takes 1 argument");
  EXPECT_EQ(db.scalar("SELECT count(*) FROM price_overrides"), "0");
}

TEST_F(AdminPrices, TheTableAndOverridesOverHttpAreTheCliS) {
  start_server();
  cli({"prices", "refresh"});
  auto listener = listen();
  const json whisper = admin("PUT", "/admin/v1/prices/openai/whisper-large-v3", R"({"per_second":"0.0001"})");
  EXPECT_EQ(whisper, json::parse(R"({"model":"openai/whisper-large-v3","source":"override","in_force":true,
                                     "price":{"per_second":"0.0001"}})"));
  EXPECT_EQ(listener->heard(kAnnounced), 1);
  // Escaped or not, the rest of the path is the model id.
  EXPECT_EQ(admin("PUT", "/admin/v1/prices/openai%2Fwhisper-large-v3", R"({"per_second":0.0002})")["price"],
            json::parse(R"({"per_second":"0.0002"})"));
  EXPECT_EQ(admin("PUT", "/admin/v1/prices/llama-3.3-70b", R"({"input":1,"output":"2.5","cache_write":3.75})")["price"],
            json::parse(R"({"tokens":{"input":"1","output":"2.5","cache_write":"3.75"}})"));
  EXPECT_EQ(db.scalar("SELECT count(*) FROM price_overrides"), "2");
  EXPECT_EQ(admin("GET", "/admin/v1/prices"), cli({"prices", "list"}));
  EXPECT_EQ(admin("DELETE", "/admin/v1/prices/openai/whisper-large-v3"),
            json::parse(R"({"model":"openai/whisper-large-v3","deleted":true})"));
  auto gone = call("DELETE", "/admin/v1/prices/openai/whisper-large-v3");
  EXPECT_EQ(gone->status, 404);
  EXPECT_EQ(db.scalar("SELECT model FROM price_overrides"), "llama-3.3-70b");
}

// A gateway refreshes from Venice hourly; what the CLI stores reaches it through the announcement.
TEST_F(AdminPrices, ATableTheCliStoresIsInForceOnARunningGatewayWithinASecond) {
  LagoonServer& gateway = start_server();
  const std::string version = "lagoon_price_table_version";
  ASSERT_TRUE(wait_until([&] { return gateway.metric(version) > 0; }, std::chrono::seconds(5)));
  const double started_with = gateway.metric(version);
  control_catalog(R"({"pricing":{"qwen3-235b":{"input":{"usd":0.9},"output":{"usd":3}}}})");
  const json stored = cli({"prices", "refresh"});
  ASSERT_EQ(stored["result"], "stored");
  EXPECT_GT(stored["version"].get<double>(), started_with);
  EXPECT_TRUE(wait_until([&] { return gateway.metric(version) == stored["version"].get<double>(); },
                         std::chrono::seconds(1)))
      << gateway.metric(version);
}

TEST_F(AdminPrices, BadBodiesAre400NamingTheFieldAndStoreNothing) {
  start_server();
  const std::vector<std::tuple<std::string, std::string, std::string>> cases = {
      {"/admin/v1/prices/m", "{}", "input"},
      {"/admin/v1/prices/m", "", ""},
      {"/admin/v1/prices/m", "[]", ""},
      {"/admin/v1/prices/m", R"({"input":1})", "output"},
      {"/admin/v1/prices/m", R"({"input":"x","output":1})", "input"},
      {"/admin/v1/prices/m", R"({"per_image":-1})", "per_image"},
      {"/admin/v1/prices/m", R"({"per_second":true})", "per_second"},
      {"/admin/v1/prices/m", R"({"per_second":null})", "per_second"},
      {"/admin/v1/prices/m", R"({"cache_input":1,"per_second":1})", "input"},
      {"/admin/v1/prices/m", R"({"price":1})", "price"},
      {"/admin/v1/prices/a%20b", R"({"per_second":1})", "model"},
  };
  for (const auto& [target, body, param] : cases) {
    auto r = call("PUT", target, body);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << target << " " << body << " -> " << r->body;
    EXPECT_EQ(json::parse(r->body)["error"]["param"], param.empty() ? json(nullptr) : json(param)) << body;
  }
  EXPECT_EQ(db.scalar("SELECT count(*) FROM price_overrides"), "0");
  EXPECT_EQ(call("POST", "/admin/v1/prices", "{}")->header("allow"), "GET");
  EXPECT_EQ(call("PATCH", "/admin/v1/prices/m", "{}")->header("allow"), "PUT, DELETE");
  EXPECT_EQ(call("GET", "/admin/v1/prices/m")->status, 405);
  EXPECT_EQ(call("GET", "/admin/v1/prices/")->status, 404);
}
