// Users and API keys in Postgres: the operations behind `lagoon users …` / `lagoon keys …` and the admin
// API, so both front ends share one implementation. Each call is one short transaction.
// Blocking; call from the CLI or a blocking pool thread. Not thread-safe on one connection. The policy
// readers (model_list …) are pure and thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>
#include <pqxx/connection>
#include <pqxx/transaction_base>

#include "lagoon/auth/key_record.hpp"
#include "lagoon/money/budget.hpp"

namespace lagoon::db {

// A request the data refuses: unknown user or key, duplicate name, bad argument.
class AccountsError : public std::runtime_error {
 public:
  enum class Kind { not_found, conflict, invalid };
  AccountsError(Kind kind, const std::string& what, std::optional<std::string> param = std::nullopt)
      : std::runtime_error(what), kind_(kind), param_(std::move(param)) {}
  Kind kind() const noexcept { return kind_; }
  // The argument at fault (as the admin API names it: "name", "rpm", "budget_usd", "from" …), if one is.
  const std::optional<std::string>& param() const noexcept { return param_; }

 private:
  Kind kind_;
  std::optional<std::string> param_;
};

// A key's or a user's policy as Postgres holds it (migration 0006). An unset field (NULL) is nullopt: a
// key's takes its user's value, a user's restricts nothing. An empty list is never stored.
struct Policy {
  std::optional<std::vector<std::string>> allowed_models;     // globs over base model names
  std::optional<std::vector<std::string>> allowed_endpoints;  // route groups, in auth::kGroupNames order
  std::optional<std::string> expires_at;                      // RFC 3339, UTC
  std::optional<std::int64_t> max_concurrent;                 // 0 = unlimited
};

// The policy of a new key or user: nullopt (or an empty list) leaves a field unset.
struct PolicyOptions {
  std::optional<std::vector<std::string>> allowed_models;
  std::optional<std::vector<std::string>> allowed_endpoints;
  std::optional<std::int64_t> expires_at_us;  // Unix µs
  std::optional<std::int64_t> max_concurrent;
};

// What to change in a policy: an outer nullopt leaves the field alone; an inner nullopt (or an empty
// list) unsets it — a key then inherits its user's value, a user restricts nothing.
struct PolicyChanges {
  std::optional<std::optional<std::vector<std::string>>> allowed_models;
  std::optional<std::optional<std::vector<std::string>>> allowed_endpoints;
  std::optional<std::optional<std::int64_t>> expires_at_us;  // Unix µs
  std::optional<std::optional<std::int64_t>> max_concurrent;
  bool empty() const noexcept { return !allowed_models && !allowed_endpoints && !expires_at_us && !max_concurrent; }
};

// The options a new key or user gets from `changes` made to nothing (an outer nullopt is unset too).
PolicyOptions options_from(const PolicyChanges& changes);

// The one reading of each policy value, whoever writes it (the CLI, the admin API, the operations
// below): each throws AccountsError (invalid) naming the param — "models", "endpoints", "expires_at",
// "max_concurrent", "tags" — in auth::policy's words, so every front end refuses the same things.
// Model globs checked (auth::check_models), duplicates dropped; an empty list is nullopt (unset).
std::optional<std::vector<std::string>> model_list(std::vector<std::string> globs);
// Endpoint names (auth::kGroupNames), each known; in that order, once each; an empty list is nullopt.
std::optional<std::vector<std::string>> endpoint_list(const std::vector<std::string>& names);
// 0001-01-01 to 9999-12-31 (what RFC 3339 can write).
void check_expiry(std::optional<std::int64_t> unix_us);
void check_max_concurrent(std::optional<std::int64_t> n);  // 0..auth::kMaxConcurrent
void check_tags(const nlohmann::json& tags);                // an object of at most auth::kMaxTagsBytes

// The grace `rotate_key` gives the key it replaces when none is named: a day for its clients to move to
// the new key. At most a year (and a day).
inline constexpr std::int64_t kDefaultGraceSeconds = 86400;
inline constexpr std::int64_t kMaxGraceSeconds = 366 * 86400;
// A grace as operators write it — "24h", "90m", "1h30m", "7d", "0" (auth::parse_duration_s) — in
// seconds; nullopt when unreadable or longer than kMaxGraceSeconds. Pure.
std::optional<std::int64_t> grace_seconds(std::string_view text);

struct User : Policy {
  std::int64_t id = 0;
  std::string name;
  bool is_active = true;
  std::string created_at;  // RFC 3339, UTC
  std::optional<money::Budget> budget;  // shared by all the user's keys
};

struct KeyInfo : Policy {
  std::int64_t id = 0;
  std::int64_t user_id = 0;
  std::string prefix;
  std::optional<std::string> name;
  bool is_active = true;  // not revoked, or a rotated key still in its grace (expiry aside)
  std::optional<std::int64_t> rpm_limit;
  std::optional<std::int64_t> tpm_limit;
  std::string created_at;
  std::optional<std::string> last_used_at;
  std::optional<std::string> revoked_at;  // may lie in the future: a rotated key's end of grace
  std::optional<money::Budget> budget;  // the key's own (its user's may apply too)
  nlohmann::json tags = nlohmann::json::object();
  std::optional<std::int64_t> lineage_id;   // the first key of its rotation chain; nullopt: the key itself
  std::optional<std::int64_t> replaced_by;  // the key that replaced it by rotation
};

struct CreatedKey {
  std::int64_t id = 0;
  std::string key;  // the full key: shown once, never stored
  std::string prefix;
  std::int64_t user_id = 0;
  KeyInfo info;  // the key as stored
};

// A rotation's answer: the new key (shown once) and when the old one stops working.
struct RotatedKey {
  CreatedKey key;
  std::int64_t replaces = 0;          // the old key's id
  std::string old_key_revoked_at;     // RFC 3339, UTC: now for a rotation without grace
};

struct KeyOptions : PolicyOptions {
  std::optional<std::string> name;
  std::optional<std::int64_t> rpm_limit;  // 0 = unlimited, nullopt = configured default
  std::optional<std::int64_t> tpm_limit;
  std::optional<money::Budget> budget;
  nlohmann::json tags = nlohmann::json::object();
};

// What to do to a key's or a user's budget.
struct BudgetChange {
  bool remove = false;                  // no budget any more (amount and period both NULL)
  std::optional<money::Pico> amount;    // a new amount; the period stays, or is `total` where there was none
  std::optional<money::Period> period;  // a new period, for a key or user that has (or gets) a budget
  bool operator==(const BudgetChange&) const = default;
};

// The budget after `change`: throws AccountsError (invalid, param "budget_period") for a period on
// something that has no budget and gets none, or a removal that also names a period.
std::optional<money::Budget> changed_budget(const std::optional<money::Budget>& current, const BudgetChange& change);

// What to change on a key: an outer nullopt leaves the field alone; an inner nullopt sets it to NULL
// (no name; the configured default limit).
struct KeyChanges : PolicyChanges {
  std::optional<std::optional<std::string>> name;
  std::optional<std::optional<std::int64_t>> rpm_limit;
  std::optional<std::optional<std::int64_t>> tpm_limit;
  std::optional<BudgetChange> budget;
  std::optional<nlohmann::json> tags;  // replaces the key's tags; {} empties them
  bool empty() const noexcept {
    return PolicyChanges::empty() && !name && !rpm_limit && !tpm_limit && !budget && !tags;
  }
};

struct UserChanges : PolicyChanges {
  std::optional<BudgetChange> budget;
  bool empty() const noexcept { return PolicyChanges::empty() && !budget; }
};

// `policy`: the defaults its keys inherit. Throws conflict for a taken name, invalid for bad values.
User create_user(pqxx::connection& conn, const std::string& name, const PolicyOptions& policy = {});

// `ref` is a numeric id or a name; an id wins when both could match. Throws not_found.
User find_user(pqxx::connection& conn, const std::string& ref);
User find_user(pqxx::transaction_base& t, const std::string& ref);  // inside a caller's transaction

// Marks the user inactive: every one of its keys stops authenticating. Deactivating twice is harmless.
User deactivate_user(pqxx::connection& conn, const std::string& ref);

// Changes a user's budget and policy defaults; throws not_found for an unknown user, invalid for bad values.
User update_user(pqxx::connection& conn, const std::string& ref, const UserChanges& changes);

CreatedKey create_key(pqxx::connection& conn, const std::string& pepper, const std::string& user_ref,
                      const KeyOptions& options);

// Marks the key inactive and stamps revoked_at; revoking twice keeps the first timestamp, but a rotated
// key still in its grace (revoked_at in the future) is revoked now.
KeyInfo revoke_key(pqxx::connection& conn, std::int64_t key_id);

// A new key in the old one's place, in one transaction: it copies the old key's user, name, limits,
// budget, policy and tags, and joins its lineage (lineage_id: the chain's first key), so the chain
// shares rate limits and budget. The old key keeps working for `grace_seconds` more (0: revoked now;
// a grace never lengthens an earlier end) and points at its successor (replaced_by). Throws not_found
// for an unknown key; invalid for a revoked key, a deactivated user, or a grace over kMaxGraceSeconds.
RotatedKey rotate_key(pqxx::connection& conn, const std::string& pepper, std::int64_t key_id,
                      std::int64_t grace_seconds);

std::vector<KeyInfo> list_keys(pqxx::connection& conn, const std::string& user_ref);

KeyInfo get_key(pqxx::connection& conn, std::int64_t key_id);

// Changes a key's name, limits, budget, policy and tags; throws not_found for an unknown id, invalid for
// bad values.
KeyInfo update_key(pqxx::connection& conn, std::int64_t key_id, const KeyChanges& changes);

// The hot-path lookup, as a prepared statement: registered on every pooled connection by db::connect.
inline constexpr const char* kAuthStatement = "lagoon_auth_key";
void prepare_statements(pqxx::connection& conn);

// The key with this digest joined with its user, or nullopt when no key has it. `prepared`: through
// the statement prepare_statements() registered on `conn` (else an unnamed one, as PgBouncer in
// transaction mode needs).
std::optional<auth::KeyRecord> find_key_for_auth(pqxx::connection& conn, const keys::Digest& digest,
                                                 bool prepared = true);

// Records whose cached copies must be invalidated after a change to one key or to a user.
std::vector<auth::KeyRecord> key_records_of_key(pqxx::connection& conn, std::int64_t key_id);
std::vector<auth::KeyRecord> key_records_of_user(pqxx::connection& conn, std::int64_t user_id);

}  // namespace lagoon::db
