// Process bootstrap for `lagoon serve`: logging, metrics, the Postgres pool, the usage pipeline and the
// readiness probes outlive the Gateway, so that what requests leave behind is written after they end.
#include "lagoon/app/run.hpp"

#include <optional>

#include <boost/system/system_error.hpp>

#include "gateway.hpp"
#include "lagoon/log/log.hpp"

namespace lagoon::app {

// Requests are over: what they left queued gets this long to reach Postgres before the journal takes it.
constexpr std::chrono::milliseconds kFinalUsageFlush{5000};

int run(const config::Config& cfg) {
  log::init(cfg.log_level);
  metrics::Registry registry;
  registry.gauge("lagoon_build_info", "Always 1; the version is in the label", {{"version", LAGOON_VERSION}}).set(1);
  int code = 0;
  {
    db::Pool pool(cfg, registry);
    std::optional<usage::Pipeline> usage;
    try {
      usage.emplace(cfg, pool, registry);
    } catch (const std::exception& e) {
      log::error("cannot open the usage queue", {{"error", e.what()}, {"hint", "set LAGOON_USAGE_DIR"}});
      log::shutdown();
      return 1;
    }
    usage->start();
    Readiness readiness(cfg, pool, registry);
    readiness.start();
    try {
      Gateway gateway(cfg, registry, readiness, pool, *usage);
      code = gateway.run();
    } catch (const boost::system::system_error& e) {
      log::error("cannot listen", {{"address", cfg.listen.host}, {"port", cfg.listen.port}, {"error", e.what()}});
      code = 1;
    } catch (const std::exception& e) {
      log::error("cannot start", {{"error", e.what()}});
      code = 1;
    }
    readiness.stop();
    // What Postgres cannot take in time goes to the journal (and the queue file keeps anything else for
    // the next start).
    usage->stop(kFinalUsageFlush);
  }
  log::shutdown();
  return code;
}

}  // namespace lagoon::app
