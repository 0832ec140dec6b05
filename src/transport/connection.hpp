// One client connection's coroutine: requests read, admitted, dispatched and answered in turn until the
// client closes, a deadline passes, or the drain ends it. Internal to src/transport (Beast).
#pragma once

#include <memory>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include "body_budget.hpp"
#include "lagoon/app/readiness.hpp"
#include "lagoon/auth/authenticator.hpp"
#include "lagoon/config/config.hpp"
#include "lagoon/routes/router.hpp"
#include "request_log.hpp"

namespace lagoon::transport {

// What the drain needs to reach a connection. Only touched on the connection's reactor thread.
struct ConnectionEntry {
  explicit ConnectionEntry(boost::asio::any_io_executor ex) : executor(std::move(ex)) {}
  boost::asio::any_io_executor executor;
  boost::beast::tcp_stream* stream = nullptr;  // null once the connection coroutine has ended
  bool idle = true;                            // waiting for a request, so it may be closed at once on drain
};

// What every connection shares; outlives them all (the budget by shared ownership: see BodyBudget).
struct ConnectionShared {
  const config::Config& cfg;
  app::Readiness& readiness;
  auth::Authenticator& auth;
  routes::Router& router;
  RequestLog log;
  metrics::Counter& bodies_refused;
  std::shared_ptr<BodyBudget> body_budget;
};

boost::asio::awaitable<void> serve_connection(ConnectionShared& shared, boost::asio::ip::tcp::socket socket,
                                              std::shared_ptr<ConnectionEntry> entry,
                                              std::shared_ptr<BodyBudget> budget);

}  // namespace lagoon::transport
