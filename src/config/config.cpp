#include "lagoon/config/config.hpp"

#include <charconv>
#include <cstdlib>
#include <functional>
#include <vector>

#include <nlohmann/json.hpp>

#include "lagoon/config/url.hpp"

extern char** environ;

namespace lagoon::config {
namespace {

using nlohmann::json;

// One raw setting: text from the environment, or a JSON value from the file.
struct Raw {
  const json* file_value = nullptr;
  std::string env_text;

  std::string shown() const { return file_value ? file_value->dump() : "\"" + env_text + "\""; }
};

std::uint64_t integer(const std::string& field, const Raw& raw, std::uint64_t lo, std::uint64_t hi) {
  const std::string expected = "expected an integer " + std::to_string(lo) + ".." + std::to_string(hi);
  std::uint64_t v = 0;
  if (raw.file_value) {
    if (!raw.file_value->is_number_unsigned()) throw ConfigError(field, expected + ", got " + raw.shown());
    v = raw.file_value->get<std::uint64_t>();
  } else {
    const auto& s = raw.env_text;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc{} || end != s.data() + s.size())
      throw ConfigError(field, expected + ", got " + raw.shown());
  }
  if (v < lo || v > hi) throw ConfigError(field, expected + ", got " + raw.shown());
  return v;
}

bool boolean(const std::string& field, const Raw& raw) {
  if (raw.file_value) {
    if (!raw.file_value->is_boolean()) throw ConfigError(field, "expected true or false, got " + raw.shown());
    return raw.file_value->get<bool>();
  }
  if (raw.env_text == "true" || raw.env_text == "1") return true;
  if (raw.env_text == "false" || raw.env_text == "0") return false;
  throw ConfigError(field, "expected true or false, got " + raw.shown());
}

std::string text(const std::string& field, const Raw& raw) {
  if (!raw.file_value) return raw.env_text;
  // A URL field's value may carry a password, even where it is not where it should be.
  if (!raw.file_value->is_string()) throw ConfigError(field, "expected a string, got " + redact_urls(raw.shown()));
  return raw.file_value->get<std::string>();
}

// A URL setting as an error message may quote it: credentials masked, also in a value without a scheme
// ("user:password@host"), which redact_urls() cannot recognise as a URL.
std::string shown_url(const Raw& raw) {
  std::string s = redact_urls(raw.shown());
  if (s.find("://") == std::string::npos)
    if (const auto at = s.rfind('@'); at != std::string::npos) s = "\"***" + s.substr(at);
  return s;
}

std::string url_with_scheme(const std::string& field, const Raw& raw, std::initializer_list<const char*> schemes) {
  std::string v = text(field, raw);
  for (const char* s : schemes)
    if (v.rfind(s, 0) == 0 && v.size() > std::char_traits<char>::length(s)) return v;
  std::string list;
  for (const char* s : schemes) list += (list.empty() ? "" : " or ") + std::string(s);
  throw ConfigError(field, "expected a URL starting with " + list + ", got " + shown_url(raw));
}

using Apply = std::function<void(Config&, const std::string& field, const Raw&)>;

struct Field {
  const char* key;  // name in the JSON file
  const char* env;  // environment variable
  bool secret;      // environment only
  Apply apply;
};

Apply millis(Millis Config::*m, std::uint64_t lo, std::uint64_t hi) {
  return [=](Config& c, const std::string& f, const Raw& r) { c.*m = Millis(integer(f, r, lo, hi)); };
}

Apply size(std::size_t Config::*m, std::uint64_t lo, std::uint64_t hi) {
  return [=](Config& c, const std::string& f, const Raw& r) { c.*m = integer(f, r, lo, hi); };
}

const std::vector<Field>& fields() {
  static const std::vector<Field> all = {
      {"listen", "LAGOON_LISTEN", false,
       [](Config& c, const std::string& f, const Raw& r) { c.listen = parse_host_port(f, text(f, r)); }},
      {"console_listen", "LAGOON_CONSOLE_LISTEN", false,
       [](Config& c, const std::string& f, const Raw& r) {
         const std::string v = text(f, r);
         if (v.empty()) c.console_listen.reset();
         else c.console_listen = parse_host_port(f, v);
       }},
      {"threads", "LAGOON_THREADS", false,
       [](Config& c, const std::string& f, const Raw& r) { c.threads = integer(f, r, 0, 256); }},
      {"database_url", "LAGOON_DATABASE_URL", false,
       [](Config& c, const std::string& f, const Raw& r) {
         c.database_url = text(f, r);
         if (c.database_url.empty()) throw ConfigError(f, "must not be empty");
       }},
      {"db_pool_size", "LAGOON_DB_POOL_SIZE", false,
       [](Config& c, const std::string& f, const Raw& r) { c.db_pool_size = integer(f, r, 1, 1024); }},
      {"redis_url", "LAGOON_REDIS_URL", false,
       [](Config& c, const std::string& f, const Raw& r) { c.redis_url = url_with_scheme(f, r, {"redis://"}); }},
      {"redis_prefix", "LAGOON_REDIS_PREFIX", false,
       [](Config& c, const std::string& f, const Raw& r) {
         c.redis_prefix = text(f, r);
         if (c.redis_prefix.empty() || c.redis_prefix.size() > 64) throw ConfigError(f, "must be 1..64 characters");
       }},
      {"redis_sentinels", "LAGOON_REDIS_SENTINELS", false,
       [](Config& c, const std::string& f, const Raw& r) {
         c.redis_sentinels.clear();
         const std::string v = text(f, r);
         std::size_t at = 0;
         while (at < v.size()) {
           const std::size_t comma = std::min(v.find(',', at), v.size());
           std::string one = v.substr(at, comma - at);
           while (!one.empty() && one.front() == ' ') one.erase(0, 1);
           while (!one.empty() && one.back() == ' ') one.pop_back();
           if (!one.empty()) c.redis_sentinels.push_back(parse_host_port(f, one));
           at = comma + 1;
         }
         if (c.redis_sentinels.size() > 16) throw ConfigError(f, "at most 16 sentinels");
       }},
      {"redis_master_name", "LAGOON_REDIS_MASTER_NAME", false,
       [](Config& c, const std::string& f, const Raw& r) {
         c.redis_master_name = text(f, r);
         if (c.redis_master_name.size() > 256) throw ConfigError(f, "must be at most 256 characters");
       }},
      {"redis_sentinel_password", "LAGOON_REDIS_SENTINEL_PASSWORD", true,
       [](Config& c, const std::string& f, const Raw& r) { c.redis_sentinel_password = text(f, r); }},
      {"upstream_url", "LAGOON_UPSTREAM_URL", false,
       [](Config& c, const std::string& f, const Raw& r) {
         c.upstream_url = url_with_scheme(f, r, {"http://", "https://"});
         while (c.upstream_url.size() > 1 && c.upstream_url.back() == '/') c.upstream_url.pop_back();
       }},
      {"upstream_connect_timeout_ms", "LAGOON_UPSTREAM_CONNECT_TIMEOUT_MS", false,
       millis(&Config::upstream_connect_timeout, 10, 600'000)},
      {"upstream_first_byte_timeout_ms", "LAGOON_UPSTREAM_FIRST_BYTE_TIMEOUT_MS", false,
       millis(&Config::upstream_first_byte_timeout, 10, 3'600'000)},
      {"upstream_gap_timeout_ms", "LAGOON_UPSTREAM_GAP_TIMEOUT_MS", false,
       millis(&Config::upstream_gap_timeout, 10, 3'600'000)},
      {"upstream_ca_file", "LAGOON_UPSTREAM_CA_FILE", false,
       [](Config& c, const std::string& f, const Raw& r) { c.upstream_ca_file = text(f, r); }},
      {"upstream_max_idle", "LAGOON_UPSTREAM_MAX_IDLE", false,
       [](Config& c, const std::string& f, const Raw& r) { c.upstream_max_idle = integer(f, r, 0, 100'000); }},
      {"log_level", "LAGOON_LOG_LEVEL", false,
       [](Config& c, const std::string& f, const Raw& r) {
         std::string v = text(f, r);
         if (v != "debug" && v != "info" && v != "warn" && v != "error")
           throw ConfigError(f, "expected one of debug, info, warn, error, got " + r.shown());
         c.log_level = v;
       }},
      {"max_header_bytes", "LAGOON_MAX_HEADER_BYTES", false, size(&Config::max_header_bytes, 1024, 1 << 20)},
      {"max_request_line_bytes", "LAGOON_MAX_REQUEST_LINE_BYTES", false,
       size(&Config::max_request_line_bytes, 256, 1 << 20)},
      {"max_body_bytes", "LAGOON_MAX_BODY_BYTES", false, size(&Config::max_body_bytes, 1024, 1ull << 30)},
      {"catalog_public", "LAGOON_CATALOG_PUBLIC", false,
       [](Config& c, const std::string& f, const Raw& r) { c.catalog_public = boolean(f, r); }},
      {"max_upload_bytes", "LAGOON_MAX_UPLOAD_BYTES", false, size(&Config::max_upload_bytes, 1024, 1ull << 30)},
      {"max_buffered_body_bytes", "LAGOON_MAX_BUFFERED_BODY_BYTES", false,
       size(&Config::max_buffered_body_bytes, 1024, 1ull << 40)},
      {"max_connections", "LAGOON_MAX_CONNECTIONS", false,
       [](Config& c, const std::string& f, const Raw& r) { c.max_connections = integer(f, r, 1, 1'000'000); }},
      {"header_timeout_ms", "LAGOON_HEADER_TIMEOUT_MS", false, millis(&Config::header_timeout, 100, 600'000)},
      {"body_timeout_ms", "LAGOON_BODY_TIMEOUT_MS", false, millis(&Config::body_timeout, 100, 3'600'000)},
      {"idle_timeout_ms", "LAGOON_IDLE_TIMEOUT_MS", false, millis(&Config::idle_timeout, 100, 3'600'000)},
      {"write_timeout_ms", "LAGOON_WRITE_TIMEOUT_MS", false, millis(&Config::write_timeout, 100, 3'600'000)},
      {"drain_timeout_ms", "LAGOON_DRAIN_TIMEOUT_MS", false, millis(&Config::drain_timeout, 0, 3'600'000)},
      {"db_connect_timeout_ms", "LAGOON_DB_CONNECT_TIMEOUT_MS", false,
       millis(&Config::db_connect_timeout, 1000, 600'000)},
      {"db_acquire_timeout_ms", "LAGOON_DB_ACQUIRE_TIMEOUT_MS", false,
       millis(&Config::db_acquire_timeout, 1, 600'000)},
      {"db_statement_timeout_ms", "LAGOON_DB_STATEMENT_TIMEOUT_MS", false,
       millis(&Config::db_statement_timeout, 1, 3'600'000)},
      {"db_prepared_statements", "LAGOON_DB_PREPARED_STATEMENTS", false,
       [](Config& c, const std::string& f, const Raw& r) { c.db_prepared_statements = boolean(f, r); }},
      {"redis_timeout_ms", "LAGOON_REDIS_TIMEOUT_MS", false, millis(&Config::redis_timeout, 1, 60'000)},
      {"redis_connections", "LAGOON_REDIS_CONNECTIONS", false,
       [](Config& c, const std::string& f, const Raw& r) { c.redis_connections = integer(f, r, 1, 64); }},
      {"redis_breaker_failures", "LAGOON_REDIS_BREAKER_FAILURES", false,
       [](Config& c, const std::string& f, const Raw& r) { c.redis_breaker_failures = integer(f, r, 1, 1000); }},
      {"redis_breaker_window_ms", "LAGOON_REDIS_BREAKER_WINDOW_MS", false,
       millis(&Config::redis_breaker_window, 10, 600'000)},
      {"redis_subscriber_heartbeat_ms", "LAGOON_REDIS_SUBSCRIBER_HEARTBEAT_MS", false,
       millis(&Config::redis_subscriber_heartbeat, 50, 600'000)},
      {"redis_breaker_cooldown_ms", "LAGOON_REDIS_BREAKER_COOLDOWN_MS", false,
       millis(&Config::redis_breaker_cooldown, 10, 600'000)},
      {"auth_cache_ttl_ms", "LAGOON_AUTH_CACHE_TTL_MS", false, millis(&Config::auth_cache_ttl, 0, 3'600'000)},
      {"auth_cache_size", "LAGOON_AUTH_CACHE_SIZE", false, size(&Config::auth_cache_size, 0, 100'000'000)},
      {"auth_negative_cache_size", "LAGOON_AUTH_NEGATIVE_CACHE_SIZE", false,
       size(&Config::auth_negative_cache_size, 0, 100'000'000)},
      {"auth_negative_ttl_ms", "LAGOON_AUTH_NEGATIVE_TTL_MS", false,
       millis(&Config::auth_negative_ttl, 0, 3'600'000)},
      {"readiness_interval_ms", "LAGOON_READINESS_INTERVAL_MS", false,
       millis(&Config::readiness_interval, 50, 600'000)},
      {"session_ttl_ms", "LAGOON_SESSION_TTL_MS", false, millis(&Config::session_ttl, 1000, 30ll * 24 * 3'600'000)},
      {"rate_limit_rpm", "LAGOON_RATE_LIMIT_RPM", false,
       [](Config& c, const std::string& f, const Raw& r) { c.rate_limit_rpm = integer(f, r, 0, 2'147'483'647); }},
      {"rate_limit_tpm", "LAGOON_RATE_LIMIT_TPM", false,
       [](Config& c, const std::string& f, const Raw& r) { c.rate_limit_tpm = integer(f, r, 0, 1'000'000'000); }},
      {"rate_limit_default_max_tokens", "LAGOON_RATE_LIMIT_DEFAULT_MAX_TOKENS", false,
       [](Config& c, const std::string& f, const Raw& r) {
         c.rate_limit_default_max_tokens = integer(f, r, 0, 1ull << 31);
       }},
      {"price_refresh_interval_ms", "LAGOON_PRICE_REFRESH_MS", false,
       millis(&Config::price_refresh_interval, 1'000, 7ll * 24 * 3'600'000)},
      {"unpriced", "LAGOON_UNPRICED", false,
       [](Config& c, const std::string& f, const Raw& r) {
         const std::string v = text(f, r);
         if (v != "refuse" && v != "serve") throw ConfigError(f, "expected refuse or serve, got " + r.shown());
         c.unpriced_serve = v == "serve";
       }},
      {"budgets_fail_open", "LAGOON_BUDGETS_FAIL_OPEN", false,
       [](Config& c, const std::string& f, const Raw& r) { c.budgets_fail_open = boolean(f, r); }},
      {"concurrency_lease_ms", "LAGOON_CONCURRENCY_LEASE_MS", false,
       millis(&Config::concurrency_lease, 1'000, 600'000)},
      {"clock_file", "LAGOON_CLOCK_FILE", false,
       [](Config& c, const std::string& f, const Raw& r) { c.clock_file = text(f, r); }},
      {"admin_db_connections", "LAGOON_ADMIN_DB_CONNECTIONS", false,
       [](Config& c, const std::string& f, const Raw& r) { c.admin_db_connections = integer(f, r, 1, 64); }},
      {"usage_dir", "LAGOON_USAGE_DIR", false,
       [](Config& c, const std::string& f, const Raw& r) {
         c.usage_dir = text(f, r);
         if (c.usage_dir.empty()) throw ConfigError(f, "must not be empty");
       }},
      {"usage_queue_capacity", "LAGOON_USAGE_QUEUE_CAPACITY", false,
       size(&Config::usage_queue_capacity, 16, 1 << 24)},
      {"usage_batch_size", "LAGOON_USAGE_BATCH_SIZE", false, size(&Config::usage_batch_size, 1, 100'000)},
      {"usage_flush_interval_ms", "LAGOON_USAGE_FLUSH_INTERVAL_MS", false,
       millis(&Config::usage_flush_interval, 1, 60'000)},
      {"usage_spill_after_ms", "LAGOON_USAGE_SPILL_AFTER_MS", false, millis(&Config::usage_spill_after, 0, 600'000)},
      {"key_pepper", "LAGOON_KEY_PEPPER", true,
       [](Config& c, const std::string& f, const Raw& r) {
         c.key_pepper = text(f, r);
         // HMAC keys shorter than this are guessable offline from one leaked digest.
         if (c.key_pepper.size() < 32)
           throw ConfigError(f, "must be at least 32 characters (e.g. `openssl rand -hex 32`)");
       }},
      {"upstream_api_key", "LAGOON_UPSTREAM_API_KEY", true,
       [](Config& c, const std::string& f, const Raw& r) { c.upstream_api_key = text(f, r); }},
      {"admin_token", "LAGOON_ADMIN_TOKEN", true,
       [](Config& c, const std::string& f, const Raw& r) {
         std::string v = text(f, r);
         if (v.empty()) {  // set but empty (e.g. a compose file passing an unset variable on): off
           c.admin_token.reset();
           return;
         }
         if (v.size() < 16) throw ConfigError(f, "must be at least 16 characters");
         c.admin_token = v;
       }},
  };
  return all;
}

}  // namespace

HostPort parse_host_port(const std::string& field, const std::string& s) {
  const std::string expected = "expected host:port, got \"" + s + "\"";
  std::string host;
  std::string port;
  if (!s.empty() && s.front() == '[') {
    auto close = s.find(']');
    if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':')
      throw ConfigError(field, expected);
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
  } else {
    auto colon = s.rfind(':');
    if (colon == std::string::npos || s.find(':') != colon) throw ConfigError(field, expected);
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
  }
  unsigned p = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (host.empty() || port.empty() || ec != std::errc{} || end != port.data() + port.size() || p > 65535)
    throw ConfigError(field, expected);
  return {host, static_cast<std::uint16_t>(p)};
}

std::vector<SettingName> setting_names() {
  std::vector<SettingName> out;
  for (const auto& f : fields()) out.push_back({f.key, f.env, f.secret});
  return out;
}

Config load(const std::string& file_text, const Environment& env, unsigned hardware_threads) {
  Config c;
  if (!file_text.empty()) {
    json doc;
    try {
      doc = json::parse(file_text);
    } catch (const json::exception& e) {  // parse_error, and out_of_range for a number like 1e999
      throw ConfigError("config file", std::string("invalid JSON: ") + e.what());
    }
    if (!doc.is_object()) throw ConfigError("config file", "expected a JSON object");
    for (auto it = doc.begin(); it != doc.end(); ++it) {
      // Keys starting with "//" are comments: JSON has none, and the example file documents each field.
      if (it.key().rfind("//", 0) == 0) continue;
      const Field* match = nullptr;
      for (const auto& f : fields())
        if (it.key() == f.key) match = &f;
      // An empty or odd key still has to be recognisable in the message.
      if (!match) throw ConfigError(it.key().empty() ? std::string("config file key \"\"") : it.key(), "unknown setting");
      if (match->secret)
        throw ConfigError(it.key(), std::string("secrets are read only from the environment (") + match->env + ")");
      match->apply(c, it.key(), Raw{&it.value(), {}});
    }
  }
  for (const auto& f : fields()) {
    auto it = env.find(f.env);
    if (it != env.end()) f.apply(c, f.env, Raw{nullptr, it->second});
  }
  // Venice's own variable name is accepted so an existing VENICE_API_KEY just works.
  if (c.upstream_api_key.empty()) {
    auto it = env.find("VENICE_API_KEY");
    if (it != env.end()) c.upstream_api_key = it->second;
  }
  if (c.threads == 0) c.threads = hardware_threads == 0 ? 1 : hardware_threads;
  if (c.max_request_line_bytes > c.max_header_bytes)
    throw ConfigError("max_request_line_bytes", "must not exceed max_header_bytes");
  if (!c.redis_sentinels.empty() && c.redis_master_name.empty())
    throw ConfigError("LAGOON_REDIS_MASTER_NAME", "is required with LAGOON_REDIS_SENTINELS");
  if (c.redis_sentinels.empty() && !c.redis_master_name.empty())
    throw ConfigError("LAGOON_REDIS_SENTINELS", "is required with LAGOON_REDIS_MASTER_NAME");
  if (c.console_listen && !c.admin_token)
    throw ConfigError("LAGOON_CONSOLE_LISTEN", "needs LAGOON_ADMIN_TOKEN (the console is the admin API's page)");
  if (c.console_listen && *c.console_listen == c.listen && c.listen.port != 0)
    throw ConfigError("LAGOON_CONSOLE_LISTEN", "must differ from LAGOON_LISTEN");
  if (c.max_buffered_body_bytes < c.max_body_bytes)  // else a body of the largest allowed size never fits
    throw ConfigError("max_buffered_body_bytes", "must not be less than max_body_bytes");
  return c;
}

Environment process_environment() {
  Environment env;
  for (char** e = environ; e && *e; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq == std::string::npos) continue;
    std::string k = kv.substr(0, eq);
    if (k.rfind("LAGOON_", 0) == 0 || k == "VENICE_API_KEY") env.emplace(k, kv.substr(eq + 1));
  }
  return env;
}

void require_database(const Config& c) {
  if (c.database_url.empty()) throw ConfigError("LAGOON_DATABASE_URL", "is required");
}

void require_pepper(const Config& c) {
  if (c.key_pepper.empty()) throw ConfigError("LAGOON_KEY_PEPPER", "is required");
}

}  // namespace lagoon::config
