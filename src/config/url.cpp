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

constexpr std::string_view kRedacted = "***";

void replace_all(std::string& text, std::string_view what, std::string_view with) {
  if (what.empty()) return;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + with.size()))
    text.replace(at, what.size(), with);
}

// The password of a scheme://user:password@host… URL (as written), or of a libpq keyword string.
std::string password_in(std::string_view url) {
  if (const auto scheme_end = url.find("://"); scheme_end != std::string_view::npos) {
    const auto begin = scheme_end + 3;
    // The userinfo ends at the last '@' of the authority; a password with a raw '/' is cut there, which
    // redact_urls() cannot know either, so take the widest reading: up to the last '@' of the whole URL.
    const auto at = url.rfind('@');
    if (at == std::string_view::npos || at < begin) return {};
    const auto colon = url.find(':', begin);
    if (colon == std::string_view::npos || colon > at) return {};
    return std::string(url.substr(colon + 1, at - colon - 1));
  }
  // libpq keywords: password=value or password='quoted value' (backslash escapes inside quotes).
  const auto key = url.find("password");
  if (key == std::string_view::npos) return {};
  auto i = url.find_first_not_of(" \t", key + 8);
  if (i == std::string_view::npos || url[i] != '=') return {};
  i = url.find_first_not_of(" \t", i + 1);
  if (i == std::string_view::npos) return {};
  std::string value;
  if (url[i] == '\'') {
    for (++i; i < url.size() && url[i] != '\''; ++i) {
      if (url[i] == '\\' && i + 1 < url.size()) ++i;
      value += url[i];
    }
  } else {
    while (i < url.size() && url[i] != ' ' && url[i] != '\t') value += url[i++];
  }
  return value;
}

std::string percent_decoded(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    unsigned v = 0;
    if (s[i] == '%' && i + 2 < s.size() &&
        std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16).ptr == s.data() + i + 3) {
      out += static_cast<char>(v);
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

std::string redact_urls(std::string text) {
  for (auto scheme_end = text.find("://"); scheme_end != std::string::npos;
       scheme_end = text.find("://", scheme_end + 3)) {
    const auto begin = scheme_end + 3;
    // The authority ends at the first blank or quote (the URL quoted in a message), else '/', '?', '#'.
    auto end = text.find_first_of(" \t\r\n\"'", begin);
    if (end == std::string::npos) end = text.size();
    const auto at = text.rfind('@', end == 0 ? 0 : end - 1);
    if (at == std::string::npos || at < begin) continue;
    const auto colon = text.find(':', begin);
    if (colon == std::string::npos || colon > at) continue;
    text.replace(colon + 1, at - colon - 1, kRedacted);
  }
  return text;
}

std::string redact_credentials_of(std::string_view url, std::string text) {
  const std::string password = password_in(url);
  if (!password.empty()) {
    replace_all(text, password, kRedacted);
    replace_all(text, percent_decoded(password), kRedacted);
  }
  return redact_urls(std::move(text));
}

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
