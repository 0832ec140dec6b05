// ReadDeadline: see the class comment. Internal to src/transport (Beast).
#pragma once

#include <chrono>
#include <memory>

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/tcp_stream.hpp>

namespace lagoon::transport {

// A deadline that cancels the pending read on a stream but leaves the socket open, so the server can
// still answer 408. (tcp_stream's own expiry closes the socket, which leaves nothing to answer on.)
// Lives on the connection's reactor thread; the handler checks `armed` so a firing that races the read's
// completion cannot cancel a later operation or touch a destroyed stream.
class ReadDeadline {
 public:
  ReadDeadline(boost::beast::tcp_stream& stream, std::chrono::steady_clock::duration after)
      : timer_(stream.get_executor()), armed_(std::make_shared<bool>(true)), fired_(std::make_shared<bool>(false)) {
    stream.expires_never();
    timer_.expires_after(after);
    timer_.async_wait([armed = armed_, fired = fired_, &stream](const boost::system::error_code& ec) {
      if (ec || !*armed) return;
      *fired = true;
      boost::system::error_code ignored;
      stream.socket().cancel(ignored);
    });
  }
  ~ReadDeadline() {
    *armed_ = false;
    timer_.cancel();
  }
  ReadDeadline(const ReadDeadline&) = delete;
  ReadDeadline& operator=(const ReadDeadline&) = delete;
  bool expired() const noexcept { return *fired_; }

 private:
  boost::asio::steady_timer timer_;
  std::shared_ptr<bool> armed_;
  std::shared_ptr<bool> fired_;
};

}  // namespace lagoon::transport
