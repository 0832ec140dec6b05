// The HTTP promises of INTERFACE.md and the Foundation issue, against the real `lagoon serve`: health
// and readiness, error shapes, request ids, metrics, access log, drain. How a request is read (limits,
// deadlines, keep-alive, 100-continue): http_reading_test.cpp.
#include <gtest/gtest.h>

#include <csignal>
#include <thread>

#include <nlohmann/json.hpp>

#include "integration/server_fixture.hpp"
#include "support/environment.hpp"

using namespace lagoon::test;
using nlohmann::json;
using namespace std::chrono_literals;

TEST_F(Server, HealthzAnswersWithAFreshRequestId) {
  auto& s = start();
  auto r = request(s.port(), "GET", "/healthz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(json::parse(r->body)["status"], "ok");
  EXPECT_EQ(r->header("x-request-id").size(), 36u);
}

TEST_F(Server, SaneClientRequestIdIsEchoedOthersReplaced) {
  auto& s = start();
  auto a = request(s.port(), "GET", "/healthz", "", "X-Request-Id: my-trace.42\r\n");
  EXPECT_EQ(a->header("x-request-id"), "my-trace.42");
  auto b = request(s.port(), "GET", "/healthz", "", "X-Request-Id: <script>\r\n");
  EXPECT_NE(b->header("x-request-id"), "<script>");
  EXPECT_EQ(b->header("x-request-id").size(), 36u);
}

TEST_F(Server, ReadyzIs200WhenRedisAndPostgresAnswer) {
  auto& s = start();
  EXPECT_EQ(s.wait_ready_status(200, 5s), 200);
  auto r = request(s.port(), "GET", "/readyz");
  EXPECT_EQ(json::parse(r->body)["status"], "ready");
}

TEST_F(Server, ReadyzIs503WithRetryAfterWhenRedisIsDownAndRecovers) {
  const auto redis_port = free_port();
  auto redis = std::make_unique<Process>(
      std::vector<std::string>{"/usr/bin/redis-server", "--port", std::to_string(redis_port), "--bind", "127.0.0.1",
                               "--save", "", "--appendonly", "no"},
      Env{}, "/tmp/lagoon-test-redis-" + std::to_string(redis_port) + ".log");
  auto& s = start({{"LAGOON_REDIS_URL", "redis://127.0.0.1:" + std::to_string(redis_port) + "/0"}});
  ASSERT_EQ(s.wait_ready_status(200, 5s), 200);
  redis.reset();  // SIGKILL
  ASSERT_EQ(s.wait_ready_status(503, 5s), 503);
  auto r = request(s.port(), "GET", "/readyz");
  expect_openai_error(*r, 503, "service_unavailable");
  EXPECT_FALSE(r->header("retry-after").empty());
  EXPECT_NE(r->body.find("redis unavailable"), std::string::npos) << r->body;
  EXPECT_NE(s.metrics().find("lagoon_dependency_up{dependency=\"redis\"} 0"), std::string::npos);
  redis = std::make_unique<Process>(
      std::vector<std::string>{"/usr/bin/redis-server", "--port", std::to_string(redis_port), "--bind", "127.0.0.1",
                               "--save", "", "--appendonly", "no"},
      Env{}, "/tmp/lagoon-test-redis-" + std::to_string(redis_port) + ".log");
  EXPECT_EQ(s.wait_ready_status(200, 5s), 200);
}

TEST_F(Server, UnknownPathIs404AndWrongMethodIs405WithAllow) {
  auto& s = start();
  auto nf = request(s.port(), "GET", "/nope?x=1");
  expect_openai_error(*nf, 404, "not_found");
  auto na = request(s.port(), "POST", "/healthz", "{}");
  expect_openai_error(*na, 405, "method_not_allowed");
  EXPECT_EQ(na->header("allow"), "GET");
}

TEST_F(Server, MetricsAreInPrometheusTextFormat) {
  auto& s = start();
  request(s.port(), "GET", "/healthz");
  request(s.port(), "GET", "/nope");
  // A request is counted once its response is written, which may be just after the client has read it.
  std::optional<HttpResponse> r;
  for (int i = 0; i < 50; ++i) {
    r = request(s.port(), "GET", "/metrics");
    if (r && r->body.find("route=\"unmatched\",status=\"404\"} 1") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("content-type").rfind("text/plain; version=0.0.4", 0), 0u);
  EXPECT_NE(r->body.find("# TYPE lagoon_http_requests_total counter"), std::string::npos);
  EXPECT_NE(r->body.find("lagoon_http_requests_total{route=\"/healthz\",status=\"200\",outcome=\"ok\"}"), std::string::npos);
  EXPECT_NE(r->body.find("lagoon_http_requests_total{route=\"unmatched\",status=\"404\",outcome=\"client_error\"} 1"), std::string::npos);
  EXPECT_NE(r->body.find("# TYPE lagoon_http_request_duration_seconds histogram"), std::string::npos);
  EXPECT_NE(r->body.find("lagoon_db_pool_size 4"), std::string::npos);
  EXPECT_NE(r->body.find("lagoon_http_connections_active"), std::string::npos);
}

TEST_F(Server, AccessLogIsOneJsonLinePerRequestAndNeverHoldsTheAuthorizationHeader) {
  auto& s = start();
  const std::string secret = "sk-lgn_SECRETSECRETSECRETSECRET0123456789abcdefghij";
  request(s.port(), "GET", "/healthz?token=querysecret", "", "Authorization: Bearer " + secret + "\r\nX-Request-Id: log-check-1\r\n");
  std::string line;
  for (int i = 0; i < 100 && line.empty(); ++i) {
    std::this_thread::sleep_for(20ms);
    const std::string out = s.process().output();
    auto at = out.find("\"request_id\":\"log-check-1\"");
    if (at != std::string::npos) {
      auto begin = out.rfind('\n', at);
      line = out.substr(begin == std::string::npos ? 0 : begin + 1, out.find('\n', at) - (begin + 1));
    }
  }
  ASSERT_FALSE(line.empty()) << s.process().output();
  auto j = json::parse(line);
  EXPECT_EQ(j["msg"], "access");
  EXPECT_EQ(j["method"], "GET");
  EXPECT_EQ(j["path"], "/healthz");
  EXPECT_EQ(j["status"], 200);
  EXPECT_TRUE(j["duration_ms"].is_number());
  const std::string all = s.process().output();
  EXPECT_EQ(all.find("SECRETSECRET"), std::string::npos);
  EXPECT_EQ(all.find("querysecret"), std::string::npos);
}

TEST_F(Server, SigtermWithIdleConnectionsExitsZeroPromptly) {
  auto& s = start();
  Connection idle(s.port());
  ASSERT_TRUE(idle.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(idle.read_response(5s));
  const auto t0 = std::chrono::steady_clock::now();
  s.process().signal(SIGTERM);
  auto code = s.process().wait(10s);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);  // the idle connection did not hold the drain
  EXPECT_TRUE(idle.closed_by_peer(1s));
}

TEST_F(Server, SigtermLetsAnInFlightRequestFinish) {
  auto& s = start({{"LAGOON_BODY_TIMEOUT_MS", "5000"}});
  Connection c(s.port());
  // A request whose body is still arriving when the signal comes.
  ASSERT_TRUE(c.send("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab"));
  std::this_thread::sleep_for(200ms);
  s.process().signal(SIGTERM);
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE(s.process().running());
  ASSERT_TRUE(c.send("cd"));
  auto r = c.read_response(5s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->header("connection"), "close");
  EXPECT_EQ(s.process().wait(5s), 0);
}

TEST_F(Server, ReadyzTurns503AsSoonAsDrainingBegins) {
  auto& s = start({{"LAGOON_BODY_TIMEOUT_MS", "5000"}});
  ASSERT_EQ(s.wait_ready_status(200, 5s), 200);
  Connection holder(s.port());  // keeps the drain waiting
  ASSERT_TRUE(holder.send("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab"));
  std::this_thread::sleep_for(100ms);
  Connection probe(s.port());  // a request begun before the signal, finished after it
  ASSERT_TRUE(probe.send("GET /readyz HTTP/1.1\r\n"));
  std::this_thread::sleep_for(100ms);
  s.process().signal(SIGTERM);
  std::this_thread::sleep_for(200ms);
  ASSERT_TRUE(probe.send("Host: x\r\n\r\n"));
  auto r = probe.read_response(5s);
  ASSERT_TRUE(r);
  expect_openai_error(*r, 503, "service_unavailable");
  EXPECT_NE(r->body.find("draining"), std::string::npos);
  holder.send("cd");
  EXPECT_EQ(s.process().wait(5s), 0);
}

TEST(ServerConfig, BadListenAddressExitsTwo) {
  TestDatabase db;
  auto env = lagoon_env(db);
  env["LAGOON_LISTEN"] = "nonsense";
  auto r = lagoon_cli({"serve"}, env);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("LAGOON_LISTEN"), std::string::npos);
}
