// Streamed chat (SSE) on the real binary, against the mock upstream, Redis and Postgres: what the client
// sees, a stalled upstream, clients that leave or half-close, what a stream costs in Postgres leases, and
// streams by the hundred or of 20 MiB.
#include <gtest/gtest.h>

#include <cstdio>
#include <thread>

#include <nlohmann/json.hpp>

#include "integration/chat_fixture.hpp"

using namespace lagoon::test;
using namespace std::chrono_literals;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

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
