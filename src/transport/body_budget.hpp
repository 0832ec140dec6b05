// BodyBudget: see the class comment. Internal to src/transport.
#pragma once

#include <atomic>
#include <cstddef>
#include <optional>
#include <utility>

#include "lagoon/metrics/registry.hpp"

namespace lagoon::transport {

// The memory all connections' request bodies may take together (max_buffered_body_bytes). A body's whole
// size is reserved before its first byte is read — its Content-Length, or max_body_bytes when chunked —
// and released when its request is over. Thread-safe. Reservations live in connection coroutines, which
// the io_context may destroy after the server's other members: the budget must outlive the io_context.
class BodyBudget {
 public:
  BodyBudget(std::size_t limit, metrics::Registry& r)
      : limit_(limit),
        gauge_(r.gauge("lagoon_http_body_bytes_reserved",
                       "Request body bytes being received or held now, all connections together")) {}

  class Reservation {
   public:
    Reservation(BodyBudget& b, std::size_t n) : budget_(&b), bytes_(n) {}
    Reservation(Reservation&& o) noexcept : budget_(std::exchange(o.budget_, nullptr)), bytes_(o.bytes_) {}
    Reservation& operator=(Reservation&&) = delete;
    ~Reservation() {
      if (budget_) budget_->release(bytes_);
    }

   private:
    BodyBudget* budget_;
    std::size_t bytes_;
  };

  // nullopt when `n` more bytes would exceed the limit.
  std::optional<Reservation> try_reserve(std::size_t n) {
    std::size_t used = used_.load(std::memory_order_relaxed);
    do {
      if (n > limit_ - used) return std::nullopt;
    } while (!used_.compare_exchange_weak(used, used + n, std::memory_order_relaxed));
    gauge_.add(static_cast<double>(n));
    return Reservation(*this, n);
  }

 private:
  void release(std::size_t n) {
    used_.fetch_sub(n, std::memory_order_relaxed);
    gauge_.add(-static_cast<double>(n));
  }

  const std::size_t limit_;
  metrics::Gauge& gauge_;
  std::atomic<std::size_t> used_{0};
};

}  // namespace lagoon::transport
