// Concurrency caps: at most `max_concurrent` requests (streams included) open at once per key, across
// every instance. Each open request holds a slot — a member of the key's sorted set in Redis
// (`prefix conc:{ID}`, scored by when its lease lapses, by Redis's own clock so instances' clocks do not
// matter). The holder renews its leases every third of LAGOON_CONCURRENCY_LEASE_MS and removes its slot
// when the request ends; a crashed instance's slots lapse within one lease. One script round trip per
// request of a capped key; none for a key without a cap.
//
// While Redis cannot be asked, a slot is taken locally and the cap holds per instance (never lifted):
// a dependency outage degrades the cap, it does not remove it.
//
// Thread-safety: acquire() and a Slot's release from any thread; start()/shutdown() from one.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include <boost/asio/awaitable.hpp>

#include "lagoon/config/config.hpp"
#include "lagoon/metrics/registry.hpp"
#include "lagoon/redis/client.hpp"

namespace boost::asio {
class io_context;
}

namespace lagoon::ratelimit {

class SlotSource;

// One request's slot: held until destroyed or reset (move-only). An empty Slot holds nothing.
class Slot {
 public:
  Slot() = default;
  // `in_redis`: the member may be in Redis (granted there, or the call went unanswered after it was sent),
  // so its release removes it there.
  Slot(SlotSource* source, std::int64_t owner, std::string member, bool in_redis);
  Slot(Slot&& o) noexcept { *this = std::move(o); }
  Slot& operator=(Slot&& o) noexcept;
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;
  ~Slot() { reset(); }

  bool held() const noexcept { return source_ != nullptr; }
  void reset() noexcept;

 private:
  SlotSource* source_ = nullptr;
  std::shared_ptr<const std::atomic<bool>> alive_;  // the source's: a Slot outliving it releases nothing
  std::int64_t owner_ = 0;
  std::string member_;
  bool in_redis_ = false;
};

// The relay's seam: the real one below, a fake in unit tests.
class SlotSource {
 public:
  virtual ~SlotSource() { *alive_ = false; }
  // One of `max` (> 0) slots of `owner` (a key's limit_id); an empty Slot when all are taken.
  virtual boost::asio::awaitable<Slot> acquire(std::int64_t owner, std::int64_t max) = 0;

 protected:
  friend class Slot;
  virtual void release(std::int64_t owner, const std::string& member, bool in_redis) noexcept = 0;
  // Shared with every Slot lent: a request frame destroyed with the io_context, after the gateway's
  // parts (a second SIGTERM stops without draining), must not call into a source that is gone.
  std::shared_ptr<std::atomic<bool>> alive_ = std::make_shared<std::atomic<bool>>(true);
};

class ConcurrencyLimiter final : public SlotSource {
 public:
  ConcurrencyLimiter(boost::asio::io_context& ioc, const config::Config& cfg, redis::Client& redis,
                     metrics::Registry& metrics);
  ~ConcurrencyLimiter() override;
  ConcurrencyLimiter(const ConcurrencyLimiter&) = delete;
  ConcurrencyLimiter& operator=(const ConcurrencyLimiter&) = delete;

  void start();  // the lease renewals
  void shutdown() noexcept;

  boost::asio::awaitable<Slot> acquire(std::int64_t owner, std::int64_t max) override;
  // Waits (at most `at_most`) until the releases sent so far have been answered: the drain's last step.
  boost::asio::awaitable<void> settled(std::chrono::milliseconds at_most);

  // The Redis key of an owner's slots (for tests and operators).
  static std::string slots_key(std::string_view prefix, std::int64_t owner);

 private:
  void release(std::int64_t owner, const std::string& member, bool in_redis) noexcept override;
  boost::asio::awaitable<void> remove(std::int64_t owner, std::string member);
  boost::asio::awaitable<void> renew_loop();
  void renew();
  boost::asio::awaitable<void> renew_one(std::vector<std::string> args);
  void warn_throttled();

  boost::asio::io_context& ioc_;
  const config::Config& cfg_;
  redis::Client& redis_;
  const std::string instance_;  // random: members of different processes never collide
  std::atomic<std::uint64_t> next_{0};
  std::atomic<std::int64_t> pending_{0};  // releases sent, not yet answered
  std::mutex mutex_;
  std::unordered_map<std::int64_t, std::int64_t> local_;  // owner → slots this process holds
  std::unordered_map<std::int64_t, std::unordered_map<std::string, bool>> leased_;  // owner → members in Redis
  struct Timer;
  std::unique_ptr<Timer> timer_;
  metrics::Counter& refused_;
  metrics::Counter& fallback_;
  metrics::Gauge& held_;
  std::atomic<std::int64_t> last_warning_s_{0};
};

}  // namespace lagoon::ratelimit
