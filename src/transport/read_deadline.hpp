// ReadDeadline: see the class comment. Internal to src/transport (Beast).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/tcp_stream.hpp>

namespace lagoon::transport {

// A deadline that cancels the pending read on a stream but leaves the socket open, so the server can
// still answer 408. (tcp_stream's own expiry closes the socket, which leaves nothing to answer on.)
// One per connection, armed for each request's header and body in turn (nothing allocated per request).
// Lives on the connection's reactor thread. A firing that races the read's completion, a later arming or
// the connection's end finds its generation stale, or the stream gone, and touches nothing.
class ReadDeadline {
 public:
  explicit ReadDeadline(boost::beast::tcp_stream& stream)
      : timer_(stream.get_executor()), state_(std::make_shared<State>()) {
    state_->stream = &stream;
  }
  ~ReadDeadline() {
    state_->stream = nullptr;
    state_->armed = false;
    timer_.cancel();
  }
  ReadDeadline(const ReadDeadline&) = delete;
  ReadDeadline& operator=(const ReadDeadline&) = delete;

  // The pending (and next) reads are cancelled `after` from now; the stream's own expiry is turned off.
  void arm(std::chrono::steady_clock::duration after) {
    state_->stream->expires_never();
    state_->armed = true;
    state_->fired = false;
    const std::uint64_t generation = ++state_->generation;
    timer_.expires_after(after);
    timer_.async_wait([state = state_, generation](const boost::system::error_code& ec) {
      if (ec || !state->armed || state->generation != generation || !state->stream) return;
      state->fired = true;
      boost::system::error_code ignored;
      state->stream->socket().cancel(ignored);
    });
  }
  // Ends the deadline; whether it had passed.
  bool disarm() {
    state_->armed = false;
    timer_.cancel();
    return state_->fired;
  }

 private:
  struct State {
    boost::beast::tcp_stream* stream = nullptr;  // null once the connection is gone
    std::uint64_t generation = 0;
    bool armed = false;
    bool fired = false;
  };
  boost::asio::steady_timer timer_;
  std::shared_ptr<State> state_;
};

}  // namespace lagoon::transport
