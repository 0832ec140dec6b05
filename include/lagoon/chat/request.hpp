// The chat completions request as the gateway needs it: validated only where the gateway depends on
// it (a JSON object with a string `model`, an array `messages`, a boolean `stream` if present), and the
// body to send upstream — the client's bytes unchanged, except that a streaming request gets
// `stream_options.include_usage: true` so its usage can be counted. Everything else (tools,
// response_format, venice_parameters, unknown fields) passes through byte for byte.
// Pure; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace lagoon::chat {

struct ChatRequest {
  std::string model;
  bool stream = false;
  bool client_wants_usage = false;       // the client itself asked for the usage chunk
  std::optional<std::int64_t> max_tokens;  // the larger of max_completion_tokens and max_tokens
  std::size_t prompt_chars = 0;          // characters of the messages' text
  // What estimates of the prompt count: the whole body, since tool definitions, images and JSON cost
  // tokens too and the client chooses them (counting only message text let a 400 KB tool list pass as
  // one token).
  std::size_t body_bytes = 0;
  std::string upstream_body;
};

struct InvalidRequest {
  std::string message;
  std::optional<std::string> param;  // the offending field, as OpenAI reports it
};

// Deepest nesting accepted; deeper bodies are refused before a full parse (whose recursion a body of
// nested brackets could exhaust).
inline constexpr std::size_t kMaxJsonDepth = 128;
// Whether a JSON text nests deeper than `limit`, counted outside strings without parsing it.
bool nests_deeper_than(std::string_view json_text, std::size_t limit) noexcept;
// Whether a text holds a NUL byte — never valid JSON (raw, or in a string), but where nlohmann's parser
// stops as at the end of its input: `{…}\0anything` would pass for the object before it, and the rest go
// upstream unseen (found by fuzzing). Such a body is refused as unparseable.
bool has_nul(std::string_view text) noexcept;
// Longest `model` accepted. Venice's ids are under 64 bytes; the model is stored in sessions, Redis and
// every usage row and access-log line, so its size is the client's to choose only within this.
inline constexpr std::size_t kMaxModelBytes = 256;

// Why `model` cannot be stored, or nullopt: too long, or a control character (a NUL splits libpq's
// text parameters, so the usage row would be refused and the request escape billing).
std::optional<std::string> model_problem(std::string_view model);

// The model a request names without Venice's parameter suffix ("venice-uncensored:enable_web_search=on"
// → "venice-uncensored"). The name goes upstream as sent; what Lagoon keys on the model (sessions, and
// later limits, allow-lists and prices) uses this.
std::string_view base_model(std::string_view model) noexcept;

std::variant<ChatRequest, InvalidRequest> parse_chat_request(std::string_view body);

// The same from a whole parsed document: what parse_chat_request falls back to for anything its
// single-pass reader does not accept (and so the source of every error message). Exposed so tests can
// hold the two paths to the same answers.
std::variant<ChatRequest, InvalidRequest> parse_chat_request_dom(std::string_view body);

// `object_text` (a JSON object) without its top-level member `name` when that member is null; else
// unchanged. For the `"usage":null` that include_usage adds to every stream chunk, which a client that
// did not ask for usage would not have received.
std::string without_null_member(std::string_view object_text, std::string_view name);

}  // namespace lagoon::chat
