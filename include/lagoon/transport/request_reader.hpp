// RequestReader: one request's reading, from bytes as they arrive to a parsed request or the refusal
// the client gets — without I/O, so that the server (which feeds it from the socket under its
// deadlines) and the HTTP fuzz target (which feeds it from fuzz input, cut at random) run exactly this
// code. In order: the header through http::HeaderReader (our raw framing checks, Beast's parser, the
// whole-block header limit); the checks on the parsed header (one Host, plain Content-Length,
// Transfer-Encoding only "chunked", the request line's length); then, once the caller has admitted the
// request, the body under the body limit.
// Header-only (Beast); one instance per request; not thread-safe.
#pragma once

#include <algorithm>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include <boost/asio/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/string_body.hpp>

#include "lagoon/http/errors.hpp"
#include "lagoon/http/header_reader.hpp"
#include "lagoon/http/routes.hpp"

namespace lagoon::transport {

struct ReadLimits {
  std::size_t max_header_bytes = 0;
  std::uint64_t max_body_bytes = 0;
  std::size_t max_request_line_bytes = 0;
};

// Why a request is answered with an error and the connection closed.
struct Refusal {
  http::ErrorKind kind = http::ErrorKind::bad_request;
  std::string message;
  bool after_head = false;  // the head was read: its method and path are known
};

class RequestReader {
 public:
  using Request = boost::beast::http::request<boost::beast::http::string_body>;
  using Head = http::HeaderReader::Parser::value_type;
  enum class Step {
    need_more,  // read more into the buffer and call again
    done,       // this phase is over: the head is read and checked, or the body is whole
    refused,    // answer refusal() and close
    closed,     // the client went away; nothing to answer
  };

  explicit RequestReader(const ReadLimits& limits)
      : limits_(limits), header_reader_(header_parser_, limits.max_header_bytes) {
    header_parser_.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
    header_parser_.body_limit(limits.max_body_bytes);
  }

  // --- The head ---
  Step read_head(boost::beast::flat_buffer& buffer) {
    const auto step = header_reader_.step(buffer);
    if (step == http::HeaderReader::Step::need_more) return Step::need_more;
    if (step == http::HeaderReader::Step::failed) return head_failed(header_reader_.error());
    return check_head();
  }
  // The connection ended (cleanly) before the head did.
  Step head_end_of_input(const boost::beast::flat_buffer& buffer) {
    header_reader_.end_of_input(buffer);
    return head_failed(header_reader_.error());
  }
  // Reading the socket failed before the head was whole.
  Step head_read_error(const boost::system::error_code& ec) { return head_failed(ec); }

  const Head& head() const { return header_parser_.get(); }
  bool body_pending() const { return !header_parser_.is_done(); }
  std::optional<std::uint64_t> content_length() const {
    const auto n = header_parser_.content_length();
    return n ? std::optional<std::uint64_t>(*n) : std::nullopt;
  }

  // The route's own limit on the body, once the head has said which route it is (at most the limit the
  // reader was made with, which the head's Content-Length was already held to). `refused` when the
  // Content-Length says more.
  Step limit_body(std::uint64_t n) {
    limits_.max_body_bytes = std::min(limits_.max_body_bytes, n);
    if (const auto length = content_length(); length && *length > limits_.max_body_bytes)
      return refuse(http::ErrorKind::payload_too_large,
                    "Request body larger than " + std::to_string(limits_.max_body_bytes) + " bytes", true);
    return Step::done;
  }

  // The most the body may be (the route's limit once limit_body was called).
  std::uint64_t body_limit() const noexcept { return limits_.max_body_bytes; }

  // --- The body (after read_head returned done) ---
  Step read_body(boost::beast::flat_buffer& buffer) {
    namespace bhttp = boost::beast::http;
    start_body();
    while (!body_parser_->is_done()) {
      if (buffer.size() == 0) return Step::need_more;
      boost::system::error_code ec;
      buffer.consume(body_parser_->put(buffer.data(), ec));
      if (ec == bhttp::error::need_more) return Step::need_more;
      if (ec) return body_failed(ec);
    }
    return Step::done;
  }
  // The connection ended (cleanly) inside the body: as Beast's own reader, a malformed request.
  Step body_end_of_input() {
    start_body();
    boost::system::error_code ec;
    body_parser_->put_eof(ec);
    return ec ? body_failed(ec) : Step::done;
  }
  Step body_read_error(const boost::system::error_code& ec) { return body_failed(ec); }

  // The whole request (after the body phase, or straight after the head when no body is pending).
  Request release() {
    start_body();
    return body_parser_->release();
  }

  const Refusal& refusal() const noexcept { return refusal_; }

 private:
  static bool client_left(const boost::system::error_code& ec) {
    namespace bhttp = boost::beast::http;
    namespace asio = boost::asio;
    return ec == bhttp::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
           ec == asio::error::operation_aborted;
  }

  Step refuse(http::ErrorKind kind, std::string message, bool after_head = false) {
    refusal_ = {kind, std::move(message), after_head};
    return Step::refused;
  }

  Step head_failed(const boost::system::error_code& ec) {
    namespace bhttp = boost::beast::http;
    const auto& h = header_parser_.get();
    if (ec == bhttp::error::header_limit) {
      // Beast parses the request line as soon as it is complete; if it never was, the line itself is
      // what overflowed.
      if (h.target().empty() ||
          http::request_line_too_long(h.method_string(), h.target(), limits_.max_request_line_bytes))
        return refuse(http::ErrorKind::uri_too_long, "Request line too long");
      return refuse(http::ErrorKind::headers_too_large, "Request header fields too large");
    }
    if (ec == bhttp::error::body_limit)
      return refuse(http::ErrorKind::payload_too_large,
                    "Request body larger than " + std::to_string(limits_.max_body_bytes) + " bytes");
    if (client_left(ec)) return Step::closed;
    const auto problem = header_reader_.problem();
    return refuse(http::ErrorKind::bad_request,
                  "Malformed HTTP request: " + (problem.empty() ? ec.message() : std::string(problem)));
  }

  Step check_head() {
    namespace bhttp = boost::beast::http;
    const auto& h = header_parser_.get();
    const auto problem = http::field_problem(
        {h.version(), h.count(bhttp::field::host), h.count(bhttp::field::content_length),
         h[bhttp::field::content_length], h.count(bhttp::field::transfer_encoding), h[bhttp::field::transfer_encoding]});
    if (!problem.empty()) return refuse(http::ErrorKind::bad_request, "Malformed HTTP request: " + std::string(problem));
    if (http::request_line_too_long(h.method_string(), h.target(), limits_.max_request_line_bytes))
      return refuse(http::ErrorKind::uri_too_long, "Request line too long", true);
    return Step::done;
  }

  void start_body() {
    if (body_parser_) return;
    body_parser_.emplace(std::move(header_parser_));
    body_parser_->body_limit(limits_.max_body_bytes);
    body_parser_->eager(true);
  }

  Step body_failed(const boost::system::error_code& ec) {
    namespace bhttp = boost::beast::http;
    namespace asio = boost::asio;
    if (ec == bhttp::error::body_limit)
      return refuse(http::ErrorKind::payload_too_large,
                    "Request body larger than " + std::to_string(limits_.max_body_bytes) + " bytes", true);
    if (ec == bhttp::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset)
      return Step::closed;
    return refuse(http::ErrorKind::bad_request, "Malformed HTTP request body: " + ec.message(), true);
  }

  ReadLimits limits_;
  http::HeaderReader::Parser header_parser_;
  http::HeaderReader header_reader_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> body_parser_;
  Refusal refusal_;
};

}  // namespace lagoon::transport
