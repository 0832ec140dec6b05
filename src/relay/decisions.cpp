#include "lagoon/relay/decisions.hpp"

#include <nlohmann/json.hpp>

#include "lagoon/upstream/retry_after.hpp"

namespace lagoon::relay {

using accounting::Outcome;
using http::ErrorKind;
using Kind = upstream::Failure::Kind;

Verdict invalid_request(const chat::InvalidRequest& bad) {
  http::ErrorExtras extras;
  if (bad.param) extras.param = *bad.param;
  return {Outcome::invalid_request, http::error_reply(ErrorKind::invalid_request, bad.message, extras)};
}

namespace {
std::string budget_message(const ratelimit::Decision& d) {
  const ratelimit::BudgetState& b = *d.exceeded;
  std::string whose = b.user ? "this API key's user's " : "this API key's ";
  std::string out = "This request may cost up to $" + money::format_usd(money::from_nano(d.asked_nano)) +
                    ", more than is left of " + whose + std::string(money::period_name(b.budget.period)) +
                    " budget: $" + money::format_usd(b.spent) + " spent of $" + money::format_usd(b.budget.amount) + ".";
  if (b.window.end) return out + " It resets at " + money::rfc3339(*b.window.end) + ".";
  return out + " It does not reset; the operator can raise it.";
}
}  // namespace

Verdict admission_refusal(const ratelimit::Decision& d, std::string_view model) {
  http::ErrorExtras extras;
  switch (d.kind) {
    case ratelimit::Decision::Kind::over_budget:
      if (d.exceeded)
        return {Outcome::budget_exceeded, http::error_reply(ErrorKind::budget_exceeded, budget_message(d))};
      return {Outcome::budget_exceeded,
              http::error_reply(ErrorKind::budget_exceeded, "This request may cost more than its budget has left.")};
    case ratelimit::Decision::Kind::unpriced:
      return {Outcome::budget_exceeded,
              http::error_reply(ErrorKind::model_unpriced,
                                "The model '" + std::string(model) +
                                    "' has no price here, and a budget applies to this API key: the request "
                                    "cannot be metered. The operator can set a price for it.")};
    case ratelimit::Decision::Kind::budget_unavailable:
      extras.retry_after = ratelimit::retry_after_seconds(d.retry_after_us);
      return {Outcome::budget_unavailable,
              http::error_reply(ErrorKind::service_unavailable,
                                "The budget for this API key cannot be checked right now. Please retry shortly.",
                                extras)};
    default: break;
  }
  extras.retry_after = ratelimit::retry_after_seconds(d.retry_after_us);
  return {Outcome::rate_limited,
          http::error_reply(d.kind == ratelimit::Decision::Kind::limited_tokens ? ErrorKind::rate_limited_tokens
                                                                                : ErrorKind::rate_limited,
                            ratelimit::refusal_message(d), extras)};
}

Verdict upstream_status(unsigned status, std::string_view body, const std::optional<std::string>& retry_after) {
  if (status == 401 || status == 403)
    return {Outcome::upstream_error,
            http::error_reply(ErrorKind::upstream_auth_error,
                              "The upstream provider refused this gateway's credentials. This is not a problem "
                              "with your API key; the operator has been told."),
            Alert::credential_refused};
  if (status == 429) {
    http::ErrorExtras extras;
    extras.retry_after = upstream::retry_after_for_client(retry_after, kMaxPassedRetryAfter);
    return {Outcome::upstream_error,
            http::error_reply(ErrorKind::rate_limited, "The upstream provider is rate limiting requests.", extras)};
  }
  if (status == 402)
    // The operator's upstream account is out of funds: the client can do nothing about it, and the
    // upstream's wording (balances, plan names) is the operator's business, not the key holder's.
    return {Outcome::upstream_error,
            http::error_reply(ErrorKind::service_unavailable,
                              "The upstream provider cannot serve requests right now. Please retry later."),
            Alert::payment_required};
  if (status == 503) {
    // Venice's model is offline or at capacity: a state that passes, as the client should know to retry.
    http::ErrorExtras extras;
    extras.retry_after = upstream::retry_after_for_client(retry_after, kMaxPassedRetryAfter);
    return {Outcome::upstream_error,
            http::error_reply(ErrorKind::service_unavailable,
                              "The upstream provider's model is temporarily unavailable. Please retry shortly.",
                              extras)};
  }
  if (status >= 500)
    return {Outcome::upstream_error,
            http::error_reply(ErrorKind::upstream_error,
                              "The upstream provider failed (status " + std::to_string(status) + ").")};
  // Other client errors (400, 404, 422…) concern the request: pass them on when OpenAI-shaped.
  const auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("error") && j["error"].is_object())
    return {Outcome::upstream_error, http::json_reply(status, std::string(body))};
  // Venice's own shape, {"error": "message", "details": {"field": {"_errors": […]}}}: its message (and
  // the first field it names) in OpenAI's shape, which is what the client's SDK reads.
  if (j.is_object() && j.contains("error") && j["error"].is_string()) {
    std::string message = j["error"].get<std::string>();
    if (message.size() > kMaxPassedMessage) message.resize(kMaxPassedMessage);
    std::optional<std::string> param;
    if (const auto d = j.find("details"); d != j.end() && d->is_object())
      for (const auto& [field, value] : d->items())
        if (field != "_errors" && value.is_object()) {
          param = field;
          break;
        }
    http::ErrorExtras extras;
    if (param) extras.param = *param;
    const auto kind = status == 404 ? ErrorKind::not_found : ErrorKind::invalid_request;
    Verdict v{Outcome::upstream_error, http::error_reply(kind, message, extras)};
    v.reply.status = status;
    return v;
  }
  return {Outcome::upstream_error,
          http::json_reply(status, http::error_body(ErrorKind::bad_request,
                                                    "The upstream provider refused the request (status " +
                                                        std::to_string(status) + ")."))};
}

Verdict failed_before_head(Kind kind) {
  if (kind == Kind::first_byte)
    return {Outcome::upstream_timeout,
            http::error_reply(ErrorKind::upstream_timeout, "The upstream provider did not answer in time.")};
  return {Outcome::upstream_unavailable,
          http::error_reply(ErrorKind::upstream_error, "The upstream provider could not be reached.")};
}

Verdict failed_in_body(Kind kind, bool cut) {
  if (cut) {
    Verdict v{Outcome::shutdown,
              http::error_reply(ErrorKind::service_unavailable,
                                "The gateway is shutting down and could not finish this request. Please retry.")};
    v.reply.close = true;
    return v;
  }
  if (kind == Kind::gap)
    return {Outcome::upstream_timeout,
            http::error_reply(ErrorKind::upstream_timeout, "The upstream provider's answer broke off.")};
  return {Outcome::upstream_unavailable,
          http::error_reply(ErrorKind::upstream_error, "The upstream provider's answer broke off.")};
}

std::string_view stream_failure_message(Kind kind, bool cut) noexcept {
  if (cut) return "The gateway is shutting down; the answer is incomplete. Please retry.";
  if (kind == Kind::gap) return "The upstream provider stopped sending; the answer is incomplete.";
  return "The upstream provider's stream broke off.";
}

std::string error_event(std::string_view message) {
  const nlohmann::json e{
      {"error", {{"message", message}, {"type", "server_error"}, {"param", nullptr}, {"code", "upstream_error"}}}};
  return "data: " + e.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n\n";
}

bool retryable_status(unsigned s) noexcept { return s == 429 || s == 502 || s == 503 || s == 504; }

bool worth_retrying(int attempt, std::optional<unsigned> status, std::optional<Kind> failure) noexcept {
  if (attempt >= 2) return false;
  if (failure) return *failure == Kind::connect;
  return status && retryable_status(*status);
}

std::chrono::milliseconds retry_delay(const std::optional<std::string>& retry_after, std::chrono::milliseconds base) {
  if (retry_after)
    if (const auto d = upstream::retry_after_delay(*retry_after, kMaxRetryAfter)) return *d;
  return base;
}

std::string log_excerpt(std::string_view body, std::string_view credential) {
  constexpr std::size_t kMaxLoggedBody = 512;
  std::string out(body.substr(0, kMaxLoggedBody));
  if (!credential.empty())
    for (auto at = out.find(credential); at != std::string::npos; at = out.find(credential, at))
      out.replace(at, credential.size(), "***");
  if (body.size() > kMaxLoggedBody) out += "…";
  return out;
}

Verdict endpoint_refusal(std::string_view group) {
  return {Outcome::forbidden, http::error_reply(http::ErrorKind::endpoint_not_allowed,
                                                "This API key is not allowed to use the " + std::string(group) +
                                                    " endpoints.")};
}

Verdict model_refusal(const std::optional<std::string>& model) {
  http::ErrorExtras extras;
  extras.param = "model";
  if (!model)
    return {Outcome::forbidden,
            http::error_reply(http::ErrorKind::model_not_allowed,
                              "This API key may use only some models: name one of them in `model`.", extras)};
  // The model's name as the client sent it, bounded: it is the client's own text.
  const std::string shown = model->size() > 200 ? model->substr(0, 200) + "…" : *model;
  return {Outcome::forbidden, http::error_reply(http::ErrorKind::model_not_allowed,
                                                "This API key is not allowed to use the model '" + shown + "'.",
                                                extras)};
}

Verdict concurrency_refusal(std::int64_t max) {
  http::ErrorExtras extras;
  extras.retry_after = "1";
  return {Outcome::concurrency_limited,
          http::error_reply(http::ErrorKind::concurrency_limit,
                            "This API key already has " + std::to_string(max) +
                                " requests in progress, its limit. Retry when one has finished.",
                            extras)};
}

}  // namespace lagoon::relay
