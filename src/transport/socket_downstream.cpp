#include "socket_downstream.hpp"

#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <charconv>

#include <boost/asio/write.hpp>
#include <boost/beast/http/status.hpp>

#include "lagoon/http/head.hpp"

#include "net.hpp"

namespace lagoon::transport {


// Notices a client that hangs up while the upstream is silent (between events, or stalled), not only at
// the next write: a reset connection. An end of stream is not departure: a client may half-close after
// its request (shutdown(SHUT_WR), legal HTTP/1.1) and still read the answer, so it gets the whole
// stream; one that closed for good is noticed at the next write, which fails. Runs on the connection's
// reactor thread, like the request's coroutine, and touches nothing once stopped.
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
    // would then hold this reactor thread, and every connection on it, until
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

// The head of an answer into `out`: the reply's own headers replace the defaults of the same name (as
// Reply::set does), and the fields that frame the message are the transport's alone.
std::string_view reply_head(std::string& out, const http::Reply& reply, std::string_view request_id, bool keep_alive,
                            std::string_view rotating, bool chunked) {
  http::HeadWriter w(out);
  w.status_line(reply.status, bhttp::obsolete_reason(static_cast<bhttp::status>(reply.status)));
  const auto& h = reply.headers;
  if (!reply.content_type.empty() && !http::has_header(h, "content-type")) w.field("Content-Type", reply.content_type);
  if (!http::has_header(h, "x-request-id")) w.field("X-Request-Id", request_id);
  w.fields(h, http::framing_field);
  if (!rotating.empty()) w.field("x-lagoon-key-rotating", rotating);
  if (chunked)
    w.field("Transfer-Encoding", "chunked");
  else if (!http::bodiless_status(reply.status))
    w.field("Content-Length", static_cast<std::uint64_t>(reply.body.size()));
  if (!keep_alive || reply.close) w.field("Connection", "close");
  return w.finish();
}

// Head and body in one gathered write.
auto whole_buffers(std::string_view head, const http::Reply& reply) {
  const std::size_t body = http::bodiless_status(reply.status) ? 0 : reply.body.size();
  return std::array<asio::const_buffer, 2>{asio::buffer(head.data(), head.size()), asio::buffer(reply.body.data(), body)};
}

}  // namespace

awaitable<std::optional<std::size_t>> write_reply(beast::tcp_stream& stream, http::Reply& reply,
                                                  const std::string& request_id, bool keep_alive,
                                                  std::chrono::milliseconds write_timeout) {
  std::string head_buffer;
  const auto head = reply_head(head_buffer, reply, request_id, keep_alive, {}, false);
  stream.expires_after(write_timeout);
  auto [ec, n] = co_await asio::async_write(stream, whole_buffers(head, reply), as_result);
  if (ec) co_return std::nullopt;
  co_return n;
}

// The same write as write_reply, into the connection's reused head buffer: a whole answer is the hot path.
awaitable<bool> SocketDownstream::send(http::Reply& reply) {
  const auto head = reply_head(head_buffer_, reply, request_id_, keep_alive_, rotating_, false);
  stream_.expires_after(write_timeout_);
  auto [ec, n] = co_await asio::async_write(stream_, whole_buffers(head, reply), as_result);
  co_return wrote(ec, n);
}

bool SocketDownstream::wrote(const boost::system::error_code& ec, std::size_t n) noexcept {
  bytes_ += n;
  if (ec) failed_ = true;
  return !failed_;
}

awaitable<bool> SocketDownstream::start_stream(const http::Reply& head) {
  const auto bytes = reply_head(head_buffer_, head, request_id_, keep_alive_, rotating_, true);
  stream_.expires_after(write_timeout_);
  auto [ec, n] = co_await asio::async_write(stream_, asio::buffer(bytes.data(), bytes.size()), as_result);
  co_return wrote(ec, n);
}

awaitable<bool> SocketDownstream::send_chunk(std::string_view bytes) {
  if (bytes.empty()) co_return !failed_;
  // A chunk is its size in hex, CRLF, the bytes, CRLF: three buffers, one write.
  char size_line[20];
  auto end = std::to_chars(size_line, size_line + 16, bytes.size(), 16).ptr;
  *end++ = '\r';
  *end++ = '\n';
  const std::array<asio::const_buffer, 3> chunk{asio::buffer(size_line, static_cast<std::size_t>(end - size_line)),
                                                asio::buffer(bytes.data(), bytes.size()), asio::buffer("\r\n", 2)};
  stream_.expires_after(write_timeout_);
  auto [ec, n] = co_await asio::async_write(stream_, chunk, as_result);
  co_return wrote(ec, n);
}

awaitable<bool> SocketDownstream::end_stream() {
  stream_.expires_after(write_timeout_);
  auto [ec, n] = co_await asio::async_write(stream_, asio::buffer("0\r\n\r\n", 5), as_result);
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
