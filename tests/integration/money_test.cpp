// Money on the real binary, with the mock's model list as Venice's price table: every row's cost is the
// price arithmetic (checked exactly, in Postgres's numeric), on chat whole and streamed and on each
// other endpoint; Venice's own `cost` where it sent one; an unpriced model is NULL, never 0; a refresh
// that fails or lost models keeps the table in force; a client that leaves pays what was spent.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "integration/money_fixture.hpp"
#include "lagoon/mock/media.hpp"

using namespace lagoon::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

// llama-3.3-70b in the mock's list: $0.7 in, $2.8 out per million tokens.
const std::string kLlama = "prompt_tokens * 0.7 / 1000000 + completion_tokens * 2.8 / 1000000";

TEST_F(MoneyFlow, AChatsCostIsVenicesOwnWhenItSaysAndThePriceTablesOtherwiseWholeAndStreamed) {
  start_priced();
  const std::string version = db.scalar("SELECT max(version) FROM price_tables");
  // Venice's `cost`: what the mock computes from the same prices.
  auto r = chat(R"({"model":"llama-3.3-70b","messages":[{"role":"user","content":"Hello there"}]})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  ASSERT_EQ(usage_rows(1), 1);
  EXPECT_EQ(cost_check(kLlama).substr(0, 11), "t,upstream,");
  EXPECT_EQ(last_row("upstream_cost_usd = cost_usd, price_version"), "t," + version);
  EXPECT_EQ(r->header("x-lagoon-cost-usd"), last_row("cost_usd::text"));

  // Without it, the table's price.
  r = chat(R"({"model":"llama-3.3-70b","messages":[{"role":"user","content":"Hi"}],"x_mock":{"cost":"none"}})");
  ASSERT_TRUE(r);
  ASSERT_EQ(usage_rows(2), 2);
  EXPECT_EQ(cost_check(kLlama).substr(0, 14), "t,price_table,");
  EXPECT_EQ(last_row("upstream_cost_usd IS NULL"), "t");
  EXPECT_EQ(r->header("x-lagoon-cost-usd"), last_row("cost_usd::text"));

  // Streamed: the usage chunk carries the counts and Venice's cost; without it, the table again.
  const std::string stream = R"({"model":"llama-3.3-70b","stream":true,"stream_options":{"include_usage":true},)"
                             R"("messages":[{"role":"user","content":"Stream"}])";
  r = chat(stream + "}");
  ASSERT_TRUE(r);
  ASSERT_EQ(usage_rows(3), 3);
  EXPECT_EQ(cost_check(kLlama).substr(0, 11), "t,upstream,");
  r = chat(stream + R"(,"x_mock":{"cost":"none"}})");
  ASSERT_TRUE(r);
  ASSERT_EQ(usage_rows(4), 4);
  EXPECT_EQ(cost_check(kLlama).substr(0, 14), "t,price_table,");
}

TEST_F(MoneyFlow, CachedTokensAndADiemShareArePricedByTheTable) {
  start_priced();
  // claude-mock-sonnet: $3 in, $0.3 cached, $3.75 cache writes, $15 out.
  auto r = chat(R"({"model":"claude-mock-sonnet","messages":[{"role":"user","content":"Remember this"}],)"
                R"("x_mock":{"cost":"none","cached-tokens":"3","cache-write-tokens":"2"}})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  ASSERT_EQ(usage_rows(1), 1);
  EXPECT_EQ(cost_check("((prompt_tokens - 5) * 3 + 3 * 0.3 + 2 * 3.75 + completion_tokens * 15) / 1000000")
                .substr(0, 14),
            "t,price_table,");
  // Part paid in DIEM: Venice's USD figure is not the whole price; the table prices it, Venice's is kept.
  r = chat(R"({"model":"llama-3.3-70b","messages":[{"role":"user","content":"x"}],)"
           R"("x_mock":{"cost":"0.000001","cost-diem":"0.5"}})");
  ASSERT_TRUE(r);
  ASSERT_EQ(usage_rows(2), 2);
  EXPECT_EQ(cost_check(kLlama).substr(0, 14), "t,price_table,");
  EXPECT_EQ(last_row("upstream_cost_usd::text"), "0.000001");
}

TEST_F(MoneyFlow, EveryEndpointIsCostedInItsOwnUnit) {
  start_priced();
  auto e = post("/embeddings", R"({"model":"text-embedding-bge-m3","input":"the lagoon at dawn"})");
  ASSERT_TRUE(e);
  ASSERT_EQ(e->status, 200) << e->body;
  ASSERT_EQ(usage_rows(1), 1);
  EXPECT_EQ(cost_check("prompt_tokens * 0.15 / 1000000").substr(0, 14), "t,price_table,");
  EXPECT_EQ(e->header("x-lagoon-cost-usd"), last_row("cost_usd::text"));

  auto i = post("/images/generations", R"({"model":"venice-sd35","prompt":"a lagoon","n":2,"response_format":"b64_json"})");
  ASSERT_TRUE(i);
  ASSERT_EQ(usage_rows(2), 2);
  EXPECT_EQ(cost_check("units * 0.01"), "t,price_table,0.02");

  auto g = post("/image/generate", R"({"model":"hidream","prompt":"a lagoon","variants":1,"format":"png"})");
  ASSERT_TRUE(g);
  ASSERT_EQ(usage_rows(3), 3);
  EXPECT_EQ(cost_check("units * 0.02"), "t,price_table,0.02");

  // Upscale names no model: priced as Venice's upscaler, at the factor asked for.
  auto u = post("/image/upscale", json{{"image", "aGVsbG8="}, {"scale", 4}}.dump());
  ASSERT_TRUE(u);
  ASSERT_EQ(u->status, 200) << u->body;
  ASSERT_EQ(usage_rows(4), 4);
  EXPECT_EQ(cost_check("0.08"), "t,price_table,0.08");

  const std::string input = "Hello from the lagoon.";
  auto s = post("/audio/speech", json{{"model", "tts-kokoro"}, {"voice", "af_sky"}, {"input", input}}.dump());
  ASSERT_TRUE(s);
  ASSERT_EQ(usage_rows(5), 5);
  EXPECT_EQ(cost_check("units * 3.5 / 1000000"), "t,price_table,0.000077");

  Form form;
  form.file("file", "hello.wav", "audio/wav", lagoon::mock::pcm_wav(16000, 1, 16, 40000))
      .field("model", "openai/whisper-large-v3");
  auto t = post("/audio/transcriptions", form.done(), form.content_type());
  ASSERT_TRUE(t);
  ASSERT_EQ(usage_rows(6), 6);
  EXPECT_EQ(cost_check("units * 0.0002"), "t,price_table,0.0005");  // 2.5 s

  auto resp = post("/responses", R"({"model":"llama-3.3-70b","input":"Hello"})");
  ASSERT_TRUE(resp);
  ASSERT_EQ(usage_rows(7), 7);
  EXPECT_EQ(cost_check(kLlama).substr(0, 14), "t,price_table,");
}

TEST_F(MoneyFlow, AnUnpricedModelIsRecordedNullNeverZeroAndCounted) {
  start_priced();
  auto r = chat(R"({"model":"no-such-price","messages":[{"role":"user","content":"Hi"}]})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  ASSERT_EQ(usage_rows(1), 1);
  EXPECT_EQ(last_row("cost_usd IS NULL, cost_source"), "t,unpriced");
  EXPECT_EQ(r->header("x-lagoon-cost-usd"), "");
  EXPECT_EQ(server->metric(R"(lagoon_unpriced_requests_total{endpoint="chat"})"), 1);
}

TEST_F(MoneyFlow, AnOverrideWinsOverVenicesPriceAndItsCost) {
  db.scalar(R"(INSERT INTO price_overrides (model, prices) VALUES ('llama-3.3-70b', '{"tokens":{"input":"1","output":"10"}}'))");
  start_priced();
  auto r = chat(R"({"model":"llama-3.3-70b","messages":[{"role":"user","content":"Hi"}]})");
  ASSERT_TRUE(r);
  ASSERT_EQ(usage_rows(1), 1);
  EXPECT_EQ(cost_check("prompt_tokens * 1.0 / 1000000 + completion_tokens * 10.0 / 1000000").substr(0, 11), "t,override,")
      << last_row("prompt_tokens, completion_tokens, cost_usd, upstream_cost_usd");
  EXPECT_EQ(last_row("upstream_cost_usd > 0"), "t");  // what Venice said is still kept
}

TEST_F(MoneyFlow, ARefreshThatFailsOrLostModelsKeepsTheTableInForceAndAGoodOneReplacesIt) {
  start_priced({{"LAGOON_PRICE_REFRESH_MS", "1000"}});
  const std::string first = db.scalar("SELECT max(version) FROM price_tables");
  control_catalog(R"({"status":503})");
  ASSERT_TRUE(wait_until([&] { return server->metric(R"(lagoon_price_refreshes_total{result="failed"})") >= 1; }, 10s));
  control_catalog(R"({"malformed":true})");
  ASSERT_TRUE(
      wait_until([&] { return server->metric(R"(lagoon_price_refreshes_total{result="malformed"})") >= 1; }, 10s));
  control_catalog(R"({"drop":["llama-3.3-70b","qwen3-235b","mistral-31-24b","venice-uncensored",)"
                  R"("qwen3-coder-480b-a35b-instruct"]})");
  ASSERT_TRUE(wait_until([&] { return server->metric(R"(lagoon_price_refreshes_total{result="shrunk"})") >= 1; }, 10s));
  EXPECT_EQ(db.scalar("SELECT max(version) FROM price_tables"), first);
  auto r = chat(R"({"model":"llama-3.3-70b","messages":[{"role":"user","content":"Hi"}],"x_mock":{"cost":"none"}})");
  ASSERT_TRUE(r);
  ASSERT_EQ(usage_rows(1), 1);
  EXPECT_EQ(cost_check(kLlama).substr(0, 14), "t,price_table,");
  EXPECT_EQ(last_row("price_version"), first);

  // A good table with a new price is stored and used.
  control_catalog(R"({"pricing":{"llama-3.3-70b":{"input":{"usd":2,"diem":2},"output":{"usd":4,"diem":4}}}})");
  ASSERT_TRUE(wait_until([&] { return db.scalar("SELECT max(version) FROM price_tables") != first; }, 10s));
  ASSERT_TRUE(wait_until([&] { return server->metric("lagoon_price_table_version") > std::stod(first); }, 10s));
  r = chat(R"({"model":"llama-3.3-70b","messages":[{"role":"user","content":"Hi"}],"x_mock":{"cost":"none"}})");
  ASSERT_TRUE(r);
  ASSERT_EQ(usage_rows(2), 2);
  EXPECT_EQ(cost_check("prompt_tokens * 2.0 / 1000000 + completion_tokens * 4.0 / 1000000").substr(0, 14),
            "t,price_table,");
}

TEST_F(MoneyFlow, ARestartWhileVeniceCannotBeAskedUsesTheStoredTable) {
  start_priced();
  const std::string version = db.scalar("SELECT max(version) FROM price_tables");
  server.reset();
  control_catalog(R"({"status":503})");
  start();
  ASSERT_TRUE(wait_until([&] { return server->metric("lagoon_price_table_version") == std::stod(version); }, 10s));
  auto r = chat(R"({"model":"llama-3.3-70b","messages":[{"role":"user","content":"Hi"}],"x_mock":{"cost":"none"}})");
  ASSERT_TRUE(r);
  ASSERT_EQ(usage_rows(1), 1);
  EXPECT_EQ(cost_check(kLlama).substr(0, 14), "t,price_table,");
}

TEST_F(MoneyFlow, AClientThatLeavesMidStreamPaysForWhatWasSpent) {
  start_priced();
  const std::string body = R"({"model":"llama-3.3-70b","stream":true,"messages":[{"role":"user","content":"Go"}],)"
                           R"("x_mock":{"chunks":50,"gap-ms":100}})";
  RawClient c(server->port());
  c.send("POST /api/v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + key +
         "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
  ASSERT_NE(c.read_until("tok2", 10s).find("tok2"), std::string::npos);
  c.reset();
  ASSERT_EQ(usage_rows(1), 1);
  EXPECT_EQ(last_row("outcome, tokens_estimated"), "client_disconnected,t");
  EXPECT_EQ(cost_check(kLlama).substr(0, 14), "t,price_table,");
  EXPECT_EQ(last_row("cost_usd > 0"), "t");
}

TEST_F(MoneyFlow, ARequestRefusedBeforeTheUpstreamCostsNothing) {
  start_priced();
  auto r = chat(R"({"model":"llama-3.3-70b","messages":"not a list"})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  ASSERT_EQ(usage_rows(1), 1);
  EXPECT_EQ(last_row("cost_usd::text, cost_source IS NULL"), "0,t");
}

}  // namespace
