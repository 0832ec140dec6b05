// Limiter: per-key requests-per-minute and tokens-per-minute limits shared by every instance through
// Redis (see policy.hpp for the algorithm). Exactly one script call per request of a limited key —
// EVALSHA, with one EVAL after Redis lost its script cache — and none for a key without limits.
//
// Token limits admit a request against an estimate; when it ends, settle() notes the difference to its
// real usage here, and the next admission of the same key on this instance carries it to Redis in the
// same script call. Differences of keys that make no further request are sent by a timer every
// kSettleInterval, so another instance sees them within about that time. A correction is best effort:
// one that Redis does not answer in time is dropped rather than risk applying it twice (the estimate stays
// charged); one that was not sent because the breaker is open waits for the next call.
//
// Redis trouble fails open for rate limiting only (authentication never does): a request that cannot
// be checked within redis_timeout, or while the Redis circuit breaker (shared with authentication) is
// open, is allowed and counted in lagoon_ratelimit_decisions_total{decision="fail_open"}.
//
// Thread-safety: admit() and settle() may be called from any reactor thread at once. start() once;
// shutdown() when no reactor thread runs any more.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <optional>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "lagoon/auth/key_record.hpp"
#include "lagoon/config/config.hpp"
#include "lagoon/metrics/registry.hpp"
#include "lagoon/ratelimit/policy.hpp"
#include "lagoon/redis/client.hpp"

namespace boost::asio {
class io_context;
}

namespace lagoon::ratelimit {

inline constexpr std::chrono::milliseconds kSettleInterval{100};

// The seam the request path sees: Limiter is the real gate; unit tests use a fake.
class Gate {
 public:
  virtual ~Gate() = default;
  // Decides whether the key may make one more request costing `estimate` tokens, and if so consumes
  // it from the key's budgets. nullopt: tokens do not apply to the request (images, audio) — only its
  // requests-per-minute limit is checked, and it says nothing of the key's tokens.
  virtual boost::asio::awaitable<Decision> admit(const auth::KeyRecord& key, std::optional<std::int64_t> estimate) = 0;
  // After an admitted request ended: its real usage (`actual_tokens`; 0 when the upstream never
  // answered) replaces what admission charged.
  virtual void settle(const auth::KeyRecord& key, const Decision& admitted, std::int64_t actual_tokens) = 0;
};

class Limiter final : public Gate {
 public:
  Limiter(boost::asio::io_context& ioc, const config::Config& cfg, redis::Client& redis, metrics::Registry& metrics);
  ~Limiter();
  Limiter(const Limiter&) = delete;
  Limiter& operator=(const Limiter&) = delete;

  void start();
  void shutdown() noexcept;

  boost::asio::awaitable<Decision> admit(const auth::KeyRecord& key, std::optional<std::int64_t> estimate) override;

  // No I/O here (see above).
  void settle(const auth::KeyRecord& key, const Decision& admitted, std::int64_t actual_tokens) override;

  // Sends every correction not yet carried by an admission (the timer does this every
  // kSettleInterval; the drain once more at the end). One script call per key.
  boost::asio::awaitable<void> flush();

 private:
  struct Owed {
    std::int64_t tokens = 0;  // to add to the key's token TAT (negative: to give back)
    Limits limits;            // as of the last request, for the interval the tokens are worth
  };
  struct Shard {
    std::mutex mutex;
    std::unordered_map<std::int64_t, Owed> owed;
  };
  Shard& shard(std::int64_t key_id) { return shards_[static_cast<std::uint64_t>(key_id) % shards_.size()]; }
  std::int64_t take_owed(std::int64_t key_id);
  void add_owed(std::int64_t key_id, std::int64_t tokens, const Limits& limits);
  boost::asio::awaitable<void> settle_loop();
  // The script for one key (EVALSHA; EVAL once if Redis lost its script cache). `limits` by reference:
  // GCC 12 copies aggregate coroutine arguments bitwise.
  boost::asio::awaitable<redis::Result> run_script(std::int64_t key_id, const Limits& limits, std::int64_t tokens,
                                                   const char* mode, std::int64_t correction);
  void warn_throttled(const std::string& what);

  boost::asio::io_context& ioc_;
  const config::Config& cfg_;
  redis::Client& redis_;
  std::array<Shard, 16> shards_;
  struct Timer;
  std::unique_ptr<Timer> timer_;
  metrics::Counter& allowed_;
  metrics::Counter& limited_requests_;
  metrics::Counter& limited_tokens_;
  metrics::Counter& fail_open_;
  std::atomic<std::int64_t> last_warning_s_{0};
};

}  // namespace lagoon::ratelimit
