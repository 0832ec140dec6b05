// LoadThreads: the client threads of a failover test's load, run from spawn() until stop() (or the
// destructor), and the moment from which refusals are expected (failing_over()). Tests derive their load
// from it and count what their threads saw. Thread-safe: the flags are atomics; spawn() and stop() from
// the test's thread only.
#pragma once

#include <atomic>
#include <thread>
#include <utility>
#include <vector>

namespace lagoon::test {

class LoadThreads {
 public:
  LoadThreads() = default;
  LoadThreads(const LoadThreads&) = delete;
  LoadThreads& operator=(const LoadThreads&) = delete;
  ~LoadThreads() { stop(); }

  // From now on a refusal is expected (and a test checks which); before, none is.
  void failing_over() { failing_over_ = true; }
  void stop() {
    running_ = false;
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }

 protected:
  template <class F>
  void spawn(F&& body) {
    threads_.emplace_back(std::forward<F>(body));
  }
  bool running() const { return running_; }
  bool is_failing_over() const { return failing_over_; }

 private:
  std::atomic<bool> running_{true}, failing_over_{false};
  std::vector<std::thread> threads_;
};

}  // namespace lagoon::test
