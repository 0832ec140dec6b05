// rotate_key (db/accounts.hpp): a successor for a key, and the old key's end of grace, in one transaction.
#include <pqxx/pqxx>

#include "account_rows.hpp"

namespace lagoon::db {
namespace {

// Locked until the rotation commits: a concurrent revocation or rotation of the same key waits, then
// sees this one's outcome.
constexpr const char* kOldKeyForUpdate =
    "SELECT k.is_active AND (k.revoked_at IS NULL OR k.revoked_at > now()), u.is_active, u.name "
    "FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.id = $1 FOR UPDATE OF k";
// Everything that decides what the key may do is copied; lineage_id names the chain's first key, so
// its rate limits and budget (auth::KeyRecord::limit_id) carry on across the rotation.
constexpr const char* kInsertSuccessor =
    "INSERT INTO api_keys (user_id, name, prefix, digest, rpm_limit, tpm_limit, budget_usd, budget_period, "
    "expires_at, allowed_models, allowed_endpoints, max_concurrent, tags, lineage_id) "
    "SELECT user_id, name, $2, $3, rpm_limit, tpm_limit, budget_usd, budget_period, expires_at, allowed_models, "
    "allowed_endpoints, max_concurrent, tags, COALESCE(lineage_id, id) FROM api_keys WHERE id = $1 "
    "RETURNING " LAGOON_KEY_COLUMNS;
// LEAST skips a NULL and keeps an earlier end: rotating a key still in its grace never lengthens it.
// Without grace the key is revoked at once, as `keys revoke` would.
constexpr const char* kRetireOldKey =
    "UPDATE api_keys SET revoked_at = LEAST(revoked_at, now() + $2::bigint * interval '1 second'), "
    "replaced_by = $3, is_active = is_active AND $2::bigint > 0 WHERE id = $1 RETURNING " LAGOON_TS("revoked_at");

}  // namespace

RotatedKey rotate_key(pqxx::connection& conn, const std::string& pepper, std::int64_t key_id,
                      std::int64_t grace_seconds) {
  if (grace_seconds < 0 || grace_seconds > kMaxGraceSeconds)
    throw AccountsError(AccountsError::Kind::invalid,
                        "grace must be 0 to " + std::to_string(kMaxGraceSeconds) + " seconds (366 days)", "grace");
  pqxx::work w(conn);
  const auto old = w.exec_params(kOldKeyForUpdate, key_id);
  if (old.empty()) throw AccountsError(AccountsError::Kind::not_found, "no key with id " + std::to_string(key_id));
  if (!old[0][0].as<bool>())
    throw AccountsError(AccountsError::Kind::invalid,
                        "key " + std::to_string(key_id) + " is revoked: only a key in use can be rotated");
  if (!old[0][1].as<bool>())
    throw AccountsError(AccountsError::Kind::invalid, "user \"" + old[0][2].as<std::string>() + "\" is deactivated");
  const auto fresh = rows::new_key(pepper);
  const pqxx::binarystring digest(fresh.digest.data(), fresh.digest.size());
  auto successor = w.exec_params(kInsertSuccessor, key_id, fresh.prefix, digest);
  RotatedKey out;
  out.key = rows::created(fresh, rows::key_from(successor[0]));
  out.replaces = key_id;
  out.old_key_revoked_at = w.exec_params(kRetireOldKey, key_id, grace_seconds, out.key.id)[0][0].as<std::string>();
  w.commit();
  return out;
}

}  // namespace lagoon::db
