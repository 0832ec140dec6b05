#include "lagoon/routes/handlers.hpp"

#include "lagoon/routes/console.hpp"

#include <nlohmann/json.hpp>

#include "lagoon/accounting/usage_guard.hpp"

namespace lagoon::routes {

using boost::asio::awaitable;

awaitable<Served> answer(relay::Downstream& client, http::Reply& reply, const RequestFacts* facts) {
  Served s;
  s.status = reply.status;
  s.close = reply.close;
  if (facts) s.facts = *facts;
  if (!co_await client.send(reply)) s.close = true;
  co_return s;
}

awaitable<Served> Health::serve(const Call&, relay::Downstream& client) {
  http::Reply r = http::json_reply(200, R"({"status":"ok"})");
  co_return co_await answer(client, r);
}

awaitable<Served> Ready::serve(const Call&, relay::Downstream& client) {
  const auto s = readiness_.snapshot();
  http::Reply r;
  if (s.ready()) {
    r = http::json_reply(200, R"({"status":"ready","redis":"ok","postgres":"ok"})");
  } else {
    std::string why = s.draining         ? "draining"
                      : !s.listening     ? "listener not ready"
                      : !s.accepting     ? "not accepting connections"
                      : !s.probed        ? "starting"
                                         : "";
    if (why.empty()) {
      if (!s.redis) why += "redis unavailable";
      if (!s.postgres) why += std::string(why.empty() ? "" : ", ") + "postgres unavailable";
    }
    r = http::error_reply(http::ErrorKind::service_unavailable, "not ready: " + why);
  }
  co_return co_await answer(client, r);
}

awaitable<Served> Metrics::serve(const Call&, relay::Downstream& client) {
  http::Reply r = http::body_reply(200, registry_.render(), "text/plain; version=0.0.4; charset=utf-8");
  co_return co_await answer(client, r);
}

nlohmann::json budget_json(const ratelimit::BudgetState& b, bool known) {
  nlohmann::json j{{"scope", b.user ? "user" : "key"},
                   {"amount_usd", money::format_usd(b.budget.amount)},
                   {"period", money::period_name(b.budget.period)},
                   {"spent_usd", nullptr},
                   {"remaining_usd", nullptr},
                   {"resets_at", b.window.end ? nlohmann::json(money::rfc3339(*b.window.end)) : nlohmann::json(nullptr)}};
  if (known) {
    j["spent_usd"] = money::format_usd(b.spent);
    j["remaining_usd"] = money::format_usd(std::max<money::Pico>(0, b.budget.amount - b.spent));
  }
  return j;
}

namespace {
// The key's budgets as they stand; `budget` is the one with the least left (the one a request meets first).
awaitable<nlohmann::json> budgets_of(ratelimit::Gate& gate, const auth::KeyRecord& k) {
  nlohmann::json out{{"budget", nullptr}, {"budgets", nlohmann::json::array()}};
  if (!k.has_budget()) co_return out;
  const auto states = co_await gate.budgets(k);
  std::vector<ratelimit::BudgetState> shown;
  if (states) shown = *states;
  else {
    // Redis cannot say what was spent: the amounts and periods still can be shown.
    const auto now = std::chrono::system_clock::now();
    if (k.key_budget) shown.push_back({false, *k.key_budget, 0, money::window(k.key_budget->period, now)});
    if (k.user_budget) shown.push_back({true, *k.user_budget, 0, money::window(k.user_budget->period, now)});
  }
  const ratelimit::BudgetState* tightest = nullptr;
  for (const auto& b : shown) {
    out["budgets"].push_back(budget_json(b, states.has_value()));
    if (!tightest || b.budget.amount - b.spent < tightest->budget.amount - tightest->spent) tightest = &b;
  }
  if (tightest) out["budget"] = budget_json(*tightest, states.has_value());
  co_return out;
}
}  // namespace

nlohmann::json policy_json(const auth::KeyPolicy& p) {
  const auto time = [](const std::optional<std::int64_t>& us) {
    return us ? nlohmann::json(auth::format_rfc3339_us(*us)) : nlohmann::json(nullptr);
  };
  return {{"allowed_models", p.models.empty() ? nlohmann::json(nullptr) : nlohmann::json(p.models)},
          {"allowed_endpoints", auth::group_names(p.groups)},
          {"max_concurrent", p.max_concurrent > 0 ? nlohmann::json(p.max_concurrent) : nlohmann::json(nullptr)},
          {"expires_at", time(p.expires_at_us)},
          {"revokes_at", time(p.revokes_at_us)}};
}

awaitable<Served> KeyInfo::serve(const Call& call, relay::Downstream& client) {
  const auto& k = call.key->key();
  RequestFacts facts;
  facts.key_prefix = k.prefix;
  facts.user_id = k.user_id;
  http::Reply r;
  const nlohmann::json budgets = co_await budgets_of(gate_, k);
  {
    // The record is queued before the answer is written: a client that reads its usage next finds it
    // on its way.
    accounting::UsageGuard usage(usage_, k, call.request_id, call.client_request_id, usage::Endpoint::key);
    auto nullable = [](const auto& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); };
    const nlohmann::json body{{"data",
                               {{"id", k.key_id},
                                {"prefix", k.prefix},
                                {"name", nullable(k.name)},
                                {"user_id", k.user_id},
                                {"rpm_limit", nullable(k.rpm_limit)},
                                {"tpm_limit", nullable(k.tpm_limit)},
                                {"budget", budgets["budget"]},
                                {"budgets", budgets["budgets"]},
                                {"policy", policy_json(k.policy)}}}};
    r = http::json_reply(200, body.dump());
    usage.end(accounting::Outcome::ok, 200);
  }
  co_return co_await answer(client, r, &facts);
}

awaitable<Served> Admin::serve(const Call& call, relay::Downstream& client) {
  http::Reply r;
  if (api_.enabled() && call.authorization_fields > 1) {
    r = http::error_reply(http::ErrorKind::bad_request, "More than one Authorization header");
  } else {
    const auto a = co_await api_.handle(call.method, call.target, call.authorization, call.body);
    r = http::body_reply(a.status, a.body, a.content_type);
    if (a.retry_after) r.set("Retry-After", *a.retry_after);
    if (!a.allow.empty()) r.set("Allow", a.allow);
    if (a.www_authenticate) r.set("WWW-Authenticate", "Bearer");
  }
  co_return co_await answer(client, r);
}

awaitable<Served> Console::serve(const Call& call, relay::Downstream& client) {
  http::Reply r = console_reply(call.target, enabled_);
  co_return co_await answer(client, r);
}

}  // namespace lagoon::routes
