// The operator console on the real binary: its files and the headers that guard them, its own listener
// (LAGOON_CONSOLE_LISTEN), the admin metrics it reads, and an operator's whole day in a real browser —
// Debian's chromium driven by puppeteer-core (tests/e2e/console.mjs) — against lagoon, Postgres, Redis
// and the mock: sign in, create a user and a key, use the key, watch its requests and spend appear,
// revoke it, a name that is markup shown as text, sign out. Screenshots land in
// build/tests/console-screenshots/ (ctest's working directory).
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>

#include "admin_money_fixture.hpp"
#include "support/http_client.hpp"
#include "support/usage_support.hpp"

using namespace lagoon::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

class Console : public AdminMoneyTest {};

std::string bearer(const std::string& token) { return "Authorization: Bearer " + token + "\r\n"; }

}  // namespace

TEST_F(Console, ItsFilesComeWithTheirGuardsAndItsDataNeedsTheToken) {
  start_server();
  const auto port = server->port();
  auto page = request(port, "GET", "/console/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->header("content-type"), "text/html; charset=utf-8");
  EXPECT_NE(page->header("content-security-policy").find("default-src 'self'"), std::string::npos);
  EXPECT_EQ(page->header("x-frame-options"), "DENY");
  EXPECT_EQ(page->header("referrer-policy"), "no-referrer");
  auto bare = request(port, "GET", "/console");
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->status, 308);
  EXPECT_EQ(bare->header("location"), "/console/");
  EXPECT_EQ(request(port, "GET", "/console/no-such.js")->status, 404);
  EXPECT_EQ(request(port, "POST", "/console/")->status, 405);
  // What the page shows comes from the admin API, which wants the token.
  EXPECT_EQ(request(port, "GET", "/admin/v1/metrics")->status, 401);
  EXPECT_EQ(request(port, "GET", "/admin/v1/metrics", "", bearer("a-wrong-token-0123456789"))->status, 401);
  auto metrics = call("GET", "/admin/v1/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_EQ(metrics->header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(metrics->body.find("lagoon_http_requests_total{route=\"/console\""), std::string::npos);
}

TEST_F(Console, IsOffWithoutTheAdminToken) {
  Env e = mock.with(env);
  server = std::make_unique<LagoonServer>(e);
  EXPECT_EQ(request(server->port(), "GET", "/console/")->status, 404);
  EXPECT_EQ(request(server->port(), "GET", "/console")->status, 404);
}

TEST_F(Console, OnItsOwnListenerItAndTheAdminApiAreThereAndNotOnTheMainOne) {
  const auto console_port = free_port();
  start_server({{"LAGOON_CONSOLE_LISTEN", "127.0.0.1:" + std::to_string(console_port)}});
  auto page = request(console_port, "GET", "/console/");
  ASSERT_TRUE(page) << "nothing listens on the console's port";
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(request(console_port, "GET", "/admin/v1/users", "", bearer(kAdminToken))->status, 200);
  // Nothing else is served there: no relay, no health.
  EXPECT_EQ(request(console_port, "GET", "/healthz")->status, 404);
  EXPECT_EQ(request(console_port, "POST", "/api/v1/chat/completions", "{}")->status, 404);
  // The main listener serves no console (its admin API stays, for the tools that use it).
  EXPECT_EQ(request(server->port(), "GET", "/console/")->status, 404);
  EXPECT_EQ(call("GET", "/admin/v1/users")->status, 200);
}

// max_connections is the process's: connections held open on the main listener leave none for the
// console's (each listener counting its own would double the limit, and the body budget with it).
TEST_F(Console, ItsOwnListenerSharesTheProcesssConnectionLimit) {
  const auto console_port = free_port();
  start_server(
      {{"LAGOON_CONSOLE_LISTEN", "127.0.0.1:" + std::to_string(console_port)}, {"LAGOON_MAX_CONNECTIONS", "2"}});
  // Two kept-alive connections on the main listener, each answered once: both are open and counted. (One
  // refused at once means a connection of the harness's start-up was still being counted: try again.)
  auto answered_connection = [&]() -> int {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(server->port());
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const std::string ask = "GET /healthz HTTP/1.1\r\nHost: lagoon\r\n\r\n";
    char answer[512];
    if (::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0 &&
        ::send(fd, ask.data(), ask.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(ask.size()) &&
        ::recv(fd, answer, sizeof answer, 0) >= 12 && std::string(answer, 12) == "HTTP/1.1 200")
      return fd;
    ::close(fd);
    return -1;
  };
  std::vector<int> held;
  ASSERT_TRUE(wait_until(
      [&] {
        const int fd = answered_connection();
        if (fd >= 0) held.push_back(fd);
        return held.size() == 2;
      },
      5s));
  EXPECT_FALSE(request(console_port, "GET", "/console/")) << "the console's listener accepted a third connection";
  for (int fd : held) ::close(fd);
  // Once they are gone, the console is served again (the server notices the closes in its own time).
  ASSERT_TRUE(wait_until(
      [&] {
        auto page = request(console_port, "GET", "/console/");
        return page && page->status == 200;
      },
      5s));
  EXPECT_GE(server->metric("lagoon_http_connections_rejected_total"), 1);
}

TEST_F(Console, AnOperatorDoesTheDaysWorkInARealBrowser) {
  keep_clear_of_utc_midnight(100s);  // the page's "today" must be the day the requests were made
  start_server();
  const auto shots = std::filesystem::current_path() / "console-screenshots";
  std::filesystem::remove_all(shots);  // only this run's pictures, a failure's included
  Env e;
  e["LAGOON_URL"] = "http://127.0.0.1:" + std::to_string(server->port());
  e["LAGOON_ADMIN_TOKEN"] = kAdminToken;
  e["LAGOON_MODEL"] = "llama-3.3-70b";  // priced in the mock's catalog: its requests cost money
  e["CONSOLE_SCREENSHOTS"] = shots.string();
  e["HOME"] = std::filesystem::temp_directory_path().string();  // chromium's profile and crash dirs
  auto r = run({"/usr/bin/env", "node", std::string(LAGOON_SOURCE_DIR) + "/tests/e2e/console.mjs"}, e, 100s);
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("\"ok\":true"), std::string::npos) << r.out << r.err;
  // What the browser did, seen from the database: the key it made was used three times and revoked.
  EXPECT_EQ(db.scalar("SELECT count(*) FROM api_keys WHERE name = 'console key' AND revoked_at IS NOT NULL"), "1");
  EXPECT_EQ(db.scalar("SELECT count(*) FROM usage_records u JOIN api_keys k ON k.id = u.api_key_id "
                      "WHERE k.name = 'console key' AND u.status_code = 200"),
            "3");
}
