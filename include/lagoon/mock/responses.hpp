// What lagoon-mock-upstream says: OpenAI wire-format bodies and SSE events, as Venice sends them, and the
// per-request behaviour asked for through x-mock-* request headers. Pure; thread-safe.
//
// Request headers understood by the mock (all optional):
//   x-mock-status: N          answer with HTTP status N and an OpenAI error body
//   x-mock-first-byte-ms: N   wait N ms before the response header
//   x-mock-chunks: N          content pieces (stream events / words of the message), default 5
//   x-mock-gap-ms: N          wait N ms between stream events
//   x-mock-bytes: N           total content size in bytes, spread over the chunks
//   x-mock-stall: headers     never answer (until the client goes away)
//   x-mock-stall: body        send the header and the first chunk, then nothing
//   x-mock-reset-after: N     reset the TCP connection after N content chunks
//   x-mock-raw-sse: BYTES     (streams) send exactly these bytes as the event stream, then end it
//   x-mock-fragment: N        … in HTTP chunks of N bytes, x-mock-gap-ms apart
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace lagoon::mock {

struct Plan {
  unsigned status = 200;
  std::chrono::milliseconds first_byte{0};
  unsigned chunks = 5;
  std::chrono::milliseconds gap{0};
  std::uint64_t bytes = 0;  // 0 = short word-like pieces
  enum class Stall { none, headers, body } stall = Stall::none;
  std::optional<unsigned> reset_after;
};

// Builds a Plan from header values; `header(name)` returns "" when absent. Bad values are ignored.
Plan plan_from(const std::function<std::string_view(std::string_view)>& header);

struct Usage {
  std::uint64_t prompt_tokens = 0;
  std::uint64_t completion_tokens = 0;
};

// The prompt's token count as the mock reports it: one per 4 bytes of request body, at least 1.
std::uint64_t prompt_tokens_for(std::size_t request_body_bytes);

// The i-th content piece of a plan (0-based).
std::string chunk_content(const Plan& plan, unsigned i);

std::string completion_body(const std::string& id, const std::string& model, const Plan& plan, const Usage& usage);

// SSE events, each "data: …\n\n". `include_usage` adds "usage":null to each chunk, as OpenAI does.
std::string role_event(const std::string& id, const std::string& model, bool include_usage);
std::string content_event(const std::string& id, const std::string& model, const std::string& content,
                          bool include_usage);
std::string finish_event(const std::string& id, const std::string& model, bool include_usage);
std::string usage_event(const std::string& id, const std::string& model, const Usage& usage);
inline constexpr std::string_view kDoneEvent = "data: [DONE]\n\n";

std::string models_body();
std::string error_body(unsigned status, std::string_view message);

}  // namespace lagoon::mock
