#include "lagoon/routes/handlers.hpp"

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

awaitable<Served> KeyInfo::serve(const Call& call, relay::Downstream& client) {
  const auto& k = call.key->key();
  RequestFacts facts;
  facts.key_prefix = k.prefix;
  facts.user_id = k.user_id;
  http::Reply r;
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
                                {"tpm_limit", nullable(k.tpm_limit)}}}};
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
    r = http::json_reply(a.status, a.body);
    if (a.retry_after) r.set("Retry-After", *a.retry_after);
    if (!a.allow.empty()) r.set("Allow", a.allow);
    if (a.www_authenticate) r.set("WWW-Authenticate", "Bearer");
  }
  co_return co_await answer(client, r);
}

}  // namespace lagoon::routes
