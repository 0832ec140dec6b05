// HeadWriter: an HTTP/1.1 message head — request or status line, fields, the blank line — written
// straight into one caller-owned buffer that is reused from message to message, so that a message goes
// out as two buffers (head and body) in one gathered write. Beast's serializer presents one buffer per
// field through nested buffers_cat_view iterators walked again on every write attempt: ~17 % of the
// reactor thread's CPU on the warm chat path (issue 21's profile), and a sendmsg of a dozen iovecs.
//
// Nothing that could split the head is ever written: a field whose name is not an RFC 9110 token or whose
// value holds CR, LF or NUL is dropped (and counted by the return value). Pure; thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "lagoon/http/reply.hpp"

namespace lagoon::http {

class HeadWriter {
 public:
  // Clears `out` (keeping its capacity) and writes into it.
  explicit HeadWriter(std::string& out) noexcept : out_(out) { out_.clear(); }

  // "METHOD <target><target_tail> HTTP/1.1": the target in two parts (a base path and a route's path).
  void request_line(std::string_view method, std::string_view target, std::string_view target_tail = {});
  // "HTTP/1.1 <status> <reason>".
  void status_line(unsigned status, std::string_view reason);
  // One field; false (and nothing written) when it could not be written safely.
  bool field(std::string_view name, std::string_view value);
  void field(std::string_view name, std::uint64_t value);
  // Each of `headers` whose name no later entry repeats (a later one replaces an earlier one, as
  // Reply::set does) and that `skip` does not refuse.
  template <typename Skip>
  void fields(const Headers& headers, Skip skip) {
    for (std::size_t i = 0; i < headers.size(); ++i)
      if (!skip(headers[i].first) && !named_after(headers, i)) field(headers[i].first, headers[i].second);
  }
  // The blank line; the head, which lives in the buffer given to the constructor.
  std::string_view finish();

 private:
  static bool named_after(const Headers& headers, std::size_t i) noexcept;
  std::string& out_;
};

// Whether one of `headers` has the name `lower_name` (given in lower case; names compare case-insensitively).
bool has_header(const Headers& headers, std::string_view lower_name) noexcept;

// Whether `name` is one of the fields that frame a message (Content-Length, Transfer-Encoding,
// Connection): the writer of the message sets those, never the headers it was handed.
bool framing_field(std::string_view name) noexcept;

// Whether a response with this status carries no body and no Content-Length (1xx, 204, 304).
constexpr bool bodiless_status(unsigned status) noexcept { return status / 100 == 1 || status == 204 || status == 304; }

}  // namespace lagoon::http
