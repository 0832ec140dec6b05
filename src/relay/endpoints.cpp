#include "lagoon/relay/endpoints.hpp"

#include <charconv>

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "lagoon/accounting/tokens.hpp"
#include "lagoon/http/ascii.hpp"

namespace lagoon::relay {

using nlohmann::json;
using usage::Endpoint;
using Body = EndpointSpec::Body;

constexpr const char* kTwoModels = "model and modelId name different models: give one.";

const std::vector<EndpointSpec>& endpoint_specs() {
  static const std::vector<EndpointSpec> specs{
      {"/embeddings", Endpoint::embeddings, Meter::embeddings, Body::json},
      {"/images/generations", Endpoint::images, Meter::image_list, Body::json},
      {"/image/generate", Endpoint::images, Meter::venice_images, Body::json},
      {"/image/upscale", Endpoint::images, Meter::one_image, Body::json_or_multipart, "upscaler"},
      // Venice's edit model when the request names none (its OpenAPI document, 2026-12).
      {"/image/edit", Endpoint::images, Meter::one_image, Body::json_or_multipart, "firered-image-edit"},
      {"/image/background-remove", Endpoint::images, Meter::one_image, Body::json_or_multipart, "", false},
      {"/audio/speech", Endpoint::audio, Meter::speech, Body::json},
      {"/audio/transcriptions", Endpoint::audio, Meter::transcription, Body::multipart},
      {"/responses", Endpoint::responses, Meter::responses, Body::json},
  };
  return specs;
}

namespace {

chat::InvalidRequest invalid(std::string message, std::optional<std::string> param = std::nullopt) {
  return {std::move(message), std::move(param)};
}

// The price tier image/generate asks for: "resolution", or "resolution/quality" (Venice's quality table).
std::string image_tier(const json& doc) {
  const auto res = doc.find("resolution");
  if (res == doc.end() || !res->is_string()) return "";
  std::string tier = res->get<std::string>();
  if (const auto q = doc.find("quality"); q != doc.end() && q->is_string()) tier += "/" + q->get<std::string>();
  return tier;
}

// Upscale's factor as Venice prices it ("2x", "4x"); 2 when the request leaves it to the default.
std::string upscale_tier(std::string_view scale) {
  if (scale.empty() || scale == "null") return "2x";
  double v = 0;
  const auto [end, ec] = std::from_chars(scale.data(), scale.data() + scale.size(), v);
  if (ec != std::errc{} || end != scale.data() + scale.size()) return "";
  return v > 2 ? "4x" : "2x";
}

std::optional<double> count_of(const json& body, const char* field) {
  const auto it = body.find(field);
  if (it == body.end() || it->is_null()) return 1.0;
  if (!it->is_number_integer() || it->get<long long>() < 1) return std::nullopt;
  return static_cast<double>(it->get<long long>());
}

std::size_t utf8_characters(std::string_view s) {
  return static_cast<std::size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

std::variant<EndpointRequest, chat::InvalidRequest> inspect_multipart(const EndpointSpec& spec,
                                                                      std::string_view content_type,
                                                                      std::string_view body, EndpointRequest req) {
  const auto boundary = multipart_boundary(content_type);
  if (!boundary) return invalid("A multipart/form-data body needs a boundary in its Content-Type.");
  const auto parts = form_parts(body, *boundary);
  if (!parts) return invalid("The multipart/form-data body is malformed.");
  req.multipart = true;
  bool file = false;
  for (const auto& p : *parts) {
    if (p.name == "model" || (p.name == "modelId" && spec.path == "/image/edit")) {
      const std::string param(p.name);
      if (const auto problem = chat::model_problem(p.value)) return invalid(*problem, param);
      if (req.model && *req.model != p.value) return invalid(kTwoModels, param);
      req.model = std::string(p.value);
    } else if (p.filename || p.name == "file" || p.name == "image") {
      if (p.name == "file" || p.name == "image") file = true;
      req.upload_bytes += p.value.size();
    }
  }
  if (spec.meter == Meter::transcription && !file) return invalid("A file to transcribe is required.", "file");
  if (spec.meter == Meter::one_image && !file) return invalid("An image is required.", "image");
  if (spec.meter == Meter::one_image) req.units = 1;
  if (spec.path == "/image/upscale") {
    std::string_view scale;
    for (const auto& p : *parts)
      if (p.name == "scale") scale = p.value;
    req.tier = upscale_tier(scale);
  }
  return req;
}

}  // namespace

namespace {

// The fields of a JSON body each meter needs; an error names the field.
std::optional<chat::InvalidRequest> read_fields(const EndpointSpec& spec, const json& doc, EndpointRequest& req) {
  auto flag = [&](const char* field) -> std::optional<bool> {
    const auto it = doc.find(field);
    if (it == doc.end() || it->is_null()) return false;
    if (!it->is_boolean()) return std::nullopt;
    return it->get<bool>();
  };
  switch (spec.meter) {
    case Meter::embeddings: {
      const auto input = doc.find("input");
      if (input == doc.end() || !(input->is_string() || input->is_array()))
        return invalid("input must be a string or an array.", "input");
      req.input_bytes = input->is_string() ? input->get_ref<const std::string&>().size() : input->dump().size();
      break;
    }
    case Meter::image_list:
      req.units = count_of(doc, "n");
      if (!req.units) return invalid("n must be a positive integer.", "n");
      break;
    case Meter::venice_images:
      req.units = count_of(doc, "variants");
      if (!req.units) return invalid("variants must be a positive integer.", "variants");
      req.tier = image_tier(doc);
      break;
    case Meter::one_image:
      req.units = 1;
      if (spec.path == "/image/upscale") req.tier = upscale_tier(doc.contains("scale") ? doc["scale"].dump() : "");
      break;
    case Meter::speech: {
      const auto input = doc.find("input");
      if (input == doc.end() || !input->is_string()) return invalid("input must be a string.", "input");
      req.units = static_cast<double>(utf8_characters(input->get_ref<const std::string&>()));
      const auto streaming = flag("streaming");
      if (!streaming) return invalid("streaming must be a boolean.", "streaming");
      req.stream = *streaming;
      break;
    }
    case Meter::transcription: break;  // multipart only: refused before
    case Meter::responses: {
      const auto stream = flag("stream");
      if (!stream) return invalid("stream must be a boolean.", "stream");
      req.stream = *stream;
      if (const auto m = doc.find("max_output_tokens"); m != doc.end() && m->is_number_integer())
        req.max_tokens = m->get<long long>();
      break;
    }
  }
  return std::nullopt;
}

}  // namespace

std::variant<EndpointRequest, chat::InvalidRequest> inspect(const EndpointSpec& spec, std::string_view content_type,
                                                            std::string_view body) {
  EndpointRequest req;
  req.body_bytes = body.size();
  const bool multipart = http::istarts_with(http::trim_ows(content_type), "multipart/");
  if ((spec.body == Body::multipart && !multipart) ||
      (multipart && !http::istarts_with(http::trim_ows(content_type), "multipart/form-data")))
    return invalid("This endpoint takes a multipart/form-data body (Content-Type: multipart/form-data).");
  if (multipart) {
    if (spec.body == Body::json) return invalid("This endpoint takes a JSON body.");
    return inspect_multipart(spec, content_type, body, std::move(req));
  }
  if (chat::nests_deeper_than(body, chat::kMaxJsonDepth))
    return invalid("The request body nests deeper than " + std::to_string(chat::kMaxJsonDepth) + " levels.");
  const json doc = chat::has_nul(body) ? json(json::value_t::discarded) : json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return invalid("The request body must be a JSON object.");
  // image/edit also takes Venice's deprecated `modelId`: read, so a key's model list judges the model
  // the upstream will use.
  for (const char* param : {"model", "modelId"}) {
    if (std::string_view(param) == "modelId" && spec.path != "/image/edit") continue;
    const auto m = doc.find(param);
    if (m == doc.end() || m->is_null()) continue;
    if (!m->is_string()) return invalid(std::string(param) + " must be a string.", param);
    const auto& name = m->get_ref<const std::string&>();
    if (const auto problem = chat::model_problem(name)) return invalid(*problem, param);
    if (req.model && *req.model != name) return invalid(kTwoModels, param);
    req.model = name;
  }
  if (auto bad = read_fields(spec, doc, req)) return std::move(*bad);
  return req;
}

namespace {

// The tokens of a parsed response object or response.completed event (responses_usage).
std::optional<Counted> usage_of_response(const json& doc) {
  if (!doc.is_object()) return std::nullopt;
  // A response object carries `usage`; a response.completed event carries the response.
  const json* response = &doc;
  if (const auto r = doc.find("response"); r != doc.end() && r->is_object()) response = &*r;
  const auto u = response->find("usage");
  if (u == response->end() || !u->is_object()) return std::nullopt;
  auto number = [&](const char* field) -> std::optional<long long> {
    const auto it = u->find(field);
    if (it == u->end() || !it->is_number_integer()) return std::nullopt;
    return it->get<long long>();
  };
  Counted c;
  c.prompt_tokens = number("input_tokens");
  c.completion_tokens = number("output_tokens");
  c.total_tokens = number("total_tokens");
  if (!c.prompt_tokens && !c.completion_tokens && !c.total_tokens) return std::nullopt;
  return c;
}

}  // namespace

std::optional<Counted> responses_usage(std::string_view json_text) {
  return usage_of_response(json::parse(json_text, nullptr, false));
}

Counted count_binary(const EndpointSpec& spec, const EndpointRequest& req) {
  Counted c;
  switch (spec.meter) {
    case Meter::venice_images:  // a binary answer is one image, whatever `variants` asked
    case Meter::one_image:
      c.units = 1;
      c.unit = usage::Unit::images;
      break;
    case Meter::image_list:
      c.units = req.units;
      c.unit = usage::Unit::images;
      break;
    case Meter::speech:
      c.units = req.units.value_or(0);
      c.unit = usage::Unit::characters;
      break;
    case Meter::transcription:
      c.units = static_cast<double>(req.upload_bytes);
      c.unit = usage::Unit::bytes;
      break;
    case Meter::embeddings:
    case Meter::responses:
      c.prompt_tokens = accounting::estimate_tokens(spec.meter == Meter::embeddings ? req.input_bytes : req.body_bytes);
      c.total_tokens = c.prompt_tokens;
      c.tokens_estimated = true;
      break;
  }
  return c;
}

Counted count_whole(const EndpointSpec& spec, const EndpointRequest& req, std::string_view content_type,
                    std::string_view body) {
  // Parsed once, and only for a meter that reads the answer (a Responses answer whatever its type, as
  // responses_usage reads it).
  const bool reads = spec.meter == Meter::responses ||
                     (spec.meter != Meter::one_image && spec.meter != Meter::speech &&
                      http::istarts_with(http::trim_ows(content_type), "application/json"));
  const json doc = reads ? json::parse(body, nullptr, false) : json(nullptr);
  const bool object = doc.is_object();
  Counted c = count_binary(spec, req);
  switch (spec.meter) {
    case Meter::embeddings: {
      if (!object) break;
      const auto u = doc.find("usage");
      if (u == doc.end() || !u->is_object()) break;
      const auto p = u->find("prompt_tokens");
      const auto t = u->find("total_tokens");
      if (p == u->end() || !p->is_number_integer()) break;
      c = Counted{};
      c.prompt_tokens = p->get<long long>();
      c.total_tokens = t != u->end() && t->is_number_integer() ? t->get<long long>() : *c.prompt_tokens;
      break;
    }
    case Meter::image_list:
    case Meter::venice_images: {
      if (!object) break;
      const auto list = doc.find(spec.meter == Meter::image_list ? "data" : "images");
      if (list != doc.end() && list->is_array()) c.units = static_cast<double>(list->size());
      else if (spec.meter == Meter::venice_images) c.units = req.units;
      break;
    }
    case Meter::one_image:
    case Meter::speech: break;
    case Meter::transcription: {
      if (!object) break;
      const auto d = doc.find("duration");
      if (d != doc.end() && d->is_number() && std::isfinite(d->get<double>()) && d->get<double>() >= 0) {
        c.units = d->get<double>();
        c.unit = usage::Unit::seconds;
      }
      break;
    }
    case Meter::responses: {
      if (const auto u = usage_of_response(doc)) return *u;
      c = Counted{};
      c.prompt_tokens = accounting::estimate_tokens(req.body_bytes);
      c.completion_tokens = accounting::estimate_tokens(body.size());
      c.tokens_estimated = true;
      break;
    }
  }
  return c;
}

money::Consumed at_most(const EndpointSpec& spec, const EndpointRequest& req, std::uint64_t default_max_tokens) {
  money::Consumed c;
  c.tier = req.tier;
  switch (spec.meter) {
    case Meter::embeddings: c.prompt_tokens = static_cast<std::int64_t>((req.input_bytes + 3) / 4); break;
    case Meter::responses:
      c.prompt_tokens = static_cast<std::int64_t>((req.body_bytes + 3) / 4);
      c.completion_tokens =
          req.max_tokens && *req.max_tokens >= 0 ? *req.max_tokens : static_cast<std::int64_t>(default_max_tokens);
      break;
    default: {
      // What a binary answer is counted as, except that image/generate may make every variant asked for.
      const Counted asked = count_binary(spec, req);
      c.units = spec.meter == Meter::venice_images ? req.units.value_or(1) : asked.units.value_or(0);
      c.unit = asked.unit;
    }
  }
  return c;
}

void apply(const Counted& c, usage::Record& r) noexcept {
  if (c.prompt_tokens || c.completion_tokens || c.total_tokens) {
    accounting::set_tokens(r, c.prompt_tokens, c.completion_tokens, c.total_tokens);
    r.tokens_estimated = c.tokens_estimated;
  }
  if (c.unit != usage::Unit::none && c.units) {
    r.units = *c.units;
    r.unit = c.unit;
  }
}

}  // namespace lagoon::relay
