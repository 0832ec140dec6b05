#include "lagoon/db/listings.hpp"

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "account_rows.hpp"
#include "lagoon/db/usage_report.hpp"

namespace lagoon::db {
namespace {

// The money a user or key spent since the start of today and of this month, UTC, through the
// (id, started_at) index of the column given.
#define LAGOON_SPEND(column, id)                                                           \
  "(SELECT COALESCE(sum(cost_usd), 0)::text FROM usage_records r WHERE r." column " = " id \
  " AND r.started_at >= date_trunc('day', now(), 'UTC')), "                                \
  "(SELECT COALESCE(sum(cost_usd), 0)::text FROM usage_records r WHERE r." column " = " id \
  " AND r.started_at >= date_trunc('month', now(), 'UTC'))"

// A key authenticates when it is live (LAGOON_KEY_LIVE: neither revoked nor past a rotation's grace),
// not expired (the earlier of its own expiry and its user's; `user` names the user's expiry column), and
// its user is active.
#define LAGOON_KEY_EXPIRED(user) "COALESCE(LEAST(k.expires_at, " user ") <= now(), false)"

constexpr const char* kUsers =
    "SELECT " LAGOON_USER_COLUMNS ", "
    "(SELECT count(*) FROM api_keys k WHERE k.user_id = page.id AND page.is_active AND " LAGOON_KEY_LIVE("k.")
    " AND NOT " LAGOON_KEY_EXPIRED("page.expires_at") "), " LAGOON_SPEND("user_id", "page.id")
    " FROM (SELECT * FROM users WHERE ($1::text IS NULL OR strpos(lower(name), lower($1)) > 0 OR id::text = $1) "
    "AND ($2::boolean IS NULL OR is_active = $2) ORDER BY id DESC LIMIT $3 OFFSET $4) AS page ORDER BY id DESC";

constexpr const char* kKeys = "SELECT " LAGOON_KEY_COLUMNS ", user_name, status, " LAGOON_SPEND(
    "api_key_id",
    "page.id") " FROM (SELECT k.*, u.name AS user_name, CASE WHEN NOT (" LAGOON_KEY_LIVE("k.")
               ") THEN 'revoked' WHEN " LAGOON_KEY_EXPIRED("u.expires_at")
               " THEN 'expired' WHEN NOT u.is_active THEN 'user_inactive' ELSE 'active' END AS status "
               "FROM api_keys k JOIN users u ON u.id = k.user_id "
               "WHERE ($1::bigint IS NULL OR k.user_id = $1) "
               "AND ($2::text IS NULL OR strpos(lower(COALESCE(k.name, '')), lower($2)) > 0 "
               "OR strpos(lower(k.prefix), lower($2)) > 0 OR k.id::text = $2) "
               "AND ($3::jsonb IS NULL OR k.tags @> $3::jsonb)) AS page "
               "WHERE ($4::text IS NULL OR status = $4) ORDER BY id DESC LIMIT $5 OFFSET $6";

constexpr int kUserColumns = 10;
constexpr int kKeyColumns = 19;

}  // namespace

std::string_view key_status_name(KeyStatus s) noexcept {
  switch (s) {
    case KeyStatus::active: return "active";
    case KeyStatus::revoked: return "revoked";
    case KeyStatus::expired: return "expired";
    case KeyStatus::user_inactive: return "user_inactive";
  }
  return "";
}

std::optional<KeyStatus> key_status_from(std::string_view name) noexcept {
  for (auto s : {KeyStatus::active, KeyStatus::revoked, KeyStatus::expired, KeyStatus::user_inactive})
    if (key_status_name(s) == name) return s;
  return std::nullopt;
}

std::vector<UserListing> list_users(pqxx::connection& conn, const UserFilter& f) {
  pqxx::read_transaction t(conn);
  std::vector<UserListing> out;
  for (const auto& row : t.exec_params(kUsers, f.text, f.active, f.limit, f.offset)) {
    UserListing u;
    u.user = rows::user_from(row);
    u.keys_active = row[kUserColumns].as<std::int64_t>();
    u.spend = {trim_decimal(row[kUserColumns + 1].as<std::string>()),
               trim_decimal(row[kUserColumns + 2].as<std::string>())};
    out.push_back(std::move(u));
  }
  return out;
}

std::vector<KeyListing> find_keys(pqxx::connection& conn, const KeyFilter& f) {
  pqxx::read_transaction t(conn);
  std::optional<std::int64_t> user_id;
  if (f.user_ref) user_id = find_user(t, *f.user_ref).id;
  std::optional<std::string> tags;
  if (!f.tags.empty()) tags = nlohmann::json(f.tags).dump();
  std::optional<std::string> status;
  if (f.status) status = std::string(key_status_name(*f.status));
  std::vector<KeyListing> out;
  for (const auto& row : t.exec_params(kKeys, user_id, f.text, tags, status, f.limit, f.offset)) {
    KeyListing k;
    k.key = rows::key_from(row);
    k.user_name = row[kKeyColumns].as<std::string>();
    k.status = key_status_from(row[kKeyColumns + 1].as<std::string>()).value_or(KeyStatus::active);
    k.spend = {trim_decimal(row[kKeyColumns + 2].as<std::string>()),
               trim_decimal(row[kKeyColumns + 3].as<std::string>())};
    out.push_back(std::move(k));
  }
  return out;
}

}  // namespace lagoon::db
