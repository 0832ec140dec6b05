#include "lagoon/config/url.hpp"

#include <charconv>

#include <boost/url/parse.hpp>

#include "lagoon/config/config.hpp"

namespace lagoon::config {
namespace {

std::uint16_t port_of(const boost::urls::url_view& u, std::uint16_t fallback, const char* field) {
  if (!u.has_port()) return fallback;
  unsigned p = 0;
  auto s = u.port();
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), p);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || p == 0 || p > 65535)
    throw ConfigError(field, "invalid port \"" + std::string(s) + "\"");
  return static_cast<std::uint16_t>(p);
}

}  // namespace

RedisEndpoint parse_redis_url(const std::string& url) {
  const char* field = "LAGOON_REDIS_URL";
  auto r = boost::urls::parse_uri(url);
  if (!r || r->scheme() != "redis" || r->host().empty())
    throw ConfigError(field, "expected redis://[:password@]host[:port][/db]");
  RedisEndpoint e;
  e.host = r->host_name().empty() ? std::string(r->host_address()) : std::string(r->host_name());
  e.port = port_of(*r, 6379, field);
  if (r->has_userinfo()) {
    e.username = r->user();
    e.password = r->password();
  }
  std::string path = r->path();
  if (!path.empty() && path != "/") {
    std::string db = path.substr(1);
    unsigned v = 0;
    auto [end, ec] = std::from_chars(db.data(), db.data() + db.size(), v);
    if (ec != std::errc{} || end != db.data() + db.size() || v > 1023)
      throw ConfigError(field, "database must be a number, got \"" + db + "\"");
    e.db = v;
  }
  return e;
}

HttpEndpoint parse_http_url(const std::string& url) {
  const char* field = "LAGOON_UPSTREAM_URL";
  auto r = boost::urls::parse_uri(url);
  if (!r || (r->scheme() != "http" && r->scheme() != "https") || r->host().empty())
    throw ConfigError(field, "expected http(s)://host[:port][/path]");
  HttpEndpoint e;
  e.tls = r->scheme() == "https";
  e.host = r->host_name().empty() ? std::string(r->host_address()) : std::string(r->host_name());
  e.port = port_of(*r, e.tls ? 443 : 80, field);
  e.base_path = r->path();
  while (!e.base_path.empty() && e.base_path.back() == '/') e.base_path.pop_back();
  return e;
}

}  // namespace lagoon::config
