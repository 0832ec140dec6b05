// FaultProxy: a TCP proxy on 127.0.0.1 in front of one dependency (Postgres, Redis, the upstream) that
// misbehaves on command — what `tc netem` and iptables would do, which these machines lack, for one
// test's connections only (the shared Postgres stays healthy for the tests running beside).
//   pass     forward both ways (after `delay`, if set)
//   stall    keep every connection open and move no byte either way: a hung peer
//   refuse   close new connections at once (existing ones keep working): a peer that is down
// reset_all() ends every open connection with a TCP reset. One thread; the setters are thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

namespace lagoon::test {

class FaultProxy {
 public:
  enum class Mode { pass, stall, refuse };

  explicit FaultProxy(unsigned short target_port);
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  unsigned short port() const { return port_; }
  void set_mode(Mode m) { mode_.store(m); }
  void set_delay(std::chrono::milliseconds d) { delay_ms_.store(static_cast<int>(d.count())); }
  void reset_all() { reset_requested_.store(true); }
  int connections() const { return open_.load(); }

 private:
  void run();

  unsigned short target_;
  unsigned short port_ = 0;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  std::atomic<Mode> mode_{Mode::pass};
  std::atomic<int> delay_ms_{0};
  std::atomic<bool> reset_requested_{false};
  std::atomic<bool> stop_{false};
  std::atomic<int> open_{0};
  std::thread thread_;
};

}  // namespace lagoon::test
