#include "lagoon/mock/catalog.hpp"

#include <array>

#include <nlohmann/json.hpp>

namespace lagoon::mock {
namespace {

using nlohmann::json;

constexpr std::int64_t kCreated = 1767225600;
constexpr std::array<std::string_view, 11> kTypes = {"asr",     "embedding", "image", "music", "text", "tts",
                                                     "upscale", "inpaint",   "video", "all",   "code"};

json price(double usd, double diem) { return {{"usd", usd}, {"diem", diem}}; }

json model(std::string id, std::string type, std::string name, json pricing, json traits, json extra_spec = {}) {
  json spec = {{"name", std::move(name)},
               {"description", "A model of lagoon-mock-upstream."},
               {"modelSource", "https://example.invalid/mock"},
               {"offline", false},
               {"privacy", "private"},
               {"beta", false},
               {"betaModel", false},
               {"pricing", std::move(pricing)},
               {"traits", std::move(traits)}};
  if (extra_spec.is_object()) spec.update(extra_spec);
  json m = {{"id", std::move(id)},     {"object", "model"},       {"created", kCreated},
            {"owned_by", "venice.ai"}, {"type", std::move(type)}, {"model_spec", std::move(spec)}};
  // OpenAI's context_length mirrors availableContextTokens, for text models only (Venice's ModelResponse).
  if (m["model_spec"].contains("availableContextTokens"))
    m["context_length"] = m["model_spec"]["availableContextTokens"];
  return m;
}

json text_model(std::string id, std::string name, json traits, bool code, bool reasoning, bool vision) {
  json capabilities = {{"optimizedForCode", code},        {"quantization", "fp8"},
                       {"supportsFunctionCalling", true}, {"supportsAudioInput", false},
                       {"supportsReasoning", reasoning},  {"supportsReasoningEffort", reasoning},
                       {"supportsResponseSchema", true},  {"supportsMultipleImages", vision},
                       {"supportsVision", vision},        {"supportsVideoInput", false},
                       {"supportsWebSearch", true},       {"supportsLogProbs", true},
                       {"supportsTeeAttestation", false}, {"supportsE2EE", false},
                       {"supportsXSearch", false}};
  return model(std::move(id), "text", std::move(name), {{"input", price(0.7, 7)}, {"output", price(2.8, 28)}},
               std::move(traits),
               {{"availableContextTokens", 131072},
                {"maxCompletionTokens", 32768},
                {"capabilities", std::move(capabilities)},
                {"constraints", {{"temperature", {{"default", 0.8}}}, {"top_p", {{"default", 0.9}}}}}});
}

// Priced as Anthropic's models are on Venice: cache reads at a tenth of the input price, cache writes at
// 1.25 times it, and an extended tier above 200k prompt tokens that applies to the whole request. The one
// model whose cost uses every rate.
json cached_model() {
  json m = text_model("claude-mock-sonnet", "Claude Mock Sonnet", json::array(), false, true, true);
  m["model_spec"]["pricing"] = {{"input", price(3, 30)},
                                {"output", price(15, 150)},
                                {"cache_input", price(0.3, 3)},
                                {"cache_write", price(3.75, 37.5)},
                                {"extended",
                                 {{"context_token_threshold", 200000},
                                  {"input", price(6, 60)},
                                  {"output", price(22.5, 225)},
                                  {"cache_input", price(0.6, 6)},
                                  {"cache_write", price(7.5, 75)}}}};
  m["model_spec"]["availableContextTokens"] = 1000000;
  m["context_length"] = 1000000;
  return m;
}

// Built once, on first use (a function-local static, so thread-safe); the order is the answer's order.
const json& catalog() {
  static const json all = [] {
    json upscale = {{"2x", price(0.02, 0.2)}, {"4x", price(0.08, 0.8)}};
    return json::array({
        text_model("llama-3.3-70b", "Llama 3.3 70B", {"default", "function_calling_default"}, false, false, false),
        text_model("qwen3-235b", "Qwen 3 235B", {"default_reasoning"}, false, true, false),
        text_model("mistral-31-24b", "Mistral 3.1 24B", {"default_vision"}, false, false, true),
        text_model("venice-uncensored", "Venice Uncensored", {"most_uncensored", "fastest"}, false, false, false),
        text_model("qwen3-coder-480b-a35b-instruct", "Qwen 3 Coder 480B", {"default_code"}, true, false, false),
        cached_model(),
        model("text-embedding-bge-m3", "embedding", "BGE-M3", {{"input", price(0.15, 1.5)}, {"output", price(0.6, 6)}},
              {"default"},
              {{"embeddingDimensions", 1024}, {"maxInputTokens", 8192}, {"supportsCustomDimensions", true}}),
        model(
            "venice-sd35", "image", "Venice SD35", {{"generation", price(0.01, 0.1)}, {"upscale", upscale}},
            {"default", "eliza-default"},
            {{"constraints",
              {{"promptCharacterLimit", 1500}, {"steps", {{"default", 25}, {"max", 30}}}, {"widthHeightDivisor", 16}}},
             {"supportsStyleReferences", false}}),
        model("hidream", "image", "HiDream", {{"generation", price(0.02, 0.2)}, {"upscale", upscale}},
              {"highest_quality"}),
        model("tts-kokoro", "tts", "Kokoro TTS", {{"input", price(3.5, 35)}}, {"default"},
              {{"voices", {"af_sky", "af_bella", "am_adam"}},
               {"default_voice", "af_sky"},
               {"supported_formats", {"mp3", "opus", "aac", "flac", "wav", "pcm"}},
               {"default_format", "mp3"},
               {"supports_speed", true}}),
        model("nvidia/parakeet-tdt-0.6b-v3", "asr", "Parakeet TDT 0.6B v3",
              {{"per_audio_second", price(0.0001, 0.0001)}}, {"default"}),
        model("openai/whisper-large-v3", "asr", "Whisper Large v3", {{"per_audio_second", price(0.0002, 0.0002)}},
              json::array()),
        model("upscaler", "upscale", "Upscaler", {{"upscale", upscale}}, {"default"}),
        model("firered-image-edit", "inpaint", "FireRed Image Edit", {{"inpaint", price(0.04, 0.04)}}, {"default"}),
        model("wan-2.5-preview-text-to-video", "video", "Wan 2.5 Preview",
              {{"durations", {{"5s", {{"usd", 0.87}, {"diem", 0.87}, {"min_seconds", 1}, {"max_seconds", 5}}}}}},
              {"default"}),
        model("mock-music-1", "music", "Mock Music", {{"per_second", price(0.005, 0.005)}}, {"default"}),
    });
  }();
  return all;
}

bool matches(const json& m, std::string_view type) {
  if (type == "all") return true;
  if (type == "code") return m["type"] == "text" && m["model_spec"]["capabilities"].value("optimizedForCode", false);
  return m["type"] == type;
}

std::string_view or_text(std::string_view type) { return type.empty() ? "text" : type; }

json compatibility(std::string_view type) {
  static const json by_type = {
      {"text", {{"gpt-4o", "llama-3.3-70b"}, {"gpt-4o-mini", "venice-uncensored"}, {"o3-mini", "qwen3-235b"}}},
      {"embedding",
       {{"text-embedding-3-small", "text-embedding-bge-m3"}, {"text-embedding-3-large", "text-embedding-bge-m3"}}},
      {"image", {{"dall-e-3", "venice-sd35"}, {"gpt-image-1", "hidream"}}},
      {"tts", {{"tts-1", "tts-kokoro"}, {"tts-1-hd", "tts-kokoro"}}},
      {"asr", {{"whisper-1", "openai/whisper-large-v3"}}}};
  if (type == "all") {
    json merged = json::object();
    for (const auto& [t, mapping] : by_type.items()) merged.update(mapping);
    return merged;
  }
  if (type == "code") return {{"gpt-4.1", "qwen3-coder-480b-a35b-instruct"}};
  auto it = by_type.find(std::string(type));
  return it == by_type.end() ? json::object() : *it;
}

bool lists(const json& models, std::string_view id) {
  for (const auto& m : models)
    if (m["id"] == id) return true;
  return false;
}

}  // namespace

const json& default_models() { return catalog(); }

const json* model_pricing(const json& models, std::string_view model) {
  // Venice prices a model named with its parameters ("venice-uncensored:enable_web_search=on") as the model.
  model = model.substr(0, model.find(':'));
  for (const auto& m : models)
    if (m["id"] == model) return &m["model_spec"]["pricing"];
  return nullptr;
}

bool known_model_type(std::string_view type) {
  for (auto t : kTypes)
    if (t == type) return true;
  return false;
}

std::optional<std::string> models_body(std::string_view type, const json& models) {
  type = or_text(type);
  if (!known_model_type(type)) return std::nullopt;
  json data = json::array();
  for (const auto& m : models)
    if (matches(m, type)) data.push_back(m);
  return json{{"object", "list"}, {"type", type}, {"data", std::move(data)}}.dump();
}

std::optional<std::string> model_traits_body(std::string_view type, const json& models) {
  type = or_text(type);
  if (!known_model_type(type)) return std::nullopt;
  json data = json::object();
  for (const auto& m : models)
    if (matches(m, type))
      for (const auto& trait : m["model_spec"]["traits"])
        if (!data.contains(trait.get<std::string>())) data[trait.get<std::string>()] = m["id"];
  return json{{"object", "list"}, {"type", type}, {"data", std::move(data)}}.dump();
}

std::optional<std::string> compatibility_mapping_body(std::string_view type, const json& models) {
  type = or_text(type);
  if (!known_model_type(type)) return std::nullopt;
  const json mapping = compatibility(type);  // named: a range-for over a temporary's items() dangles
  json data = json::object();
  for (const auto& [from, to] : mapping.items())
    if (lists(models, to.get<std::string>())) data[from] = to;
  return json{{"object", "list"}, {"type", type}, {"data", std::move(data)}}.dump();
}

std::string image_styles_body() {
  return json{{"object", "list"},
              {"data", {"3D Model", "Analog Film", "Anime", "Cinematic", "Comic Book", "Digital Art", "Photographic"}}}
      .dump();
}

}  // namespace lagoon::mock
