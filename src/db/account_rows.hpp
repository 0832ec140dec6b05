// What the files of db/accounts share (accounts.cpp, rotation.cpp): the columns a user or a key is read
// with, the rows read back into User and KeyInfo, and a policy as the statements take it. Internal to
// src/db; the SQL is named constants in the files that run it.
// Pure; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <utility>

#include <pqxx/row>

#include "lagoon/db/accounts.hpp"
#include "lagoon/keys/api_key.hpp"

// Timestamps leave the database already in RFC 3339 UTC, so JSON output needs no date library.
#define LAGOON_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

// A policy's four columns (policy_from reads them). Lists leave as JSON arrays: no item is cut at a comma.
#define LAGOON_POLICY_COLUMNS                                                                       \
  "array_to_json(allowed_models)::text, array_to_json(allowed_endpoints)::text, " LAGOON_TS("expires_at") \
  ", max_concurrent"

#define LAGOON_USER_COLUMNS \
  "id, name, is_active, " LAGOON_TS("created_at") ", budget_usd::text, budget_period, " LAGOON_POLICY_COLUMNS

// A key neither revoked nor past a rotation's grace (its flag still says active then); `t` qualifies the
// columns ("" or "k.").
#define LAGOON_KEY_LIVE(t) t "is_active AND (" t "revoked_at IS NULL OR " t "revoked_at > now())"

// is_active as shown: a rotated key whose grace has ended is revoked, though the flag still says active.
#define LAGOON_KEY_COLUMNS                                                                                     \
  "id, user_id, prefix, name, " LAGOON_KEY_LIVE("") ", rpm_limit, tpm_limit, "                                 \
  LAGOON_TS("created_at") ", " LAGOON_TS("last_used_at") ", " LAGOON_TS("revoked_at")                          \
  ", budget_usd::text, budget_period, " LAGOON_POLICY_COLUMNS ", tags::text, lineage_id, replaced_by"

// A list as the statements take it: its items joined by commas (no checked item holds one), which
// string_to_array($n::text, ',') splits again; NULL for an unset list.
#define LAGOON_LIST_PARAM(n) "string_to_array(" n "::text, ',')"

namespace lagoon::db::rows {

std::optional<money::Budget> budget_from(const pqxx::field& amount, const pqxx::field& period);
// A budget as the two columns take it: the amount's exact decimal text and the period's name, or NULLs.
std::pair<std::optional<std::string>, std::optional<std::string>> budget_columns(const std::optional<money::Budget>& b);

User user_from(const pqxx::row& r);    // LAGOON_USER_COLUMNS
KeyInfo key_from(const pqxx::row& r);  // LAGOON_KEY_COLUMNS

// A fresh key for `pepper`: the text shown once, its display prefix and the digest stored.
struct NewKey {
  std::string key;
  std::string prefix;
  keys::Digest digest;
};
NewKey new_key(const std::string& pepper);
CreatedKey created(const NewKey& fresh, KeyInfo stored);

// A checked policy as statement parameters: lists joined (LAGOON_LIST_PARAM), the expiry as RFC 3339
// text Postgres reads exactly ($n::timestamptz).
struct PolicyParams {
  std::optional<std::string> models;
  std::optional<std::string> endpoints;
  std::optional<std::string> expires_at;
  std::optional<std::int64_t> max_concurrent;
};
// Checks and normalises (model_list, endpoint_list …); throws AccountsError (invalid).
PolicyParams policy_params(const PolicyOptions& o);

// The same for a change: which fields to set, and to what.
struct PolicyChangeParams {
  bool set_models = false, set_endpoints = false, set_expires_at = false, set_max_concurrent = false;
  PolicyParams values;
};
PolicyChangeParams policy_change_params(const PolicyChanges& c);

}  // namespace lagoon::db::rows
