#include "lagoon/routes/router.hpp"

#include <memory>

namespace lagoon::routes {

http::RouteMatch Router::match(std::string_view method, std::string_view target) const noexcept {
  http::RouteMatch m = http::match_route(method, target);
  if (partial_ && m.kind != http::RouteMatch::Kind::not_found && !handlers_[static_cast<std::size_t>(m.route)]) {
    m = http::RouteMatch{};
    m.label = "unmatched";
  }
  return m;
}

std::optional<http::Reply> Router::unmatched(const http::RouteMatch& match, std::string_view method,
                                             std::string_view target) {
  switch (match.kind) {
    case http::RouteMatch::Kind::found: return std::nullopt;
    case http::RouteMatch::Kind::not_found:
      return http::error_reply(http::ErrorKind::not_found, "Unknown request URL: " + std::string(method) + " " +
                                                               std::string(http::path_of(target)));
    case http::RouteMatch::Kind::method_not_allowed: {
      http::ErrorExtras extras;
      extras.allow = match.allow;
      return http::error_reply(http::ErrorKind::method_not_allowed,
                               "Method " + std::string(method) + " is not allowed here", extras);
    }
  }
  return std::nullopt;
}

namespace {

// (The reply by unique_ptr: GCC 12 copies aggregate coroutine arguments bitwise.)
boost::asio::awaitable<Served> refuse(std::unique_ptr<http::Reply> reply, relay::Downstream& client) {
  co_return co_await answer(client, *reply);
}

}  // namespace

// Not a coroutine itself: a matched request goes straight into its handler's frame.
boost::asio::awaitable<Served> Router::dispatch(const http::RouteMatch& match, const Call& call,
                                                relay::Downstream& client) {
  auto refusal = unmatched(match, call.method, call.target);
  Handler* handler = refusal ? nullptr : handlers_[static_cast<std::size_t>(match.route)];
  if (handler) return handler->serve(call, client);
  // A route in the table without a handler is a wiring mistake, never a client's.
  return refuse(std::make_unique<http::Reply>(refusal ? std::move(*refusal)
                                                     : http::error_reply(http::ErrorKind::internal_error,
                                                                         "unhandled route")),
                client);
}

}  // namespace lagoon::routes
