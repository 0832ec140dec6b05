// Limiter: per-key requests-per-minute and tokens-per-minute limits shared by every instance through
// Redis (see policy.hpp for the algorithm). One script call per admitted request — EVALSHA, with one
// EVAL after Redis lost its script cache — and one more when a token-limited request ends, to charge
// its real usage in place of the estimate.
//
// Redis trouble fails open for rate limiting only (authentication never does): a request that cannot
// be checked within redis_timeout, or while the Redis circuit breaker (shared with authentication) is
// open, is allowed and counted in lagoon_ratelimit_decisions_total{decision="fail_open"}.
//
// Thread-safety: admit() and settle() may be called from any reactor thread at once.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "lagoon/auth/key_record.hpp"
#include "lagoon/config/config.hpp"
#include "lagoon/metrics/registry.hpp"
#include "lagoon/ratelimit/policy.hpp"
#include "lagoon/redis/client.hpp"

namespace lagoon::ratelimit {

class Limiter {
 public:
  Limiter(const config::Config& cfg, redis::Client& redis, metrics::Registry& metrics);

  // Decides whether the key may make one more request costing `estimate` tokens, and if so consumes
  // it from the key's budgets. No Redis call for a key without limits.
  boost::asio::awaitable<Decision> admit(const auth::KeyRecord& key, std::int64_t estimate);

  // After an admitted request ended: replaces the tokens charged at admission by `actual_tokens`
  // (the usage total; 0 when the upstream never answered). Nothing to do unless tokens are limited.
  boost::asio::awaitable<void> settle(const auth::KeyRecord& key, const Decision& admitted, std::int64_t actual_tokens);

 private:
  boost::asio::awaitable<redis::Result> run_script(std::vector<std::string> args);
  void warn_throttled(const std::string& what);

  const config::Config& cfg_;
  redis::Client& redis_;
  metrics::Counter& allowed_;
  metrics::Counter& limited_requests_;
  metrics::Counter& limited_tokens_;
  metrics::Counter& fail_open_;
  std::atomic<std::int64_t> last_warning_s_{0};
};

}  // namespace lagoon::ratelimit
