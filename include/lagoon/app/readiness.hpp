// Readiness: whether this instance should receive traffic. A background thread probes Redis (PING) and
// Postgres (SELECT 1 on a pooled lease) every readiness_interval, each with its own deadline, and keeps
// the results in atomics; /readyz only reads them, so a flood of probes costs nothing and a hung
// dependency never blocks a reactor thread. Results older than two intervals plus the probe
// deadlines count as failures, so a dependency that hangs the probe itself still turns /readyz to 503. The listener and drain flags are set by the server.
// Thread-safety: all member functions may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "lagoon/config/config.hpp"
#include "lagoon/config/url.hpp"
#include "lagoon/db/pool.hpp"
#include "lagoon/metrics/registry.hpp"

namespace lagoon::redis {
class SyncConnection;
}

namespace lagoon::app {

struct ReadinessSnapshot {
  bool probed = false;  // at least one probe round finished
  bool redis = false;
  bool postgres = false;
  bool listening = false;
  bool accepting = true;  // false once the accept loop has ended for any reason but the drain
  bool draining = false;
  bool ready() const noexcept { return probed && redis && postgres && listening && accepting && !draining; }
};

class Readiness {
 public:
  Readiness(const config::Config& cfg, db::Pool& pool, metrics::Registry& metrics);
  ~Readiness();  // stops the probe thread
  Readiness(const Readiness&) = delete;
  Readiness& operator=(const Readiness&) = delete;

  void start();
  void stop();
  void set_listening(bool v) noexcept { listening_.store(v); }
  // The accept loop died (an exception): nothing new can be served, so load balancers must look elsewhere.
  void set_accept_failed() noexcept { accepting_.store(false); }
  void set_draining() noexcept { draining_.store(true); }
  bool draining() const noexcept { return draining_.load(); }
  ReadinessSnapshot snapshot() const noexcept;

 private:
  void loop();
  bool probe_redis();
  bool probe_postgres();

  const config::Config& cfg_;
  db::Pool& pool_;
  metrics::Gauge& redis_up_;
  metrics::Gauge& postgres_up_;
  std::atomic<bool> probed_{false}, redis_ok_{false}, postgres_ok_{false}, listening_{false}, accepting_{true},
      draining_{false};
  // When the last probe round finished (steady clock, ns). A hung dependency (e.g. SIGSTOP) can block a
  // libpq call past every client deadline, so results older than stale_after_ count as failures.
  std::atomic<std::int64_t> last_round_ns_{0};
  std::chrono::nanoseconds stale_after_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
  std::unique_ptr<redis::SyncConnection> redis_;  // kept between probes
};

}  // namespace lagoon::app
