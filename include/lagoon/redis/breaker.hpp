// Breaker: a circuit breaker for one dependency. It opens when at least `min_failures` of the last
// 2 × `min_failures` calls failed — half of them — and those failures all fell within `window`; then it
// refuses calls for `cooldown`, so a hung dependency costs each request nothing instead of a deadline;
// then it lets exactly one call through (half-open) and closes on its success or reopens on failure.
// A rate, not a run of consecutive failures: one late reply among good ones (a latency blip, a BGSAVE
// fork) must not open it, while a dependency that fails most calls must, even when a few calls still
// succeed in between. Counting calls rather than seconds keeps the successes from before an outage
// from outvoting the failures that follow it.
// Thread-safe (one mutex; every call is a handful of instructions).
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <vector>

namespace lagoon::redis {

class Breaker {
 public:
  using Clock = std::chrono::steady_clock;
  enum class State { closed, open, half_open };

  Breaker(unsigned min_failures, Clock::duration cooldown, Clock::duration window)
      : min_failures_(min_failures), cooldown_(cooldown), window_(window), recent_(2 * min_failures) {}

  // May a call be made now? In half-open state only the first caller gets true.
  bool allow(Clock::time_point now) {
    std::lock_guard lock(mutex_);
    if (state_ == State::closed) return true;
    if (state_ == State::open && now >= open_until_) {
      state_ = State::half_open;
      return true;  // the probe
    }
    return false;
  }

  // Returns true when this success closed the breaker.
  bool success(Clock::time_point now) {
    std::lock_guard lock(mutex_);
    record(now, false);
    if (state_ == State::closed) return false;
    state_ = State::closed;
    forget();
    return true;
  }

  // Returns true when this failure opened the breaker.
  bool failure(Clock::time_point now) {
    std::lock_guard lock(mutex_);
    record(now, true);
    if (state_ == State::half_open || (state_ == State::closed && recent_failures(now) >= min_failures_)) {
      state_ = State::open;
      open_until_ = now + cooldown_;
      forget();
      return true;
    }
    return false;
  }

  // Closed again, the past forgotten: the dependency was replaced (Sentinel named another Redis primary and
  // a connection to it is ready), so failures of the one before say nothing of this one. True when it was
  // not closed.
  bool reset() {
    std::lock_guard lock(mutex_);
    const bool was_open = state_ != State::closed;
    state_ = State::closed;
    forget();
    return was_open;
  }
  State state() const {
    std::lock_guard lock(mutex_);
    return state_;
  }

 private:
  struct Call {
    Clock::time_point at{};
    bool failed = false;
  };
  void record(Clock::time_point now, bool failed) {
    recent_[next_] = Call{now, failed};
    next_ = (next_ + 1) % recent_.size();
  }
  unsigned recent_failures(Clock::time_point now) const {
    unsigned n = 0;
    for (const auto& c : recent_) n += c.failed && now - c.at < window_;
    return n;
  }
  void forget() {
    for (auto& c : recent_) c = Call{};
  }

  const unsigned min_failures_;
  const Clock::duration cooldown_;
  const Clock::duration window_;
  mutable std::mutex mutex_;
  State state_ = State::closed;
  std::vector<Call> recent_;  // the last 2 × min_failures calls, a ring
  std::size_t next_ = 0;
  Clock::time_point open_until_{};
};

}  // namespace lagoon::redis
