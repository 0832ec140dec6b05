// Sessions in Postgres: each key has at most one active session, bound to one model, until it expires.
// Blocking; call on a leased connection. Thread-safety: as the connection.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include <pqxx/connection>

namespace lagoon::db {

struct Session {
  std::string id;  // uuid
  std::string model;
  std::int64_t expires_at_ms = 0;  // Unix time, milliseconds
  bool operator==(const Session&) const = default;
};

// The key's active session when it is unexpired and for `model`; otherwise, in one transaction, the
// old one is deactivated and a new one created (expiring after `ttl`). Concurrent callers for the same
// key, in any process, end with the same session: the active row is locked, and the partial unique
// index on active sessions settles a race between two first sessions.
Session session_for(pqxx::connection& conn, std::int64_t api_key_id, std::int64_t user_id, const std::string& model,
                    std::chrono::milliseconds ttl);

}  // namespace lagoon::db
