// The Chat fixture shared by chat_test.cpp and chat_stream_test.cpp: a migrated database, a key, the mock
// upstream, and `lagoon serve` started against them; plus the SSE `data:` lines of a streamed body.
// The mock takes its behaviour from an "x_mock" object in the body, which the gateway forwards as is.
// Not thread-safe; each test owns its fixture.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "support/environment.hpp"
#include "support/usage_support.hpp"

namespace lagoon::test {

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
    // The gateway asks the upstream for its prices as it starts: let that be over, so a test counting
    // the upstream's requests counts its own only.
    EXPECT_TRUE(wait_until([&] { return price_refreshes() >= 1; }, std::chrono::seconds(10)));
    return *server;
  }
  double price_refreshes() {
    double n = 0;
    for (const char* r : {"stored", "unchanged", "failed", "malformed", "shrunk", "not_stored"})
      n += server->metric(std::string("lagoon_price_refreshes_total{result=\"") + r + "\"}");
    return n;
  }
  std::optional<HttpResponse> chat(const std::string& body, const std::string& extra_headers = "") {
    return request(server->port(), "POST", "/api/v1/chat/completions", body,
                   "Authorization: Bearer " + key + "\r\nContent-Type: application/json\r\n" + extra_headers);
  }
  // Waits for the usage rows the pipeline flushes (every 100 ms by default).
  std::int64_t usage_rows(std::int64_t expected) {
    std::int64_t n = 0;
    wait_until([&] { return (n = std::stoll(db.scalar("SELECT count(*) FROM usage_records"))) >= expected; },
               std::chrono::seconds(5));
    return n;
  }

  TestDatabase db;
  Env env = lagoon_env(db);
  MockUpstream mock;
  std::string key;
  std::unique_ptr<LagoonServer> server;
};

inline std::vector<std::string> data_lines(const std::string& body) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while ((pos = body.find("data: ", pos)) != std::string::npos) {
    const auto end = body.find("\n\n", pos);
    out.push_back(body.substr(pos + 6, end - pos - 6));
    pos = end;
  }
  return out;
}

}  // namespace lagoon::test
