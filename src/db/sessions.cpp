#include "lagoon/db/sessions.hpp"

#include <pqxx/pqxx>

namespace lagoon::db {

namespace {

// Session changes of one key, one at a time across every instance: under READ COMMITTED a racing
// transaction's FOR UPDATE skips the row the winner deactivated and cannot see the row it inserted, so
// without this two instances switching one key between models meet on the one-active-session index
// (found by Cluster.OneInstanceDrainingUnderLoadCostsClientsNothing). Transaction-scoped, so it works
// through PgBouncer in transaction mode; the first number keeps these locks apart from other uses.
constexpr const char* kLockKey = "SELECT pg_advisory_xact_lock(1397049173, ($1::bigint % 2147483647)::int)";
constexpr const char* kActive =
    "SELECT id, model, (extract(epoch FROM expires_at) * 1000)::bigint, expires_at > now() "
    "FROM sessions WHERE api_key_id = $1 AND is_active FOR UPDATE";
constexpr const char* kDeactivate = "UPDATE sessions SET is_active = false WHERE api_key_id = $1 AND is_active";
constexpr const char* kCreate =
    "INSERT INTO sessions (api_key_id, user_id, model, expires_at) "
    "VALUES ($1, $2, $3, now() + $4 * interval '1 millisecond') "
    "RETURNING id, model, (extract(epoch FROM expires_at) * 1000)::bigint";

Session attempt(pqxx::connection& conn, std::int64_t key_id, std::int64_t user_id, const std::string& model,
                std::chrono::milliseconds ttl) {
  pqxx::work w(conn);
  w.exec_params(kLockKey, key_id);
  auto current = w.exec_params(kActive, key_id);
  if (!current.empty() && current[0][1].as<std::string>() == model && current[0][3].as<bool>()) {
    Session s{current[0][0].as<std::string>(), model, current[0][2].as<std::int64_t>()};
    w.commit();
    return s;
  }
  if (!current.empty()) w.exec_params(kDeactivate, key_id);
  auto created = w.exec_params(kCreate, key_id, user_id, model, static_cast<long long>(ttl.count()));
  Session s{created[0][0].as<std::string>(), created[0][1].as<std::string>(), created[0][2].as<std::int64_t>()};
  w.commit();
  return s;
}

}  // namespace

Session session_for(pqxx::connection& conn, std::int64_t api_key_id, std::int64_t user_id, const std::string& model,
                    std::chrono::milliseconds ttl) {
  try {
    return attempt(conn, api_key_id, user_id, model, ttl);
  } catch (const pqxx::unique_violation&) {
    // Only a writer that does not take kLockKey (an older instance during a rolling upgrade) can still
    // get here: by now there is an active row to find (or to replace, if it is for another model).
    return attempt(conn, api_key_id, user_id, model, ttl);
  }
}

}  // namespace lagoon::db
