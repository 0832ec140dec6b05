#include "lagoon/db/prices.hpp"

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "lagoon/log/log.hpp"
#include "lagoon/util/hex_digest.hpp"

namespace lagoon::db {
namespace {

using nlohmann::json;

json to_document(const PriceMap& prices) {
  json doc = json::object();
  for (const auto& [model, price] : prices) doc[model] = money::to_json(price);
  return doc;
}


PriceMap from_document(const std::string& text, const char* what) {
  PriceMap out;
  const json doc = json::parse(text, nullptr, false);
  if (!doc.is_object()) {
    log::warn("stored prices are not a JSON object; ignored", {{"table", what}});
    return out;
  }
  for (const auto& [model, price] : doc.items()) {
    try {
      out.emplace(model, money::from_json(price));
    } catch (const json::exception& e) {
      log::warn("a stored price cannot be read; the model is unpriced", {{"table", what}, {"model", model}});
    }
  }
  return out;
}

}  // namespace

std::optional<StoredTable> latest_prices(pqxx::connection& c) {
  pqxx::read_transaction tx(c);
  const pqxx::result r = tx.exec(
      "SELECT version, to_char(fetched_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), prices::text "
      "FROM price_tables ORDER BY version DESC LIMIT 1");
  if (r.empty()) return std::nullopt;
  StoredTable t;
  t.version = r[0][0].as<std::int64_t>();
  t.fetched_at = r[0][1].as<std::string>();
  t.prices = from_document(r[0][2].as<std::string>(), "price_tables");
  return t;
}

std::int64_t store_prices(pqxx::connection& c, const PriceMap& prices) {
  const std::string text = to_document(prices).dump();
  // The document's keys are sorted (nlohmann's object is a std::map), so equal tables dump equally.
  const std::string digest = util::hex_digest(text, EVP_sha256());
  pqxx::work tx(c);
  // Instances refreshing at once may each insert the same table; harmless, and the newest row wins.
  const pqxx::result latest = tx.exec("SELECT version, digest FROM price_tables ORDER BY version DESC LIMIT 1");
  if (!latest.empty() && latest[0][1].as<std::string>() == digest) return latest[0][0].as<std::int64_t>();
  const auto version = tx.exec_params1("INSERT INTO price_tables (digest, models, prices) VALUES ($1, $2, $3::jsonb) "
                                       "RETURNING version",
                                       digest, static_cast<std::int64_t>(prices.size()), text)[0]
                           .as<std::int64_t>();
  tx.commit();
  return version;
}

PriceMap load_overrides(pqxx::connection& c) {
  pqxx::read_transaction tx(c);
  json doc = json::object();
  for (const auto& row : tx.exec("SELECT model, prices::text FROM price_overrides"))
    doc[row[0].as<std::string>()] = json::parse(row[1].as<std::string>(), nullptr, false);
  return from_document(doc.dump(), "price_overrides");
}

void set_override(pqxx::connection& c, const std::string& model, const money::Price& price) {
  pqxx::work tx(c);
  tx.exec_params("INSERT INTO price_overrides (model, prices) VALUES ($1, $2::jsonb) ON CONFLICT (model) DO UPDATE "
                 "SET prices = EXCLUDED.prices, updated_at = now()",
                 model, money::to_json(price).dump());
  tx.commit();
}

bool delete_override(pqxx::connection& c, const std::string& model) {
  pqxx::work tx(c);
  const auto r = tx.exec_params("DELETE FROM price_overrides WHERE model = $1", model);
  tx.commit();
  return r.affected_rows() > 0;
}

money::PriceTable load_price_table(pqxx::connection& c) {
  money::PriceTable t;
  if (auto stored = latest_prices(c)) {
    t.version = stored->version;
    t.upstream = std::move(stored->prices);
  }
  t.overrides = load_overrides(c);
  return t;
}

}  // namespace lagoon::db
