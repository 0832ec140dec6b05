#include "lagoon/relay/models.hpp"

#include <nlohmann/json.hpp>

#include "lagoon/accounting/usage_guard.hpp"
#include "lagoon/log/log.hpp"
#include "lagoon/relay/decisions.hpp"
#include "lagoon/relay/whole.hpp"

namespace lagoon::relay {

using boost::asio::awaitable;
using Clock = std::chrono::steady_clock;
constexpr auto kModelsFresh = std::chrono::minutes(5);

awaitable<std::optional<std::string>> ModelsRoute::fetch(const std::string& request_id, http::Reply& failure) {
  static const http::Headers kNone;
  auto sent = co_await upstream_.send("GET", "/models", "", kNone);
  std::string body;
  std::optional<upstream::Failure> broke;
  if (!sent) broke = sent.error();
  else broke = co_await read_whole(**sent, body);
  if (broke) {
    failure = http::error_reply(broke->kind == upstream::Failure::Kind::first_byte ? http::ErrorKind::upstream_timeout
                                                                                  : http::ErrorKind::upstream_error,
                                "The upstream provider could not be asked for its models.");
    co_return std::nullopt;
  }
  const upstream::Head& head = (*sent)->head();
  if (head.status != 200) {
    Verdict refused = upstream_status(head.status, body, head.retry_after);
    log_alert(refused.alert, head.status, request_id, body, cfg_.upstream_api_key, metrics_);
    failure = std::move(refused.reply);
    co_return std::nullopt;
  }
  const auto j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_object() || !j.contains("data") || !j["data"].is_array()) {
    failure = http::error_reply(http::ErrorKind::upstream_error, "The upstream provider sent no model list.");
    co_return std::nullopt;
  }
  co_return body;
}

awaitable<routes::Served> ModelsRoute::serve(const routes::Call& call, Downstream& client) {
  const auto& key = call.key->key();
  routes::RequestFacts facts;
  facts.key_prefix = key.prefix;
  facts.user_id = key.user_id;
  accounting::UsageGuard usage(usage_, key, call.request_id, call.client_request_id, usage::Endpoint::models);

  std::string cached;
  bool fresh = false;
  {
    std::lock_guard lock(mutex_);
    cached = body_;
    fresh = !cached.empty() && Clock::now() - fetched_ < kModelsFresh;
  }
  http::Reply reply;
  if (!fresh) {
    auto fetched = co_await fetch(call.request_id, reply);
    if (fetched) {
      std::lock_guard lock(mutex_);
      body_ = *fetched;
      fetched_ = Clock::now();
      cached = std::move(*fetched);
    } else if (!cached.empty()) {
      log::warn("serving the cached model list: the upstream cannot be asked now");
    }
  }
  const auto outcome = cached.empty() ? accounting::Outcome::upstream_error : accounting::Outcome::ok;
  if (!cached.empty()) reply = http::json_reply(200, std::move(cached));
  usage.end(outcome, reply.status);
  facts.outcome = outcome;
  co_return co_await routes::answer(client, reply, &facts);
}

}  // namespace lagoon::relay
