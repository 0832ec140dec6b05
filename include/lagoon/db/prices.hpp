// Prices in Postgres: Venice's table as last fetched (price_tables, one row per table that differed from
// the one before it) and the operator's overrides (price_overrides). Shared by the gateway's refresher,
// the CLI and the admin API. Each call is one short statement or transaction.
// Blocking; call from the CLI or a blocking pool thread. Not thread-safe on one connection.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include <pqxx/connection>

#include "lagoon/money/price.hpp"

namespace lagoon::db {

using PriceMap = std::map<std::string, money::Price, std::less<>>;

struct StoredTable {
  std::int64_t version = 0;
  std::string fetched_at;  // RFC 3339, UTC
  PriceMap prices;
};

// The newest stored table; nullopt when none was ever stored.
std::optional<StoredTable> latest_prices(pqxx::connection& c);

// Stores `prices` as the newest table unless it equals the newest one already there; its version either
// way. Rows the JSON of a stored table cannot be read from (edited by hand) are skipped, not fatal.
std::int64_t store_prices(pqxx::connection& c, const PriceMap& prices);

PriceMap load_overrides(pqxx::connection& c);
void set_override(pqxx::connection& c, const std::string& model, const money::Price& price);
// False when the model had no override.
bool delete_override(pqxx::connection& c, const std::string& model);

// The whole table as the gateway would apply it now: the newest stored table with the overrides above it.
money::PriceTable load_price_table(pqxx::connection& c);

}  // namespace lagoon::db
