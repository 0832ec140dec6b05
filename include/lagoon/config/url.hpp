// Parsing of the URLs Lagoon is configured with (Redis, upstream); Postgres URLs go to libpq untouched.
// And the redaction of the credentials in them wherever a URL or a message about one is printed.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace lagoon::config {

struct RedisEndpoint {
  std::string host;
  std::uint16_t port = 6379;
  std::string username;  // Redis 6 ACL user; empty = default user
  std::string password;  // empty = no AUTH
  unsigned db = 0;
};

// redis://[[user]:password@]host[:port][/db]. Throws ConfigError("LAGOON_REDIS_URL", ...).
RedisEndpoint parse_redis_url(const std::string& url);

struct HttpEndpoint {
  bool tls = false;
  std::string host;
  std::uint16_t port = 0;
  std::string base_path;  // without a trailing slash, e.g. "/api/v1"
};

// http(s)://host[:port][/path]. Throws ConfigError("LAGOON_UPSTREAM_URL", ...).
HttpEndpoint parse_http_url(const std::string& url);

// For messages and logs, which must never carry a credential: `text` with the password of every
// scheme://user:password@ in it replaced by "***".
std::string redact_urls(std::string text);

// The same, and also every occurrence of the password that `url` carries (a scheme://user:password@ URL,
// or a libpq keyword string's password=…), as written and percent-decoded — for a library's error
// message that quotes a piece of the URL it was given (libpq: `invalid percent-encoded token: "…"`).
std::string redact_credentials_of(std::string_view url, std::string text);

}  // namespace lagoon::config
