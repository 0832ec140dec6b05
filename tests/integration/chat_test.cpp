// The chat relay on the real binary, against the mock upstream, Redis and Postgres: what the client
// sees, what reaches the upstream, what is recorded, and what happens when the upstream misbehaves.
// The mock takes its behaviour from an "x_mock" object in the body, which the gateway forwards as is.
#include <gtest/gtest.h>

#include <cstdio>
#include <thread>

#include <nlohmann/json.hpp>

#include "support/environment.hpp"
#include "support/usage_support.hpp"

using namespace lagoon::test;
using namespace std::chrono_literals;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

class Chat : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(lagoon_cli({"migrate"}, env).code, 0);
    key = create_key(env).second;
  }
  LagoonServer& start(Env extra = {}) {
    Env e = mock.with(env);
    for (auto& [k, v] : extra) e[k] = v;
    server = std::make_unique<LagoonServer>(e);
    return *server;
  }
  std::optional<HttpResponse> chat(const std::string& body, const std::string& extra_headers = "") {
    return request(server->port(), "POST", "/api/v1/chat/completions", body,
                   "Authorization: Bearer " + key + "\r\nContent-Type: application/json\r\n" + extra_headers);
  }
  // Waits for the usage rows the pipeline flushes (every 100 ms by default).
  std::int64_t usage_rows(std::int64_t expected) {
    std::int64_t n = 0;
    wait_until([&] { return (n = std::stoll(db.scalar("SELECT count(*) FROM usage_records"))) >= expected; }, 5s);
    return n;
  }

  TestDatabase db;
  Env env = lagoon_env(db);
  MockUpstream mock;
  std::string key;
  std::unique_ptr<LagoonServer> server;
};

std::vector<std::string> data_lines(const std::string& body) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while ((pos = body.find("data: ", pos)) != std::string::npos) {
    const auto end = body.find("\n\n", pos);
    out.push_back(body.substr(pos + 6, end - pos - 6));
    pos = end;
  }
  return out;
}

}  // namespace

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

TEST_F(Chat, StreamRelaysTheEventsAndHidesTheUsageChunkUnlessAsked) {
  start();
  auto plain = chat(R"({"model":"m","messages":[],"stream":true,"x_mock":{"chunks":4}})");
  ASSERT_TRUE(plain);
  ASSERT_EQ(plain->status, 200);
  EXPECT_EQ(plain->header("content-type"), "text/event-stream");
  EXPECT_EQ(plain->header("cache-control"), "no-cache");
  auto events = data_lines(plain->body);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back(), "[DONE]");
  std::string content;
  for (const auto& e : events) {
    if (e == "[DONE]") continue;
    auto j = json::parse(e);
    EXPECT_FALSE(j["choices"].empty()) << "a usage-only chunk reached a client that did not ask: " << e;
    EXPECT_FALSE(j.contains("usage")) << "the client did not ask for usage fields: " << e;
    if (!j["choices"].empty()) content += j["choices"][0]["delta"].value("content", "");
  }
  EXPECT_EQ(content, "tok0 tok1 tok2 tok3 ");

  auto asked = chat(R"({"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":true},"x_mock":{"chunks":2}})");
  ASSERT_TRUE(asked);
  auto asked_events = data_lines(asked->body);
  ASSERT_GE(asked_events.size(), 2u);
  auto usage_chunk = json::parse(asked_events[asked_events.size() - 2]);
  EXPECT_TRUE(usage_chunk["choices"].empty());
  EXPECT_EQ(usage_chunk["usage"]["completion_tokens"], 2);

  ASSERT_EQ(usage_rows(2), 2);
  EXPECT_EQ(db.scalar("SELECT string_agg(concat_ws(',', stream, outcome, completion_tokens, tokens_estimated), ';' "
                      "ORDER BY completion_tokens) FROM usage_records"),
            "t,ok,2,f;t,ok,4,f");
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
}

TEST_F(Chat, A503IsRetriedOnceBeforeAnythingReachesTheClient) {
  start();
  const auto before = mock.stats()["chat_requests"].get<int>();
  auto r = chat(R"({"model":"m","messages":[],"x_mock":{"status":503}})");
  EXPECT_EQ(r->status, 502);
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

TEST_F(Chat, AStalledStreamEndsWithAnErrorEventAfterTheGapDeadline) {
  start({{"LAGOON_UPSTREAM_GAP_TIMEOUT_MS", "300"}});
  auto r = chat(R"({"model":"m","messages":[],"stream":true,"x_mock":{"stall":"body"}})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  auto events = data_lines(r->body);
  ASSERT_FALSE(events.empty());
  EXPECT_NE(events.back(), "[DONE]");
  EXPECT_EQ(json::parse(events.back())["error"]["code"], "upstream_error");
  ASSERT_EQ(usage_rows(1), 1);
  EXPECT_EQ(db.scalar("SELECT outcome FROM usage_records"), "upstream_error");
}

TEST_F(Chat, AClientLeavingMidStreamCancelsTheUpstreamAndIsRecorded) {
  start();
  const auto before = mock.stats()["client_disconnects"].get<int>();
  {
    Connection c(server->port());
    const std::string body = R"({"model":"m","messages":[],"stream":true,"x_mock":{"chunks":100000,"gap-ms":10}})";
    c.send(chat_request_bytes(key, body));
    auto first = c.read_response(std::chrono::milliseconds(300));  // reads what came; the stream goes on
    (void)first;
  }  // the client goes away
  EXPECT_TRUE(wait_until([&] { return mock.stats()["client_disconnects"].get<int>() > before; }, 1s))
      << "the upstream did not see the gateway hang up within 1 s";
  ASSERT_EQ(usage_rows(1), 1);
  EXPECT_EQ(db.scalar("SELECT outcome || ',' || tokens_estimated FROM usage_records"), "client_disconnected,true");
}

TEST_F(Chat, WarmStreamsTakeNoPostgresLease) {
  start();
  ASSERT_EQ(chat(R"({"model":"m","messages":[],"stream":true})")->status, 200);  // warms the key
  const double leases = server->metric(R"(lagoon_db_leases_total{purpose="auth"})");
  const double seconds = server->metric(R"(lagoon_db_lease_seconds_total{purpose="auth"})");
  for (int i = 0; i < 20; ++i)
    ASSERT_EQ(chat(R"({"model":"m","messages":[],"stream":true,"x_mock":{"chunks":20,"gap-ms":5}})")->status, 200);
  EXPECT_EQ(server->metric(R"(lagoon_db_leases_total{purpose="auth"})"), leases);
  EXPECT_EQ(server->metric(R"(lagoon_db_lease_seconds_total{purpose="auth"})"), seconds);
}

// The cold path (a new key looked up, then a new session made) borrows Postgres connections for those
// lookups only; the stream that follows, however long, holds none. Otherwise a few slow streams would
// take the whole pool and every cold key after them would get 503.
TEST_F(Chat, ColdStreamsHoldNoPostgresLeaseWhileTheyRun) {
  constexpr int kStreams = 4;
  // Each stream lasts about 5 s: long enough to look at the pool while all are open, however slowly
  // they start on a loaded machine, and far longer than any cold lookup.
  constexpr auto kStreamLength = 5s;
  const std::string body = R"({"model":"m","messages":[],"stream":true,"x_mock":{"chunks":50,"gap-ms":100}})";
  std::vector<std::string> keys;
  for (int i = 0; i < kStreams; ++i) keys.push_back(create_key(env, "cold" + std::to_string(i)).second);
  start({{"LAGOON_DB_POOL_SIZE", "8"}});  // room for a lease per stream: one held would show, not a 503
  auto sum = [&](const std::string& name) {
    return server->metric(name + R"({purpose="auth"})") + server->metric(name + R"({purpose="session"})");
  };
  const double auth_leases = server->metric(R"(lagoon_db_leases_total{purpose="auth"})");
  const double session_leases = server->metric(R"(lagoon_db_leases_total{purpose="session"})");
  const double seconds = sum("lagoon_db_lease_seconds_total");

  std::vector<std::optional<HttpResponse>> answers(kStreams);
  std::vector<std::thread> clients;
  for (int i = 0; i < kStreams; ++i)
    clients.emplace_back([&, i] {
      answers[i] = request(server->port(), "POST", "/api/v1/chat/completions", body,
                           "Authorization: Bearer " + keys[i] + "\r\nContent-Type: application/json\r\n");
    });
  // All open, then the pool seen with nothing lent out, then all still open: the pool was idle while
  // every stream ran (streams only end, none starts again).
  const bool all_open = wait_until([&] { return server->metric("lagoon_http_streams_active") == kStreams; }, 10s);
  const bool pool_idle = all_open && wait_until([&] { return server->metric("lagoon_db_pool_in_use") == 0; }, 2s);
  const double open_after = server->metric("lagoon_http_streams_active");
  for (auto& c : clients) c.join();
  ASSERT_TRUE(all_open) << "the streams never were all open at once";
  EXPECT_TRUE(pool_idle) << server->metric("lagoon_db_pool_in_use") << " Postgres connections lent out while streams ran";
  EXPECT_EQ(open_after, kStreams) << "a stream ended before the pool was seen idle: the check proved nothing";
  for (const auto& a : answers) {
    ASSERT_TRUE(a);
    EXPECT_EQ(a->status, 200);
    EXPECT_NE(a->body.find("data: [DONE]"), std::string::npos);
  }

  // The path was cold for every stream: one key lookup and one new session each, in Postgres.
  EXPECT_EQ(server->metric(R"(lagoon_db_leases_total{purpose="auth"})") - auth_leases, kStreams);
  EXPECT_EQ(server->metric(R"(lagoon_db_leases_total{purpose="session"})") - session_leases, kStreams);
  // A lease's seconds are counted when it is given back: read now that every stream has ended, they are
  // the lookups' cost, a small part of the streams' length.
  ASSERT_TRUE(wait_until([&] { return server->metric("lagoon_db_pool_in_use") == 0; }, 5s));
  const double per_stream = (sum("lagoon_db_lease_seconds_total") - seconds) / kStreams;
  std::printf("cold stream: %.1f ms of Postgres leases for a %lld s stream\n", per_stream * 1000,
              static_cast<long long>(kStreamLength.count()));
  EXPECT_LT(per_stream, std::chrono::duration<double>(kStreamLength).count() / 10);
}

TEST_F(Chat, ATwentyMebibyteStreamIsRelayedWhole) {
  start();
  auto r = request(server->port(), "POST", "/api/v1/chat/completions",
                   R"({"model":"m","messages":[],"stream":true,"x_mock":{"chunks":2000,"bytes":20971520}})",
                   "Authorization: Bearer " + key + "\r\nContent-Type: application/json\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_GT(r->body.size(), 20u << 20);
  EXPECT_NE(r->body.rfind("data: [DONE]\n\n"), std::string::npos);
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

TEST_F(Chat, AClientLeavingWhileTheUpstreamIsSilentIsNoticedAtOnce) {
  start();
  {
    Connection c(server->port());
    // The upstream sends the first event, then nothing for 5 s.
    const std::string body = R"({"model":"m","messages":[],"stream":true,"x_mock":{"chunks":3,"gap-ms":5000}})";
    c.send(chat_request_bytes(key, body));
    auto first = c.read_response(std::chrono::milliseconds(300));
    (void)first;
    // A reset: a client killed, or one that cancels with the answer unread. (A plain close looks like
    // a half-close, which is legal and gets the whole answer; it is noticed at the next write.)
    c.reset();
  }
  const auto left = Clock::now();
  ASSERT_EQ(usage_rows(1), 1);
  EXPECT_LT(Clock::now() - left, 1s) << "the gateway noticed only when the upstream spoke again";
  EXPECT_EQ(db.scalar("SELECT outcome FROM usage_records"), "client_disconnected");
}

// shutdown(SHUT_WR) after the request is legal HTTP/1.1: the client still reads the answer. It used to be
// taken for departure, the stream aborted and the row written as client_disconnected.
TEST_F(Chat, AHalfClosedClientGetsTheWholeStream) {
  start();
  Connection c(server->port());
  const std::string body = R"({"model":"m","messages":[],"stream":true,"x_mock":{"chunks":5,"gap-ms":100}})";
  c.send(chat_request_bytes(key, body));
  c.shutdown_write();
  auto r = c.read_response(10s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  const auto events = data_lines(r->body);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back(), "[DONE]");
  EXPECT_EQ(events.size(), 5u + 3u);  // role, five pieces, finish, [DONE]
  ASSERT_EQ(usage_rows(1), 1);
  EXPECT_EQ(db.scalar("SELECT outcome || ',' || tokens_estimated FROM usage_records"), "ok,false");
}

// A client that leaves mid-stream pays at least the whole prompt's estimate and the completion it was
// sent, however early it leaves (the estimate used to count only message text).
TEST_F(Chat, AClientLeavingMidStreamIsBilledTheWholePromptEstimate) {
  start();
  const std::string tools(8000, 't');
  const std::string body = R"({"model":"m","stream":true,"x_mock":{"chunks":100000,"gap-ms":10},)"
                           R"("messages":[{"role":"user","content":"Hi"}],"tools":[{"type":"function","function":{"name":"f","description":")" +
                           tools + R"("}}]})";
  {
    Connection c(server->port());
    c.send(chat_request_bytes(key, body));
    auto first = c.read_response(std::chrono::milliseconds(300));
    (void)first;
    c.reset();
  }
  ASSERT_EQ(usage_rows(1), 1);
  EXPECT_EQ(db.scalar("SELECT outcome || ',' || tokens_estimated FROM usage_records"), "client_disconnected,true");
  EXPECT_GE(std::stoll(db.scalar("SELECT prompt_tokens FROM usage_records")), static_cast<long long>(body.size() / 4));
  EXPECT_GE(std::stoll(db.scalar("SELECT completion_tokens FROM usage_records")), 1);
}

TEST_F(Chat, FiveHundredConcurrentStreamsCompleteWithAPoolOfTwo) {
  start({{"LAGOON_DB_POOL_SIZE", "2"}});
  const std::string body = R"({"model":"m","messages":[],"stream":true,"x_mock":{"chunks":20,"gap-ms":25}})";
  const std::string req = chat_request_bytes(key, body);
  std::vector<std::unique_ptr<Connection>> conns;
  for (int i = 0; i < 500; ++i) conns.push_back(std::make_unique<Connection>(server->port()));
  for (auto& c : conns) ASSERT_TRUE(c->send(req));
  int complete = 0;
  for (auto& c : conns) {
    auto r = c->read_response(30s);
    complete += r && r->status == 200 && r->body.find("data: [DONE]\n\n") != std::string::npos;
  }
  EXPECT_EQ(complete, 500);
  EXPECT_LE(server->metric("lagoon_db_pool_open"), 2);
  ASSERT_EQ(usage_rows(500), 500);
  EXPECT_EQ(db.scalar("SELECT count(*) FROM usage_records WHERE outcome = 'ok' AND NOT tokens_estimated"), "500");
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
