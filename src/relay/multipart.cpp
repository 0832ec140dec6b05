// multipart/form-data (RFC 7578) as the gateway reads it: the boundary of a Content-Type and the parts
// of a body, viewing into it. Pure; thread-safe.
#include <algorithm>

#include "lagoon/http/ascii.hpp"
#include "lagoon/relay/endpoints.hpp"

namespace lagoon::relay {
namespace {

// The value of parameter `name` in a header value's "; name=value" list (RFC 9110 §5.6.6): a token, or
// a quoted string — which may hold ';' — as it stands between its quotes. As browsers write form data
// (WHATWG: '"', CR and LF percent-encoded, everything else as it is), a backslash is a character, not an
// escape. The first ';' ends the type ("form-data", "multipart/form-data").
std::optional<std::string_view> parameter(std::string_view value, std::string_view name) {
  const std::size_t n = value.size();
  std::size_t i = value.find(';');
  while (i < n) {
    ++i;  // past the ';'
    const std::size_t key_start = i;
    while (i < n && value[i] != '=' && value[i] != ';') ++i;
    const std::string_view key = http::trim_ows(value.substr(key_start, i - key_start));
    if (i >= n || value[i] == ';') continue;  // a parameter without a value
    ++i;                                      // past the '='
    while (i < n && (value[i] == ' ' || value[i] == '\t')) ++i;
    std::string_view v;
    if (i < n && value[i] == '"') {
      const std::size_t start = ++i;
      while (i < n && value[i] != '"') ++i;
      if (i >= n) return std::nullopt;  // an unterminated quoted string: the rest is unreadable
      v = value.substr(start, i - start);
      while (i < n && value[i] != ';') ++i;
    } else {
      const std::size_t start = i;
      while (i < n && value[i] != ';') ++i;
      v = http::trim_ows(value.substr(start, i - start));
    }
    if (http::iequals(key, name)) return v;
  }
  return std::nullopt;
}

// Whether the text at `after` (just past "--boundary") completes a delimiter: "--" (the last one) or
// optional whitespace and CRLF. Text that merely begins like one (a boundary with more after it) is part
// of a value.
bool delimiter_ends(std::string_view body, std::size_t after) {
  if (body.substr(after, 2) == "--") return true;
  while (after < body.size() && (body[after] == ' ' || body[after] == '\t')) ++after;
  return body.substr(after, 2) == "\r\n";
}

// Where the next CRLF "--" boundary delimiter starts at or after `from`.
std::size_t delimiter_at(std::string_view body, std::string_view delimiter, std::size_t from) {
  for (auto at = body.find(delimiter, from); at != std::string_view::npos; at = body.find(delimiter, at + 1))
    if (delimiter_ends(body, at + delimiter.size())) return at;
  return std::string_view::npos;
}

}  // namespace

std::optional<std::string> multipart_boundary(std::string_view content_type) {
  if (!http::istarts_with(http::trim_ows(content_type), "multipart/form-data")) return std::nullopt;
  const auto b = parameter(content_type, "boundary");
  // RFC 2046 §5.1.1: 1 to 70 characters.
  if (!b || b->empty() || b->size() > 70) return std::nullopt;
  return std::string(*b);
}

std::optional<std::vector<FormPart>> form_parts(std::string_view body, std::string_view boundary) {
  const std::string delimiter = "--" + std::string(boundary);
  const std::string next_delimiter = "\r\n" + delimiter;
  std::vector<FormPart> parts;
  // The body starts with the first delimiter, or a preamble (ignored) ends with it.
  std::size_t at = delimiter.size();
  if (body.rfind(delimiter, 0) != 0 || !delimiter_ends(body, at)) {
    const auto first = delimiter_at(body, next_delimiter, 0);
    if (first == std::string_view::npos) return std::nullopt;
    at = first + next_delimiter.size();
  }
  for (;;) {
    if (body.substr(at, 2) == "--") return parts;  // the close delimiter
    // Transport padding (whitespace) may follow a delimiter before its CRLF.
    while (at < body.size() && (body[at] == ' ' || body[at] == '\t')) ++at;
    if (body.substr(at, 2) != "\r\n") return std::nullopt;
    at += 2;
    const auto headers_end = body.find("\r\n\r\n", at);
    const auto end = delimiter_at(body, next_delimiter, at);
    if (end == std::string_view::npos) return std::nullopt;
    FormPart part;
    std::size_t value_start;
    if (end == at) {
      value_start = end;  // nothing at all: the delimiter's CRLF follows the last one's
    } else if (body.substr(at, 2) == "\r\n") {
      value_start = at + 2;  // a part without headers
    } else {
      if (headers_end == std::string_view::npos || headers_end > end) return std::nullopt;
      // Headers and no body: the blank line's second CRLF is the next delimiter's own.
      value_start = std::min(headers_end + 4, end);
      for (std::string_view headers = body.substr(at, headers_end - at); !headers.empty();) {
        const auto eol = headers.find("\r\n");
        const std::string_view line = headers.substr(0, eol);
        headers = eol == std::string_view::npos ? std::string_view() : headers.substr(eol + 2);
        const auto colon = line.find(':');
        if (colon == std::string_view::npos) return std::nullopt;
        if (!http::iequals(line.substr(0, colon), "content-disposition")) continue;
        const std::string_view value = line.substr(colon + 1);
        if (const auto n = parameter(value, "name")) part.name = *n;
        part.filename = parameter(value, "filename");
      }
    }
    part.value = body.substr(value_start, end - value_start);
    parts.push_back(part);
    at = end + next_delimiter.size();
  }
}

}  // namespace lagoon::relay
