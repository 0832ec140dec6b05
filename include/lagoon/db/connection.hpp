// Opening Postgres connections with Lagoon's deadlines applied (connect timeout, statement timeout,
// application_name), so no caller can forget them. Blocking: call only from the CLI or a blocking pool
// thread, never from a reactor thread.
#pragma once

#include <memory>
#include <string>

#include <pqxx/connection>

#include "lagoon/config/config.hpp"

namespace lagoon::db {

// The libpq connection string with connect_timeout and application_name added unless already present.
// Works for both URI ("postgresql://…") and keyword ("host=… dbname=…") forms.
std::string connection_string(const std::string& database_url, config::Millis connect_timeout);

// Opens a connection and sets statement_timeout. Throws pqxx::broken_connection on failure.
std::unique_ptr<pqxx::connection> connect(const config::Config& cfg);

}  // namespace lagoon::db
