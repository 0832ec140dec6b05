// The gateway's own small routes: health, readiness, metrics, the calling key's record, and the admin
// API's door. (The relaying routes — chat, models — are in relay/.)
// Thread-safety: each serve() may run on many connections at once.
#pragma once

#include <nlohmann/json.hpp>

#include "lagoon/admin/api.hpp"
#include "lagoon/app/readiness.hpp"
#include "lagoon/metrics/registry.hpp"
#include "lagoon/ratelimit/limiter.hpp"
#include "lagoon/routes/route.hpp"
#include "lagoon/usage/sink.hpp"

namespace lagoon::routes {

// GET /healthz: the process answers.
class Health final : public Handler {
 public:
  boost::asio::awaitable<Served> serve(const Call& call, relay::Downstream& client) override;
};

// GET /readyz: 200 while Redis and Postgres answer and the listener is open and not draining; else 503
// naming what is missing.
class Ready final : public Handler {
 public:
  explicit Ready(const app::Readiness& readiness) : readiness_(readiness) {}
  boost::asio::awaitable<Served> serve(const Call& call, relay::Downstream& client) override;

 private:
  const app::Readiness& readiness_;
};

// GET /metrics: the Prometheus text.
class Metrics final : public Handler {
 public:
  explicit Metrics(metrics::Registry& registry) : registry_(registry) {}
  boost::asio::awaitable<Served> serve(const Call& call, relay::Downstream& client) override;

 private:
  metrics::Registry& registry_;
};

// GET /api/v1/key: the calling key's own record. Metered like any authenticated request.
class KeyInfo final : public Handler {
 public:
  KeyInfo(usage::Sink& usage, ratelimit::Gate& gate) : usage_(usage), gate_(gate) {}
  boost::asio::awaitable<Served> serve(const Call& call, relay::Downstream& client) override;

 private:
  usage::Sink& usage_;
  ratelimit::Gate& gate_;  // what the key's budgets have spent
};

// GET /api/v1/key's budget objects: {scope, amount_usd, period, spent_usd, remaining_usd, resets_at},
// amounts as exact decimal strings; spent and remaining null when they cannot be known now.
nlohmann::json budget_json(const ratelimit::BudgetState& b, bool known);

// GET /api/v1/key's policy object: {allowed_models (null: every model), allowed_endpoints,
// max_concurrent (null: no cap), expires_at, revokes_at (a rotated key's end of grace)}, merged with the
// user's defaults as the gateway enforces them.
nlohmann::json policy_json(const auth::KeyPolicy& p);

// Everything under /admin/v1: the admin API checks its own token and routes further.
class Admin final : public Handler {
 public:
  explicit Admin(admin::Api& api) : api_(api) {}
  boost::asio::awaitable<Served> serve(const Call& call, relay::Downstream& client) override;

 private:
  admin::Api& api_;
};

// GET /console/…: the operator console's files (routes/console.hpp). Disabled (404) without an admin
// token, and on the main listener when the console has one of its own.
class Console final : public Handler {
 public:
  explicit Console(bool enabled) : enabled_(enabled) {}
  boost::asio::awaitable<Served> serve(const Call& call, relay::Downstream& client) override;

 private:
  const bool enabled_;
};

}  // namespace lagoon::routes
