// HeaderReader: the server's reading of one request header from bytes as they arrive — Lagoon's
// framing checks on the raw block (http::raw_header_problem), Beast's parser, and the header limit
// applied to the whole block (Beast 1.81 checks header_limit only against the bytes not yet parsed, so
// a block arriving over several reads could grow without bound). The server feeds it from the socket;
// the HTTP fuzz target feeds it from fuzz input, so both run exactly this code.
// Beast's parser consumes the request line and each field as soon as it has seen one byte past its line
// end, so the raw check looks at what is still in the buffer together with the last bytes consumed:
// that is enough to see every line start (a fold needs the byte after a line end, which Beast must see
// before it consumes the line) and the blank line that ends the block. Header-only (Beast); one
// instance per request; not thread-safe.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>

#include "lagoon/http/routes.hpp"

namespace lagoon::http {

class HeaderReader {
 public:
  using Parser = boost::beast::http::request_parser<boost::beast::http::empty_body>;
  enum class Step { need_more, done, failed };

  HeaderReader(Parser& parser, std::size_t max_header_bytes) : parser_(parser), max_(max_header_bytes) {}

  // Parses what `buffer` holds (consuming the header once it is whole). need_more: read more into the
  // buffer and call again; failed: error() says why (bad_value with problem() for our own checks,
  // header_limit, or Beast's own).
  Step step(boost::beast::flat_buffer& buffer) {
    namespace bhttp = boost::beast::http;
    if (buffer.size() > 0) {
      const std::string_view raw(static_cast<const char*>(buffer.data().data()), buffer.size());
      // At most a header block's worth: a pipelined body after it is not header. A header that arrived in
      // one read (the usual case) is checked where it lies, without a copy.
      const std::string_view block = raw.substr(0, max_ + 4);
      if (tail_.empty()) {
        problem_ = raw_header_problem(block);
      } else {
        probe_.assign(tail_);
        probe_.append(block);
        problem_ = raw_header_problem(probe_);
      }
      if (!problem_.empty()) return fail(bhttp::error::bad_value);
      boost::system::error_code ec;
      const std::size_t used = parser_.put(buffer.data(), ec);
      const std::string_view consumed = raw.substr(0, used);  // its last 3 bytes are all tail_ keeps
      if (consumed.size() >= 3) {
        tail_.assign(consumed.substr(consumed.size() - 3));
      } else {
        tail_.append(consumed);
        if (tail_.size() > 3) tail_.erase(0, tail_.size() - 3);
      }
      buffer.consume(used);
      consumed_ += used;
      if (parser_.is_header_done()) return consumed_ > max_ ? fail(bhttp::error::header_limit) : Step::done;
      if (ec && ec != bhttp::error::need_more) return fail(ec);
    }
    if (consumed_ + buffer.size() > max_) return fail(bhttp::error::header_limit);
    return Step::need_more;
  }

  // The connection ended before the header did.
  Step end_of_input(const boost::beast::flat_buffer& buffer) {
    namespace bhttp = boost::beast::http;
    return fail(consumed_ + buffer.size() > 0 ? bhttp::error::partial_message : bhttp::error::end_of_stream);
  }

  boost::system::error_code error() const { return error_; }
  std::string_view problem() const { return problem_; }

 private:
  Step fail(boost::system::error_code ec) {
    error_ = ec;
    return Step::failed;
  }

  Parser& parser_;
  std::size_t max_;
  std::size_t consumed_ = 0;
  std::string tail_;   // the last (up to 3) bytes Beast consumed
  std::string probe_;  // tail_ + what the buffer holds, for the raw check
  boost::system::error_code error_;
  std::string_view problem_;
};

}  // namespace lagoon::http
