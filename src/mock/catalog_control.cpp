#include "lagoon/mock/catalog_control.hpp"

#include <algorithm>

#include "lagoon/mock/catalog.hpp"
#include "lagoon/mock/responses.hpp"

namespace lagoon::mock {
namespace {

using nlohmann::json;

bool known_model(std::string_view id) {
  return std::any_of(default_models().begin(), default_models().end(), [&](const json& m) { return m["id"] == id; });
}

// "drop": [model id …]: "" when it is, else what is wrong.
std::string read_drop(const json& value, std::vector<std::string>& drop) {
  if (!value.is_array()) return "drop must be an array of model ids";
  for (const auto& id : value) {
    if (!id.is_string()) return "drop must be an array of model ids";
    if (!known_model(id.get<std::string>())) return "drop: no model " + id.get<std::string>();
    drop.push_back(id.get<std::string>());
  }
  return {};
}

// "pricing": {model id: {…}}: "" when it is, else what is wrong.
std::string read_pricing(const json& value, json& pricing) {
  if (!value.is_object()) return "pricing must be an object of model id to pricing object";
  for (const auto& [id, spec] : value.items()) {
    if (!spec.is_object()) return "pricing must be an object of model id to pricing object";
    if (!known_model(id)) return "pricing: no model " + id;
  }
  pricing = value;
  return {};
}

// One field of the body: "" when it is a known field with a good value, else what is wrong.
std::string read_field(const std::string& key, const json& value, CatalogControl& c) {
  if (key == "status") {
    if (!value.is_number_integer() || value.get<std::int64_t>() < 100 || value.get<std::int64_t>() > 599)
      return "status must be an integer from 100 to 599";
    c.status = value.get<unsigned>();
    return {};
  }
  if (key == "malformed") {
    if (!value.is_boolean()) return "malformed must be true or false";
    c.malformed = value.get<bool>();
    return {};
  }
  if (key == "drop") return read_drop(value, c.drop);
  if (key == "pricing") return read_pricing(value, c.pricing);
  return "unknown field " + key + " (status, malformed, drop, pricing)";
}

}  // namespace

std::optional<CatalogControl> parse_catalog_control(std::string_view body, std::string& problem) {
  const json doc = json::parse(body, nullptr, false);
  if (!doc.is_object()) {
    problem = "expected a JSON object";
    return std::nullopt;
  }
  CatalogControl control;
  for (const auto& [key, value] : doc.items()) {
    problem = read_field(key, value, control);
    if (!problem.empty()) return std::nullopt;
  }
  return control;
}

Catalog controlled_catalog(CatalogControl control) {
  json models = json::array();
  for (const auto& m : default_models()) {
    const std::string id = m["id"];
    if (std::find(control.drop.begin(), control.drop.end(), id) != control.drop.end()) continue;
    models.push_back(m);
    if (auto it = control.pricing.find(id); it != control.pricing.end()) models.back()["model_spec"]["pricing"] = *it;
  }
  return {std::move(control), std::move(models)};
}

CatalogAnswer catalog_answer(const Catalog& catalog, std::string_view path, std::string_view type) {
  std::optional<std::string> body;
  if (path == "/models")
    body = models_body(type, catalog.models);
  else if (path == "/models/traits")
    body = model_traits_body(type, catalog.models);
  else if (path == "/models/compatibility_mapping")
    body = compatibility_mapping_body(type, catalog.models);
  else
    body = image_styles_body();
  if (!body) return {400, error_body(400, "unknown model type")};
  if (path == "/models" && catalog.control.status != 200)
    return {catalog.control.status, json{{"error", error_message_for(catalog.control.status)}}.dump()};
  // Cut where a dropped connection or a full proxy buffer would: valid so far, then nothing.
  if (path == "/models" && catalog.control.malformed) return {200, body->substr(0, body->size() / 2)};
  return {200, std::move(*body)};
}

}  // namespace lagoon::mock
