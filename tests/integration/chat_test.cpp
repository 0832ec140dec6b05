// The chat relay on the real binary, against the mock upstream, Redis and Postgres: what reaches the
// upstream, how its errors and silences are answered, what is recorded, sessions, models, and real clients
// (the OpenAI SDK, an https upstream). Streams have their own file, chat_stream_test.cpp.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "integration/chat_fixture.hpp"

using namespace lagoon::test;
using namespace std::chrono_literals;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

TEST_F(Chat, NonStreamReturnsTheUpstreamAnswerAndRecordsItsUsage) {
  start();
  auto r = chat(R"({"model":"llama-3.3-70b","messages":[{"role":"user","content":"Hello"}],"x_mock":{"chunks":3}})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  auto j = json::parse(r->body);
  EXPECT_EQ(j["choices"][0]["message"]["content"], "tok0 tok1 tok2 ");
  EXPECT_FALSE(r->header("x-request-id").empty());
  ASSERT_EQ(usage_rows(1), 1);
  EXPECT_EQ(db.scalar("SELECT concat_ws(',', model, stream, status_code, outcome, completion_tokens, total_tokens, "
                      "tokens_estimated, request_id = '" + r->header("x-request-id") + "') FROM usage_records"),
            "llama-3.3-70b,f,200,ok,3," + std::to_string(j["usage"]["total_tokens"].get<int>()) + ",f,t");
}

TEST_F(Chat, TheBodyGoesUpstreamByteForByte) {
  start();
  const std::string body =
      "{ \"model\":\"m\", \"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\n"
      "  \"venice_parameters\":{\"include_venice_system_prompt\":false}, \"tools\":[], \"zz\":1.50,"
      " \"x_mock\":{\"record\":1}}";
  ASSERT_EQ(chat(body)->status, 200);
  auto seen = mock.last_request();
  EXPECT_EQ(seen["body"], body);
  EXPECT_EQ(seen["headers"]["Authorization"], std::string("Bearer ") + MockUpstream::kKey);

  const std::string stream_body = R"({"model":"m","messages":[],"stream":true,"x_mock":{"record":1}})";
  ASSERT_EQ(chat(stream_body)->status, 200);
  EXPECT_EQ(mock.last_request()["body"],
            R"({"stream_options":{"include_usage":true},"model":"m","messages":[],"stream":true,"x_mock":{"record":1}})");
}

TEST_F(Chat, VeniceHeadersCrossOnlyByAllowListAndTheAccountsStateNever) {
  start();
  auto r = chat(R"({"model":"m","messages":[],"x_mock":{"record":1}})",
                "X-Venice-TEE-Client-Pub-Key: client-pub\r\nX-Venice-TEE-Signing-Algo: ecdsa\r\n"
                "X-Private-Note: not-for-upstream\r\nCookie: c=1\r\n");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  const auto seen = mock.last_request()["headers"];
  EXPECT_EQ(seen["X-Venice-TEE-Client-Pub-Key"], "client-pub");
  EXPECT_EQ(seen["X-Venice-TEE-Signing-Algo"], "ecdsa");
  EXPECT_FALSE(seen.contains("X-Private-Note"));
  EXPECT_FALSE(seen.contains("Cookie"));
  auto s = chat(R"({"model":"m","messages":[],"stream":true})");
  ASSERT_TRUE(s);
  ASSERT_EQ(s->status, 200);
  for (const auto* answer : {&*r, &*s}) {
    EXPECT_EQ(answer->header("x-venice-model-id"), "m");
    EXPECT_EQ(answer->header("x-venice-version"), "mock");
    // The operator's Venice account: its balance and Venice's limits on it are not the key holder's business.
    for (const char* name : {"x-venice-balance-usd", "x-venice-balance-diem", "x-balance-remaining",
                             "x-ratelimit-remaining-requests"})
      EXPECT_EQ(answer->header(name), "") << name;
  }
}

TEST_F(Chat, AnInvalidBodyIs400AndNothingGoesUpstream) {
  start();
  const auto before = mock.stats()["chat_requests"].get<int>();
  auto r = chat(R"({"model":"m","messages":"not an array"})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  auto e = json::parse(r->body)["error"];
  EXPECT_EQ(e["type"], "invalid_request_error");
  EXPECT_EQ(e["param"], "messages");
  EXPECT_EQ(chat("{not json")->status, 400);
  EXPECT_EQ(mock.stats()["chat_requests"].get<int>(), before);
  ASSERT_EQ(usage_rows(2), 2);
  EXPECT_EQ(db.scalar("SELECT string_agg(DISTINCT outcome || ':' || status_code, ',') FROM usage_records"),
            "invalid_request:400");
}

TEST_F(Chat, UpstreamErrorsAreMappedAndTheGatewayCredentialNeverLeaks) {
  start();
  auto unauthorized = chat(R"({"model":"m","messages":[],"x_mock":{"status":401}})");
  EXPECT_EQ(unauthorized->status, 502);
  EXPECT_EQ(json::parse(unauthorized->body)["error"]["code"], "upstream_auth_error");
  EXPECT_EQ(unauthorized->body.find(MockUpstream::kKey), std::string::npos);
  auto limited = chat(R"({"model":"m","messages":[],"x_mock":{"status":429}})");
  EXPECT_EQ(limited->status, 429);
  EXPECT_EQ(json::parse(limited->body)["error"]["code"], "rate_limit_exceeded");
  EXPECT_FALSE(limited->header("retry-after").empty());
  auto broken = chat(R"({"model":"m","messages":[],"x_mock":{"status":500}})");
  EXPECT_EQ(broken->status, 502);
  auto refused = chat(R"({"model":"m","messages":[],"x_mock":{"status":400}})");
  EXPECT_EQ(refused->status, 400);
  EXPECT_TRUE(json::parse(refused->body)["error"].is_object());
  ASSERT_EQ(usage_rows(4), 4);
  EXPECT_EQ(db.scalar("SELECT string_agg(status_code::text, ',' ORDER BY status_code) FROM usage_records "
                      "WHERE outcome = 'upstream_error'"),
            "400,429,502,502");
}

TEST_F(Chat, AnUpstream402IsA503ThatSaysNothingAboutTheOperatorsAccount) {
  start();
  // Venice's 402 names the account's balance; the key holder must learn only that it cannot be served now.
  auto r = chat(R"({"model":"m","messages":[],"x_mock":{"status":402}})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  const auto j = json::parse(r->body);
  EXPECT_EQ(j["error"]["type"], "server_error");
  EXPECT_EQ(j["error"]["code"], "service_unavailable");
  EXPECT_TRUE(j["error"]["param"].is_null());
  EXPECT_FALSE(r->header("retry-after").empty());
  EXPECT_EQ(r->body.find("alance"), std::string::npos) << r->body;
  EXPECT_EQ(r->body.find("Diem"), std::string::npos) << r->body;
  // The operator still learns what the upstream said.
  EXPECT_TRUE(wait_until(
      [&] { return server->process().output().find("Insufficient USD or Diem balance") != std::string::npos; }, 5s));
  ASSERT_EQ(usage_rows(1), 1);
  EXPECT_EQ(db.scalar("SELECT outcome || ':' || status_code FROM usage_records"), "upstream_error:503");
  EXPECT_EQ(server->metric(R"(lagoon_upstream_alerts_total{alert="payment_required"})"), 1);
}

TEST_F(Chat, A503IsRetriedOnceBeforeAnythingReachesTheClient) {
  start();
  const auto before = mock.stats()["chat_requests"].get<int>();
  auto r = chat(R"({"model":"m","messages":[],"x_mock":{"status":503}})");
  // Still unavailable: Venice's model is offline or at capacity, which the client may retry.
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(json::parse(r->body)["error"]["code"], "service_unavailable");
  EXPECT_EQ(r->header("retry-after"), "1");
  EXPECT_EQ(mock.stats()["chat_requests"].get<int>(), before + 2);
  EXPECT_EQ(server->metric("lagoon_upstream_retries_total"), 1);
}

TEST_F(Chat, AnUpstreamThatDoesNotAnswerGets504) {
  start({{"LAGOON_UPSTREAM_FIRST_BYTE_TIMEOUT_MS", "300"}});
  const auto t0 = Clock::now();
  auto r = chat(R"({"model":"m","messages":[],"x_mock":{"first-byte-ms":3000}})");
  EXPECT_LT(Clock::now() - t0, 2s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 504);
  EXPECT_EQ(json::parse(r->body)["error"]["code"], "upstream_timeout");
}

TEST_F(Chat, ASessionIsKeptForItsModelAndReplacedForAnother) {
  start();
  for (int i = 0; i < 3; ++i) ASSERT_EQ(chat(R"({"model":"a","messages":[]})")->status, 200);
  ASSERT_EQ(chat(R"({"model":"b","messages":[]})")->status, 200);
  ASSERT_EQ(usage_rows(4), 4);
  EXPECT_EQ(db.scalar("SELECT count(*) FROM sessions"), "2");
  EXPECT_EQ(db.scalar("SELECT model FROM sessions WHERE is_active"), "b");
  EXPECT_EQ(db.scalar("SELECT count(DISTINCT session_id) FROM usage_records WHERE model = 'a'"), "1");
  EXPECT_EQ(db.scalar("SELECT count(*) FROM usage_records u JOIN sessions s ON s.id = u.session_id "
                      "WHERE s.model = u.model"),
            "4");
  // The usage pipeline moves the session's counters.
  EXPECT_TRUE(wait_until([&] { return db.scalar("SELECT request_count FROM sessions WHERE model = 'a'") == "3"; }, 5s));
  EXPECT_EQ(db.scalar("SELECT last_used_at IS NOT NULL FROM sessions WHERE model = 'b'"), "t");
}

TEST_F(Chat, EachUsageRowSaysWhichEndpointItIsFor) {
  start();
  const std::string auth = "Authorization: Bearer " + key + "\r\n";
  ASSERT_EQ(chat(R"({"model":"a","messages":[]})")->status, 200);
  ASSERT_EQ(request(server->port(), "GET", "/api/v1/models", "", auth)->status, 200);
  ASSERT_EQ(request(server->port(), "GET", "/api/v1/key", "", auth)->status, 200);
  ASSERT_EQ(usage_rows(3), 3);
  EXPECT_EQ(db.scalar("SELECT string_agg(endpoint, ',' ORDER BY endpoint) FROM usage_records"), "chat,key,models");
  EXPECT_EQ(db.scalar("SELECT endpoint FROM usage_records WHERE model = 'a'"), "chat");
}

TEST_F(Chat, VenicesModelSuffixesShareTheBaseModelsSession) {
  start();
  ASSERT_EQ(chat(R"({"model":"a","messages":[]})")->status, 200);
  ASSERT_EQ(chat(R"({"model":"a:enable_web_search=on","messages":[],"x_mock":{"record":1}})")->status, 200);
  EXPECT_EQ(mock.last_request()["body"], R"({"model":"a:enable_web_search=on","messages":[],"x_mock":{"record":1}})");
  ASSERT_EQ(usage_rows(2), 2);
  EXPECT_EQ(db.scalar("SELECT count(*) FROM sessions"), "1");
  EXPECT_EQ(db.scalar("SELECT model FROM sessions"), "a");
  EXPECT_EQ(db.scalar("SELECT count(DISTINCT session_id) FROM usage_records"), "1");
  EXPECT_EQ(db.scalar("SELECT count(*) FROM usage_records WHERE model = 'a:enable_web_search=on'"), "1");
}

TEST_F(Chat, ConcurrentFirstRequestsOnTwoInstancesShareOneSession) {
  start();
  LagoonServer other(mock.with(env));
  std::vector<std::unique_ptr<Connection>> conns;
  const std::string body = R"({"model":"m","messages":[]})";
  const std::string req = chat_request_bytes(key, body);
  for (int i = 0; i < 40; ++i) conns.push_back(std::make_unique<Connection>(i % 2 ? server->port() : other.port()));
  for (auto& c : conns) ASSERT_TRUE(c->send(req));
  int ok = 0;
  for (auto& c : conns) {
    auto r = c->read_response(10s);
    ok += r && r->status == 200;
  }
  EXPECT_EQ(ok, 40);
  EXPECT_EQ(db.scalar("SELECT count(*) FROM sessions"), "1");
  ASSERT_EQ(usage_rows(40), 40);
  EXPECT_EQ(db.scalar("SELECT count(DISTINCT session_id) FROM usage_records"), "1");
}

TEST_F(Chat, ModelsComeFromTheUpstreamAndAreCached) {
  start();
  const auto before = mock.stats()["requests"].get<int>();
  auto first = request(server->port(), "GET", "/api/v1/models", "", "Authorization: Bearer " + key + "\r\n");
  ASSERT_TRUE(first);
  ASSERT_EQ(first->status, 200) << first->body;
  auto j = json::parse(first->body);
  EXPECT_EQ(j["object"], "list");
  EXPECT_FALSE(j["data"].empty());
  auto second = request(server->port(), "GET", "/v1/models", "", "Authorization: Bearer " + key + "\r\n");
  EXPECT_EQ(second->body, first->body);
  // One upstream fetch for both requests, plus this /mock/stats call itself.
  EXPECT_EQ(mock.stats()["requests"].get<int>(), before + 2);
  EXPECT_EQ(request(server->port(), "GET", "/api/v1/models")->status, 401);
  ASSERT_EQ(usage_rows(2), 2);
  EXPECT_EQ(db.scalar("SELECT count(*) FROM usage_records WHERE model IS NULL AND outcome = 'ok'"), "2");
}

// The official OpenAI Node SDK (tests/e2e, installed by make test) against Lagoon and the mock.
TEST_F(Chat, TheOfficialOpenAiNodeSdkWorksAgainstLagoon) {
  start();
  Env e;
  e["LAGOON_URL"] = "http://127.0.0.1:" + std::to_string(server->port());
  e["LAGOON_KEY"] = key;
  auto r = run({"/usr/bin/env", "node", std::string(LAGOON_SOURCE_DIR) + "/tests/e2e/openai_sdk.mjs"}, e, 60s);
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("\"ok\":true"), std::string::npos) << r.out << r.err;
}

// An https upstream: certificate chain and host name are verified (here against a test CA given in
// LAGOON_UPSTREAM_CA_FILE; in production the system store).
TEST_F(Chat, AnHttpsUpstreamIsVerified) {
  TempDir dir;
  auto make_cert = [&](const std::string& name, const std::string& san) {
    auto r = run({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                  "/CN=" + san, "-addext", "subjectAltName=DNS:" + san, "-keyout",
                  (dir.path() / (name + ".key")).string(), "-out", (dir.path() / (name + ".pem")).string()},
                 {});
    ASSERT_EQ(r.code, 0) << r.err;
  };
  make_cert("good", "localhost");
  make_cert("other", "other.example");
  auto proxy = [&](const std::string& name) {
    const auto port = free_port();
    auto p = std::make_unique<Process>(
        std::vector<std::string>{"/usr/bin/env", "python3", std::string(LAGOON_SOURCE_DIR) + "/tests/support/tls_proxy.py",
                                 std::to_string(port), std::to_string(mock.port()),
                                 (dir.path() / (name + ".pem")).string(), (dir.path() / (name + ".key")).string()},
        Env{}, (dir.path() / (name + ".log")).string());
    EXPECT_TRUE(wait_until([&] { return p->output().find("ready") != std::string::npos; }, 10s)) << p->output();
    return std::make_pair(port, std::move(p));
  };
  auto [good_port, good_proxy] = proxy("good");
  auto [other_port, other_proxy] = proxy("other");
  const std::string body = R"({"model":"m","messages":[],"x_mock":{"chunks":2}})";

  start({{"LAGOON_UPSTREAM_URL", "https://localhost:" + std::to_string(good_port) + "/api/v1"},
         {"LAGOON_UPSTREAM_CA_FILE", (dir.path() / "good.pem").string()}});
  auto ok = chat(body);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
  EXPECT_EQ(json::parse(ok->body)["choices"][0]["message"]["content"], "tok0 tok1 ");
  auto streamed = chat(R"({"model":"m","messages":[],"stream":true})");
  EXPECT_NE(streamed->body.find("data: [DONE]"), std::string::npos);

  // A certificate for another name is refused even though its CA is trusted.
  start({{"LAGOON_UPSTREAM_URL", "https://localhost:" + std::to_string(other_port) + "/api/v1"},
         {"LAGOON_UPSTREAM_CA_FILE", (dir.path() / "other.pem").string()}});
  EXPECT_EQ(chat(body)->status, 502);
  // A certificate from an unknown CA is refused.
  start({{"LAGOON_UPSTREAM_URL", "https://localhost:" + std::to_string(good_port) + "/api/v1"}});
  EXPECT_EQ(chat(body)->status, 502);
  EXPECT_GE(server->metric("lagoon_upstream_connect_failures_total"), 1);
}
