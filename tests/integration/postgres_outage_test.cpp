// Stops and restarts the shared test Postgres (commands exported by `make test`), so it runs alone.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "lagoon/keys/api_key.hpp"
#include "lagoon/db/pool.hpp"
#include "lagoon/metrics/registry.hpp"
#include "lagoon/usage/journal.hpp"
#include "lagoon/usage/pipeline.hpp"
#include "support/environment.hpp"
#include "support/usage_support.hpp"

using namespace lagoon;
using namespace lagoon::test;
using namespace std::chrono_literals;

namespace {

// Stops the shared test Postgres (commands exported by `make test`) and starts it again however the
// test ends: an assertion failing while it is down must not leave every later test without Postgres.
class PostgresSwitch {
 public:
  PostgresSwitch()
      : stop_(required_env("LAGOON_TEST_PG_STOP")), start_(required_env("LAGOON_TEST_PG_START")) {}
  ~PostgresSwitch() { restart(); }
  PostgresSwitch(const PostgresSwitch&) = delete;
  PostgresSwitch& operator=(const PostgresSwitch&) = delete;

  bool stop() {
    stopped_ = std::system(stop_.c_str()) == 0;
    return stopped_;
  }
  bool restart() {
    if (!stopped_) return true;
    stopped_ = false;
    return std::system(start_.c_str()) == 0;
  }

 private:
  std::string stop_, start_;
  bool stopped_ = false;
};

// This process's resident set size (VmRSS), in KiB.
long rss_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return 0L;
}

// The largest RSS seen once a second for `seconds` seconds, in KiB.
long peak_rss_kib_over(int seconds) {
  long peak_rss_kib = 0;
  for (int s = 0; s < seconds; ++s) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    peak_rss_kib = std::max(peak_rss_kib, rss_kib());
  }
  return peak_rss_kib;
}

// 2,000 sample records a second ("o-0", "o-1", …) pushed into `p` until `producing` turns false, each
// push counted in `pushed`; a refused push fails the test.
std::thread produce_steadily(usage::Pipeline& p, std::int64_t key_id, std::int64_t user_id,
                             std::atomic<bool>& producing, std::atomic<std::uint64_t>& pushed) {
  return std::thread([&p, key_id, user_id, &producing, &pushed] {
    auto next = std::chrono::steady_clock::now();
    for (std::uint64_t i = 0; producing; ++i) {
      if (!p.push(sample_record("o", i, key_id, user_id))) ADD_FAILURE() << "push refused at " << i;
      pushed = i + 1;
      next += std::chrono::microseconds(500);
      std::this_thread::sleep_until(next);
    }
  });
}

}  // namespace

TEST(PostgresOutage, ReadyzIs503WhilePostgresIsStoppedAndRecovers) {
  PostgresSwitch pg;
  TestDatabase db;
  auto env = lagoon_env(db);
  ASSERT_EQ(lagoon_cli({"migrate"}, env).code, 0);
  LagoonServer s(env);
  ASSERT_EQ(s.wait_ready_status(200, 5s), 200);

  ASSERT_TRUE(pg.stop());
  const int during = s.wait_ready_status(503, 10s);
  auto r = request(s.port(), "GET", "/readyz");
  const bool restarted = pg.restart();
  ASSERT_TRUE(restarted) << "could not restart the test Postgres";

  EXPECT_EQ(during, 503);
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->header("retry-after").empty());
  EXPECT_NE(r->body.find("postgres unavailable"), std::string::npos) << r->body;
  EXPECT_EQ(request(s.port(), "GET", "/healthz")->status, 200);  // alive, just not ready
  EXPECT_EQ(s.wait_ready_status(200, 15s), 200);
}

// Cached keys keep working while Postgres is down; a key no cache knows gets 503, never 401.
TEST(PostgresOutage, CachedKeysWorkAndUncachedOnesGet503) {
  PostgresSwitch pg;
  TestDatabase db;
  auto env = lagoon_env(db);
  ASSERT_EQ(lagoon_cli({"migrate"}, env).code, 0);
  auto [warm_id, warm] = create_key(env);
  auto [cold_id, cold] = create_key(env);
  env["LAGOON_AUTH_CACHE_TTL_MS"] = "200";  // so the warm key is soon served by Redis, not L1
  LagoonServer s(env);
  auto status = [&](const std::string& key) {
    auto r = request(s.port(), "GET", "/api/v1/key", "", "Authorization: Bearer " + key + "\r\n");
    return r ? r->status : 0;
  };
  ASSERT_EQ(status(warm), 200);

  ASSERT_TRUE(pg.stop());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const int warm_during = status(warm);
  auto cold_during = request(s.port(), "GET", "/api/v1/key", "", "Authorization: Bearer " + cold + "\r\n");
  const int unknown_during = status(lagoon::keys::generate(kTestPepper));
  const bool restarted = pg.restart();
  ASSERT_TRUE(restarted) << "could not restart the test Postgres";

  EXPECT_EQ(warm_during, 200);
  ASSERT_TRUE(cold_during);
  EXPECT_EQ(cold_during->status, 503) << cold_during->body;
  EXPECT_FALSE(cold_during->header("retry-after").empty());
  EXPECT_EQ(nlohmann::json::parse(cold_during->body)["error"]["code"], "service_unavailable");
  EXPECT_EQ(unknown_during, 503);
  EXPECT_GE(s.metric(R"(lagoon_auth_lookups_total{layer="redis",result="hit"})"), 1);

  // Back: the pool reconnects on the next lease.
  int cold_after = 0;
  for (int i = 0; i < 100 && cold_after != 200; ++i) {
    cold_after = status(cold);
    if (cold_after != 200) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(cold_after, 200);
}

// Postgres away for 30 s under a steady stream of usage records: nothing lost, nothing doubled,
// memory bounded (the queue is a fixed-size file; the backlog goes to the journal), journal emptied.
TEST(PostgresOutage, UsageRecordsSurviveThirtySecondsWithoutPostgres) {
  PostgresSwitch pg;
  TestDatabase db;
  auto env = lagoon_env(db);
  ASSERT_EQ(lagoon_cli({"migrate"}, env).code, 0);
  auto [key_id, key] = create_key(env);
  const auto user_id = std::stoll(db.scalar("SELECT user_id FROM api_keys WHERE id = " + std::to_string(key_id)));
  TempDir dir;
  auto cfg = usage_config(db, dir.path().string());
  metrics::Registry registry;
  db::Pool pool(cfg, registry);
  usage::Pipeline p(cfg, pool, registry);
  p.start();

  // 2,000 records/s for 40 s; Postgres stops at 5 s and comes back at 35 s.
  std::atomic<std::uint64_t> pushed{0};
  std::atomic<bool> producing{true};
  std::thread producer = produce_steadily(p, key_id, user_id, producing, pushed);
  std::this_thread::sleep_for(std::chrono::seconds(5));
  ASSERT_TRUE(pg.stop());
  const long rss_before = rss_kib();
  const long peak_rss_kib = peak_rss_kib_over(30);
  const bool restarted = pg.restart();
  std::this_thread::sleep_for(std::chrono::seconds(5));
  producing = false;
  producer.join();
  ASSERT_TRUE(restarted) << "could not restart the test Postgres";

  const bool drained = wait_until(
      [&] { return p.idle() && db.scalar("SELECT count(*) FROM usage_records") == std::to_string(pushed.load()); },
      std::chrono::seconds(60));
  p.stop(std::chrono::seconds(5));
  EXPECT_TRUE(drained);
  EXPECT_EQ(db.scalar("SELECT count(*) FROM usage_records"), std::to_string(pushed.load()));
  const auto pushed_records = static_cast<std::int64_t>(pushed.load());
  EXPECT_EQ(rows_numbered_below(db, "o", pushed_records), pushed_records);
  EXPECT_EQ(registry.counter("lagoon_usage_dropped_total", "").value(), 0u);
  const auto journalled = registry.counter("lagoon_usage_journalled_total", "").value();
  EXPECT_GT(journalled, 0u);
  EXPECT_EQ(registry.counter("lagoon_usage_replayed_total", "").value(), journalled);
  EXPECT_FALSE(usage::Journal((dir.path() / "journal").string()).pending());
  // Bounded: the backlog of ~60,000 records lives in the journal, not in memory.
  EXPECT_LT(peak_rss_kib - rss_before, 64 * 1024) << "RSS grew by " << (peak_rss_kib - rss_before) << " KiB";
  std::cout << "[ figures  ] " << pushed.load() << " records, " << journalled
            << " via the journal; RSS before the outage " << rss_before << " KiB, peak during it " << peak_rss_kib
            << " KiB\n";
}

// With its key and session cached, a chat request needs no Postgres: it proceeds while Postgres is down,
// and its usage row arrives once Postgres is back.
TEST(PostgresOutage, ChatWithACachedSessionProceeds) {
  PostgresSwitch pg;
  TestDatabase db;
  auto env = lagoon_env(db);
  ASSERT_EQ(lagoon_cli({"migrate"}, env).code, 0);
  auto [key_id, key] = create_key(env);
  MockUpstream mock;
  LagoonServer s(mock.with(env));
  auto chat = [&] {
    auto r = request(s.port(), "POST", "/api/v1/chat/completions", R"({"model":"m","messages":[]})",
                     "Authorization: Bearer " + key + "\r\nContent-Type: application/json\r\n");
    return r ? r->status : 0;
  };
  ASSERT_EQ(chat(), 200);  // key and session now cached
  ASSERT_TRUE(pg.stop());
  const int during = chat();
  const bool restarted = pg.restart();
  ASSERT_TRUE(restarted) << "could not restart the test Postgres";
  EXPECT_EQ(during, 200);
  EXPECT_TRUE(wait_until([&] { return db.scalar("SELECT count(*) FROM usage_records") == "2"; },
                         std::chrono::seconds(20)));
}
