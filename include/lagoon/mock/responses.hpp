// What lagoon-mock-upstream says: Venice's bodies for every endpoint it mocks (chat completions and
// their SSE events, embeddings, images, speech, transcriptions, the Responses API and its typed SSE events),
// the deterministic bytes of its binary answers, and the per-request behaviour asked for through x-mock-*
// directives. Pure; thread-safe. The model catalog is in catalog.hpp, byte formats in media.hpp.
//
// Directives, all optional. Each is a request header, or the same name without "x-mock-" in an "x_mock"
// object of a JSON body ({"x_mock": {"status": 503, "gap-ms": 20}}), or in a multipart form part named
// "x_mock" holding that JSON object — a gateway forwards bodies but not these headers.
//   x-mock-status: N          answer with HTTP status N and an OpenAI error body (Retry-After: 1 on 429/503)
//   x-mock-first-byte-ms: N   wait N ms before the response header
//   x-mock-chunks: N          pieces of the content, default 5: stream events / words of a message or
//                             transcript; binary and non-chat JSON bodies are written in N pieces
//   x-mock-gap-ms: N          wait N ms between those pieces
//   x-mock-bytes: N           chat: total content size spread over the chunks; binary answers: size of
//                             each image or audio body (default kDefaultBinaryBytes)
//   x-mock-stall: headers     never answer (until the client goes away)
//   x-mock-stall: body        send the header and the first piece, then nothing
//   x-mock-reset-after: N     reset the TCP connection after N pieces
//   x-mock-record: 1          keep this request for GET /mock/last-request
//   x-mock-no-duration: 1     (/audio/transcriptions) leave "duration" out even for a WAV
//   x-mock-raw-sse: BYTES     (chat streams) send exactly these bytes as the event stream, then end it
//   x-mock-fragment: N        … in HTTP chunks of N bytes, x-mock-gap-ms apart
//   x-mock-cached-tokens: N   (chat) N of the prompt's tokens were read from the cache: usage carries
//                             prompt_tokens_details.cached_tokens, and the cost prices them as such
//   x-mock-cache-write-tokens: N  (chat) … written to the cache: prompt_tokens_details.cache_creation_input_tokens
//                             Both are parts of prompt_tokens (OpenAI's convention), which grows to their
//                             sum when the body alone would count fewer (a test of the extended tier
//                             needs no 800 kB prompt).
//   x-mock-cost: none         (chat) no "cost" object, even for a priced model
//   x-mock-cost: X            (chat) "cost": {"diem": 0, "usd": X}, X as given, whatever the model
//   x-mock-cost-diem: D       (chat) the cost's diem is D (and there is a cost, usd 0 unless priced or given)
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace lagoon::mock {

struct Plan {
  unsigned status = 200;
  std::chrono::milliseconds first_byte{0};
  unsigned chunks = 5;
  std::chrono::milliseconds gap{0};
  std::uint64_t bytes = 0;  // 0 = short word-like pieces
  enum class Stall { none, headers, body } stall = Stall::none;
  std::optional<unsigned> reset_after;
  bool no_duration = false;
  std::optional<std::uint64_t> cached_tokens;       // at most kMaxDirectiveTokens
  std::optional<std::uint64_t> cache_write_tokens;  // at most kMaxDirectiveTokens
  bool no_cost = false;
  std::optional<double> cost_usd;  // finite
  std::optional<double> cost_diem;
};
// Bounds the token directives so that no cost can overflow its 64-bit count of 1e-12 USD (cost.hpp).
inline constexpr std::uint64_t kMaxDirectiveTokens = 100'000'000;

// Builds a Plan from header values; `header(name)` returns "" when absent. Bad values are ignored.
Plan plan_from(const std::function<std::string_view(std::string_view)>& header);

struct Usage {
  Usage() = default;
  // Not an aggregate: {prompt, completion} leaves the optional parts out without a warning.
  Usage(std::uint64_t prompt, std::uint64_t completion) : prompt_tokens(prompt), completion_tokens(completion) {}

  std::uint64_t prompt_tokens = 0;
  std::uint64_t completion_tokens = 0;
  // Parts of prompt_tokens, in usage.prompt_tokens_details only when set: read from the prompt cache
  // (cached_tokens) and written to it (cache_creation_input_tokens), as Venice reports them.
  std::optional<std::uint64_t> cached_tokens;
  std::optional<std::uint64_t> cache_write_tokens;
};

// What Venice says a request cost, in its top-level "cost" object: USD and Diem, both numbers.
struct Cost {
  double usd = 0;
  double diem = 0;
};

// The prompt's token count as the mock reports it: one per 4 bytes of request body, at least 1.
std::uint64_t prompt_tokens_for(std::size_t request_body_bytes);

// The i-th content piece of a plan (0-based).
std::string chunk_content(const Plan& plan, unsigned i);
// All the pieces in order: a chat message's content, a Response's output_text.
std::string content_text(const Plan& plan);

// A chat.completion; with `cost`, a top-level "cost" as Venice sends it.
std::string completion_body(const std::string& id, const std::string& model, const Plan& plan, const Usage& usage,
                            const std::optional<Cost>& cost = std::nullopt);

// SSE events, each "data: …\n\n". `include_usage` adds "usage":null to each chunk, as OpenAI does.
std::string role_event(const std::string& id, const std::string& model, bool include_usage);
std::string content_event(const std::string& id, const std::string& model, const std::string& content,
                          bool include_usage);
std::string finish_event(const std::string& id, const std::string& model, bool include_usage);
// The last chunk before [DONE] when include_usage is set: no choices, the usage, and the cost if any.
std::string usage_event(const std::string& id, const std::string& model, const Usage& usage,
                        const std::optional<Cost>& cost = std::nullopt);
inline constexpr std::string_view kDoneEvent = "data: [DONE]\n\n";

std::string error_body(unsigned status, std::string_view message);
// What the mock says for x-mock-status: N — a 402 worded as Venice words it, naming the account's state.
std::string error_message_for(unsigned status);

// ---- Binary answers ----------------------------------------------------------------------------------
// Every image and audio body is mock_bytes(size, key): a test computes the same bytes (or their SHA-256)
// and compares them with what came through the gateway. The bytes are splitmix64's outputs, each
// little-endian, seeded with fnv1a64(key) ^ (size * 0x9E3779B97F4A7C15); the key per endpoint:
//   /image/generate, /images/generations   image_key(prompt, i) for the i-th image (0-based)
//   /image/upscale, /image/edit, /image/background-remove
//                                          edit_key(op, image): op "upscale" | "edit" | "background-remove",
//                                          image the uploaded file's bytes, the decoded base64 (a data: URL
//                                          prefix stripped), or the URL string as sent
//   /audio/speech                          the "input" text
inline constexpr std::uint64_t kDefaultBinaryBytes = 4096;
std::uint64_t fnv1a64(std::string_view bytes);
std::string mock_bytes(std::uint64_t size, std::string_view key);
std::uint64_t binary_size(const Plan& plan);  // plan.bytes, or kDefaultBinaryBytes when 0
std::string image_key(std::string_view prompt, unsigned index);
std::string edit_key(std::string_view op, std::string_view image);

// ---- Embeddings ----------------------------------------------------------------------------------------
inline constexpr unsigned kDefaultEmbeddingDimensions = 1024;
// usage.prompt_tokens (= total_tokens) of an embeddings answer: Σ prompt_tokens_for(bytes of each input).
std::uint64_t embedding_tokens_for(const std::vector<std::string>& inputs);
// The vector for one input: floats in [-1, 1) from mock_bytes(4 * dimensions, input), each 4 bytes a
// little-endian uint32 u mapped to u / 2^31 - 1.
std::vector<float> embedding_vector(std::string_view input, unsigned dimensions);
// encoding_format "base64": the vector's float32s, little-endian, base64 — as OpenAI encodes them.
std::string embeddings_body(const std::vector<std::string>& inputs, const std::string& model, unsigned dimensions,
                            bool base64);

// ---- Images ----------------------------------------------------------------------------------------------
// POST /images/generations: {"created", "data": [{"b64_json"} | {"url": data URL}] × n}.
std::string images_generations_body(std::string_view prompt, unsigned n, std::uint64_t size, bool as_url,
                                    std::string_view content_type);
// POST /image/generate: {"id", "images": [base64 × variants], "timing": {…}, "request": the request}.
std::string image_generate_body(const std::string& id, std::string_view prompt, unsigned variants, std::uint64_t size,
                                const nlohmann::json& request);

// ---- Audio -----------------------------------------------------------------------------------------------
// The transcript of an upload: content_text without its trailing space, "tok0 tok1 …".
std::string transcript_text(const Plan& plan);
// {"text", "duration"?, "timestamps"?}: duration in seconds when known; with `timestamps`, Venice's
// {"word": […], "segment": […]} spread evenly over the duration (1 s when unknown).
std::string transcription_body(const std::string& text, std::optional<double> duration, bool timestamps);

// ---- Responses API ---------------------------------------------------------------------------------------
struct ResponseUsage {
  std::uint64_t input_tokens = 0;
  std::uint64_t output_tokens = 0;
};
// The Response object: status "completed" with one assistant message holding `text`, and usage.
std::string response_body(const std::string& id, const std::string& model, const std::string& text,
                          const ResponseUsage& usage);
// Its stream, OpenAI's typed SSE events ("event: TYPE\ndata: {\"type\": TYPE, \"sequence_number\": …}\n\n"):
//   response_opening_events   response.created, response.in_progress, response.output_item.added,
//                             response.content_part.added                  (sequence numbers 0..3)
//   response_delta_event      response.output_text.delta, one per chunk   (4 .. 4+chunks-1)
//   response_closing_events   response.output_text.done, response.content_part.done,
//                             response.output_item.done, response.completed with the full response
inline constexpr unsigned kResponseOpeningEvents = 4;
std::string response_opening_events(const std::string& id, const std::string& model);
std::string response_delta_event(const std::string& id, unsigned sequence_number, const std::string& delta);
std::string response_closing_events(const std::string& id, const std::string& model, const std::string& text,
                                    const ResponseUsage& usage, unsigned first_sequence_number);

}  // namespace lagoon::mock
