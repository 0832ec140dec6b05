// How the real `lagoon serve` reads a request (INTERFACE.md and the Foundation issue): limits on the body,
// the header block and the request line; the deadlines for a header that is late, trickled or never
// sent; keep-alive and pipelining; 100-continue, the key checked from the head, and the budget for
// bodies held in memory. Health, errors, logs and drain: http_server_test.cpp.
#include <gtest/gtest.h>

#include <thread>

#include "integration/server_fixture.hpp"
#include "support/environment.hpp"
#include "support/usage_support.hpp"

using namespace lagoon::test;
using namespace std::chrono_literals;

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
