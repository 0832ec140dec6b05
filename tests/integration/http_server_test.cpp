// The HTTP promises of INTERFACE.md and the Foundation issue, against the real `lagoon serve`:
// health and readiness, error shapes, limits and deadlines, request ids, access log, drain.
#include <gtest/gtest.h>

#include <csignal>
#include <thread>

#include <nlohmann/json.hpp>

#include "support/environment.hpp"
#include "support/usage_support.hpp"

using namespace lagoon::test;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

void expect_openai_error(const HttpResponse& r, int status, const std::string& code) {
  EXPECT_EQ(r.status, status);
  EXPECT_EQ(r.header("content-type"), "application/json");
  auto j = json::parse(r.body, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.body;
  ASSERT_TRUE(j["error"].is_object()) << r.body;
  EXPECT_EQ(j["error"]["code"], code);
  EXPECT_TRUE(j["error"]["message"].is_string());
  EXPECT_TRUE(j["error"]["type"].is_string());
  EXPECT_TRUE(j["error"].contains("param") && j["error"]["param"].is_null());
  EXPECT_FALSE(r.header("x-request-id").empty());
}

class Server : public ::testing::Test {
 protected:
  Server() : env(lagoon_env(db)) {}
  void SetUp() override { ASSERT_EQ(lagoon_cli({"migrate"}, env).code, 0); }
  LagoonServer& start(Env extra = {}) {
    for (auto& [k, v] : extra) env[k] = v;
    server = std::make_unique<LagoonServer>(env);
    return *server;
  }
  TestDatabase db;
  Env env;
  std::unique_ptr<LagoonServer> server;
};

}  // namespace

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

TEST_F(Server, DeclaredOversizedBodyIs413BeforeTheBodyIsSent) {
  auto& s = start();
  Connection c(s.port());
  c.send("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 4194305\r\n\r\n");
  auto r = c.read_response(5s);
  ASSERT_TRUE(r);
  expect_openai_error(*r, 413, "request_too_large");
  EXPECT_EQ(r->header("connection"), "close");
}

TEST_F(Server, ChunkedBodyOverTheLimitIs413) {
  auto& s = start({{"LAGOON_MAX_BODY_BYTES", "2048"}});
  Connection c(s.port());
  std::string req = "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 4; ++i) req += "400\r\n" + std::string(1024, 'a') + "\r\n";
  req += "0\r\n\r\n";
  c.send(req);
  auto r = c.read_response(5s);
  ASSERT_TRUE(r);
  expect_openai_error(*r, 413, "request_too_large");
}

TEST_F(Server, BodyWithinTheLimitIsRead) {
  auto& s = start({{"LAGOON_MAX_BODY_BYTES", "2048"}});
  auto r = request(s.port(), "POST", "/healthz", std::string(2048, 'a'));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);  // read in full, then routed
}

TEST_F(Server, OversizedHeaderBlockIs431) {
  auto& s = start();
  auto r = request(s.port(), "GET", "/healthz", "", "X-Big: " + std::string(17 * 1024, 'a') + "\r\n");
  ASSERT_TRUE(r);
  expect_openai_error(*r, 431, "headers_too_large");
}

TEST_F(Server, ManySmallHeadersOverTheLimitAre431) {
  auto& s = start();
  std::string headers;
  for (int i = 0; i < 1000; ++i) headers += "X-H" + std::to_string(i) + ": 0123456789\r\n";
  auto r = request(s.port(), "GET", "/healthz", "", headers);
  ASSERT_TRUE(r);
  expect_openai_error(*r, 431, "headers_too_large");
}

TEST_F(Server, LongRequestLineIs414) {
  auto& s = start();
  auto r = request(s.port(), "GET", "/healthz?q=" + std::string(9000, 'a'));
  ASSERT_TRUE(r);
  expect_openai_error(*r, 414, "request_line_too_long");
  auto huge = request(s.port(), "GET", "/healthz?q=" + std::string(20000, 'a'));
  ASSERT_TRUE(huge);
  expect_openai_error(*huge, 414, "request_line_too_long");
}

TEST_F(Server, MalformedRequestIs400AndClosed) {
  auto& s = start();
  Connection c(s.port());
  c.send("GARBAGE\r\n\r\n");
  auto r = c.read_response(5s);
  ASSERT_TRUE(r);
  expect_openai_error(*r, 400, "bad_request");
  EXPECT_TRUE(c.closed_by_peer(3s));
}

TEST_F(Server, IncompleteHeaderGets408AndIsClosedAtTheDeadline) {
  auto& s = start({{"LAGOON_HEADER_TIMEOUT_MS", "500"}});
  Connection c(s.port());
  const auto t0 = std::chrono::steady_clock::now();
  c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n");  // never finished
  auto r = c.read_response(5s);
  const auto waited = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(r);
  expect_openai_error(*r, 408, "request_timeout");
  EXPECT_GE(waited, 450ms);
  EXPECT_LT(waited, 3s);
  EXPECT_TRUE(c.closed_by_peer(3s));
}

TEST_F(Server, TrickledHeaderCannotExtendTheDeadline) {
  auto& s = start({{"LAGOON_HEADER_TIMEOUT_MS", "600"}});
  Connection c(s.port());
  const auto t0 = std::chrono::steady_clock::now();
  std::optional<HttpResponse> r;
  for (int i = 0; i < 40 && !r; ++i) {  // one byte every 50 ms, for up to 2 s
    if (!c.send("X")) break;
    std::this_thread::sleep_for(50ms);
    if (std::chrono::steady_clock::now() - t0 > 700ms) r = c.read_response(3s);
  }
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 408);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
}

TEST_F(Server, SilentConnectionIsClosedWithoutAResponse) {
  auto& s = start({{"LAGOON_HEADER_TIMEOUT_MS", "300"}});
  Connection c(s.port());
  EXPECT_TRUE(c.closed_by_peer(3s));
  EXPECT_FALSE(c.read_response(100ms).has_value());
}

TEST_F(Server, KeepAliveServesSeveralRequestsOnOneConnection) {
  auto& s = start();
  Connection c(s.port());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto r = c.read_response(5s);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
  // Pipelined requests are answered in order.
  ASSERT_TRUE(c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(c.read_response(5s)->status, 200);
  EXPECT_EQ(c.read_response(5s)->status, 404);
}

TEST_F(Server, ExpectContinueGetsAnInterimResponse) {
  auto& s = start();
  Connection c(s.port());
  c.send("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n");
  // The interim response must arrive while the body is still unsent.
  EXPECT_EQ(c.next_status(5s), 100);
  c.send("{}");
  auto r = c.read_response(5s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
}

TEST_F(Server, AKeyIsCheckedFromTheHeadBeforeTheBodyIsReadOrContinued) {
  auto& s = start();
  const auto key = create_key(env).second;
  struct Case {
    std::string name, authorization;
    int status;
  };
  const std::vector<Case> cases = {
      {"no key", "", 401},
      {"a wrong key", "Authorization: Bearer sk-wrong\r\n", 401},
      {"two keys", "Authorization: Bearer " + key + "\r\nAuthorization: Bearer " + key + "\r\n", 400},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Connection conn(s.port());
    conn.send("POST /api/v1/chat/completions HTTP/1.1\r\nHost: x\r\n" + c.authorization +
              "Content-Type: application/json\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n");
    // The first thing the gateway says is the refusal, not 100 Continue, though no body byte was sent.
    EXPECT_EQ(conn.next_status(5s), c.status);
    auto r = conn.read_response(5s);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->header("connection"), "close");
    EXPECT_TRUE(conn.closed_by_peer(5s));
  }
  {
    // Without Expect, the refusal does not wait for the body either.
    Connection conn(s.port());
    conn.send("POST /api/v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n");
    auto r = conn.read_response(5s);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401);
    EXPECT_EQ(r->header("www-authenticate"), "Bearer");
  }
  {
    // A good key gets its 100 Continue and is served.
    Connection conn(s.port());
    conn.send("GET /api/v1/key HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key +
              "\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n");
    EXPECT_EQ(conn.next_status(5s), 100);
    conn.send("{}");
    auto r = conn.read_response(5s);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
}

TEST_F(Server, BodiesBeyondTheBufferedBodyBudgetGet503BeforeTheyAreRead) {
  auto& s = start({{"LAGOON_MAX_BODY_BYTES", "1024"}, {"LAGOON_MAX_BUFFERED_BODY_BYTES", "1500"}});
  const auto key = create_key(env).second;
  auto head = [&](std::size_t length) {
    return "GET /api/v1/key HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key +
           "\r\nContent-Length: " + std::to_string(length) + "\r\nExpect: 100-continue\r\n\r\n";
  };
  // A body of 1000 bytes is being received: its 100 Continue comes once its memory is reserved.
  Connection first(s.port());
  first.send(head(1000));
  ASSERT_EQ(first.next_status(5s), 100);
  // Another 1000 would exceed the 1500 allowed for all bodies together.
  Connection second(s.port());
  second.send(head(1000));
  auto refused = second.read_response(5s);
  ASSERT_TRUE(refused);
  expect_openai_error(*refused, 503, "service_unavailable");
  EXPECT_FALSE(refused->header("retry-after").empty());
  EXPECT_EQ(refused->header("connection"), "close");
  EXPECT_EQ(s.metric("lagoon_http_bodies_refused_total"), 1);
  // 400 more still fit.
  Connection small(s.port());
  small.send(head(400));
  ASSERT_EQ(small.next_status(5s), 100);
  small.send(std::string(400, 'x'));
  EXPECT_EQ(small.read_response(5s)->status, 200);
  // Once the first body has been answered its memory is free again.
  first.send(std::string(1000, 'x'));
  EXPECT_EQ(first.read_response(5s)->status, 200);
  EXPECT_TRUE(wait_until([&] { return s.metric("lagoon_http_body_bytes_reserved") == 0; }, 5s));
  Connection third(s.port());
  third.send(head(1000));
  EXPECT_EQ(third.next_status(5s), 100);
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
