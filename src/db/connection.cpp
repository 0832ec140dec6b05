#include "lagoon/db/connection.hpp"

#include <pqxx/pqxx>

#include "lagoon/config/url.hpp"
#include "lagoon/db/accounts.hpp"

namespace lagoon::db {
namespace {

bool is_uri(const std::string& s) { return s.rfind("postgresql://", 0) == 0 || s.rfind("postgres://", 0) == 0; }

void add_parameter(std::string& conninfo, bool uri, const std::string& key, const std::string& value) {
  if (conninfo.find(key + "=") != std::string::npos) return;  // the operator's own setting wins
  if (uri) conninfo += (conninfo.find('?') == std::string::npos ? "?" : "&") + key + "=" + value;
  else conninfo += " " + key + "=" + value;
}

}  // namespace

std::string connection_string(const std::string& database_url, config::Millis connect_timeout) {
  std::string s = database_url;
  const bool uri = is_uri(s);
  // libpq's connect_timeout has whole-second resolution and treats 1 as 2 (libpq docs): round up.
  auto secs = std::max<long long>(2, (connect_timeout.count() + 999) / 1000);
  add_parameter(s, uri, "connect_timeout", std::to_string(secs));
  add_parameter(s, uri, "application_name", "lagoon");
  return s;
}

std::unique_ptr<pqxx::connection> connect(const config::Config& cfg) {
  std::unique_ptr<pqxx::connection> conn;
  try {
    conn = std::make_unique<pqxx::connection>(connection_string(cfg.database_url, cfg.db_connect_timeout));
  } catch (const pqxx::broken_connection& e) {
    // libpq quotes pieces of a URL it cannot read, the password included: the message goes to logs.
    throw pqxx::broken_connection(config::redact_credentials_of(cfg.database_url, e.what()));
  }
  // A broken connection is the pool's to close and reopen, never libpq's to re-establish inside a
  // lease behind the pool's back (on a new socket the pool's watchdog would not know).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  conn->inhibit_reactivation(true);
#pragma GCC diagnostic pop
  pqxx::nontransaction n(*conn);
  n.exec("SET statement_timeout = " + std::to_string(cfg.db_statement_timeout.count()));
  n.commit();
  if (cfg.db_prepared_statements) prepare_statements(*conn);
  return conn;
}

}  // namespace lagoon::db
