// Users and API keys in Postgres: the operations behind `lagoon users …` / `lagoon keys …` (and, later,
// the admin API), so both front ends share one implementation. Each call is one short transaction.
// Blocking; call from the CLI or a blocking pool thread. Not thread-safe on one connection.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

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

struct User {
  std::int64_t id = 0;
  std::string name;
  bool is_active = true;
  std::string created_at;  // RFC 3339, UTC
  std::optional<money::Budget> budget;  // shared by all the user's keys
};

struct CreatedKey {
  std::int64_t id = 0;
  std::string key;  // the full key: shown once, never stored
  std::string prefix;
  std::int64_t user_id = 0;
};

struct KeyInfo {
  std::int64_t id = 0;
  std::int64_t user_id = 0;
  std::string prefix;
  std::optional<std::string> name;
  bool is_active = true;
  std::optional<std::int64_t> rpm_limit;
  std::optional<std::int64_t> tpm_limit;
  std::string created_at;
  std::optional<std::string> last_used_at;
  std::optional<std::string> revoked_at;
  std::optional<money::Budget> budget;  // the key's own (its user's may apply too)
};

struct KeyOptions {
  std::optional<std::string> name;
  std::optional<std::int64_t> rpm_limit;  // 0 = unlimited, nullopt = configured default
  std::optional<std::int64_t> tpm_limit;
  std::optional<money::Budget> budget;
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
struct KeyChanges {
  std::optional<std::optional<std::string>> name;
  std::optional<std::optional<std::int64_t>> rpm_limit;
  std::optional<std::optional<std::int64_t>> tpm_limit;
  std::optional<BudgetChange> budget;
  bool empty() const noexcept { return !name && !rpm_limit && !tpm_limit && !budget; }
};

struct UserChanges {
  std::optional<BudgetChange> budget;
  bool empty() const noexcept { return !budget; }
};

User create_user(pqxx::connection& conn, const std::string& name);

// `ref` is a numeric id or a name; an id wins when both could match. Throws not_found.
User find_user(pqxx::connection& conn, const std::string& ref);
User find_user(pqxx::transaction_base& t, const std::string& ref);  // inside a caller's transaction

// Marks the user inactive: every one of its keys stops authenticating. Deactivating twice is harmless.
User deactivate_user(pqxx::connection& conn, const std::string& ref);

// Changes a user's budget; throws not_found for an unknown user, invalid for bad values.
User update_user(pqxx::connection& conn, const std::string& ref, const UserChanges& changes);

CreatedKey create_key(pqxx::connection& conn, const std::string& pepper, const std::string& user_ref,
                      const KeyOptions& options);

// Marks the key inactive and stamps revoked_at; revoking twice keeps the first timestamp.
KeyInfo revoke_key(pqxx::connection& conn, std::int64_t key_id);

std::vector<KeyInfo> list_keys(pqxx::connection& conn, const std::string& user_ref);

KeyInfo get_key(pqxx::connection& conn, std::int64_t key_id);

// Changes a key's name, limits and budget; throws not_found for an unknown id, invalid for bad values.
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
