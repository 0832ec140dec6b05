// Failover of Postgres under load (issue 22): a primary with a synchronous streaming replica, Lagoon given
// both hosts in one libpq multi-host URL with target_session_attrs=read-write. The primary is killed
// (pg_ctl stop -m immediate) and the replica promoted while warm keys send requests and a cold key
// arrives every 100 ms. Then: no warm request failed, cold keys were refused (503) only until the
// promotion plus a little, and the new primary holds exactly one usage row per answered request.
// Runs alone (serial label): it starts two Postgres servers of its own.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <set>
#include <thread>

#include <pqxx/pqxx>

#include "support/environment.hpp"
#include "support/http_client.hpp"
#include "support/load_threads.hpp"
#include "support/usage_support.hpp"

using namespace lagoon::test;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// tests/support/pg_pair.sh: up in the constructor, down (both stopped, files removed) in the destructor.
class PostgresPair {
 public:
  PostgresPair()
      : dir_("/tmp/lagoon-pgpair-" + std::to_string(::getpid()) + "-" + std::to_string(free_port())),
        primary_(free_port()),
        replica_(free_port()) {
    if (!script("up " + dir_ + " " + std::to_string(primary_) + " " + std::to_string(replica_)))
      throw std::runtime_error("could not start the Postgres pair");
  }
  ~PostgresPair() { script("down " + dir_); }
  PostgresPair(const PostgresPair&) = delete;
  PostgresPair& operator=(const PostgresPair&) = delete;

  bool kill_primary() { return script("kill-primary " + dir_); }
  // The primary keeps running but refuses writes (default_transaction_read_only, reloaded).
  bool demote_primary() { return script("read-only-primary " + dir_ + " " + std::to_string(primary_)); }
  bool promote() { return script("promote " + dir_); }
  // Both hosts, the read-write one wanted: what an operator gives Lagoon.
  std::string url() const {
    return "postgresql://postgres@127.0.0.1:" + std::to_string(primary_) + ",127.0.0.1:" + std::to_string(replica_) +
           "/postgres?target_session_attrs=read-write";
  }

 private:
  static bool script(const std::string& args) {
    return std::system((std::string(LAGOON_SOURCE_DIR) + "/tests/support/pg_pair.sh " + args).c_str()) == 0;
  }
  std::string dir_;
  unsigned short primary_, replica_;
};

// Warm keys sending requests back to back and a cold key arriving every 100 ms, from construction to
// stop(); what was answered and what was refused, and when (steady clock; 0 = not yet).
class Load : public LoadThreads {
 public:
  Load(unsigned short port, const std::vector<std::string>& warm, const std::vector<std::string>& cold)
      : port_(port), cold_(cold) {
    for (const auto& k : warm) spawn([this, k] { warm_client(k); });
    spawn([this] { cold_arrivals(); });
  }
  ~Load() { stop(); }  // before the members the threads use are gone

  std::mutex mutex;
  std::set<std::string> answered_ids;  // request ids of warm requests answered 200
  std::vector<std::string> warm_failures;
  std::atomic<Clock::rep> last_cold_refused{0}, first_cold_ok_after{0};

 private:
  static constexpr const char* kBody = R"({"model":"llama-3.3-70b","messages":[{"role":"user","content":"Hello"}]})";
  void warm_client(const std::string& key) {
    while (running()) {
      const auto r = chat_completion(port_, key, kBody);
      {
        std::lock_guard lock(mutex);
        if (r && r->status == 200)
          answered_ids.insert(r->header("x-request-id"));
        else
          warm_failures.push_back(r ? std::to_string(r->status) + " " + r->body : "no answer");
      }
      std::this_thread::sleep_for(5ms);
    }
  }
  void cold_arrivals() {
    for (std::size_t i = 0; running() && i < cold_.size(); ++i) {
      const auto r = chat_completion(port_, cold_[i], kBody);
      const auto now = Clock::now().time_since_epoch().count();
      if (r && r->status == 200) {
        if (is_failing_over() && first_cold_ok_after == 0 && last_cold_refused != 0) first_cold_ok_after = now;
      } else {
        if (!is_failing_over())
          ADD_FAILURE() << "a cold key was refused before the failover: " << (r ? r->body : "no answer");
        EXPECT_TRUE(!r || r->status == 503) << r->status << " " << r->body;  // never a false 401
        last_cold_refused = now;
        first_cold_ok_after = 0;
      }
      std::this_thread::sleep_for(100ms);
    }
  }

  unsigned short port_;
  std::vector<std::string> cold_;
};

long long ms_between(Clock::time_point from, Clock::rep to) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::time_point(Clock::duration(to)) - from).count();
}

class PostgresFailover : public ::testing::Test {
 protected:
  void SetUp() override {
    env = mock.with({{"LAGOON_DATABASE_URL", pair.url()},
                     {"LAGOON_REDIS_URL", required_env("LAGOON_TEST_REDIS_URL")},
                     {"LAGOON_REDIS_PREFIX",
                      "lagoon-failover-" + std::to_string(::getpid()) + "-" + std::to_string(free_port()) + ":"},
                     {"LAGOON_KEY_PEPPER", kTestPepper},
                     // Spill to the journal soon, so that the outage exercises its replay too.
                     {"LAGOON_USAGE_SPILL_AFTER_MS", "200"}});
    ASSERT_EQ(lagoon_cli({"migrate"}, env).code, 0);
    for (int i = 0; i < 4; ++i) warm.push_back(create_key(env, "warm").second);
    for (int i = 0; i < 100; ++i) cold.push_back(create_key(env, "cold").second);
    server = std::make_unique<LagoonServer>(env);
    for (const auto& k : warm) {
      const auto r = chat_completion(server->port(), k, kBody);
      ASSERT_TRUE(r && r->status == 200);
    }
  }

  // Every warm request answered has exactly one usage row on the primary of now, once the queue and
  // the journal are delivered; the warm-up requests have theirs too.
  void expect_one_row_per_answered_request(const Load& load) {
    pqxx::connection c(pair.url());
    std::multiset<std::string> ids;
    wait_until(
        [&] {
          ids.clear();
          pqxx::nontransaction n(c);
          for (const auto& row : n.exec("SELECT request_id FROM usage_records WHERE user_id = "
                                        "(SELECT id FROM users WHERE name = 'warm')"))
            ids.insert(row[0].c_str());
          return ids.size() >= load.answered_ids.size() + warm.size();
        },
        30s);
    std::size_t missing = 0;
    for (const auto& id : load.answered_ids) missing += ids.count(id) == 0;
    EXPECT_EQ(missing, 0u) << "of " << load.answered_ids.size() << " answered";
    EXPECT_EQ(ids.size(), load.answered_ids.size() + warm.size());  // none twice, none unasked
  }

  static constexpr const char* kBody = R"({"model":"llama-3.3-70b","messages":[{"role":"user","content":"Hello"}]})";
  PostgresPair pair;
  MockUpstream mock;
  Env env;
  std::vector<std::string> warm, cold;
  std::unique_ptr<LagoonServer> server;
};

}  // namespace

// The primary dies (pg_ctl stop -m immediate); a second later the replica is promoted.
TEST_F(PostgresFailover, WarmKeysKeepWorkingColdKeysComeBackAndEveryAnsweredRequestHasOneUsageRow) {
  Load load(server->port(), warm, cold);
  std::this_thread::sleep_for(1500ms);
  const auto kill_at = Clock::now();
  load.failing_over();
  ASSERT_TRUE(pair.kill_primary());
  std::this_thread::sleep_for(1s);
  ASSERT_TRUE(pair.promote());
  const auto promoted_at = Clock::now();
  wait_until([&] { return load.first_cold_ok_after != 0; }, 20s);
  std::this_thread::sleep_for(1500ms);  // more load on the new primary
  load.stop();

  ASSERT_NE(load.last_cold_refused.load(), 0) << "no cold key was refused: the failover went unseen";
  ASSERT_NE(load.first_cold_ok_after.load(), 0) << "cold keys never answered again after the promotion";
  const auto refused_until = ms_between(kill_at, load.last_cold_refused);
  const auto back_after = ms_between(promoted_at, load.first_cold_ok_after);
  std::cout << "failover: " << load.answered_ids.size() << " warm requests answered, " << load.warm_failures.size()
            << " failed; cold keys refused until " << refused_until << " ms after the kill, answered again "
            << back_after << " ms after the promotion\n";
  EXPECT_TRUE(load.warm_failures.empty()) << load.warm_failures.size() << ", first: " << load.warm_failures.front();
  // The pool reconnects on its next lease and a cold key arrives every 100 ms.
  EXPECT_LT(back_after, 2000);
  expect_one_row_per_answered_request(load);
  EXPECT_GT(server->metric("lagoon_usage_replayed_total"), 0);  // the outage outlasted the spill delay
}

// The primary turns read-only (as a demoted primary does) and the replica is promoted: connections to
// the old one refuse writes (SQLSTATE 25006) and must be left for the new one, not retried forever.
TEST_F(PostgresFailover, ConnectionsToAHostThatRefusesWritesAreLeftForThePrimaryOfNow) {
  Load load(server->port(), warm, cold);
  std::this_thread::sleep_for(1500ms);
  load.failing_over();
  ASSERT_TRUE(pair.demote_primary());
  ASSERT_TRUE(pair.promote());
  const auto promoted_at = Clock::now();
  // A usage write was refused and the pool moved: rows arrive on the new primary again.
  std::this_thread::sleep_for(3s);
  load.stop();
  std::cout << "demotion: " << load.answered_ids.size() << " warm requests answered, " << load.warm_failures.size()
            << " failed; last cold key refused "
            << (load.last_cold_refused ? ms_between(promoted_at, load.last_cold_refused) : 0)
            << " ms after the promotion\n";
  EXPECT_TRUE(load.warm_failures.empty()) << load.warm_failures.size() << ", first: " << load.warm_failures.front();
  expect_one_row_per_answered_request(load);
}
