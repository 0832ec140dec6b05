// Schema migrations: numbered SQL files from config/migrations/, embedded in the binary at build time,
// applied in order, each in its own transaction, recorded in schema_migrations. Concurrent runs (several
// instances starting at once) serialize on an advisory lock, so applying is idempotent and race-free.
// Blocking; not thread-safe on one connection.
#pragma once

#include <string>
#include <vector>

#include <pqxx/connection>

namespace lagoon::db {

struct Migration {
  int version;
  std::string name;
  std::string sql;
};

// The migrations compiled into this binary, in version order.
const std::vector<Migration>& embedded_migrations();

struct MigrationReport {
  std::vector<int> applied;  // versions applied by this call
  int current_version = 0;   // highest version present afterwards
};

MigrationReport migrate(pqxx::connection& conn, const std::vector<Migration>& migrations);

}  // namespace lagoon::db
