// What a route's handler gets and gives back. The transport reads a request, admits it (a route that
// needs a key has it authenticated from the head, before the body is read), then hands the handler a
// Call and a Downstream; the handler answers on the Downstream and returns what the access log and the
// request metrics need (Served). Beast-free, so handlers are unit-tested with fakes.
// Thread-safety: a Handler's serve() may run on many connections at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "lagoon/accounting/outcome.hpp"
#include "lagoon/auth/authenticator.hpp"
#include "lagoon/relay/downstream.hpp"

namespace lagoon::routes {

// What the access log and the request metrics learn while a request is handled (empty/unset when not
// known, e.g. for a request refused before authentication).
struct RequestFacts {
  std::string key_prefix;
  std::int64_t user_id = 0;
  std::optional<accounting::Outcome> outcome;  // unset: derived from the status
  std::string model;
  bool stream = false;
  std::optional<std::int32_t> total_tokens;
  std::optional<double> ttfb_ms;
  unsigned upstream_status = 0;
  std::string auth_denied;  // why a key was refused: missing, malformed, forged, unknown, revoked, user_inactive
};

struct Call {
  std::string_view method;
  std::string_view target;
  std::string_view authorization;       // the Authorization header (the admin API checks its own token)
  std::size_t authorization_fields = 0;  // how many Authorization headers came
  std::string_view body;
  std::string_view content_type;          // as the client sent them: the endpoints other than chat pass them on
  std::string_view accept;
  http::Headers forward_headers;          // the client's headers that go upstream (relay/venice_headers.hpp)
  const auth::AuthResult* key = nullptr;  // set for routes that need a key: authenticated, ok()
  std::string request_id;
  bool client_request_id = false;  // request_id is the client's own (usage rows then get an id of their own)
};

struct Served {
  unsigned status = 0;
  bool close = false;  // the connection must end after this request
  RequestFacts facts;
};

class Handler {
 public:
  virtual ~Handler() = default;
  virtual boost::asio::awaitable<Served> serve(const Call& call, relay::Downstream& client) = 0;
};

// Sends a whole reply and says what was served.
// (`facts` by pointer: GCC 12 copies aggregate coroutine arguments bitwise.)
boost::asio::awaitable<Served> answer(relay::Downstream& client, http::Reply& reply,
                                      const RequestFacts* facts = nullptr);

}  // namespace lagoon::routes
