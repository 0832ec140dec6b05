#include "lagoon/db/migrations.hpp"

#include <set>

#include <pqxx/pqxx>

namespace lagoon::db {
namespace {

// An arbitrary constant shared by every Lagoon instance: "lagoon" in ASCII.
constexpr long long kMigrationLockId = 0x6c61676f6f6e;

constexpr const char* kCreateLedger =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version integer PRIMARY KEY,"
    " name text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now())";
constexpr const char* kSelectApplied = "SELECT version FROM schema_migrations";
constexpr const char* kRecordApplied = "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)";

}  // namespace

MigrationReport migrate(pqxx::connection& conn, const std::vector<Migration>& migrations) {
  {
    pqxx::nontransaction n(conn);
    n.exec_params("SELECT pg_advisory_lock($1)", kMigrationLockId);
  }
  MigrationReport report;
  try {
    std::set<int> applied;
    {
      pqxx::work w(conn);
      w.exec(kCreateLedger);
      for (const auto& row : w.exec(kSelectApplied)) applied.insert(row[0].as<int>());
      w.commit();
    }
    for (const auto& m : migrations) {
      if (applied.count(m.version)) continue;
      pqxx::work w(conn);
      w.exec(m.sql);
      w.exec_params(kRecordApplied, m.version, m.name);
      w.commit();
      applied.insert(m.version);
      report.applied.push_back(m.version);
    }
    report.current_version = applied.empty() ? 0 : *applied.rbegin();
  } catch (...) {
    // The lock is per session: if the connection broke it is released already, so a failed unlock
    // must not hide the original error.
    try {
      pqxx::nontransaction n(conn);
      n.exec_params("SELECT pg_advisory_unlock($1)", kMigrationLockId);
    } catch (...) {
    }
    throw;
  }
  pqxx::nontransaction n(conn);
  n.exec_params("SELECT pg_advisory_unlock($1)", kMigrationLockId);
  return report;
}

}  // namespace lagoon::db
