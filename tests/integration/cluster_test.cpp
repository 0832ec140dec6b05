// Scale-out: three `lagoon serve` instances behind haproxy on one Redis and one Postgres, as users run
// them behind their load balancer. Nothing may assume it is alone: revocations, rate limits, sessions
// and usage rows must come out as if there were one instance, and one instance leaving under load must
// cost clients nothing. Part of lagoon_load_tests (RUN_SERIAL): three instances, haproxy and a dozen
// clients fill both cores, and beside other tests a Redis or pool deadline missed for want of CPU
// gives a (correct) 503 that is no fault of the cluster.
#include <gtest/gtest.h>

#include <cmath>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <random>
#include <thread>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "support/environment.hpp"
#include "support/haproxy.hpp"
#include "support/usage_support.hpp"

using namespace lagoon::test;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

const std::string kHello = R"({"model":"llama-3.3-70b","messages":[{"role":"user","content":"Hello"}]})";

class Cluster : public ::testing::Test {
 public:  // for the helpers below, which tests of this fixture share
  void SetUp() override { ASSERT_EQ(lagoon_cli({"migrate"}, env).code, 0); }
  void start(Env extra = {}) {
    Env e = mock.with(env);
    for (auto& [k, v] : extra) e[k] = v;
    std::vector<unsigned short> ports;
    for (int i = 0; i < 3; ++i) {
      instances.push_back(std::make_unique<LagoonServer>(e));
      ports.push_back(instances.back()->port());
    }
    for (auto& s : instances) ASSERT_EQ(s->wait_ready_status(200, 10s), 200);
    lb = std::make_unique<Haproxy>(ports);
  }
  // No answer (nullopt) also when the connection cannot be made: an exception must not escape a client
  // thread (std::terminate would hide what happened).
  std::optional<HttpResponse> chat(unsigned short port, const std::string& key, const std::string& body = kHello) {
    try {
      return chat_completion(port, key, body);
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  std::int64_t rows(const std::string& where = "true") {
    return std::stoll(db.scalar("SELECT count(*) FROM usage_records WHERE " + where));
  }

  TestDatabase db;
  Env env = lagoon_env(db);
  MockUpstream mock;
  std::vector<std::unique_ptr<LagoonServer>> instances;
  std::unique_ptr<Haproxy> lb;
};

}  // namespace

// README: a key revoked with the CLI, or through the admin API of any one instance, is refused by all
// within a second. `revoke` does it one way or the other, once every instance has the key cached.
void expect_revocation_reaches_every_instance_within_one_second(Cluster& c, const std::string& key,
                                                                const std::function<void()>& revoke) {
  auto status = [&](unsigned short port) {
    auto r = c.chat(port, key);
    return r ? r->status : -1;
  };
  for (int i = 0; i < 6; ++i) ASSERT_EQ(status(c.lb->port()), 200);  // cached everywhere
  for (auto& s : c.instances) ASSERT_EQ(status(s->port()), 200);
  revoke();
  if (::testing::Test::HasFatalFailure()) return;
  const auto revoked = Clock::now();
  for (auto& s : c.instances) {
    while (status(s->port()) != 401 && Clock::now() - revoked < 5s) std::this_thread::sleep_for(10ms);
  }
  EXPECT_LT(Clock::now() - revoked, 1s);
  for (auto& s : c.instances) EXPECT_EQ(status(s->port()), 401);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(status(c.lb->port()), 401);
}

TEST_F(Cluster, AKeyRevokedThroughTheCliIsRefusedByAllWithinOneSecond) {
  auto [id, key] = create_key(env);
  start();
  expect_revocation_reaches_every_instance_within_one_second(
      *this, key, [&] { ASSERT_EQ(lagoon_cli({"keys", "revoke", std::to_string(id)}, env).code, 0); });
}

TEST_F(Cluster, AKeyRevokedThroughTheAdminApiOfOneInstanceIsRefusedByAllWithinOneSecond) {
  constexpr const char* kAdminToken = "admin-token-for-tests-0123456789";
  auto [id, key] = create_key(env);
  start({{"LAGOON_ADMIN_TOKEN", kAdminToken}});
  expect_revocation_reaches_every_instance_within_one_second(*this, key, [&] {
    auto r = request(instances[0]->port(), "DELETE", "/admin/v1/keys/" + std::to_string(id), "",
                     std::string("Authorization: Bearer ") + kAdminToken + "\r\n");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
  });
}

TEST_F(Cluster, APerKeyRpmLimitHoldsAcrossAllInstances) {
  auto [id, key] = create_key(env, "alice", {"--rpm", "300"});
  start();
  std::atomic<int> ok{0}, limited{0}, other{0};
  const auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < 12; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        auto r = chat(lb->port(), key);
        if (r && r->status == 200) ++ok;
        else if (r && r->status == 429) ++limited;
        else ++other;
      }
    });
  for (auto& t : threads) t.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("rpm 300 across 3 instances: %d allowed, %d refused of 600 in %.2f s\n", ok.load(), limited.load(),
              seconds);
  // The whole minute's 300 at once (±1 %), plus the 5 a second the budget refills while the burst runs.
  EXPECT_GE(ok.load(), 297);
  EXPECT_LE(ok.load(), 303 + static_cast<int>(5 * seconds));
  EXPECT_EQ(other.load(), 0);
  int allowed = 0;
  for (auto& s : instances) {
    const double a = s->metric(R"(lagoon_ratelimit_decisions_total{decision="allowed"})");
    EXPECT_GT(a, 0) << "round robin reached every instance";
    allowed += static_cast<int>(a);
  }
  EXPECT_EQ(allowed, ok.load());
  ASSERT_TRUE(wait_until([&] { return rows() == 600; }, 10s)) << rows();
  EXPECT_EQ(rows("status_code = 429"), limited.load());
}

TEST_F(Cluster, ABudgetHoldsAcrossAllInstances) {
  auto [id, key] = create_key(env);
  db.scalar("UPDATE api_keys SET budget_usd = 0.01, budget_period = 'total' WHERE id = " + std::to_string(id));
  start();
  for (auto& s : instances)
    ASSERT_TRUE(wait_until([&] { return s->metric("lagoon_price_table_version") > 0; }, 10s));
  // Each may cost up to ~$0.0003 ($2.8 per million for 100 completion tokens) and costs about that.
  const std::string body =
      R"({"model":"llama-3.3-70b","max_tokens":100,"messages":[{"role":"user","content":"Hello"}],"x_mock":{"chunks":100}})";
  std::atomic<int> ok{0}, refused{0}, other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 12; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 5; ++i) {
        auto r = chat(lb->port(), key, body);
        if (r && r->status == 200) ++ok;
        else if (r && r->status == 402) ++refused;
        else ++other;
      }
    });
  for (auto& t : threads) t.join();
  ASSERT_TRUE(wait_until([&] { return rows() == 60; }, 10s)) << rows();
  const std::string spent = db.scalar("SELECT sum(cost_usd)::text FROM usage_records");
  const double reservation = (std::ceil(body.size() / 4.0) * 0.7 + 100 * 2.8) / 1e6;
  std::printf("budget $0.01 across 3 instances: %d served, %d refused of 60, spent $%s (bound $0.01 + $%.7f)\n",
              ok.load(), refused.load(), spent.c_str(), reservation);
  EXPECT_EQ(other.load(), 0);
  EXPECT_GT(refused.load(), 0);
  EXPECT_LE(std::stod(spent), 0.01 + reservation);
  int over = 0;
  for (auto& s : instances) over += static_cast<int>(s->metric(R"(lagoon_ratelimit_decisions_total{decision="over_budget"})"));
  EXPECT_EQ(over, refused.load());
}

TEST_F(Cluster, TheSameKeyHittingAllInstancesAtOnceGetsOneSession) {
  auto [id, key] = create_key(env);
  start();
  std::vector<std::unique_ptr<Connection>> conns;
  const std::string req = chat_request_bytes(key, kHello);
  for (int i = 0; i < 60; ++i) conns.push_back(std::make_unique<Connection>(instances[i % 3]->port()));
  for (auto& c : conns) ASSERT_TRUE(c->send(req));
  int ok = 0;
  for (auto& c : conns) {
    auto r = c->read_response(10s);
    ok += r && r->status == 200;
  }
  EXPECT_EQ(ok, 60);
  EXPECT_EQ(db.scalar("SELECT count(*) FROM sessions"), "1");
  ASSERT_TRUE(wait_until([&] { return rows() == 60; }, 10s));
  EXPECT_EQ(db.scalar("SELECT count(DISTINCT session_id) FROM usage_records"), "1");
}

TEST_F(Cluster, OneInstanceDrainingUnderLoadCostsClientsNothing) {
  auto [id, key] = create_key(env);
  start({{"LAGOON_DRAIN_TIMEOUT_MS", "5000"}});
  std::atomic<bool> running{true};
  std::atomic<int> ok{0}, failed{0};
  std::mutex failures_mutex;
  std::vector<std::string> failures;
  std::vector<std::thread> clients;
  const std::string stream = R"({"model":"m","stream":true,"messages":[],"x_mock":{"chunks":10,"gap-ms":30}})";
  for (int t = 0; t < 6; ++t)
    clients.emplace_back([&, t] {
      while (running.load()) {
        auto r = chat(lb->port(), key, t % 3 == 0 ? stream : kHello);
        const bool good = r && r->status == 200 && (t % 3 != 0 || r->body.find("[DONE]") != std::string::npos);
        (good ? ok : failed)++;
        if (!good) {
          std::lock_guard lock(failures_mutex);
          failures.push_back(r ? std::to_string(r->status) + " " + r->body.substr(r->body.size() > 300 ? r->body.size() - 300 : 0)
                               : std::string("no response"));
        }
      }
    });
  std::this_thread::sleep_for(1s);
  const int before = ok.load();
  instances[1]->process().signal(SIGTERM);
  const auto exited = instances[1]->process().wait(15s);
  std::this_thread::sleep_for(1s);  // and traffic goes on without it
  running = false;
  for (auto& c : clients) c.join();
  ASSERT_TRUE(exited.has_value());
  EXPECT_EQ(*exited, 0);
  std::printf("drain under load: %d ok before SIGTERM, %d ok in all, %d failed\n", before, ok.load(), failed.load());
  EXPECT_EQ(failed.load(), 0);
  for (const auto& f : failures) ADD_FAILURE() << "client saw: " << f;
  if (!failures.empty())
    for (auto& s : instances) {
      const auto out = s->process().output();
      for (std::size_t at = out.find("lookup failed"); at != std::string::npos; at = out.find("lookup failed", at + 1))
        ADD_FAILURE() << out.substr(out.rfind('\n', at) + 1, out.find('\n', at) - out.rfind('\n', at));
    }
  EXPECT_GT(ok.load(), before);
  // One row per answered request, none twice: the total, watched past the expected count.
  EXPECT_EQ(settled_count([&] { return rows(); }, ok.load(), 10s), ok.load()) << "rows for " << ok.load() << " answers";
}

namespace {

// PgBouncer (Debian's) in transaction mode in front of the test Postgres, with fewer server
// connections than its clients hold, so that their transactions really move between server connections.
class PgBouncer {
 public:
  PgBouncer(const std::string& database_url, int server_connections) : port_(free_port()) {
    std::random_device rd;
    dir_ = std::filesystem::temp_directory_path() / ("lagoon-pgbouncer-" + std::to_string(rd()));
    std::filesystem::create_directories(dir_);
    std::filesystem::permissions(dir_, std::filesystem::perms::all);  // it runs as postgres when we are root
    const auto pg_port = port_of_url(database_url);
    std::ofstream(dir_ / "users.txt") << "\"postgres\" \"\"\n";
    std::ofstream(dir_ / "pgbouncer.ini")
        << "[databases]\n* = host=127.0.0.1 port=" << pg_port << "\n"
        << "[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = " << port_ << "\nunix_socket_dir =\n"
        << "auth_type = trust\nauth_file = " << (dir_ / "users.txt").string() << "\n"
        << "pool_mode = transaction\ndefault_pool_size = " << server_connections << "\nmax_client_conn = 500\n"
        << "logfile = " << (dir_ / "pgbouncer.log").string() << "\npidfile = " << (dir_ / "pgbouncer.pid").string()
        << "\n";
    // It refuses to run as root; -u drops to postgres itself, so the Process's pid is pgbouncer's own
    // (a runuser wrapper would leave it orphaned when the test ends with SIGKILL).
    std::vector<std::string> argv = {"/usr/sbin/pgbouncer", (dir_ / "pgbouncer.ini").string()};
    if (geteuid() == 0) argv.insert(argv.begin() + 1, {"-u", "postgres"});
    process_ = std::make_unique<Process>(argv, Env{}, (dir_ / "stdout.log").string());
    for (int i = 0; i < 100; ++i) {
      std::this_thread::sleep_for(50ms);
      try {
        Connection probe(port_);
        return;
      } catch (const std::exception&) {
      }
    }
    throw std::runtime_error("pgbouncer did not start: " + process_->output());
  }
  ~PgBouncer() {
    process_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::string url_for(const std::string& database_url) const { return url_with_port(database_url, port_); }
 private:
  unsigned short port_;
  std::filesystem::path dir_;
  std::unique_ptr<Process> process_;
};

}  // namespace

TEST_F(Cluster, PgBouncerInTransactionModeCarriesEverythingWithPreparedStatementsOff) {
  PgBouncer bouncer(db.url(), 2);
  Env via = env;
  via["LAGOON_DATABASE_URL"] = bouncer.url_for(db.url());
  via["LAGOON_DB_PREPARED_STATEMENTS"] = "false";
  std::vector<std::pair<std::int64_t, std::string>> keys;
  for (int i = 0; i < 30; ++i) keys.push_back(create_key(via, "user" + std::to_string(i % 3)));  // the CLI too
  Env e = mock.with(via);
  e["LAGOON_DB_POOL_SIZE"] = "4";
  std::vector<std::unique_ptr<LagoonServer>> two;
  for (int i = 0; i < 2; ++i) two.push_back(std::make_unique<LagoonServer>(e));
  std::atomic<int> ok{0}, other{0};
  std::vector<std::thread> threads;
  const std::string stream = R"({"model":"llama-3.3-70b","stream":true,"messages":[],"x_mock":{"chunks":3}})";
  for (int t = 0; t < 6; ++t)
    threads.emplace_back([&, t] {
      for (std::size_t i = static_cast<std::size_t>(t); i < keys.size(); i += 6)
        for (int round = 0; round < 4; ++round) {  // a cold lookup, then cached; a session each
          auto r = chat(two[(i + round) % 2]->port(), keys[i].second, round == 1 ? stream : kHello);
          (r && r->status == 200 ? ok : other)++;
        }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(ok.load(), 120);
  // Revocation through PgBouncer, seen by both instances. A request still let through before the
  // revocation arrived is answered and has its row like any other; a 401 has none.
  ASSERT_EQ(lagoon_cli({"keys", "revoke", std::to_string(keys[0].first)}, via).code, 0);
  int answered = ok.load();
  for (auto& s : two)
    EXPECT_TRUE(wait_until(
        [&] {
          auto r = chat(s->port(), keys[0].second);
          answered += r && r->status == 200;
          return r && r->status == 401;
        },
        2s));
  // One row per answer, none twice: the total, watched past the expected count.
  EXPECT_EQ(settled_count([&] { return rows(); }, answered, 10s), answered);
  EXPECT_EQ(rows("status_code = 200"), answered);
  EXPECT_EQ(db.scalar("SELECT count(*) FROM sessions"), "30");  // one per key, however its requests were spread
}
