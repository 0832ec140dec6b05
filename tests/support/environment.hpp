// What integration tests stand on: the Postgres and Redis that `make test` started (their URLs in
// LAGOON_TEST_DATABASE_URL / LAGOON_TEST_REDIS_URL — a test fails, never skips, when they are missing),
// a fresh database per test, and the real `lagoon` binary run as a CLI or as a server.
// Not thread-safe; each test owns its objects.
#pragma once

#include <memory>
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

 private:
  unsigned short port_;
  std::unique_ptr<Process> process_;
};

}  // namespace lagoon::test
