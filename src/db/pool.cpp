#include "lagoon/db/pool.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <pqxx/pqxx>

#include "lagoon/db/connection.hpp"
#include "lagoon/log/log.hpp"
#include "lagoon/util/thread_name.hpp"

namespace lagoon::db {

Pool::Pool(const config::Config& cfg, metrics::Registry& metrics)
    : cfg_(cfg),
      metrics_(metrics),
      slots_(cfg.db_pool_size),
      in_use_(metrics.gauge("lagoon_db_pool_in_use", "Postgres connections currently lent out")),
      open_(metrics.gauge("lagoon_db_pool_open", "Postgres connections currently open")),
      acquire_wait_(metrics.histogram("lagoon_db_acquire_wait_seconds", "Time spent waiting for a pooled connection",
                                      metrics::latency_buckets())),
      acquire_timeouts_(metrics.counter("lagoon_db_acquire_timeouts_total",
                                        "Leases refused because no connection was free within db_acquire_timeout")),
      watched_(cfg.db_pool_size),
      cut_(metrics.counter("lagoon_db_connections_cut_total",
                           "Leased connections cut because Postgres did not answer within statement_timeout + 1 s")),
      watchdog_([this] { watchdog(); }) {
  metrics.gauge("lagoon_db_pool_size", "Most Postgres connections this process opens (LAGOON_DB_POOL_SIZE)")
      .set(static_cast<double>(cfg.db_pool_size));
  for (std::size_t i = slots_.size(); i-- > 0;) free_.push_back(i);
}

Pool::~Pool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  stop_.notify_all();
  watchdog_.join();
  for (std::size_t i = 0; i < watched_.size(); ++i) unwatch(i);
}

void Pool::watch(const pqxx::connection& conn, std::size_t slot) noexcept {
  const int fd = ::dup(conn.sock());
  std::lock_guard lock(mutex_);
  unwatch(slot);
  watched_[slot] = {fd, Clock::now(), false};
}

void Pool::unwatch(std::size_t slot) noexcept {
  auto& w = watched_[slot];
  if (w.fd >= 0) ::close(w.fd);
  w = Watched{};
}

void Pool::watchdog() {
  util::name_this_thread("lagoon-dbwatch");
  const auto limit = cfg_.db_statement_timeout + std::chrono::seconds(1);
  std::unique_lock lock(mutex_);
  while (!stop_.wait_for(lock, std::chrono::milliseconds(100), [this] { return stopping_; })) {
    const auto now = Clock::now();
    for (auto& w : watched_) {
      if (w.fd < 0 || w.cut || now - w.since < limit) continue;
      // Silence, not lease length: a lease of several statements hears from Postgres after each.
      tcp_info info{};
      socklen_t len = sizeof info;
      if (::getsockopt(w.fd, IPPROTO_TCP, TCP_INFO, &info, &len) == 0 &&
          std::chrono::milliseconds(info.tcpi_last_data_recv) < limit)
        continue;
      ::shutdown(w.fd, SHUT_RDWR);  // our dup: the socket itself, whatever libpq did with its number
      w.cut = true;
      cut_.inc();
      log::warn("Postgres sent nothing on a leased connection in time; it was cut",
                {{"limit_ms", std::chrono::duration_cast<std::chrono::milliseconds>(limit).count()}});
    }
  }
}

std::size_t Pool::acquire(const std::string& purpose, Clock::time_point deadline, Priority priority) {
  const auto start = Clock::now();
  std::unique_lock lock(mutex_);
  const bool high = priority == Priority::high;
  if (high) ++high_waiting_;
  // A normal acquirer leaves as many free connections as there are high-priority waiters.
  const bool got = freed_.wait_until(lock, deadline, [&] { return free_.size() > (high ? 0 : high_waiting_); });
  if (high) --high_waiting_;
  if (!got) {
    acquire_timeouts_.inc();
    throw Unavailable("no Postgres connection free within " + std::to_string(cfg_.db_acquire_timeout.count()) +
                      " ms (pool of " + std::to_string(slots_.size()) + ", purpose " + purpose + ")");
  }
  std::size_t slot = free_.back();
  free_.pop_back();
  lock.unlock();
  in_use_.add(1);
  acquire_wait_.observe(std::chrono::duration<double>(Clock::now() - start).count());
  return slot;
}

metrics::Counter& Pool::leases(const std::string& purpose) {
  return metrics_.counter("lagoon_db_leases_total", "Postgres leases taken, by purpose", {{"purpose", purpose}});
}

metrics::RealCounter& Pool::lease_seconds(const std::string& purpose) {
  return metrics_.real_counter("lagoon_db_lease_seconds_total", "Seconds Postgres connections were held, by purpose",
                               {{"purpose", purpose}});
}

void Pool::declare_purpose(const std::string& purpose) {
  leases(purpose);
  lease_seconds(purpose);
}

void Pool::release(std::size_t slot, const std::string& purpose, Clock::duration held) noexcept {
  leases(purpose).inc();
  lease_seconds(purpose).add(std::chrono::duration<double>(held).count());
  in_use_.add(-1);
  {
    std::lock_guard lock(mutex_);
    unwatch(slot);
    free_.push_back(slot);
  }
  // notify_all: the one woken by notify_one might be a normal waiter that must leave it to a high one.
  freed_.notify_all();
}

Pool::Lease::Lease(Pool& pool, const std::string& purpose, Clock::time_point deadline, Priority priority)
    : pool_(pool), slot_(pool.acquire(purpose, deadline, priority)), purpose_(purpose), acquired_(Clock::now()) {}

Pool::Lease::~Lease() { pool_.release(slot_, purpose_, Clock::now() - acquired_); }

pqxx::connection& Pool::Lease::connection() {
  // Only the holder of the lease touches this slot, so no lock is needed.
  auto& conn = pool_.slots_[slot_];
  if (conn && !conn->is_open()) discard();
  if (!conn) {
    try {
      conn = db::connect(pool_.cfg_);
    } catch (const std::exception& e) {
      throw Unavailable(std::string("cannot connect to Postgres: ") + e.what());
    }
    pool_.open_.add(1);
  }
  pool_.watch(*conn, slot_);
  return *conn;
}

void Pool::Lease::discard() noexcept {
  auto& conn = pool_.slots_[slot_];
  if (!conn) return;
  {
    std::lock_guard lock(pool_.mutex_);
    pool_.unwatch(slot_);
  }
  conn.reset();
  pool_.open_.add(-1);
}

}  // namespace lagoon::db
