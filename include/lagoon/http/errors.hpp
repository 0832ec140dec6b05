// The one place that turns a gateway outcome into an HTTP status and an OpenAI-shaped error body:
//   {"error":{"message":"…","type":"…","param":null,"code":"…"}}
// Handlers return an ErrorKind; nothing else picks status codes. Pure; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace lagoon::http {

enum class ErrorKind {
  bad_request,            // 400: malformed HTTP or body
  invalid_api_key,        // 401, with WWW-Authenticate: Bearer
  key_expired,            // 401 key_expired: the key's (or its user's) expires_at has passed
  model_not_allowed,      // 403 permission_error: the key's policy does not list the model
  endpoint_not_allowed,   // 403 permission_error: the key's policy does not list the route group
  concurrency_limit,      // 429 concurrency_limit, with Retry-After: the key has max_concurrent open
  not_found,              // 404: no such route
  method_not_allowed,     // 405, with Allow
  conflict,               // 409: the admin API was asked to create what exists
  request_timeout,        // 408: header or body not received in time
  payload_too_large,      // 413
  uri_too_long,           // 414: request line over the limit
  headers_too_large,      // 431 (RFC 6585)
  rate_limited,           // 429, with Retry-After (requests per minute, or the upstream's own limit)
  rate_limited_tokens,    // 429, with Retry-After: tokens per minute
  budget_exceeded,        // 402 insufficient_quota: a key's or user's budget has too little left
  model_unpriced,         // 402 insufficient_quota: a budget applies and the model has no price
  invalid_request,        // 400: the JSON body is not a chat request the gateway can forward (param named)
  upstream_auth_error,    // 502: the upstream refused the gateway's own credential (never passed on as 401/403)
  upstream_error,         // 502: the upstream failed or could not be reached
  upstream_timeout,       // 504: the upstream did not answer in time
  internal_error,         // 500
  service_unavailable,    // 503, with Retry-After: a dependency needed for this request is unavailable
};

struct ErrorSpec {
  unsigned status;
  std::string_view type;
  std::string_view code;
};

ErrorSpec spec(ErrorKind kind) noexcept;

// The serialized OpenAI error body. `message` is escaped as JSON; `param` names the offending field.
std::string error_body(ErrorKind kind, std::string_view message, std::optional<std::string_view> param = {});

}  // namespace lagoon::http
