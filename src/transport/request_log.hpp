// RequestLog: what happens when a request is over, whatever it was — its line in the access log
// (JSON; key prefix and user, never the key) and lagoon_http_requests_total /
// lagoon_http_request_duration_seconds. The outcome label comes from accounting::label().
// Thread-safety: finish() from any thread.
#pragma once

#include <chrono>
#include <mutex>
#include <unordered_map>
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
  // The series a request counts in, found once per route, status and outcome: the registry's lookup
  // renders the labels into strings and takes its lock, a dozen allocations a request. Keyed by the
  // route label's address — labels are the route table's static strings (or the "unmatched" literal),
  // and a label at another address only costs another entry.
  struct Series {
    metrics::Counter* requests = nullptr;
    metrics::Histogram* duration = nullptr;
  };
  struct SeriesKey {
    const char* route = nullptr;
    std::size_t route_size = 0;
    unsigned status = 0;
    const char* outcome = nullptr;
    bool operator==(const SeriesKey&) const = default;
  };
  struct SeriesHash {
    std::size_t operator()(const SeriesKey& k) const noexcept {
      return std::hash<const void*>()(k.route) ^ (std::hash<unsigned>()(k.status) * 31) ^
             (std::hash<const void*>()(k.outcome) * 17) ^ k.route_size;
    }
  };
  Series series(std::string_view route, unsigned status, std::string_view outcome);

  metrics::Registry& registry_;
  std::mutex mutex_;
  std::unordered_map<SeriesKey, Series, SeriesHash> series_;
};

}  // namespace lagoon::transport
