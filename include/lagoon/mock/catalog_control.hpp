// How a test changes lagoon-mock-upstream's catalog while it runs (POST /mock/catalog), to exercise a
// gateway's price refresh: /models failing or not JSON, models gone, prices changed. What is parsed here
// becomes a Catalog — the model list every catalog answer and every chat's cost are then made from. Pure;
// a Catalog is immutable once built, so any number of threads may read one (the server swaps whole ones).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace lagoon::mock {

// What a test asked for; the default asks for nothing.
struct CatalogControl {
  unsigned status = 200;                              // GET /models (any type) answers this, with Venice's error body
  bool malformed = false;                             // GET /models answers 200 with a body that is not JSON
  std::vector<std::string> drop;                      // model ids left out of every catalog answer
  nlohmann::json pricing = nlohmann::json::object();  // model id → the model_spec.pricing it gets instead
};

// POST /mock/catalog's body: {"status": 100..599, "malformed": bool, "drop": [model id …],
// "pricing": {model id: {…}}}, every field optional ({} is the default). nullopt with `problem` when it is
// not such an object, has another field, or names a model the catalog does not have.
std::optional<CatalogControl> parse_catalog_control(std::string_view body, std::string& problem);

struct Catalog {
  CatalogControl control;
  nlohmann::json models;  // default_models() without control.drop, with control.pricing
};
Catalog controlled_catalog(CatalogControl control);

struct CatalogAnswer {
  unsigned status = 200;
  std::string body;
};
// The answer to GET `path` — /models, /models/traits, /models/compatibility_mapping or /image/styles, as
// under the API base — with ?type=`type`: 400 for a type Venice does not know (error_body's, as every
// route's refusal; before anything else, as Venice checks); for /models, control.status with {"error": message} (Venice's StandardError) or, when
// malformed, the first half of the answer; else 200 with the body.
CatalogAnswer catalog_answer(const Catalog& catalog, std::string_view path, std::string_view type);

}  // namespace lagoon::mock
