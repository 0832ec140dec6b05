// Locator: where the Redis primary is, for every connection this process makes to it.
//
// With LAGOON_REDIS_URL alone the answer is that URL's host and port, always. With LAGOON_REDIS_SENTINELS it is
// what Redis Sentinel says: a thread of the locator's own asks the sentinels in turn (SENTINEL
// get-master-addr-by-name), listens on the first that answers for +switch-master, asks again every second as a
// safety net (a message lost while the sentinel connection was down), and asks at once when a connection
// reports that its server is not the primary (a READONLY reply, or ROLE saying replica). Sentinel does the
// electing; the locator only follows it. Listeners hear of each change; connections read primary() at every
// (re)connect. The user, password and database number come from LAGOON_REDIS_URL in both modes.
//
// Thread-safety: primary(), epoch(), suspect() and the accessors from any thread. add_listener() before
// start(). Listeners run on the locator's thread and must only hand work elsewhere (post to a strand).
// start() and stop() may be called more than once (a Client and a Subscriber share one locator); stop() (also
// run by the destructor) joins the thread, and after it no listener runs.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "lagoon/config/config.hpp"
#include "lagoon/config/url.hpp"

struct redisContext;

namespace lagoon::metrics {
class Registry;
class Counter;
class Gauge;
}  // namespace lagoon::metrics

namespace lagoon::redis {

class Locator {
 public:
  struct Primary {
    std::string host;
    std::uint16_t port = 0;
    std::uint64_t epoch = 0;  // grows by one at each change
  };
  using Listener = std::function<void(const Primary&)>;

  // `metrics` may be null (the CLI).
  Locator(const config::Config& cfg, metrics::Registry* metrics);
  ~Locator();
  Locator(const Locator&) = delete;
  Locator& operator=(const Locator&) = delete;

  void add_listener(Listener listener);
  void start();
  void stop() noexcept;

  // Unknown (nullopt) only in Sentinel mode, until a sentinel has answered.
  std::optional<Primary> primary() const;
  std::uint64_t epoch() const noexcept { return epoch_.load(std::memory_order_acquire); }
  // A connection found its server is not the primary: ask the sentinels now. Cheap; repeated calls coalesce.
  void suspect() noexcept;
  bool discovers() const noexcept { return !sentinels_.empty(); }
  const config::RedisEndpoint& credentials() const noexcept { return credentials_; }
  const std::string& master_name() const noexcept { return master_name_; }

  // One blocking round over the sentinels for callers without a locator thread (the CLI, the readiness
  // probe): the primary's address from the first sentinel that knows it, or nullopt with `error` saying why.
  // Each sentinel gets 500 ms.
  static std::optional<config::HostPort> discover(const std::vector<config::HostPort>& sentinels,
                                                  const std::string& master_name, const std::string& sentinel_password,
                                                  std::string& error);

 private:
  void run();
  // Follows one sentinel until it fails; false when it could not be asked at all.
  bool follow(const config::HostPort& sentinel);
  void read_switches(redisContext* subscription);
  void found(const std::string& host, std::uint16_t port, const char* how);
  bool wait_wake(std::chrono::milliseconds timeout);  // true when woken (stop or suspect)

  const config::RedisEndpoint credentials_;
  const std::vector<config::HostPort> sentinels_;
  const std::string master_name_;
  const std::string sentinel_password_;

  mutable std::mutex mutex_;
  std::optional<Primary> primary_;
  std::atomic<std::uint64_t> epoch_{0};
  std::vector<Listener> listeners_;

  std::once_flag started_;
  std::atomic<bool> stopping_{false};
  int wake_fd_ = -1;  // eventfd: stop() and suspect() wake the thread out of poll()
  std::thread thread_;

  metrics::Counter* changes_ = nullptr;
  metrics::Counter* sentinel_failures_ = nullptr;
  metrics::Gauge* known_ = nullptr;
  bool logged_failure_ = false;  // one warning per outage of all sentinels; locator thread only
};

}  // namespace lagoon::redis
