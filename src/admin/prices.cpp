// The price operations of admin/operations.hpp: the table as Postgres holds it, and the overrides.
#include <nlohmann/json.hpp>

#include "lagoon/admin/operations.hpp"
#include "lagoon/db/prices.hpp"

namespace lagoon::admin {
namespace {

constexpr std::size_t kMaxModelId = 256;

json entry(const std::string& model, const char* source, bool in_force, const money::Price& price) {
  return {{"model", model}, {"source", source}, {"in_force", in_force}, {"price", money::to_json(price)}};
}

// A model id goes into a JSON document, logs and SQL parameters; the gateway matches it byte for byte.
void check_model(const std::string& model) {
  if (model.empty() || model.size() > kMaxModelId)
    throw db::AccountsError(db::AccountsError::Kind::invalid, "a model id must be 1..256 characters", "model");
  for (unsigned char c : model)
    if (c <= 0x20 || c == 0x7f)
      throw db::AccountsError(db::AccountsError::Kind::invalid, "a model id must not contain spaces or control characters",
                              "model");
}

}  // namespace

Outcome list_prices(pqxx::connection& conn) {
  const auto stored = db::latest_prices(conn);
  const auto overrides = db::load_overrides(conn);
  const db::PriceMap none;
  const db::PriceMap& upstream = stored ? stored->prices : none;
  json models = json::array();
  auto o = overrides.begin();
  auto u = upstream.begin();
  // Both maps are sorted by model: merged, an override first, then Venice's price it replaces.
  while (o != overrides.end() || u != upstream.end()) {
    const bool take_override = u == upstream.end() || (o != overrides.end() && o->first <= u->first);
    if (take_override) {
      models.push_back(entry(o->first, "override", true, o->second));
      ++o;
    } else {
      models.push_back(entry(u->first, "upstream", !overrides.count(u->first), u->second));
      ++u;
    }
  }
  json body{{"version", stored ? json(stored->version) : json(nullptr)},
            {"fetched_at", stored ? json(stored->fetched_at) : json(nullptr)},
            {"models", std::move(models)}};
  return {std::move(body), {}, {}};
}

Outcome set_price(pqxx::connection& conn, const std::string& model, const money::Price& price) {
  check_model(model);
  db::set_override(conn, model, price);
  return {entry(model, "override", true, price), {}, "the price of \"" + model + "\" is set", true};
}

Outcome delete_price(pqxx::connection& conn, const std::string& model) {
  if (!db::delete_override(conn, model))
    throw db::AccountsError(db::AccountsError::Kind::not_found, "no price override for model \"" + model + "\"");
  return {json{{"model", model}, {"deleted", true}}, {}, "the price override of \"" + model + "\" is deleted", true};
}

}  // namespace lagoon::admin
