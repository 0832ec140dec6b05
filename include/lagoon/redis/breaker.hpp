// Breaker: a circuit breaker for one dependency. After `threshold` consecutive failures it opens and
// refuses calls for `cooldown`, so a hung dependency costs each request nothing instead of a deadline;
// then it lets exactly one call through (half-open) and closes on its success or reopens on failure.
// Thread-safe (one mutex; every call is a handful of instructions).
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>

namespace lagoon::redis {

class Breaker {
 public:
  using Clock = std::chrono::steady_clock;
  enum class State { closed, open, half_open };

  Breaker(unsigned threshold, Clock::duration cooldown) : threshold_(threshold), cooldown_(cooldown) {}

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

  void success() {
    std::lock_guard lock(mutex_);
    failures_ = 0;
    state_ = State::closed;
  }

  // Returns true when this failure opened the breaker.
  bool failure(Clock::time_point now) {
    std::lock_guard lock(mutex_);
    if (state_ == State::half_open || (state_ == State::closed && ++failures_ >= threshold_)) {
      state_ = State::open;
      open_until_ = now + cooldown_;
      return true;
    }
    return false;
  }

  State state() const {
    std::lock_guard lock(mutex_);
    return state_;
  }

 private:
  const unsigned threshold_;
  const Clock::duration cooldown_;
  mutable std::mutex mutex_;
  State state_ = State::closed;
  unsigned failures_ = 0;
  Clock::time_point open_until_{};
};

}  // namespace lagoon::redis
