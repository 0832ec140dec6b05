#include "socket_downstream.hpp"

#include <sys/socket.h>

#include <cerrno>

#include <boost/asio/write.hpp>
#include <boost/beast/http.hpp>

#include "net.hpp"

namespace lagoon::transport {


// Notices a client that hangs up while the upstream is silent (between events, or stalled), not only at
// the next write: a reset connection. An end of stream is not departure: a client may half-close after
// its request (shutdown(SHUT_WR), legal HTTP/1.1) and still read the answer, so it gets the whole
// stream; one that closed for good is noticed at the next write, which fails. Runs on the connection's
// strand, like the request's coroutine, and touches nothing once stopped.
struct SocketDownstream::Watch : std::enable_shared_from_this<Watch> {
  Watch(beast::tcp_stream& s, std::function<void()> f) : stream(s), on_reset(std::move(f)) {}
  beast::tcp_stream& stream;
  std::function<void()> on_reset;
  bool active = true;

  void arm() {
    stream.socket().async_wait(asio::socket_base::wait_read,
                               [self = shared_from_this()](const boost::system::error_code& ec) { self->readable(ec); });
  }
  void readable(const boost::system::error_code& ec) {
    if (ec || !active) return;
    // Never a blocking receive here: readiness can be stale by the time this runs, and a blocking peek
    // would then hold this reactor thread, and this connection's strand with the stream on it, until
    // the client sends something — which a client waiting for this answer never does. (Found by
    // `make soak`: a reactor thread parked in poll() for good.)
    char byte;
    const auto n = ::recv(stream.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0) return;  // the client's next request: it is still there
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return arm();
    // End of stream: half-closed, or gone for good — the next write tells. Not re-armed: the socket
    // stays readable from now on.
    if (n == 0) return;
    active = false;  // reset
    on_reset();
  }
};

void SocketDownstream::watch_reset(std::function<void()> on_reset) {
  stop_watching();
  watch_ = std::make_shared<Watch>(stream_, std::move(on_reset));
  watch_->arm();
}

void SocketDownstream::stop_watching() noexcept {
  if (!watch_) return;
  if (watch_->active) {
    watch_->active = false;
    boost::system::error_code ignored;
    stream_.socket().cancel(ignored);
  }
  watch_.reset();
}

namespace {

bhttp::response<bhttp::string_body> to_response(http::Reply& reply, const std::string& request_id, bool keep_alive) {
  bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(reply.status), 11};
  res.set(bhttp::field::content_type, reply.content_type);
  res.set("X-Request-Id", request_id);
  res.body() = std::move(reply.body);
  res.keep_alive(keep_alive && !reply.close);
  res.prepare_payload();
  for (const auto& [name, value] : reply.headers) res.set(name, value);
  return res;
}

}  // namespace

awaitable<std::optional<std::size_t>> write_reply(beast::tcp_stream& stream, http::Reply& reply,
                                                  const std::string& request_id, bool keep_alive,
                                                  std::chrono::milliseconds write_timeout) {
  auto res = to_response(reply, request_id, keep_alive);
  stream.expires_after(write_timeout);
  auto [ec, n] = co_await bhttp::async_write(stream, res, as_result);
  if (ec) co_return std::nullopt;
  co_return n;
}

// The same write as write_reply, in this frame: a whole answer is the hot path.
awaitable<bool> SocketDownstream::send(http::Reply& reply) {
  auto res = to_response(reply, request_id_, keep_alive_);
  if (!rotating_.empty()) res.set("x-lagoon-key-rotating", rotating_);
  stream_.expires_after(write_timeout_);
  auto [ec, n] = co_await bhttp::async_write(stream_, res, as_result);
  co_return wrote(ec, n);
}

bool SocketDownstream::wrote(const boost::system::error_code& ec, std::size_t n) noexcept {
  bytes_ += n;
  if (ec) failed_ = true;
  return !failed_;
}

awaitable<bool> SocketDownstream::start_stream(const http::Reply& head) {
  bhttp::response<bhttp::empty_body> res{static_cast<bhttp::status>(head.status), 11};
  res.set(bhttp::field::content_type, head.content_type);
  res.set("X-Request-Id", request_id_);
  for (const auto& [name, value] : head.headers) res.set(name, value);
  if (!rotating_.empty()) res.set("x-lagoon-key-rotating", rotating_);
  res.chunked(true);
  res.keep_alive(keep_alive_ && !head.close);
  bhttp::response_serializer<bhttp::empty_body> sr(res);
  stream_.expires_after(write_timeout_);
  auto [ec, n] = co_await bhttp::async_write_header(stream_, sr, as_result);
  co_return wrote(ec, n);
}

awaitable<bool> SocketDownstream::send_chunk(std::string_view bytes) {
  if (bytes.empty()) co_return !failed_;
  stream_.expires_after(write_timeout_);
  auto [ec, n] = co_await asio::async_write(stream_, bhttp::make_chunk(asio::buffer(bytes.data(), bytes.size())),
                                            as_result);
  co_return wrote(ec, n);
}

awaitable<bool> SocketDownstream::end_stream() {
  stream_.expires_after(write_timeout_);
  auto [ec, n] = co_await asio::async_write(stream_, bhttp::make_chunk_last(), as_result);
  co_return wrote(ec, n);
}

awaitable<void> lingering_close(beast::tcp_stream& stream) {
  boost::system::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  stream.expires_after(std::chrono::seconds(1));
  char sink[16384];
  std::size_t discarded = 0;
  while (!ec && discarded < (1u << 20)) {
    auto [rec, n] = co_await stream.async_read_some(asio::buffer(sink), as_result);
    ec = rec;
    discarded += n;
  }
  stream.close();
}

}  // namespace lagoon::transport
