// The account and price operations behind both `lagoon users|keys|prices|usage …` and the admin HTTP
// API, with the JSON each answers: one implementation, so the CLI and /admin/v1 cannot drift apart. Each
// operation is one short Postgres transaction (db/accounts, db/prices); the ones that change what
// authentication, rate limiting or costing sees also say what every instance must reload — the key
// records whose cached copies are stale, or the prices — which the caller hands to invalidate() after
// giving the connection back.
//
// Blocking: call from the CLI or a blocking thread. Thread-safety: as the connection passed in.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>
#include <pqxx/connection>

#include "lagoon/auth/key_record.hpp"
#include "lagoon/config/config.hpp"
#include "lagoon/db/accounts.hpp"
#include "lagoon/db/listings.hpp"
#include "lagoon/db/usage_report.hpp"
#include "lagoon/db/usage_series.hpp"
#include "lagoon/money/price.hpp"

namespace lagoon::admin {

using nlohmann::json;

// An operation's answer, and the keys whose cached copies are now stale.
struct Outcome {
  json body;
  std::vector<auth::KeyRecord> stale;
  std::string change;           // what changed, for the message when the instances cannot be told
  bool prices_changed = false;  // the price table or an override changed: instances reload prices
  // Whether repeating the operation is the way to tell the instances again. Not for a rotation: it would
  // make another key, and its answer shows a key once, so it is answered even when they cannot be told.
  bool repeatable = true;
};

Outcome create_user(pqxx::connection& conn, const std::string& name, const db::PolicyOptions& policy = {});
Outcome get_user(pqxx::connection& conn, const std::string& ref);
Outcome deactivate_user(pqxx::connection& conn, const std::string& ref);
// Every key of the user is invalidated: its budget and policy defaults travel in each key's cached record.
Outcome update_user(pqxx::connection& conn, const std::string& ref, const db::UserChanges& changes);
// The key as key_json shows it, with the full "key" — shown this once.
Outcome create_key(pqxx::connection& conn, const std::string& pepper, const std::string& user_ref,
                   const db::KeyOptions& options);
// The new key as create_key shows it, with "replaces" (the old key's id) and "old_key_revoked_at" (when
// the old key stops working). The old key's records are stale; the outcome is not `repeatable`.
Outcome rotate_key(pqxx::connection& conn, const std::string& pepper, std::int64_t key_id, std::int64_t grace_seconds);
Outcome list_keys(pqxx::connection& conn, const std::string& user_ref);
Outcome get_key(pqxx::connection& conn, std::int64_t key_id);
Outcome update_key(pqxx::connection& conn, std::int64_t key_id, const db::KeyChanges& changes);
Outcome revoke_key(pqxx::connection& conn, std::int64_t key_id);
// Without query.by: {"requests", tokens…, "cost_usd", "unpriced_requests", "units", "key_id"|"user_id",
// "from", "to", "by_model": […], "by_outcome": […]}. With it: {"by", "key_id"?, "user_id"?, "from", "to",
// "totals", "rows": […]}, each row the same sums under its "key_id", "user_id", "model" or "day".
Outcome usage(pqxx::connection& conn, const db::UsageQuery& query);
// The sums every usage answer shows: {"requests", tokens…, "estimated_requests", "cost_usd",
// "unpriced_requests", "units"}.
json usage_totals_json(const db::UsageTotals& t);

// The console's listings (db/listings.hpp): users as user_json shows them with "keys_active" and "spend"
// {"today_usd", "month_usd"}; keys as key_json with "user_name", "status" and "spend". Arrays, newest first.
Outcome list_users(pqxx::connection& conn, const db::UserFilter& filter);
Outcome find_keys(pqxx::connection& conn, const db::KeyFilter& filter);
// {"bucket", "by", "key_id"?, "user_id"?, "from", "to", "series": [{"name", "label", "other"}],
// "rows": [{"time", "series", sums…}], "totals"}: db/usage_series.hpp's answer, a key's or user's id in
// "name" as a string (a series name is always text).
Outcome usage_series(pqxx::connection& conn, const db::SeriesQuery& query);
// usage_series' JSON as CSV (RFC 4180): time,series,label,requests,prompt_tokens,completion_tokens,
// total_tokens,cost_usd,unpriced_requests, one line per row. A label is quoted when it must be, and one
// that a spreadsheet would read as a formula is prefixed with ' (a key's name is the operator's users' text).
std::string series_csv(const json& series);

// The newest stored Venice table and the overrides: {"version", "fetched_at", "models": [{"model",
// "source": "override"|"upstream", "in_force", "price"}]}, by model, an override before Venice's price
// for the same model (which is then not in force). version and fetched_at are null before any refresh.
Outcome list_prices(pqxx::connection& conn);
// An override for `model` (invalid: an empty or unprintable model id); {"model","source","in_force","price"}.
Outcome set_price(pqxx::connection& conn, const std::string& model, const money::Price& price);
// Throws not_found when the model has no override; {"model","deleted":true}.
Outcome delete_price(pqxx::connection& conn, const std::string& model);

// The instances could not be told about a change that Postgres already holds. Repeating the
// operation repeats the invalidation (every changing operation but a rotation is idempotent); the
// message says what changed and why the instances were not told, and each front end adds how to repeat
// it — or, for an operation that is not `repeatable`, the message says what to do instead.
class InvalidationFailed : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Rewrites each stale record's Redis entry and publishes its digest, so every instance drops its L1
// copy within a second; announces a price change (money::kPricesChanged on money::prices_channel), so
// every instance reloads its prices from Postgres. Waits at most ~2 s for Redis. Throws InvalidationFailed.
void invalidate(const config::Config& cfg, const Outcome& outcome);

// Whether `text` is a timestamp the usage report accepts: an RFC 3339 date or date-time
// ("2026-11-27", "2026-11-27T10:00:00Z", "2026-11-27T10:00:00.5+01:00"); without an offset, UTC.
bool valid_timestamp(std::string_view text);

// The JSON shapes, shared by every answer that shows a user or a key. A budget is "budget_usd" (exact
// decimal text, or null) and "budget_period" ("total", "daily", "monthly", or null). A policy is
// "allowed_models" and "allowed_endpoints" (arrays, or null when unset), "expires_at" (RFC 3339 UTC, or
// null) and "max_concurrent" (0 = unlimited, or null when unset); a key adds "tags" (an object),
// "lineage_id" (the first key of its rotation chain, or null) and "replaced_by" (or null).
json user_json(const db::User& u);
json key_json(const db::KeyInfo& k);

}  // namespace lagoon::admin
