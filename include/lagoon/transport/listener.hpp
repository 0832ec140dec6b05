// Listener: the transport's front door — accepts connections (up to max_connections; beyond, closed at once)
// and gives them in turn to the reactors, each an io_context run by one thread, where each runs one coroutine
// with no strand (its reactor's one thread serialises it: no strand dispatch, no lock on a connection's warm
// path); and lets the drain close the door and the idle connections. Each connection reads requests with the
// framing checks and deadlines of transport/request_reader.hpp, admits those whose route needs a key from the
// head alone, then hands them to the Router and writes what the route answers (src/transport/connection.cpp).
// A connection or accept coroutine that ends by any exception is logged; a dead accept loop also turns
// /readyz to 503, since nothing new could be served.
// Thread-safety: open() and start() once, before the reactor runs; begin_drain() and active() from any
// thread.
#pragma once

#include <memory>
#include <vector>

#include "lagoon/app/readiness.hpp"
#include "lagoon/auth/authenticator.hpp"
#include "lagoon/config/config.hpp"
#include "lagoon/metrics/registry.hpp"
#include "lagoon/routes/router.hpp"

namespace boost::asio {
class io_context;
}

namespace lagoon::transport {

class Listener {
 public:
  // The first reactor also runs the accept loop. Each must be run by exactly one thread.
  // `endpoint`: where it accepts (cfg.listen for the main listener). A second one, such as the
  // console's, has its own Router and names the `main` listener: it shares main's max_connections and
  // request-body budget (limits of the process, not of a listener), and its accept loop's end does not
  // make the instance not ready. `main` must outlive it.
  Listener(std::vector<boost::asio::io_context*> reactors, const config::Config& cfg, config::HostPort endpoint,
           metrics::Registry& registry, app::Readiness& readiness, auth::Authenticator& auth, routes::Router& router,
           Listener* main = nullptr);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Binds and listens; throws boost::system::system_error when it cannot.
  void open();
  unsigned short port() const;
  void start();
  // Stops accepting and closes the connections waiting for a request; busy ones finish theirs.
  void begin_drain();
  int active() const noexcept;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace lagoon::transport
