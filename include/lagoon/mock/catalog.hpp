// What lagoon-mock-upstream answers on Venice's catalog routes — GET /models, /models/traits,
// /models/compatibility_mapping and /image/styles — in Venice's shapes, from a small fixed model list
// (a model or two per type, each with a model_spec of pricing, capabilities, traits …). Byte-for-byte
// the same on every run so a gateway's cached copy can be compared with the mock's. Pure; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace lagoon::mock {

// The fixed model list, in the answer's order.
const nlohmann::json& default_models();
// model_spec.pricing of `model` in `models` (a ":parameters" suffix ignored); nullptr when not listed.
const nlohmann::json* model_pricing(const nlohmann::json& models, std::string_view model);

// The model types Venice's ?type= accepts: asr, embedding, image, music, text, tts, upscale, inpaint,
// video, plus "all" and "code" (text models optimized for code).
bool known_model_type(std::string_view type);

// Each from `models` (default_models(), or the list a test changed: catalog_control.hpp).
// {"object": "list", "type": type, "data": [model …]}; type "" means "text", as on Venice.
// nullopt for a type Venice does not know (the route answers 400).
std::optional<std::string> models_body(std::string_view type = "text", const nlohmann::json& models = default_models());
// {"object": "list", "type": type, "data": {trait: model id}} from the models' model_spec.traits.
std::optional<std::string> model_traits_body(std::string_view type = "text",
                                             const nlohmann::json& models = default_models());
// {"object": "list", "type": type, "data": {OpenAI model id: Venice model id}}, only to models listed.
std::optional<std::string> compatibility_mapping_body(std::string_view type = "text",
                                                      const nlohmann::json& models = default_models());
// {"object": "list", "data": [style name …]}.
std::string image_styles_body();

}  // namespace lagoon::mock
