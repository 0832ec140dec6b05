// The gateway's own HTTP answers, shared by the server and the chat relay: every one carries
// X-Request-Id, every error has the OpenAI shape (lagoon/http/errors.hpp) and the headers its status
// calls for (WWW-Authenticate, Retry-After, Allow). Internal to the server; pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "lagoon/auth/authenticator.hpp"
#include "lagoon/http/errors.hpp"

namespace lagoon::server {

using Response = boost::beast::http::response<boost::beast::http::string_body>;

inline Response make_response(unsigned status, std::string body, std::string_view content_type,
                              const std::string& request_id, bool keep_alive = true) {
  namespace bhttp = boost::beast::http;
  Response res{static_cast<bhttp::status>(status), 11};
  res.set(bhttp::field::content_type, content_type);
  res.set("X-Request-Id", request_id);
  res.body() = std::move(body);
  res.keep_alive(keep_alive);
  res.prepare_payload();
  return res;
}

struct ErrorExtras {
  std::optional<std::string_view> param;   // the offending field of an invalid request
  std::optional<std::string> retry_after;  // for 429/502/503, when known; else "1"
  std::string_view allow;                  // for 405
};

inline Response error_response(http::ErrorKind kind, std::string_view message, const std::string& request_id,
                               bool keep_alive = true, const ErrorExtras& extras = {}) {
  namespace bhttp = boost::beast::http;
  Response res = make_response(http::spec(kind).status, http::error_body(kind, message, extras.param),
                               "application/json", request_id, keep_alive);
  if (kind == http::ErrorKind::invalid_api_key) res.set(bhttp::field::www_authenticate, "Bearer");
  if (kind == http::ErrorKind::service_unavailable || kind == http::ErrorKind::rate_limited ||
      kind == http::ErrorKind::rate_limited_tokens || kind == http::ErrorKind::upstream_error)
    res.set(bhttp::field::retry_after, extras.retry_after.value_or("1"));
  if (kind == http::ErrorKind::method_not_allowed) res.set(bhttp::field::allow, extras.allow);
  return res;
}

// 401 or 503 for a request that did not authenticate. Worded as OpenAI does; never echoes the key and
// never says whether it exists or was revoked.
inline Response auth_failure_response(const auth::AuthResult& a, const std::string& request_id, bool keep_alive) {
  if (a.outcome == auth::AuthResult::Outcome::unavailable)
    return error_response(http::ErrorKind::service_unavailable,
                          "Authentication is temporarily unavailable. Please retry shortly.", request_id, keep_alive);
  return error_response(http::ErrorKind::invalid_api_key,
                        a.reason == "missing"
                            ? "You didn't provide an API key. You need to provide your API key in an Authorization "
                              "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
                            : "Incorrect API key provided.",
                        request_id, keep_alive);
}

}  // namespace lagoon::server
