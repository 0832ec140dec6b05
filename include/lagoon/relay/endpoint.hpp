// EndpointRoute: one of Venice's endpoints besides chat (relay/endpoints.hpp lists them) for a key the
// transport has already authenticated from the request head. In data-flow order:
//   check   the few fields the gateway needs (400 naming the field, no upstream call), then the key's
//           rate limits — requests per minute everywhere, tokens only where tokens exist (embeddings,
//           responses);
//   relay   the key's session for the model when the request names one, the body upstream byte for
//           byte with its Content-Type and Accept (a multipart upload keeps its boundary), through the
//           Relay (one retry before anything reached the client); then a JSON answer whole, and
//           anything else — an event stream, audio, an image — piece by piece as it comes;
//   account one usage row: tokens (embeddings, responses) or units (images, characters, seconds).
// Thread-safety: serve() from any number of connection coroutines at once.
#pragma once

#include "lagoon/relay/endpoints.hpp"
#include "lagoon/relay/relay.hpp"
#include "lagoon/routes/route.hpp"

namespace lagoon::relay {

class EndpointRoute final : public routes::Handler {
 public:
  EndpointRoute(Relay& relay, const EndpointSpec& spec) : relay_(relay), spec_(spec) {}
  boost::asio::awaitable<routes::Served> serve(const routes::Call& call, Downstream& client) override;

  struct Request;  // one request's state (endpoint.cpp)

 private:
  boost::asio::awaitable<void> forward(Request& r);

  Relay& relay_;
  const EndpointSpec& spec_;
};

}  // namespace lagoon::relay
