// Fuzz target: the chat request reader. Oracles: the single-pass reader and the document reader agree
// on every body (valid or not, and on every field when valid); what goes upstream is valid JSON and
// says stream_options.include_usage for a stream; without_null_member keeps valid JSON valid.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <variant>

#include <nlohmann/json.hpp>

#include "lagoon/chat/request.hpp"

using namespace lagoon::chat;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const auto fast = parse_chat_request(body);
  const auto dom = parse_chat_request_dom(body);
  if (fast.index() != dom.index()) std::abort();
  if (const auto* a = std::get_if<ChatRequest>(&fast)) {
    const auto& b = std::get<ChatRequest>(dom);
    if (a->model != b.model || a->stream != b.stream || a->client_wants_usage != b.client_wants_usage ||
        a->max_tokens != b.max_tokens || a->prompt_chars != b.prompt_chars || a->upstream_body != b.upstream_body)
      std::abort();
    const auto sent = nlohmann::json::parse(a->upstream_body, nullptr, false);
    if (sent.is_discarded() || !sent.is_object()) std::abort();
    // (value(), not operator[]: a const document's operator[] on a missing key reads out of bounds.)
    if (a->stream && sent.value("stream_options", nlohmann::json::object()).value("include_usage", false) != true)
      std::abort();
    if (has_nul(a->upstream_body)) std::abort();
  } else {
    const auto& x = std::get<InvalidRequest>(fast);
    const auto& y = std::get<InvalidRequest>(dom);
    if (x.message != y.message || x.param != y.param) std::abort();
  }
  if (nlohmann::json::accept(body)) {
    const auto j = nlohmann::json::parse(body);
    if (j.is_object() && !nlohmann::json::accept(without_null_member(body, "usage"))) std::abort();
  }
  return 0;
}
