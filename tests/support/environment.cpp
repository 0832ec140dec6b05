#include "environment.hpp"

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <thread>

#include <unistd.h>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

namespace lagoon::test {
namespace {

std::string with_database(const std::string& url, const std::string& db) {
  auto scheme = url.find("://");
  auto slash = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  auto query = url.find('?');
  std::string base = slash == std::string::npos ? url : url.substr(0, slash);
  return base + "/" + db + (query == std::string::npos ? "" : url.substr(query));
}

std::string random_suffix() {
  static std::mt19937_64 rng{std::random_device{}()};
  return std::to_string(rng() % 1000000000ULL);
}

}  // namespace

std::string required_env(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) {
    ADD_FAILURE() << name << " is not set: run the tests through `make test`, which starts Postgres and Redis";
    throw std::runtime_error(std::string(name) + " missing");
  }
  return v;
}

TestDatabase::TestDatabase()
    : admin_url_(required_env("LAGOON_TEST_DATABASE_URL")), name_("lagoon_t_" + random_suffix()) {
  pqxx::connection c(admin_url_);
  pqxx::nontransaction n(c);
  n.exec("CREATE DATABASE " + n.quote_name(name_));
  url_ = with_database(admin_url_, name_);
}

TestDatabase::~TestDatabase() {
  try {
    pqxx::connection c(admin_url_);
    pqxx::nontransaction n(c);
    n.exec("DROP DATABASE IF EXISTS " + n.quote_name(name_) + " WITH (FORCE)");
  } catch (...) {
  }
}

std::string TestDatabase::scalar(const std::string& sql) const {
  pqxx::connection c(url_);
  pqxx::nontransaction n(c);
  auto r = n.exec(sql);
  if (r.empty() || r[0][0].is_null()) return "";
  return r[0][0].c_str();
}

Env lagoon_env(const TestDatabase& db) {
  return {{"LAGOON_DATABASE_URL", db.url()},
          {"LAGOON_REDIS_URL", required_env("LAGOON_TEST_REDIS_URL")},
          // Tests share one Redis but not their databases: ids repeat across them, so keys must not.
          {"LAGOON_REDIS_PREFIX", "lagoon-" + db.name() + ":"},
          {"LAGOON_KEY_PEPPER", kTestPepper}};
}

RunResult lagoon_cli(const std::vector<std::string>& args, const Env& env) {
  std::vector<std::string> argv{LAGOON_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, env);
}

LagoonServer::LagoonServer(Env env) : port_(free_port()) {
  env["LAGOON_LISTEN"] = "127.0.0.1:" + std::to_string(port_);
  env.try_emplace("LAGOON_THREADS", std::string("2"));
  env.try_emplace("LAGOON_READINESS_INTERVAL_MS", std::string("200"));
  // Redis gets a generous deadline unless a test measures it. On a loaded 2-core machine (the sanitizer
  // build) a 25 ms round trip sometimes times out, and a limit then fails open or a budget closed (503):
  // tests that count answers would pass or fail by timing luck.
  env.try_emplace("LAGOON_REDIS_TIMEOUT_MS", std::string("1000"));
  // Each instance needs a usage directory of its own (the queue file is locked).
  if (!env.count("LAGOON_USAGE_DIR")) {
    owned_usage_dir_ = "/tmp/lagoon-test-usage-" + std::to_string(port_) + "-" + std::to_string(::getpid());
    env["LAGOON_USAGE_DIR"] = owned_usage_dir_;
  }
  const std::string log = "/tmp/lagoon-serve-" + std::to_string(port_) + ".log";
  process_ = std::make_unique<Process>(std::vector<std::string>{LAGOON_BINARY, "serve"}, env, log);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!process_->running()) throw std::runtime_error("lagoon serve exited early:\n" + process_->output());
    try {
      auto r = request(port_, "GET", "/healthz");
      if (r && r->status == 200) {
        wait_for_redis();
        return;
      }
    } catch (const std::exception&) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  throw std::runtime_error("lagoon serve did not answer /healthz:\n" + process_->output());
}

// Tests count Redis round trips and Postgres leases from the first request on, so give the Redis
// connections a moment to come up (not an error if they do not: some tests start without Redis).
void LagoonServer::wait_for_redis() {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (std::chrono::steady_clock::now() < deadline) {
    const std::string m = metrics();
    auto value = [&](const std::string& series) {
      auto pos = m.find("\n" + series + " ");
      return pos == std::string::npos ? 0.0 : std::stod(m.substr(pos + series.size() + 2));
    };
    if (value(R"(lagoon_redis_connections_up{role="command"})") >= 1 &&
        value(R"(lagoon_redis_connections_up{role="subscriber"})") >= 1)
      return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

LagoonServer::~LagoonServer() {
  process_->signal(SIGTERM);
  process_->wait(std::chrono::seconds(10));
  if (!owned_usage_dir_.empty()) std::filesystem::remove_all(owned_usage_dir_);
}

int LagoonServer::wait_ready_status(int status, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int last = 0;
  do {
    auto r = request(port_, "GET", "/readyz");
    last = r ? r->status : 0;
    if (last == status) return last;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  } while (std::chrono::steady_clock::now() < deadline);
  return last;
}

std::string LagoonServer::metrics() {
  auto r = request(port_, "GET", "/metrics");
  return r ? r->body : "";
}

double LagoonServer::metric(const std::string& series) {
  const std::string text = metrics();
  std::size_t pos = 0;
  while ((pos = text.find(series + " ", pos)) != std::string::npos) {
    if (pos == 0 || text[pos - 1] == '\n') return std::stod(text.substr(pos + series.size() + 1));
    pos += series.size();
  }
  ADD_FAILURE() << "no metric series " << series;
  return -1;
}

std::pair<std::int64_t, std::string> create_key(const Env& env, const std::string& user,
                                                const std::vector<std::string>& extra) {
  lagoon_cli({"users", "create", "--name", user}, env);  // fails harmlessly when the user exists
  std::vector<std::string> args{"keys", "create", "--user", user};
  args.insert(args.end(), extra.begin(), extra.end());
  auto r = lagoon_cli(args, env);
  if (r.code != 0) throw std::runtime_error("keys create failed: " + r.err);
  auto j = nlohmann::json::parse(r.out);
  return {j.at("id").get<std::int64_t>(), j.at("key").get<std::string>()};
}

RedisServer::RedisServer() : port_(free_port()) { start(); }

void RedisServer::start() {
  process_ = std::make_unique<Process>(
      std::vector<std::string>{"/usr/bin/redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1",
                               "--save", "", "--appendonly", "no"},
      Env{}, "/tmp/lagoon-test-redis-" + std::to_string(port_) + ".log");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    try {
      Connection c(port_);
      return;
    } catch (const std::exception&) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  throw std::runtime_error("redis-server did not start:\n" + process_->output());
}

void RedisServer::kill() {
  process_->signal(SIGKILL);
  process_->wait(std::chrono::seconds(5));
}

void RedisServer::restart() {
  kill();
  start();
}

MockUpstream::MockUpstream() : port_(free_port()) {
  process_ = std::make_unique<Process>(
      std::vector<std::string>{LAGOON_MOCK_BINARY, "--listen", "127.0.0.1:" + std::to_string(port_), "--api-key", kKey},
      Env{}, "/tmp/lagoon-test-mock-" + std::to_string(port_) + ".log");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    try {
      if (request(port_, "GET", "/mock/stats")) return;
    } catch (const std::exception&) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  throw std::runtime_error("the mock upstream did not start:\n" + process_->output());
}

nlohmann::json MockUpstream::stats() {
  auto r = request(port_, "GET", "/mock/stats");
  return r ? nlohmann::json::parse(r->body) : nlohmann::json();
}

nlohmann::json MockUpstream::last_request() {
  auto r = request(port_, "GET", "/mock/last-request");
  return r ? nlohmann::json::parse(r->body) : nlohmann::json();
}

Env MockUpstream::with(Env env) const {
  env["LAGOON_UPSTREAM_URL"] = url();
  env["LAGOON_UPSTREAM_API_KEY"] = kKey;
  return env;
}

namespace {
std::size_t port_colon(const std::string& url) {
  const auto at = url.find('@');
  return url.find(':', at != std::string::npos ? at : url.find("://") + 3);
}
}  // namespace

unsigned short port_of_url(const std::string& url) {
  return static_cast<unsigned short>(std::stoi(url.substr(port_colon(url) + 1)));
}

std::string url_with_port(const std::string& url, unsigned short port) {
  const auto colon = port_colon(url);
  const auto end = url.find_first_of("/?", colon);
  std::string out = url.substr(0, colon + 1);
  out += std::to_string(port);
  if (end != std::string::npos) out += url.substr(end);
  return out;
}

}  // namespace lagoon::test
