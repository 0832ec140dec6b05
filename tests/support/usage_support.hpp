// Helpers for usage pipeline tests: a temporary directory, sample records, a Config for an in-process
// pipeline against a test database, polling with a deadline, row totals waited for past the expected
// count, and the driver's SIGKILL-proof counter.
// Not thread-safe; test-local objects.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <thread>

#include "lagoon/config/config.hpp"
#include "lagoon/usage/record.hpp"
#include "support/environment.hpp"
#include "support/temp_dir.hpp"

namespace lagoon::test {

inline usage::Record sample_record(const std::string& prefix, std::uint64_t i, std::int64_t key_id,
                                   std::int64_t user_id) {
  usage::Record r;
  r.request_id = prefix + "-" + std::to_string(i);
  r.api_key_id = key_id;
  r.user_id = user_id;
  r.model = "llama-3.3-70b";
  r.stream = i % 2 == 0;
  r.status_code = 200;
  r.outcome = "ok";
  r.prompt_tokens = 12;
  r.completion_tokens = 34;
  r.total_tokens = 46;
  r.started_at_us = 1'764'000'000'000'000 + static_cast<std::int64_t>(i);
  r.duration_ms = 12.5;
  r.ttfb_ms = 3.25;
  return r;
}

// A Config for an in-process pipeline on `db` with its queue and journal under `usage_dir`.
inline config::Config usage_config(const TestDatabase& db, const std::string& usage_dir, const Env& extra = {}) {
  config::Environment env{{"LAGOON_DATABASE_URL", db.url()}, {"LAGOON_USAGE_DIR", usage_dir}};
  for (const auto& [k, v] : extra) env[k] = v;
  return config::load("", env, 2);
}

// Polls `done` every 20 ms until it holds or `timeout` passes; returns its last value.
inline bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

// How long a row total must stay at the expected number before a test believes it: several flush
// intervals (LAGOON_USAGE_FLUSH_INTERVAL_MS, 100 ms by default), so that a record pushed just after the
// last answer the test counted (one row too many) has been written by then.
inline constexpr std::chrono::milliseconds kRowsSettle{500};

// request_id is UNIQUE, so comparing a count of distinct ids with the count of rows can never fail:
// "one row per answered request, none twice" is a row total equal to the number of answers, and a total
// is only final once no late row can arrive. Waits until `count()` reaches `expected` (at most
// `timeout`), then keeps watching it for `settle` so that a late extra row is seen. Returns the last
// count seen, for the test to compare with `expected`.
inline std::int64_t settled_count(const std::function<std::int64_t()>& count, std::int64_t expected,
                                  std::chrono::milliseconds timeout,
                                  std::chrono::milliseconds settle = kRowsSettle) {
  std::int64_t n = count();
  if (!wait_until([&] { return (n = count()) >= expected; }, timeout) || n > expected) return n;
  const auto until = std::chrono::steady_clock::now() + settle;
  while (n == expected && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    n = count();
  }
  return n;
}

// Rows whose request_id is one of PREFIX-0 … PREFIX-(n-1), the ids sample_record and
// lagoon_usage_driver give the first n records. With request_id UNIQUE, this count and the table's
// total both equal to n mean: each of those n records is stored, once, and nothing else is.
inline std::int64_t rows_numbered_below(const TestDatabase& db, const std::string& prefix, std::int64_t n) {
  const std::string digits = "substr(request_id, " + std::to_string(prefix.size() + 2) + ")";
  return std::stoll(db.scalar("SELECT count(*) FILTER (WHERE CASE WHEN request_id ~ '^" + prefix +
                              "-(0|[1-9][0-9]*)$' THEN " + digits + "::numeric < " + std::to_string(n) +
                              " ELSE false END) FROM usage_records"));
}

// The 8-byte counter lagoon_usage_driver keeps of acknowledged pushes.
inline std::uint64_t read_counter(const std::string& path) {
  std::uint64_t v = 0;
  std::ifstream in(path, std::ios::binary);
  in.read(reinterpret_cast<char*>(&v), sizeof v);
  return v;
}

}  // namespace lagoon::test
