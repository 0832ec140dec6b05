// Haproxy: haproxy (Debian's) in front of several `lagoon serve` instances on one free port — the load
// balancer users put in front of a scale-out: round robin, health checks on /readyz every 200 ms (two
// failures take a server out, two successes bring it back), and a request retried on another server
// when the connection failed or was closed before any response.
// Runs in the foreground of a Process; stopped with it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "support/process.hpp"

namespace lagoon::test {

class Haproxy {
 public:
  explicit Haproxy(const std::vector<unsigned short>& backends);
  ~Haproxy();
  unsigned short port() const { return port_; }
  // The configuration it runs with, for `make cluster` and failure messages.
  const std::string& config() const { return config_; }

 private:
  unsigned short port_;
  std::string dir_;
  std::string config_;
  std::unique_ptr<Process> process_;
};

// The haproxy configuration for `port` in front of `backends` (127.0.0.1 each).
std::string haproxy_config(unsigned short port, const std::vector<unsigned short>& backends);

}  // namespace lagoon::test
