#include "lagoon/usage/pipeline.hpp"

#include <filesystem>

#include "lagoon/log/log.hpp"
#include "lagoon/util/thread_name.hpp"

namespace lagoon::usage {

namespace {
constexpr std::chrono::milliseconds kMaxBackoff{5000};
constexpr std::chrono::milliseconds kMinBackoff{100};

// Ends a journal replay whose batch the store could not take now (Journal::replay_oldest keeps the file).
struct NotNow : std::runtime_error {
  using std::runtime_error::runtime_error;
};
}  // namespace

struct Pipeline::Metrics {
  explicit Metrics(metrics::Registry& m)
      : enqueued(m.counter("lagoon_usage_enqueued_total", "Usage records accepted from requests")),
        dropped(m.counter("lagoon_usage_dropped_total", "Usage records lost because the queue was full")),
        flushed(m.counter("lagoon_usage_flushed_total", "Usage rows written to Postgres")),
        duplicates(m.counter("lagoon_usage_duplicates_total",
                             "Usage records already in Postgres when written again (replays, retries)")),
        journalled(m.counter("lagoon_usage_journalled_total", "Usage records spilled to the journal")),
        replayed(m.counter("lagoon_usage_replayed_total", "Usage records replayed from the journal")),
        recovered(m.counter("lagoon_usage_recovered_total",
                            "Usage records found at start-up in the queue a previous process left")),
        dead_lettered(m.counter("lagoon_usage_dead_lettered_total",
                                "Usage records Postgres refused, kept in dead-letter.jsonl")),
        flush_failures(m.counter("lagoon_usage_flush_failures_total", "Usage batch writes that failed")),
        in_flight_full(m.counter("lagoon_usage_in_flight_full_total",
                                 "Requests not tracked while running because the in-flight table was full")),
        interrupted(m.counter("lagoon_usage_interrupted_total",
                              "Usage records recovered at start-up for requests a previous process left open")),
        depth(m.gauge("lagoon_usage_queue_depth", "Usage records waiting in the queue")),
        capacity(m.gauge("lagoon_usage_queue_capacity", "Usage records the queue holds at most")),
        journal_bytes(m.gauge("lagoon_usage_journal_bytes", "Bytes of usage records waiting in journal files")),
        flush_seconds(m.histogram("lagoon_usage_flush_seconds", "Time to write one usage batch to Postgres",
                                  metrics::latency_buckets())),
        batch_size(m.histogram("lagoon_usage_batch_size", "Usage records per Postgres write",
                               {1, 10, 100, 500, 1000, 5000, 10000, 100000})) {}
  metrics::Counter &enqueued, &dropped, &flushed, &duplicates, &journalled, &replayed, &recovered, &dead_lettered,
      &flush_failures, &in_flight_full, &interrupted;
  metrics::Gauge &depth, &capacity, &journal_bytes;
  metrics::Histogram &flush_seconds, &batch_size;
};

Pipeline::Pipeline(const config::Config& cfg, db::Pool& pool, metrics::Registry& metrics)
    : Pipeline(cfg, std::make_unique<PostgresStore>(cfg, pool), nullptr, metrics) {}

Pipeline::Pipeline(const config::Config& cfg, Store& store, metrics::Registry& metrics)
    : Pipeline(cfg, nullptr, &store, metrics) {}

Pipeline::Pipeline(const config::Config& cfg, std::unique_ptr<Store> owned, Store* store, metrics::Registry& metrics)
    : cfg_(cfg),
      owned_store_(std::move(owned)),
      store_(store ? *store : *owned_store_),
      metrics_(std::make_unique<Metrics>(metrics)),
      ring_((std::filesystem::create_directories(cfg.usage_dir), (std::filesystem::path(cfg.usage_dir) / "queue.ring").string()),
            cfg.usage_queue_capacity),
      // One request per connection at a time: max_connections slots cannot fill in normal operation.
      in_flight_((std::filesystem::path(cfg.usage_dir) / "in-flight.table").string(), cfg.max_connections),
      journal_((std::filesystem::path(cfg.usage_dir) / "journal").string()) {
  metrics_->capacity.set(static_cast<double>(ring_.capacity()));
  metrics_->journal_bytes.set(static_cast<double>(journal_.bytes()));
  journal_empty_.store(!journal_.pending());
  batch_.reserve(cfg.usage_batch_size);
  recover_in_flight();
}

// Before any request runs: what a dead process left open joins the ring, behind what it left there.
void Pipeline::recover_in_flight() {
  if (in_flight_.unreadable() > 0)
    log::error("unreadable slots in the usage in-flight table were skipped",
               {{"slots", in_flight_.unreadable()}, {"file", in_flight_.path()}});
  if (in_flight_.recovered().empty()) return;
  const HandOver h = recover_into(in_flight_, ring_);
  metrics_->interrupted.inc(h.queued);
  log::warn("usage records recovered for requests a previous process left open",
            {{"queued", h.queued}, {"already_queued", h.duplicates}, {"kept_for_next_start", h.kept}});
}

Pipeline::~Pipeline() { stop(std::chrono::milliseconds(0)); }

void Pipeline::start() {
  thread_ = std::thread([this] {
    util::name_this_thread("lagoon-usage");
    run();
  });
}

bool Pipeline::push(const Record& r) noexcept {
  if (!ring_.try_push(r)) {
    metrics_->dropped.inc();
    return false;
  }
  metrics_->enqueued.inc();
  if (ring_.depth() >= cfg_.usage_batch_size && !kicked_.exchange(true, std::memory_order_relaxed))
    wake_.notify_one();
  return true;
}

InFlight::Entry Pipeline::open(const Record& r) noexcept {
  auto e = in_flight_.open(r);
  if (!e) metrics_->in_flight_full.inc();
  return e;
}

bool Pipeline::push(const Record& r, InFlight::Entry& entry) noexcept {
  in_flight_.finish(entry, r);
  const bool pushed = push(r);
  in_flight_.close(entry);
  return pushed;
}

void Pipeline::stop(std::chrono::milliseconds deadline) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      stopping_ = true;
      stop_deadline_ = Clock::now() + deadline;
    }
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

bool Pipeline::stopping() {
  std::lock_guard lock(mutex_);
  return stopping_;
}

void Pipeline::run() {
  if (!ring_.recovered().empty()) {
    const auto& rec = ring_.recovered();
    metrics_->recovered.inc(rec.size());
    log::info("usage records recovered from the queue a previous process left", {{"records", rec.size()}});
    std::size_t done = 0;
    while (done < rec.size()) {
      const std::size_t n = std::min(cfg_.usage_batch_size, rec.size() - done);
      if (deliver(std::span<const Record>(rec).subspan(done, n))) {
        done += n;
        continue;
      }
      if (stopping() && Clock::now() >= stop_deadline_) break;
      std::this_thread::sleep_for(cfg_.usage_flush_interval);
    }
    // Only once every recovered record is stored elsewhere may the ring start afresh; otherwise the
    // file keeps them for the next start.
    if (done < rec.size()) return;
    ring_.release_recovered();
  }
  for (;;) {
    bool stop_now;
    {
      std::unique_lock lock(mutex_);
      if (!stopping_) wake_.wait_for(lock, cfg_.usage_flush_interval, [&] { return stopping_ || kicked_.load(); });
      stop_now = stopping_;
    }
    kicked_.store(false, std::memory_order_relaxed);
    if (journal_.pending() && postgres_usable_now()) replay_journal();
    const std::size_t before = ring_.depth();
    drain_ring(stop_now);
    metrics_->depth.set(static_cast<double>(ring_.depth()));
    metrics_->journal_bytes.set(static_cast<double>(journal_.bytes()));
    journal_empty_.store(!journal_.pending(), std::memory_order_relaxed);
    if (stop_now) {
      if (ring_.depth() == 0 || Clock::now() >= stop_deadline_) break;
      // Postgres is down and the journal refuses too: wait a little rather than spin.
      if (ring_.depth() >= before) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  if (ring_.depth() > 0)
    log::error("usage records left in the queue at exit; they are kept in the ring file for the next start",
               {{"records", ring_.depth()}, {"file", ring_.path()}});
}

void Pipeline::drain_ring(bool stopping) {
  for (;;) {
    batch_.clear();
    const std::size_t n = ring_.peek(batch_, cfg_.usage_batch_size);
    if (n == 0) return;
    std::erase_if(batch_, [](const Record& r) { return r.request_id.empty(); });
    if (batch_.size() != n)
      log::error("unreadable usage records in the queue file were skipped", {{"records", n - batch_.size()}});
    if (!deliver(batch_)) {
      ring_.rewind();
      return;
    }
    ring_.release(n);
    if (n < cfg_.usage_batch_size && !stopping) return;  // the rest of a partial batch can wait
  }
}

bool Pipeline::postgres_usable_now() const { return !down_since_ || Clock::now() >= next_attempt_; }

bool Pipeline::must_spill() {
  if (!down_since_) return false;
  return stopping() || Clock::now() - *down_since_ >= cfg_.usage_spill_after || ring_.depth() * 2 >= ring_.capacity();
}

bool Pipeline::spill(std::span<const Record> batch) {
  try {
    journal_.append(batch);
    metrics_->journalled.inc(batch.size());
    return true;
  } catch (const std::exception& e) {
    log::error("cannot write the usage journal; records stay in the queue", {{"error", e.what()}});
    return false;
  }
}

bool Pipeline::deliver(std::span<const Record> batch) {
  if (batch.empty()) return true;
  // Postgres keeps up too slowly and the queue is nearly full: the journal takes records at disk speed
  // so that requests never find the queue full.
  if (ring_.depth() * 4 >= ring_.capacity() * 3 && spill(batch)) return true;
  if (!postgres_usable_now()) return must_spill() && spill(batch);
  std::string error;
  if (write_isolating(batch, error)) {
    note_postgres_up();
    return true;
  }
  metrics_->flush_failures.inc();
  note_postgres_down(error);
  return must_spill() && spill(batch);
}

bool Pipeline::write_isolating(std::span<const Record> batch, std::string& error) {
  const auto started = Clock::now();
  const Stored r = store_.write(batch);
  switch (r.status) {
    case Stored::Status::written:
      metrics_->flushed.inc(r.counts.inserted);
      metrics_->duplicates.inc(r.counts.duplicates);
      metrics_->batch_size.observe(static_cast<double>(batch.size()));
      metrics_->flush_seconds.observe(std::chrono::duration<double>(Clock::now() - started).count());
      return true;
    case Stored::Status::transient:
      error = r.error;
      return false;
    case Stored::Status::refused:
      break;
  }
  if (batch.size() == 1) {
    metrics_->dead_lettered.inc();
    log::error("Postgres refused a usage record; it is kept in the dead-letter file",
               {{"request_id", batch[0].request_id}, {"error", r.error}, {"dir", journal_.dir()}});
    journal_.dead_letter(batch[0], r.error);
    return true;
  }
  const std::size_t half = batch.size() / 2;
  return write_isolating(batch.first(half), error) && write_isolating(batch.subspan(half), error);
}

void Pipeline::note_postgres_down(const std::string& error) {
  const auto now = Clock::now();
  if (!down_since_) {
    down_since_ = now;
    backoff_ = kMinBackoff;
    log::warn("cannot write usage to Postgres; records wait in the queue, then in the journal",
              {{"error", error}, {"spill_after_ms", cfg_.usage_spill_after.count()}});
  }
  next_attempt_ = now + backoff_;
  backoff_ = std::min(backoff_ * 2, kMaxBackoff);
}

void Pipeline::note_postgres_up() {
  if (!down_since_) return;
  log::info("Postgres takes usage records again",
            {{"down_ms", std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - *down_since_).count()}});
  down_since_.reset();
  backoff_ = kMinBackoff;
}

void Pipeline::replay_journal() {
  while (journal_.pending() && postgres_usable_now()) {
    std::string error;
    try {
      const std::size_t n = journal_.replay_oldest(cfg_.usage_batch_size, [&](std::span<const Record> b) {
        if (!write_isolating(b, error)) throw NotNow(error);
      });
      metrics_->replayed.inc(n);
      note_postgres_up();
    } catch (const std::exception& e) {  // NotNow, or the journal's own trouble reading a file
      metrics_->flush_failures.inc();
      note_postgres_down(e.what());
      return;
    }
    metrics_->journal_bytes.set(static_cast<double>(journal_.bytes()));
    if (ring_.depth() >= cfg_.usage_batch_size) return;  // live records first; the journal can wait
  }
}

}  // namespace lagoon::usage
