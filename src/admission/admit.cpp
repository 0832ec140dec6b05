#include "lagoon/admission/admit.hpp"

namespace lagoon::admission {

boost::asio::awaitable<Admission> admit_key(auth::Authenticator& auth, std::size_t authorization_fields,
                                            std::string_view authorization, auth::KeyMemo* memo) {
  Admission out;
  if (authorization_fields > 1) {
    out.refusal = http::error_reply(http::ErrorKind::bad_request, "More than one Authorization header");
    co_return out;
  }
  auto a = co_await auth.authenticate(authorization, memo);
  out.auth_denied = std::string(a.reason);
  if (a.ok()) out.key = std::move(a);
  else out.refusal = auth_failure_reply(a);
  co_return out;
}

http::Reply auth_failure_reply(const auth::AuthResult& a) {
  if (a.outcome == auth::AuthResult::Outcome::unavailable)
    return http::error_reply(http::ErrorKind::service_unavailable,
                             "Authentication is temporarily unavailable. Please retry shortly.");
  if (a.reason == "expired")
    return http::error_reply(http::ErrorKind::key_expired,
                             "This API key has expired. Ask your administrator for a new key.");
  return http::error_reply(http::ErrorKind::invalid_api_key,
                           a.reason == "missing"
                               ? "You didn't provide an API key. You need to provide your API key in an "
                                 "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
                               : "Incorrect API key provided.");
}

}  // namespace lagoon::admission
