// The only translation unit that reads requests with Beast (each such unit costs ~25 s to compile);
// socket_downstream.cpp writes the answers.
#include "connection.hpp"

#include <optional>
#include <string>
#include <utility>

#include <boost/beast/core/read_size.hpp>
#include <boost/beast/http.hpp>

#include "lagoon/admission/admit.hpp"
#include "lagoon/http/request_id.hpp"
#include "lagoon/relay/venice_headers.hpp"
#include "lagoon/transport/request_reader.hpp"
#include "read_deadline.hpp"
#include "socket_downstream.hpp"

#include "net.hpp"

namespace lagoon::transport {

using Clock = std::chrono::steady_clock;

namespace {

class Connection {
 public:
  Connection(ConnectionShared& shared, tcp::socket socket, ConnectionEntry& entry)
      : s_(shared), cfg_(shared.cfg), stream_(std::move(socket)), deadline_(stream_), entry_(entry) {
    entry_.stream = &stream_;
  }
  ~Connection() { entry_.stream = nullptr; }  // the drain must not see a dangling stream

  awaitable<void> run() {
    const auto accepted_at = Clock::now();
    for (bool first = true;; first = false) {
      if (!co_await wait_for_request(first)) co_return;
      const auto started = Clock::now();
      // A new connection's header deadline runs from accept, so a slow first byte cannot double it.
      if (!co_await serve_one(started, (first ? accepted_at : started) + cfg_.header_timeout)) co_return;
    }
  }

 private:
  // Waits for the first byte of the next request. A new connection gets the header deadline (it has
  // promised a request); a kept-alive one may sit idle for idle_timeout.
  awaitable<bool> wait_for_request(bool first) {
    entry_.idle = true;
    if (s_.readiness.draining() && !first) co_return false;
    if (buffer_.size() == 0) {
      stream_.expires_after(first ? cfg_.header_timeout : cfg_.idle_timeout);
      auto [ec, n] = co_await stream_.async_read_some(buffer_.prepare(4096), as_result);
      if (ec) co_return false;  // closed, reset, idle timeout or drain: nothing was asked, nothing to answer
      // The drain may have closed this idle connection after its bytes arrived but before this
      // coroutine resumed: the request must not be served (its answer could not be written).
      if (!stream_.socket().is_open()) co_return false;
      buffer_.commit(n);
    }
    entry_.idle = false;
    co_return true;
  }

  awaitable<RequestReader::Step> read_head(RequestReader& reader) {
    for (;;) {
      auto step = reader.read_head(buffer_);
      if (step != RequestReader::Step::need_more) co_return step;
      auto [ec, n] = co_await stream_.async_read_some(buffer_.prepare(4096), as_result);
      if (ec == asio::error::eof) co_return reader.head_end_of_input(buffer_);
      if (ec) co_return reader.head_read_error(ec);
      buffer_.commit(n);
    }
  }

  awaitable<RequestReader::Step> read_body(RequestReader& reader) {
    for (;;) {
      auto step = reader.read_body(buffer_);
      if (step != RequestReader::Step::need_more) co_return step;
      auto [ec, n] = co_await stream_.async_read_some(buffer_.prepare(beast::read_size(buffer_, 65536)), as_result);
      if (ec == asio::error::eof) co_return reader.body_end_of_input();
      if (ec) co_return reader.body_read_error(ec);
      buffer_.commit(n);
    }
  }

  // One request from its first byte to its answer; false when the connection is over.
  awaitable<bool> serve_one(Clock::time_point started, Clock::time_point header_due) {
    // The largest body any route takes; the route's own limit is set once the head names it.
    auto& reader = reader_.emplace(ReadLimits{cfg_.max_header_bytes, std::max(cfg_.max_body_bytes, cfg_.max_upload_bytes),
                                              cfg_.max_request_line_bytes});
    deadline_.arm(header_due - Clock::now());
    const auto step = co_await read_head(reader);
    const bool header_late = deadline_.disarm();
    if (header_late) {
      const Refusal late{http::ErrorKind::request_timeout, "Request header not received in time"};
      co_return co_await reject(late, started, {}, {});
    }
    if (step == RequestReader::Step::closed) co_return false;
    const auto& head = reader.head();
    const std::string method(head.method_string());
    const std::string path(http::path_of(head.target()));
    if (step == RequestReader::Step::refused) {
      const bool named = reader.refusal().after_head;
      co_return co_await reject(reader.refusal(), started, named ? std::string_view(method) : std::string_view(),
                                named ? std::string_view(path) : std::string_view());
    }
    RequestInfo x{
        started, method, path, s_.router.match(head.method_string(), head.target()), std::string(head["X-Request-Id"]),
        {}};
    x.request_id = http::choose_request_id(x.head_request_id);
    const std::uint64_t limit = x.match.upload ? cfg_.max_upload_bytes : cfg_.max_body_bytes;
    if (reader.limit_body(limit) == RequestReader::Step::refused)
      co_return co_await reject(reader.refusal(), started, method, path);
    co_return co_await admit_and_serve(reader, x);
  }

  // What the rest of a request's handling needs to know about it.
  struct RequestInfo {
    Clock::time_point started;
    const std::string& method;
    const std::string& path;
    http::RouteMatch match;
    std::string head_request_id;
    std::string request_id;
  };

  awaitable<bool> admit_and_serve(RequestReader& reader, RequestInfo& x) {
    const auto& head = reader.head();
    const bool body_pending = reader.body_pending();
    // A route that needs a key checks it from the head, before the body is read or 100 Continue sent.
    std::optional<admission::Admission> admitted;
    const bool needs_key = x.match.access == http::Access::key ||
                           (x.match.access == http::Access::catalog && !cfg_.catalog_public);
    if (x.match.kind == http::RouteMatch::Kind::found && needs_key) {
      admitted = co_await admission::admit_key(s_.auth, head.count(bhttp::field::authorization),
                                               head[bhttp::field::authorization], &key_memo_);
      if (admitted->refusal) co_return co_await refuse_key(*admitted, head.keep_alive(), body_pending, x);
    }
    // The body's memory, all of it, is reserved before its first byte is read.
    std::optional<std::optional<BodyBudget::Reservation>> reservation;
    if (body_pending) {
      reservation.emplace(s_.body_budget->try_reserve(reader.content_length().value_or(reader.body_limit())));
      if (!*reservation) co_return co_await refuse_busy(x);
      if (!co_await receive_body(reader, x)) co_return false;
    }
    const auto req = reader.release();
    co_return co_await dispatch(req, x, admitted ? &*admitted->key : nullptr);
  }

  // The refusals of admit_and_serve, each in a frame of its own: admit_and_serve's, which every request
  // allocates, stays within what Asio recycles.
  awaitable<bool> refuse_key(admission::Admission& admitted, bool keep_alive, bool body_pending, const RequestInfo& x) {
    routes::RequestFacts refused;
    refused.auth_denied = admitted.auth_denied;
    co_return co_await refuse_before_body(*admitted.refusal, keep_alive, body_pending, x, &refused);
  }

  awaitable<bool> refuse_busy(const RequestInfo& x) {
    s_.bodies_refused.inc();
    http::Reply busy = http::error_reply(http::ErrorKind::service_unavailable,
                                         "The gateway is receiving too many request bodies at once. Please retry shortly.");
    co_await refuse_before_body(busy, false, true, x);
    co_return false;
  }

  awaitable<bool> receive_body(RequestReader& reader, const RequestInfo& x) {
    if (beast::iequals(reader.head()[bhttp::field::expect], "100-continue")) {
      bhttp::response<bhttp::empty_body> cont{bhttp::status::continue_, 11};
      stream_.expires_after(cfg_.write_timeout);
      auto [cec, cn] = co_await bhttp::async_write(stream_, cont, as_result);
      if (cec) co_return false;
    }
    deadline_.arm(cfg_.body_timeout);
    const auto step = co_await read_body(reader);
    const bool body_late = deadline_.disarm();
    if (body_late) {
      const Refusal late{http::ErrorKind::request_timeout, "Request body not received in time"};
      co_return co_await reject(late, x.started, x.method, x.path);
    }
    if (step == RequestReader::Step::closed) co_return false;
    if (step == RequestReader::Step::refused) co_return co_await reject(reader.refusal(), x.started, x.method, x.path);
    co_return true;
  }

  awaitable<bool> dispatch(const RequestReader::Request& req, const RequestInfo& x, const auth::AuthResult* key) {
    const bool keep_alive = req.keep_alive() && !s_.readiness.draining();
    routes::Call call;
    call.method = req.method_string();
    call.target = req.target();
    call.body = req.body();
    // One pass over the fields, not a lookup for each (Beast's are case-insensitive tree searches); the
    // first of a name counts, as Beast's lookup would give.
    bool content_type_seen = false, accept_seen = false;
    for (const auto& f : req) {
      switch (f.name()) {
        case bhttp::field::authorization:
          if (call.authorization_fields++ == 0) call.authorization = f.value();
          break;
        case bhttp::field::content_type:
          if (!std::exchange(content_type_seen, true)) call.content_type = f.value();
          break;
        case bhttp::field::accept:
          if (!std::exchange(accept_seen, true)) call.accept = f.value();
          break;
        case bhttp::field::unknown:
          if (relay::forwarded_request_header(f.name_string()))
            call.forward_headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
          break;
        default:
          break;
      }
    }
    call.key = key;
    call.request_id = x.request_id;
    call.client_request_id = x.request_id == x.head_request_id;
    SocketDownstream client(stream_, head_buffer_, x.request_id, keep_alive, cfg_.write_timeout);
    if (key && key->key().policy.revokes_at_us)
      client.set_key_rotating(auth::format_rfc3339_us(*key->key().policy.revokes_at_us));
    const auto served = co_await s_.router.dispatch(x.match, call, client);
    s_.log.finish({x.started, x.match.label, x.method, x.path, served.status, x.request_id, req.body().size(),
                   client.bytes_written(), &served.facts});
    if (client.failed()) co_return false;
    if (!keep_alive || served.close) {
      boost::system::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
      co_return false;
    }
    co_return true;
  }

  // Answers a request refused from its head alone. A body the client may still send is never read: the
  // connection closes after the answer, lingering so that the answer is not lost to a reset. Returns
  // whether the connection may carry another request.
  awaitable<bool> refuse_before_body(http::Reply& reply, bool keep_alive, bool body_pending, const RequestInfo& x,
                                     const routes::RequestFacts* facts = nullptr) {
    keep_alive = keep_alive && !body_pending && !s_.readiness.draining();
    const unsigned status = reply.status;
    const auto written = co_await write_reply(stream_, reply, x.request_id, keep_alive, cfg_.write_timeout);
    s_.log.finish({x.started, x.match.label, x.method, x.path, status, x.request_id, 0, written.value_or(0), facts});
    if (!written) co_return false;
    if (keep_alive) co_return true;
    if (body_pending) {
      co_await lingering_close(stream_);
    } else {
      boost::system::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    }
    co_return false;
  }

  // Answers a request that cannot be read to the end, then closes the connection. Always false.
  awaitable<bool> reject(const Refusal& refusal, Clock::time_point started, std::string_view method,
                         std::string_view path) {
    const std::string request_id = http::new_request_id();
    http::Reply reply = http::error_reply(refusal.kind, refusal.message);
    const unsigned status = reply.status;
    const auto written = co_await write_reply(stream_, reply, request_id, false, cfg_.write_timeout);
    s_.log.finish({started, "unmatched", method, path, status, request_id, 0, written.value_or(0), nullptr});
    co_await lingering_close(stream_);
    co_return false;
  }

  ConnectionShared& s_;
  const config::Config& cfg_;
  beast::tcp_stream stream_;
  ReadDeadline deadline_;  // the header's, then the body's, of each request in turn
  beast::flat_buffer buffer_;
  std::string head_buffer_;  // each answer's head, written here (SocketDownstream)
  auth::KeyMemo key_memo_;   // the key this client sent last, and its digest
  // The request being read, here rather than in serve_one's coroutine frame: its two Beast parsers
  // made that frame larger than Asio recycles (1,020 bytes), so every request paid a malloc and free
  // of it outside the thread cache.
  std::optional<RequestReader> reader_;
  ConnectionEntry& entry_;
};

}  // namespace

awaitable<void> serve_connection(ConnectionShared& shared, tcp::socket socket, std::shared_ptr<ConnectionEntry> entry,
                                 std::shared_ptr<BodyBudget> budget) {
  (void)budget;  // held: reservations in this frame must not outlive the budget
  Connection connection(shared, std::move(socket), *entry);
  co_await connection.run();
}

}  // namespace lagoon::transport
