// SocketDownstream: relay::Downstream on a client's socket — each write under the write deadline, every
// answer with the request's X-Request-Id and the connection's keep-alive — and the watcher that notices
// a client resetting its connection while a stream waits on the upstream. Also the transport's own
// writes: a Reply outside any route (refusals), and the lingering close after one.
// Internal to src/transport (Beast); one request's coroutine, on the connection's reactor thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include "lagoon/relay/downstream.hpp"

namespace lagoon::transport {

class SocketDownstream final : public relay::Downstream {
 public:
  // `head_buffer` is the connection's, reused by each answer's head (its capacity kept).
  SocketDownstream(boost::beast::tcp_stream& stream, std::string& head_buffer, const std::string& request_id,
                   bool keep_alive, std::chrono::milliseconds write_timeout)
      : stream_(stream),
        head_buffer_(head_buffer),
        request_id_(request_id),
        keep_alive_(keep_alive),
        write_timeout_(write_timeout) {}
  ~SocketDownstream() override { stop_watching(); }

  boost::asio::awaitable<bool> send(http::Reply& reply) override;
  boost::asio::awaitable<bool> start_stream(const http::Reply& head) override;
  boost::asio::awaitable<bool> send_chunk(std::string_view bytes) override;
  boost::asio::awaitable<bool> end_stream() override;
  void watch_reset(std::function<void()> on_reset) override;
  void stop_watching() noexcept override;

  // Every answer on this request says the key is being rotated and when it stops working
  // (x-lagoon-key-rotating), so its holder's tooling can notice before it does.
  void set_key_rotating(std::string revokes_at) { rotating_ = std::move(revokes_at); }

  std::size_t bytes_written() const noexcept { return bytes_; }
  bool failed() const noexcept { return failed_; }  // a write failed: the connection is done

 private:
  struct Watch;
  // Counts a write's bytes and remembers its failure; whether the connection is still good.
  bool wrote(const boost::system::error_code& ec, std::size_t n) noexcept;

  boost::beast::tcp_stream& stream_;
  std::string& head_buffer_;
  const std::string& request_id_;
  const bool keep_alive_;
  const std::chrono::milliseconds write_timeout_;
  std::string rotating_;
  std::size_t bytes_ = 0;
  bool failed_ = false;
  std::shared_ptr<Watch> watch_;
};

// Writes `reply` under the write deadline; the bytes written, or nullopt when the write failed.
boost::asio::awaitable<std::optional<std::size_t>> write_reply(boost::beast::tcp_stream& stream, http::Reply& reply,
                                                               const std::string& request_id, bool keep_alive,
                                                               std::chrono::milliseconds write_timeout);

// Reads and discards what the client still sends after we decided to close, so the kernel does not
// answer unread data with a RST that destroys our answer before the client reads it (the "lingering
// close" of nginx and Apache); then closes.
boost::asio::awaitable<void> lingering_close(boost::beast::tcp_stream& stream);

}  // namespace lagoon::transport
