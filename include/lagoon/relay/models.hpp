// ModelsRoute: GET /api/v1/models — the upstream's list, asked with the gateway's credential, cached
// for 5 minutes and served stale while the upstream cannot be asked. Metered like any authenticated
// request (one usage record through a UsageGuard).
// Thread-safety: serve() from any number of connection coroutines at once.
#pragma once

#include <chrono>
#include <mutex>
#include <string>

#include "lagoon/config/config.hpp"
#include "lagoon/metrics/registry.hpp"
#include "lagoon/routes/route.hpp"
#include "lagoon/upstream/exchange.hpp"
#include "lagoon/usage/sink.hpp"

namespace lagoon::relay {

class ModelsRoute final : public routes::Handler {
 public:
  ModelsRoute(const config::Config& cfg, upstream::Sender& upstream, usage::Sink& usage, metrics::Registry& metrics)
      : cfg_(cfg), upstream_(upstream), usage_(usage), metrics_(metrics) {}
  boost::asio::awaitable<routes::Served> serve(const routes::Call& call, Downstream& client) override;

 private:
  // The list as the upstream sent it, or the reply saying why there is none.
  boost::asio::awaitable<std::optional<std::string>> fetch(const std::string& request_id, http::Reply& failure);

  const config::Config& cfg_;
  upstream::Sender& upstream_;
  usage::Sink& usage_;
  metrics::Registry& metrics_;
  std::mutex mutex_;
  std::string body_;  // the last good list
  std::chrono::steady_clock::time_point fetched_{};
};

}  // namespace lagoon::relay
