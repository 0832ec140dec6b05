#include "lagoon/relay/catalog.hpp"

#include <array>

#include <nlohmann/json.hpp>

#include "lagoon/accounting/usage_guard.hpp"
#include "lagoon/http/routes.hpp"
#include "lagoon/log/log.hpp"
#include "lagoon/relay/decisions.hpp"
#include "lagoon/relay/whole.hpp"

namespace lagoon::relay {

using boost::asio::awaitable;
using Clock = CatalogRoute::Clock;
constexpr auto kCatalogFresh = std::chrono::minutes(5);

namespace {

// Venice's model types (its OpenAPI document, 20260821); /models also takes "all" and "code".
constexpr std::array<std::string_view, 9> kTypes{"asr", "embedding", "image", "music", "text",
                                                 "tts", "upscale", "inpaint", "video"};

}  // namespace

CatalogQuery catalog_query(std::string_view target) {
  std::string_view path = http::path_of(target);
  for (const std::string_view prefix : {"/api/v1", "/v1"})
    if (path.substr(0, prefix.size()) == prefix) {
      path.remove_prefix(prefix.size());
      break;
    }
  CatalogQuery q{std::string(path), {}};
  if (path == "/image/styles") return q;
  std::string_view query = target.size() > http::path_of(target).size() ? target.substr(http::path_of(target).size() + 1)
                                                                       : std::string_view();
  std::optional<std::string_view> type;
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view param = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (param.substr(0, 5) == "type=") type = param.substr(5);
  }
  if (!type) return q;
  bool known = false;
  for (const auto t : kTypes) known = known || *type == t;
  if (path == "/models") known = known || *type == "all" || *type == "code";
  if (!known) {
    q.problem = "type must be one of asr, embedding, image, music, text, tts, upscale, inpaint, video";
    if (path == "/models") q.problem += ", all, code";
    q.problem += ".";
    return q;
  }
  q.upstream += "?type=";
  q.upstream += *type;
  return q;
}

std::string visible_catalog(std::string_view path, std::string body, const auth::KeyPolicy& policy) {
  if (policy.models.empty() || path.rfind("/models", 0) != 0) return body;
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_object() || !j.contains("data")) return body;
  auto& data = j["data"];
  if (data.is_array()) {
    nlohmann::json kept = nlohmann::json::array();
    for (auto& m : data)
      if (m.is_object() && m.contains("id") && m["id"].is_string() && policy.allows_model(m["id"].get<std::string>()))
        kept.push_back(std::move(m));
    data = std::move(kept);
  } else if (data.is_object()) {
    // A compatibility name is what a client sends as its model, and what the key's list is matched
    // against; a trait names the model to send.
    const bool by_name = path == "/models/compatibility_mapping";
    nlohmann::json kept = nlohmann::json::object();
    for (auto& [name, model] : data.items())
      if (model.is_string() && policy.allows_model(by_name ? name : model.get<std::string>()))
        kept[name] = std::move(model);
    data = std::move(kept);
  }
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

CatalogRoute::CatalogRoute(const config::Config& cfg, upstream::Sender& upstream, usage::Sink& usage,
                           metrics::Registry& metrics, std::function<Clock::time_point()> now)
    : cfg_(cfg),
      upstream_(upstream),
      usage_(usage),
      metrics_(metrics),
      hits_(metrics.counter("lagoon_catalog_requests_total", "Catalog requests by how they were answered",
                            {{"result", "cached"}})),
      fetches_(metrics.counter("lagoon_catalog_requests_total", "Catalog requests by how they were answered",
                               {{"result", "fetched"}})),
      stale_(metrics.counter("lagoon_catalog_requests_total", "Catalog requests by how they were answered",
                             {{"result", "stale"}})),
      now_(std::move(now)) {}

awaitable<CatalogRoute::Fetched> CatalogRoute::fetch(const std::string& upstream, const std::string& request_id) {
  static const http::Headers kNone;
  Fetched out;
  auto sent = co_await upstream_.send("GET", upstream, "", kNone);
  std::string body;
  std::optional<upstream::Failure> broke;
  if (!sent) broke = sent.error();
  else broke = co_await read_whole(**sent, body);
  if (broke) {
    out.failure =
        http::error_reply(broke->kind == upstream::Failure::Kind::first_byte ? http::ErrorKind::upstream_timeout
                                                                            : http::ErrorKind::upstream_error,
                          "The upstream provider could not be asked for its catalog.");
    co_return out;
  }
  const upstream::Head& head = (*sent)->head();
  if (head.status != 200) {
    Verdict refused = upstream_status(head.status, body, head.retry_after);
    log_alert(refused.alert, head.status, request_id, body, cfg_.upstream_api_key, metrics_);
    out.failure = std::move(refused.reply);
    co_return out;
  }
  // Only a well-formed answer is cached: a broken one would be served for five minutes.
  const auto j = nlohmann::json::parse(body, nullptr, false);
  const bool list = upstream.rfind("/models?", 0) == 0 || upstream == "/models";
  if (!j.is_object() || (list && !(j.contains("data") && j["data"].is_array()))) {
    out.failure = http::error_reply(http::ErrorKind::upstream_error, "The upstream provider sent no catalog.");
    co_return out;
  }
  out.body = std::move(body);
  co_return out;
}

awaitable<http::Reply> CatalogRoute::lookup(const std::string& upstream, const std::string& request_id,
                                            accounting::Outcome& outcome) {
  std::optional<std::string> cached;
  bool fresh = false;
  {
    std::lock_guard lock(mutex_);
    if (const auto it = cache_.find(upstream); it != cache_.end()) {
      cached = it->second.body;
      fresh = now_() - it->second.fetched < kCatalogFresh;
    }
  }
  if (fresh) {
    hits_.inc();
    outcome = accounting::Outcome::ok;
    co_return http::json_reply(200, std::move(*cached));
  }
  bool coalesced = false;
  Fetched fetched = co_await flights_.run(
      upstream, [this, &upstream, &request_id]() { return fetch(upstream, request_id); }, coalesced);
  if (fetched.body) {
    fetches_.inc();
    if (!coalesced) {
      std::lock_guard lock(mutex_);
      cache_[upstream] = Entry{*fetched.body, now_()};
    }
    outcome = accounting::Outcome::ok;
    co_return http::json_reply(200, std::move(*fetched.body));
  }
  if (cached) {
    stale_.inc();
    log::warn("serving the cached catalog: the upstream cannot be asked now", {{"path", upstream}});
    outcome = accounting::Outcome::ok;
    co_return http::json_reply(200, std::move(*cached));
  }
  outcome = accounting::Outcome::upstream_error;
  co_return std::move(fetched.failure);
}

awaitable<routes::Served> CatalogRoute::serve(const routes::Call& call, Downstream& client) {
  routes::RequestFacts facts;
  // With a key the request is metered; a public catalog's anonymous requests are not anyone's.
  std::optional<accounting::UsageGuard> usage;
  if (call.key) {
    const auto& key = call.key->key();
    facts.key_prefix = key.prefix;
    facts.user_id = key.user_id;
    usage.emplace(usage_, key, call.request_id, call.client_request_id, usage::Endpoint::models);
  }
  const CatalogQuery query = catalog_query(call.target);
  http::Reply reply;
  accounting::Outcome outcome = accounting::Outcome::invalid_request;
  if (!query.problem.empty()) {
    http::ErrorExtras extras;
    extras.param = "type";
    reply = http::error_reply(http::ErrorKind::invalid_request, query.problem, extras);
  } else {
    reply = co_await lookup(query.upstream, call.request_id, outcome);
    if (call.key && reply.status == 200)
      reply.body = visible_catalog(http::path_of(query.upstream), std::move(reply.body), call.key->key().policy);
  }
  if (usage) usage->end(outcome, reply.status);
  facts.outcome = outcome;
  co_return co_await routes::answer(client, reply, &facts);
}

}  // namespace lagoon::relay
