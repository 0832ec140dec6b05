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
// Thread-safety: send() from any thread; an Exchange belongs to one coroutine. The Client must outlive
// its Exchanges.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "lagoon/config/config.hpp"
#include "lagoon/metrics/registry.hpp"

namespace boost::asio {
class io_context;
}

namespace lagoon::upstream {

class Error : public std::runtime_error {
 public:
  enum class Kind {
    connect,     // could not connect or handshake in time: nothing was sent
    first_byte,  // sent, but no response head within the deadline
    gap,         // the body stalled longer than the gap deadline
    broken,      // the connection failed or the response was malformed
  };
  Error(Kind kind, const std::string& what) : std::runtime_error(what), kind_(kind) {}
  Kind kind() const noexcept { return kind_; }

 private:
  Kind kind_;
};

struct Head {
  unsigned status = 0;
  std::string content_type;
  std::optional<std::string> retry_after;
};

class Exchange {
 public:
  virtual ~Exchange() = default;
  virtual const Head& head() const noexcept = 0;
  // The next piece of the body, valid until the next call; empty once the body is complete.
  // Throws Error (gap, broken).
  virtual boost::asio::awaitable<std::string_view> read_some() = 0;
  // Drops the connection now (the client went away): the upstream sees it closed.
  virtual void abort() noexcept = 0;
};

class Client {
 public:
  Client(boost::asio::io_context& ioc, const config::Config& cfg, metrics::Registry& metrics);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // `path` is appended to the configured base path, e.g. "/chat/completions". Throws Error.
  boost::asio::awaitable<std::unique_ptr<Exchange>> send(std::string_view method, std::string_view path,
                                                         std::string body);

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace lagoon::upstream
