// Router: the one dispatch. http::match_route (routes.hpp) decides, from a table and without I/O,
// which route a method and target name and what it needs (nothing, a key, the admin token); the Router
// holds the handler of each route and answers 404 and 405 itself.
// Thread-safety: set() before serving; dispatch() from any number of connections at once.
#pragma once

#include <array>

#include "lagoon/http/routes.hpp"
#include "lagoon/routes/route.hpp"

namespace lagoon::routes {

class Router {
 public:
  void set(http::Route route, Handler& handler) { handlers_[static_cast<std::size_t>(route)] = &handler; }
  // For a listener that serves some routes only (the console's): the others are unknown there (404),
  // before any key is asked for. Elsewhere a route without a handler is a wiring mistake (500).
  void serve_only_what_is_set() { partial_ = true; }

  // http::match_route, and for a partial router a route it does not serve as not found.
  http::RouteMatch match(std::string_view method, std::string_view target) const noexcept;

  boost::asio::awaitable<Served> dispatch(const http::RouteMatch& match, const Call& call, relay::Downstream& client);

  // The reply for a request that matched no route, or not with its method; nullopt when it did.
  static std::optional<http::Reply> unmatched(const http::RouteMatch& match, std::string_view method,
                                              std::string_view target);

 private:
  std::array<Handler*, http::kRouteCount> handlers_{};
  bool partial_ = false;
};

}  // namespace lagoon::routes
