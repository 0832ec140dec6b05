// CatalogRoute: Venice's public catalog — GET /models (with ?type=…), /models/traits,
// /models/compatibility_mapping and /image/styles — asked upstream with the gateway's credential,
// each path-and-type's answer cached for 5 minutes (concurrent misses share one upstream request) and
// served stale while the upstream cannot be asked; so a catalog request costs no upstream call. The
// answer passes as the upstream sent it (/models keeps OpenAI's list shape and Venice's model_spec,
// prices included).
// Venice serves the catalog without a key; Lagoon asks for one unless `catalog_public` is set. With a
// key, a request is metered like any other (one usage row, endpoint `models`).
// Thread-safety: serve() from any number of connection coroutines at once.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "lagoon/auth/policy.hpp"
#include "lagoon/config/config.hpp"
#include "lagoon/metrics/registry.hpp"
#include "lagoon/routes/route.hpp"
#include "lagoon/upstream/exchange.hpp"
#include "lagoon/usage/sink.hpp"
#include "lagoon/util/single_flight.hpp"

namespace lagoon::relay {

// The upstream path and query a catalog request names ("/models?type=image"), or the reason it is
// refused (an unknown type would otherwise make every query string a cache entry of its own). The
// type is the only query parameter passed on. Pure.
struct CatalogQuery {
  std::string upstream;  // path and query for the upstream, and the cache key
  std::string problem;   // non-empty: 400 with this message (param "type")
};
CatalogQuery catalog_query(std::string_view target);

// The catalog as a key limited to some models sees it: /models without the models it may not use,
// /models/traits without the traits naming them, /models/compatibility_mapping without the names it may
// not send (a compatibility name is matched as sent). `body` as the
// upstream sent it (checked well-formed); other paths, and a key with every model, get it unchanged.
std::string visible_catalog(std::string_view path, std::string body, const auth::KeyPolicy& policy);

class CatalogRoute final : public routes::Handler {
 public:
  using Clock = std::chrono::steady_clock;
  // `now`: the clock freshness is judged by (tests move it; the product's is steady_clock).
  CatalogRoute(const config::Config& cfg, upstream::Sender& upstream, usage::Sink& usage, metrics::Registry& metrics,
               std::function<Clock::time_point()> now = Clock::now);
  boost::asio::awaitable<routes::Served> serve(const routes::Call& call, Downstream& client) override;

  struct Fetched {
    std::optional<std::string> body;  // the upstream's answer
    http::Reply failure;              // else why there is none
  };

 private:
  boost::asio::awaitable<Fetched> fetch(const std::string& upstream, const std::string& request_id);
  boost::asio::awaitable<http::Reply> lookup(const std::string& upstream, const std::string& request_id,
                                             accounting::Outcome& outcome);

  const config::Config& cfg_;
  upstream::Sender& upstream_;
  usage::Sink& usage_;
  metrics::Registry& metrics_;
  metrics::Counter& hits_;
  metrics::Counter& fetches_;
  metrics::Counter& stale_;
  std::function<Clock::time_point()> now_;
  util::SingleFlight<Fetched> flights_;
  struct Entry {
    std::string body;  // the last good answer
    std::chrono::steady_clock::time_point fetched;
  };
  std::mutex mutex_;
  std::map<std::string, Entry, std::less<>> cache_;  // bounded: a few paths times the known types
};

}  // namespace lagoon::relay
