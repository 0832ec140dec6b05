// Downstream: the client's side of one request as the routes see it — a whole answer, or an event
// stream (head, chunks, end) — plus notice of a client that resets its connection while a stream is
// relayed. The transport's implementation writes to the socket under the write deadline and adds what
// every answer carries (X-Request-Id, keep-alive); the relay's unit tests use a fake that records.
// Thread-safety: one request's coroutine at a time.
#pragma once

#include <functional>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "lagoon/http/reply.hpp"

namespace lagoon::relay {

class Downstream {
 public:
  virtual ~Downstream() = default;
  // Each returns false when the client could not be written to (gone, or past the write deadline).
  virtual boost::asio::awaitable<bool> send(http::Reply& reply) = 0;
  // An event stream's head: `head.status`, its content type and headers, chunked.
  virtual boost::asio::awaitable<bool> start_stream(const http::Reply& head) = 0;
  virtual boost::asio::awaitable<bool> send_chunk(std::string_view bytes) = 0;
  virtual boost::asio::awaitable<bool> end_stream() = 0;
  // Calls `on_reset` (on this request's executor) if the client resets the connection while waiting,
  // until stop_watching(). A half-close is not a reset: such a client may still read the answer.
  virtual void watch_reset(std::function<void()> on_reset) = 0;
  virtual void stop_watching() noexcept = 0;
};

}  // namespace lagoon::relay
