// The seam between the relay and the upstream: a Sender sends one request and yields an Exchange once
// the response head has arrived; the Exchange yields the body piece by piece. Failures are values
// (Failure, in a Result), not exceptions: on the request path each is an answer to choose, not an
// accident. upstream::Client is the real Sender (HTTP/1.1, TLS, pooled); the relay's unit tests
// use a hand-written fake.
// Thread-safety: a Sender's send() from any thread; an Exchange belongs to one coroutine.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include "lagoon/http/reply.hpp"

namespace lagoon::upstream {

struct Failure {
  enum class Kind {
    connect,     // could not connect or handshake in time: nothing was sent
    first_byte,  // sent, but no response head within the deadline
    gap,         // the body stalled longer than the gap deadline
    broken,      // the connection failed, the response was malformed, or the exchange was aborted
  };
  Kind kind = Kind::broken;
  std::string what;
};

// For Result::value() on a failure: a programming error, the request path checks first.
[[noreturn]] void throw_exception_from_error(const Failure& f, const boost::source_location& where);

template <class T>
using Result = boost::system::result<T, Failure>;

struct Head {
  unsigned status = 0;
  std::string content_type;
  std::optional<std::string> retry_after;
  http::Headers relayed;  // the response headers the client may see (relay/venice_headers.hpp)
};

class Exchange {
 public:
  virtual ~Exchange() = default;
  virtual const Head& head() const noexcept = 0;
  // The next piece of the body, valid until the next call; empty once the body is complete.
  // Failure kinds: gap, broken.
  virtual boost::asio::awaitable<Result<std::string_view>> read_some() = 0;
  // Drops the connection now (the client went away, or the drain cut it): the upstream sees it closed,
  // and a read in progress ends with a broken Failure.
  virtual void abort() noexcept = 0;
};

class Sender {
 public:
  virtual ~Sender() = default;
  // `path` is appended to the upstream's base path, e.g. "/chat/completions"; `headers` are the
  // client's own that may go upstream (relay/venice_headers.hpp), added to the gateway's. `body` is
  // read until send() completes (the request is written by then) and not copied: an upload of 25 MiB
  // goes upstream from the buffer it was received into, on the retry too.
  virtual boost::asio::awaitable<Result<std::unique_ptr<Exchange>>> send(std::string_view method,
                                                                         std::string_view path, std::string_view body,
                                                                         const http::Headers& headers) = 0;
};

}  // namespace lagoon::upstream
