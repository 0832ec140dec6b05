// Venice's endpoints beyond chat, as the gateway sees them: where each goes upstream, which usage row
// it makes, what the gateway reads of its request (only the fields it needs: the model, whether it
// streams, what its rate limit and usage count) and how its answer's usage is counted. Bodies are
// otherwise passed on byte for byte; Venice validates the rest.
// Pure; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "lagoon/chat/request.hpp"
#include "lagoon/money/price.hpp"
#include "lagoon/usage/record.hpp"

namespace lagoon::relay {

// What an endpoint's usage row counts.
enum class Meter {
  embeddings,     // tokens: the answer's usage, else the input's estimate
  image_list,     // images: the answer's `data` array (OpenAI's images/generations), else `n`
  venice_images,  // images: the answer's `images` array (image/generate), one for a binary image
  one_image,      // images: one per answered request (upscale, edit, background-remove)
  speech,         // characters of `input`
  transcription,  // seconds of audio when the answer says (`duration`), else the upload's bytes
  responses,      // tokens: `usage` of the response (whole, or the stream's response.completed)
};

struct EndpointSpec {
  std::string_view path;  // after /api/v1 (or /v1), and the same upstream
  usage::Endpoint endpoint;
  Meter meter;
  enum class Body { json, json_or_multipart, multipart } body;
  // The model a request without one is priced as, and judged by under a key's model list (Venice's
  // upscale and edit models); "" for none.
  std::string_view default_model = "";
  // False: the endpoint takes no model at all (background removal) — a key's model list does not apply,
  // only its route group does.
  bool names_model = true;
};

// Every relayed endpoint besides chat, in the order of INTERFACE.md.
const std::vector<EndpointSpec>& endpoint_specs();

// What the gateway reads of one request.
struct EndpointRequest {
  std::optional<std::string> model;
  bool stream = false;                     // responses' `stream`, speech's `streaming`
  std::optional<std::int64_t> max_tokens;  // responses' max_output_tokens
  std::size_t body_bytes = 0;
  std::size_t input_bytes = 0;       // embeddings: the `input` as sent, for the token estimate
  std::optional<double> units;       // images asked for (`n`, `variants`; 1 when absent); characters to speak
  std::size_t upload_bytes = 0;      // multipart: the uploaded file's bytes
  bool multipart = false;
  std::string tier;  // the price tier asked for: image/generate's "resolution[/quality]", upscale's "2x"/"4x"
};

// A body that cannot be relayed as this endpoint's request: why, and which field.
std::variant<EndpointRequest, chat::InvalidRequest> inspect(const EndpointSpec& spec, std::string_view content_type,
                                                            std::string_view body);

// One part of a multipart/form-data body (RFC 7578), viewing into it.
struct FormPart {
  std::string_view name;
  std::optional<std::string_view> filename;
  std::string_view value;
};
// The boundary of a multipart/form-data Content-Type; nullopt when it is not one or has none.
std::optional<std::string> multipart_boundary(std::string_view content_type);
// The parts of `body`; nullopt when it is not a well-formed multipart body with that boundary.
std::optional<std::vector<FormPart>> form_parts(std::string_view body, std::string_view boundary);

// What a whole 2xx answer says its request used.
struct Counted {
  std::optional<long long> prompt_tokens, completion_tokens, total_tokens;
  bool tokens_estimated = false;
  std::optional<double> units;
  usage::Unit unit = usage::Unit::none;
};
// From an answer read whole (`content_type` as the upstream sent it).
Counted count_whole(const EndpointSpec& spec, const EndpointRequest& req, std::string_view content_type,
                    std::string_view body);
// For an answer relayed piece by piece whose bytes say nothing of usage (audio, an image): what the
// request itself says.
Counted count_binary(const EndpointSpec& spec, const EndpointRequest& req);
// The tokens of a Responses-API usage object (`input_tokens`, `output_tokens`, `total_tokens`), from
// the text of a response object or of a response.completed event; nullopt without one.
std::optional<Counted> responses_usage(std::string_view json_text);

// The most a request may consume, in what prices read (tokens, images, characters, upload bytes),
// for the reservation against a budget.
money::Consumed at_most(const EndpointSpec& spec, const EndpointRequest& req, std::uint64_t default_max_tokens);

// Writes `c` into the record: tokens (estimated ones flagged) and units.
void apply(const Counted& c, usage::Record& r) noexcept;

}  // namespace lagoon::relay
