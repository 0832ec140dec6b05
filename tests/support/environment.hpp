// What integration tests stand on: the Postgres and Redis that `make test` started (their URLs in
// LAGOON_TEST_DATABASE_URL / LAGOON_TEST_REDIS_URL — a test fails, never skips, when they are missing),
// a fresh database per test, and the real `lagoon` binary run as a CLI or as a server.
// Not thread-safe; each test owns its objects.
#pragma once

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>
#include <string>

#include <nlohmann/json.hpp>

#include "http_client.hpp"
#include "process.hpp"

namespace lagoon::test {

inline constexpr const char* kTestPepper = "test-pepper-0123456789abcdef0123456789abcdef";

// A required environment variable; fails the current test (and throws) when missing.
std::string required_env(const char* name);

// A database of its own for one test, created on construction and dropped (with FORCE) on destruction.
class TestDatabase {
 public:
  TestDatabase();
  ~TestDatabase();
  const std::string& url() const { return url_; }
  const std::string& name() const { return name_; }
  // Runs one SQL statement and returns the first column of the first row as text ("" if none).
  std::string scalar(const std::string& sql) const;

 private:
  std::string admin_url_;
  std::string name_;
  std::string url_;
};

// The port of a postgresql://user@host:port/db URL, and the same URL with another port (for a proxy or
// pooler put in front of the server).
unsigned short port_of_url(const std::string& url);
std::string url_with_port(const std::string& url, unsigned short port);

// The environment a lagoon process needs against this test's database.
Env lagoon_env(const TestDatabase& db);

// Runs `lagoon ARGS…` to completion.
RunResult lagoon_cli(const std::vector<std::string>& args, const Env& env);

// `lagoon serve` on a free port, started and waited for until /healthz answers.
class LagoonServer {
 public:
  LagoonServer(Env env);
  ~LagoonServer();
  unsigned short port() const { return port_; }
  Process& process() { return *process_; }
  // Polls /readyz until it answers `status` or `timeout` passes; returns the last status seen.
  int wait_ready_status(int status, std::chrono::milliseconds timeout);
  std::string metrics();
  // The value of one series, written exactly as exported, e.g. `lagoon_db_leases_total{purpose="auth"}`;
  // fails the test (and returns -1) when the series is missing.
  double metric(const std::string& series);

 private:
  void wait_for_redis();
  unsigned short port_;
  std::string owned_usage_dir_;  // removed with the server unless the test chose the directory
  std::unique_ptr<Process> process_;
};

// A user (created if needed) and a fresh key for it through the CLI; returns {key id, full key}.
std::pair<std::int64_t, std::string> create_key(const Env& env, const std::string& user = "alice",
                                                const std::vector<std::string>& extra = {});

// lagoon-mock-upstream on a free port, with its own upstream key.
class MockUpstream {
 public:
  MockUpstream();
  unsigned short port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/api/v1"; }
  static constexpr const char* kKey = "upstream-secret-for-tests";
  nlohmann::json stats();
  nlohmann::json last_request();
  // LAGOON_UPSTREAM_URL and LAGOON_UPSTREAM_API_KEY pointing at this mock, added to `env`.
  Env with(Env env) const;

 private:
  unsigned short port_;
  std::unique_ptr<Process> process_;
};

// A Redis of this test's own, for tests that stop, hang or kill it.
class RedisServer {
 public:
  RedisServer();
  unsigned short port() const { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_) + "/0"; }
  Process& process() { return *process_; }
  void kill();     // SIGKILL and wait
  void restart();  // a new redis-server on the same port, waited for

 private:
  void start();
  unsigned short port_;
  std::unique_ptr<Process> process_;
};

}  // namespace lagoon::test
