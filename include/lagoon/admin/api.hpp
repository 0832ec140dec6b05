// The admin HTTP API (/admin/v1, bearer LAGOON_ADMIN_TOKEN; absent when the token is unset): the CLI's
// account operations (admin/operations.hpp) over HTTP.
//
//   POST   /admin/v1/users                {"name", policy…}              201 user
//   GET    /admin/v1/users/{id|name}                                     user
//   PATCH  /admin/v1/users/{id|name}      {"budget_usd"?, "budget_period"?, policy…}   user
//   DELETE /admin/v1/users/{id|name}                                     user, deactivated (keys stop working)
//   GET    /admin/v1/users/{id|name}/keys                                [key]
//   GET    /admin/v1/users/{id|name}/usage?from=&to=&by=&tag=            usage totals (or rows, with by)
//   POST   /admin/v1/keys                 {"user"|"user_id", "name"?, "rpm"?, "tpm"?, "budget_usd"?,
//                                          "budget_period"?, policy…, "tags"?}   201 key, shown once
//   GET    /admin/v1/keys/{id}                                           key
//   PATCH  /admin/v1/keys/{id}            {"name"?, "rpm"?, "tpm"?, "budget_usd"?, "budget_period"?,
//                                          policy…, "tags"?}             key (null limit = configured default,
//                                                                        null budget_usd = no budget)
//   DELETE /admin/v1/keys/{id}                                           {"id","revoked":true,"revoked_at"}
//   POST   /admin/v1/keys/{id}/rotate     {"grace"?: "24h"} or {"grace_seconds"?: N}, or no body (24 h)
//                                                                        201 the new key, shown once, with
//                                                                        "replaces", "old_key_revoked_at"
//   GET    /admin/v1/keys/{id}/usage?from=&to=&by=&tag=                  usage totals (or rows, with by)
//   GET    /admin/v1/usage?key=|user=&from=&to=&by=&tag=                 the same, for one key, one user or all
//   GET    /admin/v1/users?q=&status=active|inactive&limit=&offset=    [user + "keys_active", "spend"]
//   GET    /admin/v1/keys?user=&q=&status=&tag=&limit=&offset=           [key + "user_name", "status", "spend"]
//   GET    /admin/v1/usage/series?key=|user=&from=&to=&bucket=hour|day&by=model|key|user|none&tag=&top=
//                                 &format=json|csv                      usage per hour or day, per series
//   GET    /admin/v1/metrics                                             this instance's /metrics text
//   GET    /admin/v1/prices                                              the price table (upstream and overrides)
//   PUT    /admin/v1/prices/{model}       {"input"?, "output"?, "cache_input"?, "cache_write"?, "per_image"?,
//                                          "per_million_characters"?, "per_second"?}   the override
//   DELETE /admin/v1/prices/{model}                                      {"model","deleted":true}; 404 if none
//
// policy…: "models" (alias "allowed_models") and "endpoints" ("allowed_endpoints"), each an array of
// strings or one comma-separated string, null or empty = unset; "expires_at", an RFC 3339 date-time, or
// null or "never" = unset; "max_concurrent", an integer 0..1000000 (0 = unlimited), or null = unset.
// "tags" is a JSON object ({} for none). tag=NAME:VALUE (repeatable) keeps a usage report to the keys
// whose tags hold every one given (the keys' tags as they are now).
// "rpm_limit"/"tpm_limit" are accepted as the names of "rpm"/"tpm" (the names keys are shown with), and
// "budget"/"period" as "budget_usd"/"budget_period". {model} is the rest of the path, percent-decoded, so
// a model id with '/' needs no escaping.
// Bad JSON, unknown fields or wrong types: 400 naming the field; wrong token: 401; unknown id: 404.
//
// parse_call() is pure (table-tested). Api runs calls on admin_db_connections blocking threads of their
// own, each on a lease from the shared pool: admin work can hold at most that many connections and
// never queues in front of authentication or session lookups.
//
// Thread-safety: parse_call is pure; Api::handle may be called from any reactor thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <boost/asio/awaitable.hpp>

#include "lagoon/config/config.hpp"
#include "lagoon/db/accounts.hpp"
#include "lagoon/db/listings.hpp"
#include "lagoon/db/pool.hpp"
#include "lagoon/db/usage_report.hpp"
#include "lagoon/db/usage_series.hpp"
#include "lagoon/http/errors.hpp"
#include "lagoon/metrics/registry.hpp"
#include "lagoon/money/price.hpp"

namespace lagoon::admin {

struct Call {
  enum class Op {
    create_user, get_user, deactivate_user, update_user,
    create_key, list_keys, get_key, update_key, revoke_key, rotate_key,
    usage,
    list_prices, set_price, delete_price,
    list_users, find_keys, usage_series, metrics,
  };
  Op op = Op::get_user;
  std::string user_ref;  // id or name
  std::int64_t key_id = 0;
  db::PolicyOptions user_policy;  // create_user
  db::UserChanges user_changes;
  db::KeyOptions key_options;
  db::KeyChanges key_changes;
  std::int64_t grace_seconds = db::kDefaultGraceSeconds;  // rotate_key
  db::UsageQuery usage;
  db::UserFilter users;    // list_users
  db::KeyFilter keys;      // find_keys
  db::SeriesQuery series;  // usage_series
  bool csv = false;        // usage_series: text/csv instead of JSON
  std::string model;   // set_price, delete_price
  money::Price price;  // set_price
  unsigned success_status = 200;
};

struct ApiError {
  http::ErrorKind kind = http::ErrorKind::bad_request;
  std::string message;
  std::optional<std::string> param;
  std::string allow;  // for 405
};

std::variant<Call, ApiError> parse_call(std::string_view method, std::string_view target, std::string_view body);

// Whether an Authorization header carries the configured admin token (compared in constant time).
bool admin_token_matches(const std::string& configured, std::string_view authorization);

struct Answer {
  unsigned status = 200;
  std::string body;
  std::string_view content_type = "application/json";
  std::optional<std::string> retry_after;  // 503
  std::string allow;                       // 405
  bool www_authenticate = false;           // 401
};

class Api {
 public:
  Api(const config::Config& cfg, db::Pool& pool, metrics::Registry& metrics);
  ~Api();
  Api(const Api&) = delete;
  Api& operator=(const Api&) = delete;

  bool enabled() const noexcept { return cfg_.admin_token.has_value(); }

  // The arguments must outlive the call (they are the request's own).
  boost::asio::awaitable<Answer> handle(std::string_view method, std::string_view target,
                                        std::string_view authorization, std::string_view body);

  // Joins the admin threads; the destructor calls it.
  void shutdown() noexcept;

 private:
  struct Threads;
  const config::Config& cfg_;
  db::Pool& pool_;
  metrics::Registry& registry_;
  std::unique_ptr<Threads> threads_;
  metrics::Counter& unauthorized_;
};

}  // namespace lagoon::admin
