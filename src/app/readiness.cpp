#include "lagoon/app/readiness.hpp"

#include <pqxx/pqxx>

#include "lagoon/log/log.hpp"
#include "lagoon/redis/sync.hpp"
#include "lagoon/util/thread_name.hpp"

namespace lagoon::app {

// The probe is not on the request path, so it allows a network hiccup that the request path's short
// Redis deadline would not.
constexpr std::chrono::milliseconds kRedisProbeTimeout{500};

Readiness::Readiness(const config::Config& cfg, db::Pool& pool, metrics::Registry& metrics)
    : cfg_(cfg),
      pool_(pool),
      redis_up_(metrics.gauge("lagoon_dependency_up", "1 when the last readiness probe of the dependency succeeded",
                              {{"dependency", "redis"}})),
      postgres_up_(metrics.gauge("lagoon_dependency_up", "1 when the last readiness probe of the dependency succeeded",
                                 {{"dependency", "postgres"}})),
      stale_after_(2 * cfg.readiness_interval + kRedisProbeTimeout + cfg.db_acquire_timeout + cfg.db_connect_timeout),
      redis_(std::make_unique<redis::SyncConnection>(cfg, kRedisProbeTimeout)) {}

Readiness::~Readiness() { stop(); }

void Readiness::start() {
  thread_ = std::thread([this] {
    util::name_this_thread("lagoon-ready");
    loop();
  });
}

void Readiness::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

ReadinessSnapshot Readiness::snapshot() const noexcept {
  const auto age = std::chrono::steady_clock::now().time_since_epoch() - std::chrono::nanoseconds(last_round_ns_.load());
  const bool fresh = age <= stale_after_;
  return {probed_.load(), fresh && redis_ok_.load(), fresh && postgres_ok_.load(), listening_.load(),
          accepting_.load(), draining_.load()};
}

void Readiness::loop() {
  bool last_redis = true, last_postgres = true;
  for (;;) {
    bool r = probe_redis();
    bool p = probe_postgres();
    redis_ok_.store(r);
    postgres_ok_.store(p);
    probed_.store(true);
    last_round_ns_.store(std::chrono::duration_cast<std::chrono::nanoseconds>(
                             std::chrono::steady_clock::now().time_since_epoch())
                             .count());
    redis_up_.set(r ? 1 : 0);
    postgres_up_.set(p ? 1 : 0);
    if (r != last_redis) r ? log::info("redis reachable") : log::warn("redis unreachable");
    if (p != last_postgres) p ? log::info("postgres reachable") : log::warn("postgres unreachable");
    last_redis = r;
    last_postgres = p;
    std::unique_lock lock(mutex_);
    if (wake_.wait_for(lock, cfg_.readiness_interval, [this] { return stopping_; })) return;
  }
}

bool Readiness::probe_redis() {
  // With Sentinel the server asked must still be the primary: a demoted one answers PING as well. A
  // replica's answer closes the connection, so the next probe asks the sentinels again.
  const bool sentinel = !cfg_.redis_sentinels.empty();
  auto reply = redis_->command({sentinel ? "ROLE" : "PING"});
  if (reply && reply->is_error()) log::warn("redis refused the probe", {{"error", reply->str}});
  if (!reply) log::debug("redis probe failed", {{"error", redis_->error()}});
  if (!sentinel) return reply && reply->type == redis::Reply::Type::status && reply->str == "PONG";
  const bool primary = reply && reply->says_primary();
  if (reply && !primary) redis_->close();
  return primary;
}

bool Readiness::probe_postgres() {
  try {
    return pool_.with_lease("readiness", [](pqxx::connection& c) {
      pqxx::nontransaction n(c);
      return n.exec("SELECT 1")[0][0].as<int>() == 1;
    });
  } catch (const std::exception& e) {
    log::debug("postgres probe failed", {{"error", e.what()}});
    return false;
  }
}

}  // namespace lagoon::app
