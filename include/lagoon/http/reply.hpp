// Reply: a whole HTTP answer as a value — status, content type, body, extra headers — built by the
// pipeline's stages and written by the transport, which alone adds X-Request-Id, Content-Length and
// the connection's keep-alive. Errors get the OpenAI shape (errors.hpp) and the headers their status
// calls for (WWW-Authenticate, Retry-After, Allow), here and nowhere else.
// Pure; thread-safe (plain values).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lagoon/http/errors.hpp"

namespace lagoon::http {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Reply {
  unsigned status = 200;
  std::string content_type;
  std::string body;
  Headers headers;     // beyond Content-Type, Content-Length, X-Request-Id and Connection
  bool close = false;  // the connection ends after this answer, whatever the client asked

  // Replaces a header of that name (names compare case-insensitively), or adds it.
  void set(std::string_view name, std::string value);
  // The value of a header set here, or empty.
  std::string_view header(std::string_view name) const noexcept;
};

Reply body_reply(unsigned status, std::string body, std::string_view content_type);
inline Reply json_reply(unsigned status, std::string body) {
  return body_reply(status, std::move(body), "application/json");
}

struct ErrorExtras {
  std::optional<std::string_view> param;   // the offending field of an invalid request
  std::optional<std::string> retry_after;  // for 429/502/503, when known; else "1"
  std::string_view allow;                  // for 405
};

Reply error_reply(ErrorKind kind, std::string_view message, const ErrorExtras& extras = {});

}  // namespace lagoon::http
