// Client: HTTP/1.1 to the upstream (LAGOON_UPSTREAM_URL, http:// or https://), with a bounded pool of
// kept-alive connections.
//
// send() writes one request (the gateway's credential added) and completes when the response head has
// arrived; the Exchange then yields the body piece by piece as it comes, so a stream is relayed with
// backpressure and no body is ever held whole. Deadlines: connect (TCP + TLS), first byte, and the gap
// between two body pieces. TLS verifies the certificate chain against the system store and the host
// name, with SNI. A reused connection that the upstream had already closed is retried once on a fresh
// one, before any response byte: that is the keep-alive race, not a failed request.
//
// Connections are pooled per reactor (the io_context of the coroutine that calls send()): a connection
// opened by a request on one reactor thread is only reused by requests on that one, so none of its I/O
// crosses threads; LAGOON_UPSTREAM_MAX_IDLE bounds the idle ones of all pools together.
//
// Thread-safety: send() from any thread; an Exchange belongs to one coroutine. The Client must outlive
// its Exchanges.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "lagoon/config/config.hpp"
#include "lagoon/metrics/registry.hpp"
#include "lagoon/upstream/exchange.hpp"

namespace lagoon::upstream {

class Client final : public Sender {
 public:
  Client(const config::Config& cfg, metrics::Registry& metrics);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  boost::asio::awaitable<Result<std::unique_ptr<Exchange>>> send(std::string_view method, std::string_view path,
                                                                 std::string_view body,
                                                                 const http::Headers& headers) override;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace lagoon::upstream
