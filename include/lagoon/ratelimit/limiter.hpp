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
// Budgets (money/budget.hpp) ride in the same script call: a request of a key that has a budget, or
// whose user has one, holds the most it may cost against each, atomically across instances, and is
// refused (402) when one has less left. Its real cost replaces the hold when it ends: the differences
// are sent every kSettleInterval (a release arriving late only refuses early, never overspends). A
// counter Redis does not have — new period, new budget, Redis lost its data — is summed from Postgres
// and seeded by a second call, the only time a budgeted request costs two. Redis trouble fails closed
// for budgeted requests (503) unless budgets_fail_open.
//
// Thread-safety: admit() and settle() may be called from any reactor thread at once. start() once;
// shutdown() when no reactor thread runs any more.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <optional>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "lagoon/auth/key_record.hpp"
#include "lagoon/db/async_pool.hpp"
#include "lagoon/money/budget.hpp"
#include "lagoon/config/config.hpp"
#include "lagoon/metrics/registry.hpp"
#include "lagoon/ratelimit/policy.hpp"
#include "lagoon/redis/client.hpp"
#include "lagoon/util/single_flight.hpp"
#include "lagoon/util/wall_clock.hpp"

namespace boost::asio {
class io_context;
}

namespace lagoon::ratelimit {

inline constexpr std::chrono::milliseconds kSettleInterval{100};

using Clock = util::WallClock;  // what budget periods are read from

// The seam the request path sees: Limiter is the real gate; unit tests use a fake.
class Gate {
 public:
  virtual ~Gate() = default;
  // Decides whether the key may make one more request costing `estimate` tokens and at most `most`
  // dollars, and if so consumes both from its limits and budgets. `estimate` nullopt: tokens do not
  // apply to the request (images, audio) — only its requests-per-minute limit is checked. `most`
  // nullopt: no price applies — refused for a budgeted key unless unpriced requests are served.
  virtual boost::asio::awaitable<Decision> admit(const auth::KeyRecord& key, std::optional<std::int64_t> estimate,
                                                 std::optional<money::Pico> most) = 0;
  // Whether admit() has anything to check for the key (`tokens`: whether the request counts tokens);
  // when not, admit() would allow it and consume nothing, so the caller may skip it. Never blocks.
  virtual bool applies(const auth::KeyRecord& key, bool tokens) const {
    (void)key, (void)tokens;
    return true;
  }
  // After an admitted request ended: its real usage (`actual_tokens`; 0 when the upstream never
  // answered) and cost (nullopt: unknown, the hold stays spent) replace what admission charged.
  virtual void settle(const auth::KeyRecord& key, const Decision& admitted, std::int64_t actual_tokens,
                      std::optional<money::Pico> cost) = 0;
  // What the key's budgets have spent in their current periods (GET /api/v1/key); none without budgets,
  // nullopt when it cannot be known now.
  virtual boost::asio::awaitable<std::optional<std::vector<BudgetState>>> budgets(const auth::KeyRecord& key) = 0;
};

class Limiter final : public Gate {
 public:
  // `now` tells the budget periods (an injectable clock: tests move it across a period's end).
  Limiter(boost::asio::io_context& ioc, const config::Config& cfg, redis::Client& redis, db::AsyncPool& db,
          metrics::Registry& metrics, Clock now = [] { return std::chrono::system_clock::now(); });
  ~Limiter();
  Limiter(const Limiter&) = delete;
  Limiter& operator=(const Limiter&) = delete;

  void start();
  void shutdown() noexcept;

  boost::asio::awaitable<Decision> admit(const auth::KeyRecord& key, std::optional<std::int64_t> estimate,
                                         std::optional<money::Pico> most) override;
  bool applies(const auth::KeyRecord& key, bool tokens) const override;

  // No I/O here (see above).
  void settle(const auth::KeyRecord& key, const Decision& admitted, std::int64_t actual_tokens,
              std::optional<money::Pico> cost) override;

  boost::asio::awaitable<std::optional<std::vector<BudgetState>>> budgets(const auth::KeyRecord& key) override;

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
    std::unordered_map<std::string, std::int64_t> spend;  // budget counter → nano-dollars to add (or give back)
  };
  // A budget that applies to the key now: its counter, limit, and the seed/TTL its script arguments need.
  struct Counter {
    bool user = false;
    std::int64_t owner = 0;
    money::Budget budget;
    money::Window window;
    std::string key;
  };
  std::vector<Counter> counters_for(const auth::KeyRecord& key) const;
  // Sums the counters' periods from Postgres, as seeds (nano-dollars); nullopt when Postgres cannot answer.
  boost::asio::awaitable<std::optional<std::vector<std::int64_t>>> seeds(const std::vector<Counter>& counters);
  boost::asio::awaitable<std::optional<std::vector<std::int64_t>>> sum_from_postgres(const std::vector<Counter>& counters);
  boost::asio::awaitable<redis::Result> run_budget_script(const auth::KeyRecord& key, const Limits& limits,
                                                          std::int64_t cost, std::int64_t owed, std::int64_t hold,
                                                          const std::vector<Counter>& counters,
                                                          const std::vector<std::string>& seed_args);
  // A settlement not yet sent (nano-dollars to add to a budget counter, or to give back).
  void add_spend(const std::string& counter, std::int64_t nano);
  boost::asio::awaitable<void> flush_spend();
  // Redis did not answer the script usably: fail open, or for a budget (unless configured) closed.
  Decision unchecked(const auth::KeyRecord& key, const redis::Result& result, std::int64_t owed, const Limits& limits,
                     bool budgeted);
  Decision budget_refusal(Decision::Kind kind) const;
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
  db::AsyncPool& db_;
  Clock now_;
  util::SingleFlight<std::optional<std::vector<std::int64_t>>> seed_flights_;
  std::array<Shard, 16> shards_;
  struct Timer;
  std::unique_ptr<Timer> timer_;
  metrics::Counter& allowed_;
  metrics::Counter& limited_requests_;
  metrics::Counter& limited_tokens_;
  metrics::Counter& fail_open_;
  metrics::Counter& over_budget_;
  metrics::Counter& unpriced_;
  metrics::Counter& budget_unavailable_;
  metrics::Counter& budget_seeds_;
  std::atomic<std::int64_t> last_warning_s_{0};
};

}  // namespace lagoon::ratelimit
