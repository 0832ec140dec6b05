#include "lagoon/db/accounts.hpp"

#include <algorithm>
#include <charconv>

#include <pqxx/pqxx>

#include "account_rows.hpp"
#include "lagoon/keys/api_key.hpp"

namespace lagoon::db {
namespace {

using rows::budget_columns;
using rows::budget_from;
using rows::key_from;
using rows::user_from;

constexpr money::Pico kPicoPerMicro = 1'000'000;

constexpr const char* kInsertUser =
    "INSERT INTO users (name, allowed_models, allowed_endpoints, expires_at, max_concurrent) "
    "VALUES ($1, " LAGOON_LIST_PARAM("$2") ", " LAGOON_LIST_PARAM("$3") ", $4::timestamptz, $5::integer) "
    "ON CONFLICT (name) DO NOTHING RETURNING " LAGOON_USER_COLUMNS;
constexpr const char* kUserById = "SELECT " LAGOON_USER_COLUMNS " FROM users WHERE id = $1";
constexpr const char* kUserByName = "SELECT " LAGOON_USER_COLUMNS " FROM users WHERE name = $1";
constexpr const char* kDeactivateUser =
    "UPDATE users SET is_active = false WHERE id = $1 RETURNING " LAGOON_USER_COLUMNS;
// The budget as it is, locked until the change commits: two concurrent changes apply one after the other.
constexpr const char* kUserBudgetForUpdate = "SELECT budget_usd::text, budget_period FROM users WHERE id = $1 FOR UPDATE";
constexpr const char* kKeyBudgetForUpdate =
    "SELECT budget_usd::text, budget_period FROM api_keys WHERE id = $1 FOR UPDATE";
// A policy change, parameters $2..$9 (rows::PolicyChangeParams), in a users or an api_keys UPDATE.
#define LAGOON_SET_POLICY                                                                                   \
  "allowed_models = CASE WHEN $2 THEN " LAGOON_LIST_PARAM("$3") " ELSE allowed_models END, "               \
  "allowed_endpoints = CASE WHEN $4 THEN " LAGOON_LIST_PARAM("$5") " ELSE allowed_endpoints END, "         \
  "expires_at = CASE WHEN $6 THEN $7::timestamptz ELSE expires_at END, "                                   \
  "max_concurrent = CASE WHEN $8 THEN $9::integer ELSE max_concurrent END, "
constexpr const char* kUpdateUser =
    "UPDATE users SET " LAGOON_SET_POLICY
    "budget_usd = CASE WHEN $10 THEN $11::numeric ELSE budget_usd END, "
    "budget_period = CASE WHEN $10 THEN $12::text ELSE budget_period END "
    "WHERE id = $1 RETURNING " LAGOON_USER_COLUMNS;
constexpr const char* kInsertKey =
    "INSERT INTO api_keys (user_id, name, prefix, digest, rpm_limit, tpm_limit, budget_usd, budget_period, "
    "allowed_models, allowed_endpoints, expires_at, max_concurrent, tags) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7::numeric, $8::text, " LAGOON_LIST_PARAM("$9") ", " LAGOON_LIST_PARAM("$10")
    ", $11::timestamptz, $12::integer, $13::jsonb) RETURNING " LAGOON_KEY_COLUMNS;
// LEAST skips a NULL: a key never revoked is revoked now, one in its grace (revoked_at ahead) too.
constexpr const char* kRevokeKey =
    "UPDATE api_keys SET is_active = false, revoked_at = LEAST(revoked_at, now()) WHERE id = $1 "
    "RETURNING " LAGOON_KEY_COLUMNS;
#define LAGOON_AUTH_COLUMNS                                                                        \
  "k.digest, k.id, k.user_id, k.prefix, k.name, k.is_active, u.is_active, k.rpm_limit, k.tpm_limit, " \
  "k.budget_usd::text, k.budget_period, u.budget_usd::text, u.budget_period, " \
  "array_to_string(COALESCE(k.allowed_models, u.allowed_models), ','), " \
  "array_to_string(COALESCE(k.allowed_endpoints, u.allowed_endpoints), ','), " \
  "COALESCE(k.max_concurrent, u.max_concurrent), " \
  "(extract(epoch FROM LEAST(k.expires_at, u.expires_at)) * 1000000)::bigint, " \
  "CASE WHEN k.is_active THEN (extract(epoch FROM k.revoked_at) * 1000000)::bigint END, " \
  "COALESCE(k.lineage_id, k.id) " \
  "FROM api_keys k JOIN users u ON u.id = k.user_id "
constexpr const char* kAuthByDigest = "SELECT " LAGOON_AUTH_COLUMNS "WHERE k.digest = $1";
constexpr const char* kAuthByKeyId = "SELECT " LAGOON_AUTH_COLUMNS "WHERE k.id = $1";
constexpr const char* kAuthByUserId = "SELECT " LAGOON_AUTH_COLUMNS "WHERE k.user_id = $1";
constexpr const char* kKeyById = "SELECT " LAGOON_KEY_COLUMNS " FROM api_keys WHERE id = $1";
constexpr const char* kUpdateKey =
    "UPDATE api_keys SET " LAGOON_SET_POLICY
    "name = CASE WHEN $10 THEN $11::text ELSE name END, "
    "rpm_limit = CASE WHEN $12 THEN $13::integer ELSE rpm_limit END, "
    "tpm_limit = CASE WHEN $14 THEN $15::bigint ELSE tpm_limit END, "
    "budget_usd = CASE WHEN $16 THEN $17::numeric ELSE budget_usd END, "
    "budget_period = CASE WHEN $16 THEN $18::text ELSE budget_period END, "
    "tags = CASE WHEN $19 THEN $20::jsonb ELSE tags END "
    "WHERE id = $1 RETURNING " LAGOON_KEY_COLUMNS;
constexpr const char* kKeysOfUser = "SELECT " LAGOON_KEY_COLUMNS " FROM api_keys WHERE user_id = $1 ORDER BY id";

template <class T>
std::optional<T> optional_field(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return f.as<T>();
}

auth::KeyRecord auth_record_from(const pqxx::row& r) {
  auth::KeyRecord k;
  const pqxx::binarystring digest(r[0]);
  if (digest.size() == k.digest.size()) std::copy(digest.begin(), digest.end(), k.digest.begin());
  k.key_id = r[1].as<std::int64_t>();
  k.user_id = r[2].as<std::int64_t>();
  k.prefix = r[3].as<std::string>();
  k.name = optional_field<std::string>(r[4]);
  k.key_active = r[5].as<bool>();
  k.user_active = r[6].as<bool>();
  k.rpm_limit = optional_field<std::int64_t>(r[7]);
  k.tpm_limit = optional_field<std::int64_t>(r[8]);
  k.key_budget = budget_from(r[9], r[10]);
  k.user_budget = budget_from(r[11], r[12]);
  auto& p = k.policy;
  if (!r[13].is_null()) p.models = auth::split_list(r[13].as<std::string>());
  if (!r[14].is_null() && auth::parse_groups(auth::split_list(r[14].as<std::string>()), p.groups))
    throw std::runtime_error("a key's allowed_endpoints in Postgres cannot be read");
  if (!r[14].is_null() && p.groups == 0) p.groups = auth::kAllGroups;
  p.max_concurrent = optional_field<std::int64_t>(r[15]).value_or(0);
  p.expires_at_us = optional_field<std::int64_t>(r[16]);
  p.revokes_at_us = optional_field<std::int64_t>(r[17]);
  k.lineage_id = r[18].as<std::int64_t>();
  return k;
}

std::optional<std::int64_t> as_id(const std::string& s) {
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || v <= 0) return std::nullopt;
  return v;
}

void check_name(const std::string& what, const std::string& name) {
  if (name.empty() || name.size() > 200)
    throw AccountsError(AccountsError::Kind::invalid, what + " must be 1..200 characters", "name");
  for (unsigned char c : name)
    if (c < 0x20 || c == 0x7f)
      throw AccountsError(AccountsError::Kind::invalid, what + " must not contain control characters", "name");
}

// One rule for limits, whether a key is created or changed: nullopt (the configured default), 0
// (unlimited) or positive up to what a key may carry.
void check_limits(std::optional<std::int64_t> rpm, std::optional<std::int64_t> tpm) {
  if ((rpm && *rpm < 0) || (tpm && *tpm < 0))
    throw AccountsError(AccountsError::Kind::invalid, "limits must be 0 (unlimited) or positive");
  if (rpm && *rpm > auth::kMaxRpmLimit) throw AccountsError(AccountsError::Kind::invalid, "rpm limit is too large", "rpm");
  if (tpm && *tpm > auth::kMaxTpmLimit) throw AccountsError(AccountsError::Kind::invalid, "tpm limit is too large", "tpm");
}

// The same rule as the CLI's and the admin API's (admin/money_args.hpp), for any other caller.
void check_budget(const std::optional<money::Budget>& b) {
  if (b && (b->amount < 0 || b->amount > money::kMaxBudget || b->amount % kPicoPerMicro != 0))
    throw AccountsError(AccountsError::Kind::invalid,
                        "a budget must be 0 to 1000000 USD in whole micro-dollars (at most 6 decimals)", "budget_usd");
}

std::optional<money::Budget> locked_budget(pqxx::transaction_base& t, const char* sql, std::int64_t id) {
  auto r = t.exec_params(sql, id);
  return r.empty() ? std::nullopt : budget_from(r[0][0], r[0][1]);
}

}  // namespace

std::optional<money::Budget> changed_budget(const std::optional<money::Budget>& current, const BudgetChange& c) {
  if (c.remove && (c.amount || c.period))
    throw AccountsError(AccountsError::Kind::invalid, "a budget being removed takes no amount or period",
                        "budget_period");
  if (c.remove) return std::nullopt;
  if (!c.amount && !current) {
    if (!c.period) return std::nullopt;
    throw AccountsError(AccountsError::Kind::invalid, "there is no budget to set the period of: give an amount too",
                        "budget_period");
  }
  money::Budget b = current.value_or(money::Budget{0, money::Period::total});
  if (c.amount) b.amount = *c.amount;
  if (c.period) b.period = *c.period;
  check_budget(b);
  return b;
}

User create_user(pqxx::connection& conn, const std::string& name, const PolicyOptions& policy) {
  check_name("user name", name);
  // Wherever a user is named by NAME|ID, digits are read as an id first: such a user could never be
  // found by its name (and another user's id could answer for it).
  if (std::all_of(name.begin(), name.end(), [](unsigned char c) { return c >= '0' && c <= '9'; }))
    throw AccountsError(AccountsError::Kind::invalid, "user name must not be all digits (it would read as a user id)",
                        "name");
  const auto p = rows::policy_params(policy);
  pqxx::work w(conn);
  auto r = w.exec_params(kInsertUser, name, p.models, p.endpoints, p.expires_at, p.max_concurrent);
  if (r.empty()) throw AccountsError(AccountsError::Kind::conflict, "a user named \"" + name + "\" already exists");
  w.commit();
  return user_from(r[0]);
}

User find_user(pqxx::transaction_base& t, const std::string& ref) {
  if (auto id = as_id(ref)) {
    auto r = t.exec_params(kUserById, *id);
    if (!r.empty()) return user_from(r[0]);
  }
  auto r = t.exec_params(kUserByName, ref);
  if (r.empty()) throw AccountsError(AccountsError::Kind::not_found, "no user \"" + ref + "\"");
  return user_from(r[0]);
}

User find_user(pqxx::connection& conn, const std::string& ref) {
  pqxx::read_transaction t(conn);
  return find_user(t, ref);
}

User deactivate_user(pqxx::connection& conn, const std::string& ref) {
  pqxx::work w(conn);
  User user = find_user(w, ref);
  auto r = w.exec_params(kDeactivateUser, user.id);
  w.commit();
  return user_from(r[0]);
}

User update_user(pqxx::connection& conn, const std::string& ref, const UserChanges& c) {
  const auto p = rows::policy_change_params(c);
  pqxx::work w(conn);
  User user = find_user(w, ref);
  if (c.empty()) return user;
  std::pair<std::optional<std::string>, std::optional<std::string>> budget;
  if (c.budget) budget = budget_columns(changed_budget(locked_budget(w, kUserBudgetForUpdate, user.id), *c.budget));
  const auto& v = p.values;
  auto r = w.exec_params(kUpdateUser, user.id, p.set_models, v.models, p.set_endpoints, v.endpoints, p.set_expires_at,
                         v.expires_at, p.set_max_concurrent, v.max_concurrent, c.budget.has_value(), budget.first,
                         budget.second);
  w.commit();
  return user_from(r[0]);
}

CreatedKey create_key(pqxx::connection& conn, const std::string& pepper, const std::string& user_ref,
                      const KeyOptions& options) {
  if (options.name) check_name("key name", *options.name);
  check_limits(options.rpm_limit, options.tpm_limit);
  check_budget(options.budget);
  check_tags(options.tags);
  const auto p = rows::policy_params(options);
  pqxx::work w(conn);
  User user = find_user(w, user_ref);
  if (!user.is_active) throw AccountsError(AccountsError::Kind::invalid, "user \"" + user.name + "\" is deactivated");
  const auto fresh = rows::new_key(pepper);
  const pqxx::binarystring digest(fresh.digest.data(), fresh.digest.size());
  const auto [amount, period] = budget_columns(options.budget);
  auto r = w.exec_params(kInsertKey, user.id, options.name, fresh.prefix, digest, options.rpm_limit, options.tpm_limit,
                         amount, period, p.models, p.endpoints, p.expires_at, p.max_concurrent, options.tags.dump());
  w.commit();
  return rows::created(fresh, key_from(r[0]));
}

KeyInfo revoke_key(pqxx::connection& conn, std::int64_t key_id) {
  pqxx::work w(conn);
  auto r = w.exec_params(kRevokeKey, key_id);
  if (r.empty()) throw AccountsError(AccountsError::Kind::not_found, "no key with id " + std::to_string(key_id));
  w.commit();
  return key_from(r[0]);
}

void prepare_statements(pqxx::connection& conn) { conn.prepare(kAuthStatement, kAuthByDigest); }

std::optional<auth::KeyRecord> find_key_for_auth(pqxx::connection& conn, const keys::Digest& digest, bool prepared) {
  pqxx::nontransaction n(conn);  // one statement: no BEGIN/COMMIT round trips
  const pqxx::binarystring d(digest.data(), digest.size());
  auto r = prepared ? n.exec_prepared(kAuthStatement, d) : n.exec_params(kAuthByDigest, d);
  if (r.empty()) return std::nullopt;
  return auth_record_from(r[0]);
}

std::vector<auth::KeyRecord> key_records_of_key(pqxx::connection& conn, std::int64_t key_id) {
  pqxx::read_transaction t(conn);
  std::vector<auth::KeyRecord> out;
  for (const auto& row : t.exec_params(kAuthByKeyId, key_id)) out.push_back(auth_record_from(row));
  return out;
}

std::vector<auth::KeyRecord> key_records_of_user(pqxx::connection& conn, std::int64_t user_id) {
  pqxx::read_transaction t(conn);
  std::vector<auth::KeyRecord> out;
  for (const auto& row : t.exec_params(kAuthByUserId, user_id)) out.push_back(auth_record_from(row));
  return out;
}

KeyInfo get_key(pqxx::connection& conn, std::int64_t key_id) {
  pqxx::read_transaction t(conn);
  auto r = t.exec_params(kKeyById, key_id);
  if (r.empty()) throw AccountsError(AccountsError::Kind::not_found, "no key with id " + std::to_string(key_id));
  return key_from(r[0]);
}

KeyInfo update_key(pqxx::connection& conn, std::int64_t key_id, const KeyChanges& c) {
  if (c.name && *c.name) check_name("key name", **c.name);
  check_limits(c.rpm_limit.value_or(std::nullopt), c.tpm_limit.value_or(std::nullopt));
  if (c.tags) check_tags(*c.tags);
  const auto p = rows::policy_change_params(c);
  const auto& v = p.values;
  pqxx::work w(conn);
  std::pair<std::optional<std::string>, std::optional<std::string>> budget;
  if (c.budget) {
    if (w.exec_params(kKeyById, key_id).empty())
      throw AccountsError(AccountsError::Kind::not_found, "no key with id " + std::to_string(key_id));
    budget = budget_columns(changed_budget(locked_budget(w, kKeyBudgetForUpdate, key_id), *c.budget));
  }
  auto r = w.exec_params(kUpdateKey, key_id, p.set_models, v.models, p.set_endpoints, v.endpoints, p.set_expires_at,
                         v.expires_at, p.set_max_concurrent, v.max_concurrent, c.name.has_value(),
                         c.name ? *c.name : std::nullopt, c.rpm_limit.has_value(),
                         c.rpm_limit ? *c.rpm_limit : std::nullopt, c.tpm_limit.has_value(),
                         c.tpm_limit ? *c.tpm_limit : std::nullopt, c.budget.has_value(), budget.first, budget.second,
                         c.tags.has_value(), c.tags ? std::optional<std::string>(c.tags->dump()) : std::nullopt);
  if (r.empty()) throw AccountsError(AccountsError::Kind::not_found, "no key with id " + std::to_string(key_id));
  w.commit();
  return key_from(r[0]);
}

std::vector<KeyInfo> list_keys(pqxx::connection& conn, const std::string& user_ref) {
  pqxx::read_transaction t(conn);
  User user = find_user(t, user_ref);
  std::vector<KeyInfo> out;
  for (const auto& row : t.exec_params(kKeysOfUser, user.id)) out.push_back(key_from(row));
  return out;
}

}  // namespace lagoon::db
