// Config: every setting Lagoon reads, typed, with defaults and validation.
//
// Sources, later ones win: built-in defaults, the JSON file (--config), LAGOON_* environment variables.
// Secrets (key pepper, upstream key, admin token) are read only from the environment; a secret found in
// the file is a configuration error, so nobody commits one by accident.
// Loading is a pure function of (file text, environment) so every rule is unit-tested with tables.
// Thread-safety: a Config is an immutable value once loaded; share it by const reference.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace lagoon::config {

using Millis = std::chrono::milliseconds;

struct HostPort {
  std::string host;
  std::uint16_t port = 0;
  bool operator==(const HostPort&) const = default;
};

struct Config {
  HostPort listen{"127.0.0.1", 8080};
  // The operator console (/console/) and the admin API it calls, on a listener of their own; then the
  // main listener serves no console. Needs admin_token.
  std::optional<HostPort> console_listen;
  unsigned threads = 0;  // 0 = number of cores, resolved by load()
  std::string database_url;
  unsigned db_pool_size = 4;
  std::string redis_url = "redis://127.0.0.1:6379/0";
  std::string redis_prefix = "lagoon:";  // every Redis key and channel name starts with it
  // Sentinel discovery: when set, the primary's address comes from these sentinels (redis_url then gives
  // only the credentials and the database number).
  std::vector<HostPort> redis_sentinels;
  std::string redis_master_name;
  std::string redis_sentinel_password;  // secret; empty = sentinels without AUTH
  std::string upstream_url = "https://api.venice.ai/api/v1";
  Millis upstream_connect_timeout{5'000};    // TCP + TLS handshake
  Millis upstream_first_byte_timeout{120'000};  // request sent → response head
  Millis upstream_gap_timeout{60'000};       // between two pieces of a response body
  unsigned upstream_max_idle = 64;           // kept-alive upstream connections held for reuse
  std::string upstream_ca_file;              // extra trusted CAs (PEM) besides the system store
  std::string log_level = "info";

  // HTTP server limits (RFC 9110/6585 status codes for each overflow).
  std::size_t max_header_bytes = 16 * 1024;        // 431
  std::size_t max_request_line_bytes = 8 * 1024;   // 414
  std::size_t max_body_bytes = 4 * 1024 * 1024;    // 413
  // Serve the catalog (models, traits, compatibility mapping, image styles) without a key, as Venice does.
  bool catalog_public = false;
  // The body of a route that takes a file (audio/transcriptions, image/upscale|edit|background-remove).
  std::size_t max_upload_bytes = 25 * 1024 * 1024;  // 413
  // Request bodies being received or held, all connections together; a body that does not fit gets 503.
  std::size_t max_buffered_body_bytes = 256 * 1024 * 1024;
  unsigned max_connections = 10000;
  Millis header_timeout{10'000};     // whole header block, from its first byte; 408
  Millis body_timeout{60'000};       // whole request body
  Millis idle_timeout{60'000};       // keep-alive connection with no request in progress
  Millis write_timeout{30'000};      // one response write to a slow client
  Millis drain_timeout{25'000};      // SIGTERM: how long in-flight requests may take to finish

  // Dependencies.
  Millis db_connect_timeout{2'000};
  Millis db_acquire_timeout{250};
  Millis db_statement_timeout{5'000};
  // Named prepared statements for the hot auth lookup. Off behind PgBouncer in transaction mode, whose
  // 1.18 release cannot follow them from one server connection to another.
  bool db_prepared_statements = true;
  Millis redis_timeout{25};          // one Redis round trip on the request path
  unsigned redis_connections = 2;    // command connections (pub/sub has one more of its own)
  unsigned redis_breaker_failures = 3;    // failures among the last 2× this many calls that open the breaker
  Millis redis_breaker_window{1'000};     // … when all of them fell within this window
  Millis redis_breaker_cooldown{1'000};   // how long Redis is skipped once the breaker opened
  Millis redis_subscriber_heartbeat{1'000};  // the revocation subscription is checked this often (down after 2 missed)
  Millis readiness_interval{1'000};  // how often Redis and Postgres are probed for /readyz

  // Authentication caches.
  Millis auth_cache_ttl{10'000};        // L1 entry lifetime while revocations arrive by pub/sub
  std::size_t auth_cache_size = 100'000;  // L1 entries at most
  Millis auth_negative_ttl{30'000};     // unknown keys are refused from cache this long
  std::size_t auth_negative_cache_size = 10'000;  // unknown-key entries at most (their own cache)

  // Sessions.
  Millis session_ttl{3'600'000};  // a key's session lives this long (while requests keep its model)

  // Rate limits: a key's NULL rpm_limit/tpm_limit means these; 0 = unlimited.
  std::uint64_t rate_limit_rpm = 0;
  std::uint64_t rate_limit_tpm = 0;
  std::uint64_t rate_limit_default_max_tokens = 1'024;  // completion tokens estimated when max_tokens is absent

  // Money (docs/money.md). Venice's prices are fetched this often (and at start).
  Millis price_refresh_interval{3'600'000};
  // A model without a price: refused for a key or user with a budget (false), or served with the cost
  // recorded NULL (true, LAGOON_UNPRICED=serve). Keys without budgets are always served.
  bool unpriced_serve = false;
  // Redis unreachable: budgeted requests are refused with 503 (false) or served unchecked (true).
  bool budgets_fail_open = false;

  // Key policy (docs/key-policy.md). A key's concurrency slot in Redis lapses this long after its
  // holder last renewed it (every third of it): a crashed instance's slots come back within it.
  Millis concurrency_lease{30'000};
  // For tests only: the wall clock that expiry and budget periods read comes from this file (Unix
  // seconds, fraction allowed), re-read on every reading. Empty: the system clock.
  std::string clock_file;

  // Admin API.
  unsigned admin_db_connections = 1;  // pool connections admin calls may hold at once (the rest serve requests)

  // Usage pipeline.
  std::string usage_dir = "/var/lib/lagoon/usage";  // ring file and journal; one per instance
  std::size_t usage_queue_capacity = 16'384;        // records buffered between requests and Postgres
  std::size_t usage_batch_size = 1'000;             // records per Postgres transaction at most
  Millis usage_flush_interval{100};                 // a partial batch waits at most this long
  Millis usage_spill_after{1'000};                  // Postgres unreachable this long: spill to the journal

  // Secrets: environment only.
  std::string key_pepper;
  std::string upstream_api_key;
  std::optional<std::string> admin_token;

  bool operator==(const Config&) const = default;
};

// A configuration error: `field` names the file key or environment variable at fault.
class ConfigError : public std::runtime_error {
 public:
  ConfigError(std::string field, const std::string& reason)
      : std::runtime_error(field + ": " + reason), field_(std::move(field)) {}
  const std::string& field() const noexcept { return field_; }

 private:
  std::string field_;
};

using Environment = std::map<std::string, std::string>;

// Builds a Config from the JSON text of a config file (empty = no file) and the environment.
// Throws ConfigError on the first bad value.
Config load(const std::string& file_text, const Environment& env, unsigned hardware_threads);

// The process environment, restricted to the variables Lagoon reads (LAGOON_*, VENICE_API_KEY).
Environment process_environment();

// What each command needs beyond what load() checks; throw ConfigError naming the missing variable.
void require_database(const Config& c);
void require_pepper(const Config& c);

struct SettingName {
  std::string key;  // in the JSON file
  std::string env;  // environment variable
  bool secret;      // environment only
};
// Every setting load() understands, for documentation checks.
std::vector<SettingName> setting_names();

// Parses "host:port" or "[v6]:port".
HostPort parse_host_port(const std::string& field, const std::string& text);

}  // namespace lagoon::config
