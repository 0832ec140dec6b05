#include "lagoon/server/readiness.hpp"

#include <hiredis/hiredis.h>
#include <pqxx/pqxx>

#include "lagoon/log/log.hpp"

namespace lagoon::server {
namespace {

timeval to_timeval(config::Millis d) {
  return timeval{static_cast<time_t>(d.count() / 1000), static_cast<suseconds_t>((d.count() % 1000) * 1000)};
}

}  // namespace

// One synchronous hiredis connection, used only by the probe thread, reconnected after any failure.
struct Readiness::RedisProbe {
  redisContext* ctx = nullptr;
  ~RedisProbe() { reset(); }
  void reset() {
    if (ctx) redisFree(ctx);
    ctx = nullptr;
  }
};

Readiness::Readiness(const config::Config& cfg, db::Pool& pool, metrics::Registry& metrics)
    : cfg_(cfg),
      redis_endpoint_(config::parse_redis_url(cfg.redis_url)),
      pool_(pool),
      redis_up_(metrics.gauge("lagoon_dependency_up", "1 when the last readiness probe of the dependency succeeded",
                              {{"dependency", "redis"}})),
      postgres_up_(metrics.gauge("lagoon_dependency_up", "1 when the last readiness probe of the dependency succeeded",
                                 {{"dependency", "postgres"}})),
      stale_after_(2 * cfg.readiness_interval + cfg.redis_timeout + cfg.db_acquire_timeout + cfg.db_connect_timeout),
      redis_(std::make_unique<RedisProbe>()) {}

Readiness::~Readiness() { stop(); }

void Readiness::start() { thread_ = std::thread([this] { loop(); }); }

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
  return {probed_.load(), fresh && redis_ok_.load(), fresh && postgres_ok_.load(), listening_.load(), draining_.load()};
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
  const timeval tv = to_timeval(cfg_.redis_timeout);
  auto& ctx = redis_->ctx;
  if (!ctx) {
    ctx = redisConnectWithTimeout(redis_endpoint_.host.c_str(), redis_endpoint_.port, tv);
    if (!ctx || ctx->err || redisSetTimeout(ctx, tv) != REDIS_OK) {
      redis_->reset();
      return false;
    }
    if (!redis_endpoint_.password.empty()) {
      auto* reply = static_cast<redisReply*>(
          redis_endpoint_.username.empty()
              ? redisCommand(ctx, "AUTH %s", redis_endpoint_.password.c_str())
              : redisCommand(ctx, "AUTH %s %s", redis_endpoint_.username.c_str(), redis_endpoint_.password.c_str()));
      bool ok = reply && reply->type == REDIS_REPLY_STATUS;
      if (reply) freeReplyObject(reply);
      if (!ok) {
        log::warn("redis AUTH failed");
        redis_->reset();
        return false;
      }
    }
  }
  auto* reply = static_cast<redisReply*>(redisCommand(ctx, "PING"));
  bool ok = reply && reply->type == REDIS_REPLY_STATUS && std::string_view(reply->str, reply->len) == "PONG";
  if (reply) freeReplyObject(reply);
  if (!ok) redis_->reset();  // a timed-out context is unusable: its reply may still arrive later
  return ok;
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

}  // namespace lagoon::server
