// Admission: whether a request for a route that needs a key may go on, decided from its head alone,
// before its body is read — a client without a valid key can make the gateway neither wait for its
// body nor hold it. A refusal is 401 (OpenAI's wording; never says whether the key exists or was
// revoked, but says key_expired to the holder of an expired one, who may ask for it to be renewed) or 503 with Retry-After when the layers that could answer did not (never a false 401, never
// let through). Expiry is decided by the authenticator; the other key policies, which need the route
// and the body, by the relay (relay.hpp).
// Thread-safety: admit() from any number of connections at once.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "lagoon/auth/authenticator.hpp"
#include "lagoon/http/reply.hpp"

namespace lagoon::admission {

struct Admission {
  std::optional<auth::AuthResult> key;  // set when admitted
  std::optional<http::Reply> refusal;   // set when refused
  std::string auth_denied;              // why a key was refused, for the operator's log only
};

boost::asio::awaitable<Admission> admit_key(auth::Authenticator& auth, std::size_t authorization_fields,
                                            std::string_view authorization, auth::KeyMemo* memo = nullptr);

// 401 or 503 for a request that did not authenticate.
http::Reply auth_failure_reply(const auth::AuthResult& a);

}  // namespace lagoon::admission
