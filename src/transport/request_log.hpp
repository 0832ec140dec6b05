// RequestLog: what happens when a request is over, whatever it was — its line in the access log
// (JSON; key prefix and user, never the key) and lagoon_http_requests_total /
// lagoon_http_request_duration_seconds. The outcome label comes from accounting::label().
// Thread-safety: finish() from any thread.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "lagoon/metrics/registry.hpp"
#include "lagoon/routes/route.hpp"

namespace lagoon::transport {

struct Finished {
  std::chrono::steady_clock::time_point started;
  std::string_view route = "unmatched";  // bounded metric label
  std::string_view method;
  std::string_view path;
  unsigned status = 0;
  std::string_view request_id;
  std::size_t bytes_in = 0;
  std::size_t bytes_out = 0;
  const routes::RequestFacts* facts = nullptr;
};

class RequestLog {
 public:
  explicit RequestLog(metrics::Registry& registry) : registry_(registry) {}
  void finish(const Finished& f);

 private:
  metrics::Registry& registry_;
};

}  // namespace lagoon::transport
