// Dependency faults on the real binary, with a FaultProxy between Lagoon and the dependency so that a
// hung or refusing Postgres is this test's alone: what clients get while it lasts (an answer within a
// deadline, 503 with Retry-After rather than a false 401), and that afterwards usage_records holds one
// row per authenticated request, none twice.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "support/environment.hpp"
#include "support/fault_proxy.hpp"
#include "support/usage_support.hpp"

using namespace lagoon::test;
using namespace std::chrono_literals;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

long rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

class Faults : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(lagoon_cli({"migrate"}, env).code, 0); }
  std::optional<HttpResponse> chat(unsigned short port, const std::string& key, const std::string& extra = "") {
    return chat_completion(port, key, R"({"model":"llama-3.3-70b","messages":[{"role":"user","content":"Hi"}])" + extra + "}");
  }
  std::int64_t rows() { return std::stoll(db.scalar("SELECT count(*) FROM usage_records")); }

  TestDatabase db;
  Env env = lagoon_env(db);
  MockUpstream mock;
};

}  // namespace

TEST_F(Faults, AHungPostgresCostsColdKeysA503WithinADeadlineAndWarmKeysNothing) {
  FaultProxy pg(port_of_url(db.url()));
  Env e = mock.with(env);
  e["LAGOON_DATABASE_URL"] = url_with_port(db.url(), pg.port());
  e["LAGOON_DB_STATEMENT_TIMEOUT_MS"] = "1000";
  const auto warm = create_key(env, "alice").second;
  std::vector<std::string> cold;
  for (int i = 0; i < 4; ++i) cold.push_back(create_key(env, "bob" + std::to_string(i)).second);
  LagoonServer s(e);
  int ok = 0;
  for (int i = 0; i < 3; ++i) {
    auto r = chat(s.port(), warm);
    ASSERT_TRUE(r);
    ok += r->status == 200;
  }
  ASSERT_EQ(ok, 3);

  pg.set_mode(FaultProxy::Mode::stall);
  for (const auto& k : cold) {
    const auto t0 = Clock::now();
    auto r = chat(s.port(), k);
    const auto took = Clock::now() - t0;
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 503) << r->body;
    EXPECT_FALSE(r->header("retry-after").empty());
    EXPECT_LT(took, 4s);
  }
  for (int i = 0; i < 5; ++i) {
    auto r = chat(s.port(), warm);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    ok += r->status == 200;
  }
  EXPECT_EQ(s.wait_ready_status(503, 10s), 503);

  pg.set_mode(FaultProxy::Mode::pass);
  EXPECT_EQ(s.wait_ready_status(200, 15s), 200);
  for (const auto& k : cold) {
    auto r = chat(s.port(), k);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
    ok += r->status == 200;
  }
  // The cold keys' 503s came from authentication and have no row; every answer has one, none twice.
  EXPECT_EQ(settled_count([&] { return rows(); }, ok, 15s), ok);
}

TEST_F(Faults, AnUpstreamThatRefusesConnectionsGetsA502AndARow) {
  const auto key = create_key(env).second;
  Env e = env;
  e["LAGOON_UPSTREAM_URL"] = "http://127.0.0.1:" + std::to_string(free_port()) + "/api/v1";
  e["LAGOON_UPSTREAM_API_KEY"] = "k";
  LagoonServer s(e);
  const auto t0 = Clock::now();
  auto r = chat(s.port(), key);
  ASSERT_TRUE(r);
  EXPECT_LT(Clock::now() - t0, 3s);
  EXPECT_EQ(r->status, 502) << r->body;
  const auto j = json::parse(r->body, nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_TRUE(j["error"]["message"].is_string());
  EXPECT_TRUE(wait_until([&] { return rows() >= 1; }, 5s));
  EXPECT_EQ(db.scalar("SELECT outcome FROM usage_records"), "upstream_unavailable");
}

TEST_F(Faults, ClientsThatStopReadingHoldBoundedMemoryAndAreCutAtTheWriteDeadline) {
  const auto key = create_key(env).second;
  Env e = mock.with(env);
  // Long enough that every stream is still open when memory is measured, however slowly the 20 start.
  e["LAGOON_WRITE_TIMEOUT_MS"] = "5000";
  LagoonServer s(e);
  auto first = chat(s.port(), key);
  ASSERT_TRUE(first);
  ASSERT_EQ(first->status, 200);
  const long before = rss_kib(s.process().pid());
  // 20 streams of 64 MiB each whose clients send the request and never read a byte.
  constexpr int kStreams = 20;
  std::vector<std::unique_ptr<Connection>> conns;
  const std::string body = json{{"model", "llama-3.3-70b"},
                                {"stream", true},
                                {"messages", {{{"role", "user"}, {"content", "Hi"}}}},
                                {"x_mock", {{"chunks", 4096}, {"bytes", 64 << 20}}}}
                               .dump();
  for (int i = 0; i < kStreams; ++i) {
    conns.push_back(std::make_unique<Connection>(s.port()));
    ASSERT_TRUE(conns.back()->send(chat_request_bytes(key, body)));
  }
  // The figure below means something only while all 20 are being relayed to clients that do not read.
  ASSERT_TRUE(wait_until([&] { return s.metric("lagoon_http_streams_active") == kStreams; }, 10s))
      << s.metric("lagoon_http_streams_active") << " streams active";
  std::this_thread::sleep_for(1500ms);  // time for each to fill every buffer on its way
  const long stuck = rss_kib(s.process().pid());
  ASSERT_EQ(s.metric("lagoon_http_streams_active"), kStreams) << "a stream ended before memory was measured";
  std::printf("Lagoon RSS: %ld KiB before, %ld KiB with %d clients not reading 64 MiB streams (+%.0f KiB each)\n",
              before, stuck, kStreams, static_cast<double>(stuck - before) / kStreams);
  EXPECT_LT(stuck - before, kStreams * 1024) << "more than 1 MiB per stuck stream";
  // Each is cut at the write deadline, and the upstream stream with it.
  EXPECT_TRUE(wait_until([&] { return s.metric("lagoon_http_streams_active") == 0; }, 12s));
  EXPECT_EQ(settled_count([&] { return rows(); }, kStreams + 1, 5s), kStreams + 1);
  EXPECT_EQ(db.scalar("SELECT count(*) FROM usage_records WHERE outcome = 'client_disconnected'"),
            std::to_string(kStreams));
  EXPECT_TRUE(wait_until([&] { return mock.stats()["client_disconnects"].get<int>() >= kStreams; }, 5s));
}

TEST_F(Faults, ColdKeysExhaustingThePoolGet503NeverA401AndWarmKeysAreUntouched) {
  FaultProxy pg(port_of_url(db.url()));
  Env e = mock.with(env);
  e["LAGOON_DATABASE_URL"] = url_with_port(db.url(), pg.port());
  e["LAGOON_DB_POOL_SIZE"] = "2";
  e["LAGOON_DB_ACQUIRE_TIMEOUT_MS"] = "50";
  const auto warm = create_key(env, "alice").second;
  std::vector<std::string> cold;
  for (int i = 0; i < 60; ++i) {
    std::string user = "u";  // not "u" + to_string(i): GCC 12 warns falsely (-Wrestrict) on that here
    user += std::to_string(i);
    cold.push_back(create_key(env, user).second);
  }
  LagoonServer s(e);
  auto first = chat(s.port(), warm);
  ASSERT_TRUE(first);
  ASSERT_EQ(first->status, 200);
  pg.set_delay(30ms);  // every Postgres round trip now takes 30 ms or more each way

  std::atomic<int> ok{0}, unavailable{0}, other{0}, warm_ok{0}, warm_bad{0};
  std::atomic<bool> storm{true};
  std::thread warm_client([&] {
    while (storm.load()) {
      auto r = chat(s.port(), warm);
      (r && r->status == 200 ? warm_ok : warm_bad)++;
    }
  });
  std::vector<std::thread> clients;
  for (int t = 0; t < 6; ++t)
    clients.emplace_back([&, t] {
      for (std::size_t i = t; i < cold.size(); i += 6) {
        auto r = chat(s.port(), cold[i]);
        if (r && r->status == 200) ok++;
        else if (r && r->status == 503 && !r->header("retry-after").empty()) unavailable++;
        else other++;
      }
    });
  for (auto& c : clients) c.join();
  storm = false;
  warm_client.join();
  std::printf("cold keys: %d ok, %d 503; warm key: %d ok, %d not\n", ok.load(), unavailable.load(), warm_ok.load(),
              warm_bad.load());
  EXPECT_EQ(other.load(), 0);
  EXPECT_GT(unavailable.load(), 0);  // the pool was exhausted
  EXPECT_EQ(warm_bad.load(), 0);
  EXPECT_GT(warm_ok.load(), 0);
  pg.set_delay(0ms);
  // Every answered request has its row; a 503 has one too when it came after authentication (the
  // session lookup found the pool exhausted), never when authentication itself could not be done. So
  // the rows are exactly the authenticated requests, none twice: the total, watched past that count.
  const int answered = ok.load() + 1 + warm_ok.load();
  const int unauthenticated_503 = static_cast<int>(s.metric(R"(lagoon_auth_requests_total{outcome="unavailable"})"));
  const int session_503 = unavailable.load() - unauthenticated_503;
  const auto authenticated = static_cast<std::int64_t>(s.metric(R"(lagoon_auth_requests_total{outcome="ok"})"));
  EXPECT_EQ(authenticated, answered + session_503);
  EXPECT_EQ(settled_count([&] { return rows(); }, authenticated, 10s), authenticated);
  EXPECT_EQ(db.scalar("SELECT count(*) FROM usage_records WHERE status_code = 200"), std::to_string(answered));
  EXPECT_EQ(db.scalar("SELECT count(*) FROM usage_records WHERE status_code = 503 AND outcome = 'session_unavailable'"),
            std::to_string(session_503));
}
