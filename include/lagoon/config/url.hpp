// Parsing of the URLs Lagoon is configured with (Redis, upstream); Postgres URLs go to libpq untouched.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>

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

}  // namespace lagoon::config
