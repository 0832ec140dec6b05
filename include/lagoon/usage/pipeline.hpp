// Pipeline: usage records from the request path to Postgres, none lost, none doubled, in bounded memory.
//
// push() puts a record into the crash-safe Ring (no lock, no allocation, no system call; durable
// against a process crash once it returns). One flusher thread takes what accumulated every
// usage_flush_interval, or sooner when a batch is full, and writes it to its Store (store.hpp) in one
// transaction — PostgresStore: usage::write_batch, idempotent on request_id, on a high-priority lease
// from the pool, so a storm of authentication misses cannot starve it. A batch Postgres refuses for a data reason is split until
// the bad record is found; that record goes to the dead-letter file and the rest are written. While
// Postgres is unreachable the records stay in the ring; after usage_spill_after (or when the ring is
// half full) they are spilled to the Journal — as they are whenever the ring is three quarters full —
// and the journal is replayed once Postgres is back, and at start-up, as are records a previous process
// left in the ring.
// Requests still running are tracked in the InFlight table beside the ring (open() at admission,
// push(record, entry) at the end), so a process killed with requests open leaves their rows too: the
// next start queues them, outcome `interrupted`, before anything else.
//
// Thread-safety: push() from any thread; start() and stop() from one owner thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "lagoon/config/config.hpp"
#include "lagoon/db/pool.hpp"
#include "lagoon/usage/in_flight.hpp"
#include "lagoon/metrics/registry.hpp"
#include "lagoon/usage/journal.hpp"
#include "lagoon/usage/record.hpp"
#include "lagoon/usage/ring.hpp"
#include "lagoon/usage/sink.hpp"
#include "lagoon/usage/store.hpp"
#include "lagoon/usage/writer.hpp"

namespace lagoon::usage {

class Pipeline final : public Sink {
 public:
  // Opens the ring and journal under cfg.usage_dir. Throws std::runtime_error naming the directory
  // when it cannot, or when another process uses it.
  Pipeline(const config::Config& cfg, db::Pool& pool, metrics::Registry& metrics);
  // Writing to `store` instead of Postgres (unit tests); `store` must outlive the pipeline.
  Pipeline(const config::Config& cfg, Store& store, metrics::Registry& metrics);
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  void start();

  // Never blocks. False only when the ring is full: the record is counted in lagoon_usage_dropped_total.
  bool push(const Record& r) noexcept;

  // A request begins: its record so far is kept in the in-flight table until push(r, entry). Never
  // blocks; an empty Entry when the table is full (counted in lagoon_usage_in_flight_full_total).
  InFlight::Entry open(const Record& r) noexcept override;
  // The request ended: its final record goes to the ring first, then its in-flight slot is freed, so
  // no moment exists at which a crash would lose it. `entry` becomes empty.
  bool push(const Record& r, InFlight::Entry& entry) noexcept override;

  // Records waiting in the queue (approximate while producers run).
  std::size_t queued() const noexcept { return ring_.depth(); }
  std::size_t capacity() const noexcept { return ring_.capacity(); }
  // Nothing queued and nothing waiting in the journal, as of the flusher's last round.
  bool idle() const noexcept { return ring_.depth() == 0 && journal_empty_.load(std::memory_order_relaxed); }

  // Writes what is queued to Postgres; whatever Postgres cannot take before `deadline` goes to the
  // journal. Then the flusher ends. Idempotent.
  void stop(std::chrono::milliseconds deadline);

 private:
  using Clock = std::chrono::steady_clock;
  struct Metrics;

  // `store`, or else `owned` (the Postgres store the pool constructor makes).
  Pipeline(const config::Config& cfg, std::unique_ptr<Store> owned, Store* store, metrics::Registry& metrics);

  void run();
  bool stopping();
  void drain_ring(bool stopping);
  bool spill(std::span<const Record> batch);
  // Stores a batch in Postgres or, when it may not wait for Postgres any longer, in the journal.
  // False when it did neither (the caller keeps the records in the ring and tries again later).
  bool deliver(std::span<const Record> batch);
  // Writes a batch, setting aside each record the store refuses; false (and why) on a transient failure.
  bool write_isolating(std::span<const Record> batch, std::string& error);
  bool postgres_usable_now() const;
  bool must_spill();
  void note_postgres_down(const std::string& error);
  void note_postgres_up();
  void replay_journal();
  void recover_in_flight();

  const config::Config& cfg_;
  std::unique_ptr<Store> owned_store_;
  Store& store_;
  std::unique_ptr<Metrics> metrics_;
  Ring ring_;
  InFlight in_flight_;
  Journal journal_;

  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::atomic<bool> kicked_{false};  // a producer saw a full batch waiting
  std::atomic<bool> journal_empty_{true};
  Clock::time_point stop_deadline_{};

  // Flusher thread only.
  std::optional<Clock::time_point> down_since_;
  Clock::time_point next_attempt_{};
  std::chrono::milliseconds backoff_{100};
  std::vector<Record> batch_;
};

}  // namespace lagoon::usage
