#include "lagoon/http/errors.hpp"

#include <nlohmann/json.hpp>

namespace lagoon::http {

ErrorSpec spec(ErrorKind kind) noexcept {
  // Types follow OpenAI: client mistakes are invalid_request_error, our own trouble server_error.
  switch (kind) {
    case ErrorKind::bad_request: return {400, "invalid_request_error", "bad_request"};
    case ErrorKind::invalid_api_key: return {401, "invalid_request_error", "invalid_api_key"};
    case ErrorKind::key_expired: return {401, "invalid_request_error", "key_expired"};
    case ErrorKind::model_not_allowed: return {403, "permission_error", "model_not_allowed"};
    case ErrorKind::endpoint_not_allowed: return {403, "permission_error", "endpoint_not_allowed"};
    case ErrorKind::concurrency_limit: return {429, "requests", "concurrency_limit"};
    case ErrorKind::not_found: return {404, "invalid_request_error", "not_found"};
    case ErrorKind::method_not_allowed: return {405, "invalid_request_error", "method_not_allowed"};
    case ErrorKind::conflict: return {409, "invalid_request_error", "conflict"};
    case ErrorKind::request_timeout: return {408, "invalid_request_error", "request_timeout"};
    case ErrorKind::payload_too_large: return {413, "invalid_request_error", "request_too_large"};
    case ErrorKind::uri_too_long: return {414, "invalid_request_error", "request_line_too_long"};
    case ErrorKind::headers_too_large: return {431, "invalid_request_error", "headers_too_large"};
    case ErrorKind::rate_limited: return {429, "requests", "rate_limit_exceeded"};
    case ErrorKind::rate_limited_tokens: return {429, "tokens", "rate_limit_exceeded"};
    case ErrorKind::budget_exceeded: return {402, "insufficient_quota", "budget_exceeded"};
    case ErrorKind::model_unpriced: return {402, "insufficient_quota", "model_unpriced"};
    case ErrorKind::invalid_request: return {400, "invalid_request_error", "invalid_request"};
    case ErrorKind::upstream_auth_error: return {502, "server_error", "upstream_auth_error"};
    case ErrorKind::upstream_error: return {502, "server_error", "upstream_error"};
    case ErrorKind::upstream_timeout: return {504, "server_error", "upstream_timeout"};
    case ErrorKind::internal_error: return {500, "server_error", "internal_error"};
    case ErrorKind::service_unavailable: return {503, "server_error", "service_unavailable"};
  }
  return {500, "server_error", "internal_error"};
}

std::string error_body(ErrorKind kind, std::string_view message, std::optional<std::string_view> param) {
  const ErrorSpec s = spec(kind);
  nlohmann::json body = {{"error",
                          {{"message", message},
                           {"type", s.type},
                           {"param", param ? nlohmann::json(*param) : nlohmann::json(nullptr)},
                           {"code", s.code}}}};
  // Replace rather than throw on invalid UTF-8: messages may quote client input.
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace lagoon::http
