// Pool: at most `db_pool_size` Postgres connections, lent out one function call at a time.
//
// with_lease(purpose, fn) waits up to db_acquire_timeout for a free connection, runs fn(connection) and
// takes the connection back when fn returns or throws: a lease exists only inside that call, so it cannot
// be kept, copied or held across anything the caller does afterwards. Connections open lazily and a broken
// one — or one to a host that turned standby and refuses writes — is closed and reopened on its next lease
// (with a libpq multi-host URL, to whichever host is the primary then). Every lease is counted per purpose
// (leases, seconds held, time waited) so tests and operators can see who holds Postgres and for how long.
//
// A leased connection that has received nothing from Postgres for db_statement_timeout + 1 s (the
// kernel's tcpi_last_data_recv, and never longer than the lease) has its socket shut down by a watchdog
// thread. Postgres enforces statement_timeout itself and answers every statement, so this only fires
// when Postgres (or the network to it) stopped answering altogether — libpq would otherwise wait on the
// socket forever, and with it the request that asked. The call then fails with Unavailable. The
// watchdog holds its own dup() of the socket, so a descriptor number libpq closed and the process
// reused is never touched.
//
// Blocking: call only from the CLI or from dedicated blocking threads, never from a reactor thread.
// Thread-safety: with_lease may be called from any number of threads at once.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <pqxx/connection>
#include <pqxx/except>

#include "lagoon/config/config.hpp"
#include "lagoon/metrics/registry.hpp"

namespace lagoon::db {

// Postgres could not be asked: no connection free in time, connect failed, or the connection broke.
// Distinct from an answer ("no such key"), so callers can return 503 rather than 401.
class Unavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
  Unavailable() : std::runtime_error("Postgres unavailable") {}  // for Result<T>::error()
};

// SQLSTATE read_only_sql_transaction: what a standby answers a write.
inline constexpr const char* kReadOnlyTransaction = "25006";

class Pool {
 public:
  Pool(const config::Config& cfg, metrics::Registry& metrics);
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  using Clock = std::chrono::steady_clock;

  // Who gets a connection first when several wait: the usage flusher must not be starved by a storm
  // of authentication misses, which would otherwise take every connection as soon as it is freed.
  enum class Priority { normal, high };

  // Runs fn(pqxx::connection&) on a leased connection and returns its result. Waits for a connection
  // until `deadline` (default: db_acquire_timeout from now).
  // Throws Unavailable when no connection is had in time or it breaks; rethrows fn's other exceptions.
  template <class F>
  auto with_lease(const std::string& purpose, F&& fn, std::optional<Clock::time_point> deadline = std::nullopt,
                  Priority priority = Priority::normal) -> decltype(fn(std::declval<pqxx::connection&>())) {
    Lease lease(*this, purpose, deadline.value_or(Clock::now() + cfg_.db_acquire_timeout), priority);
    try {
      return fn(lease.connection());
    } catch (const pqxx::broken_connection& e) {
      lease.discard();
      throw Unavailable(std::string("Postgres connection lost: ") + e.what());
    } catch (const pqxx::sql_error& e) {
      // A host that refuses writes was demoted to a standby: this connection would refuse them forever,
      // and a new one (libpq's target_session_attrs=read-write) finds the host that is primary now.
      if (e.sqlstate() != kReadOnlyTransaction) throw;
      lease.discard();
      throw Unavailable(std::string("the Postgres host no longer takes writes (a standby now?): ") + e.what());
    }
  }

  std::size_t size() const noexcept { return slots_.size(); }

  // Exports the per-purpose series at 0 before the first lease, so dashboards and tests see them.
  void declare_purpose(const std::string& purpose);

 private:
  // The right to use one slot; only with_lease creates one, on its own stack frame.
  class Lease {
   public:
    Lease(Pool& pool, const std::string& purpose, Clock::time_point deadline, Priority priority);
    ~Lease();
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    pqxx::connection& connection();
    void discard() noexcept;  // the connection is broken: close it rather than reuse it

   private:
    Pool& pool_;
    std::size_t slot_;
    std::string purpose_;
    std::chrono::steady_clock::time_point acquired_;
  };

  std::size_t acquire(const std::string& purpose, Clock::time_point deadline, Priority priority);
  void watch(const pqxx::connection& conn, std::size_t slot) noexcept;  // the slot's lease runs on it from now
  void watchdog();
  void release(std::size_t slot, const std::string& purpose, std::chrono::steady_clock::duration held) noexcept;
  metrics::Counter& leases(const std::string& purpose);
  metrics::RealCounter& lease_seconds(const std::string& purpose);

  const config::Config& cfg_;
  metrics::Registry& metrics_;
  std::mutex mutex_;
  std::condition_variable freed_;
  std::vector<std::unique_ptr<pqxx::connection>> slots_;  // null until first opened
  std::vector<std::size_t> free_;                         // indices of slots not lent out
  std::size_t high_waiting_ = 0;                          // high-priority acquirers waiting
  metrics::Gauge& in_use_;
  metrics::Gauge& open_;
  metrics::Histogram& acquire_wait_;
  metrics::Counter& acquire_timeouts_;
  struct Watched {
    int fd = -1;  // a dup() of the leased connection's socket; -1 when the slot is not lent out
    Clock::time_point since;
    bool cut = false;
  };
  void unwatch(std::size_t slot) noexcept;  // under mutex_
  std::vector<Watched> watched_;  // by slot, under mutex_
  bool stopping_ = false;
  std::condition_variable stop_;
  metrics::Counter& cut_;
  std::thread watchdog_;  // last: it starts in the constructor and uses everything above
};

}  // namespace lagoon::db
