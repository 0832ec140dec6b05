#include "lagoon/mock/responses.hpp"

#include <charconv>

#include <nlohmann/json.hpp>

namespace lagoon::mock {
namespace {

using nlohmann::json;

// A fixed creation time keeps bodies byte-for-byte reproducible across runs.
constexpr std::int64_t kCreated = 1767225600;

template <class T>
std::optional<T> number(std::string_view s) {
  T v{};
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return v;
}

json chunk(const std::string& id, const std::string& model, json choices, bool include_usage) {
  json c = {{"id", id},
            {"object", "chat.completion.chunk"},
            {"created", kCreated},
            {"model", model},
            {"choices", std::move(choices)}};
  if (include_usage) c["usage"] = nullptr;
  return c;
}

std::string event(const json& j) { return "data: " + j.dump() + "\n\n"; }

json usage_json(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens}};
}

}  // namespace

Plan plan_from(const std::function<std::string_view(std::string_view)>& header) {
  Plan p;
  if (auto v = number<unsigned>(header("x-mock-status")); v && *v >= 100 && *v <= 599) p.status = *v;
  if (auto v = number<unsigned>(header("x-mock-first-byte-ms"))) p.first_byte = std::chrono::milliseconds(*v);
  if (auto v = number<unsigned>(header("x-mock-chunks")); v && *v <= 10'000'000) p.chunks = *v;
  if (auto v = number<unsigned>(header("x-mock-gap-ms"))) p.gap = std::chrono::milliseconds(*v);
  if (auto v = number<std::uint64_t>(header("x-mock-bytes")); v && *v <= (1ull << 32)) p.bytes = *v;
  if (auto v = number<unsigned>(header("x-mock-reset-after"))) p.reset_after = *v;
  auto stall = header("x-mock-stall");
  if (stall == "headers") p.stall = Plan::Stall::headers;
  if (stall == "body") p.stall = Plan::Stall::body;
  if (p.bytes > 0 && p.chunks == 0) p.chunks = 1;
  return p;
}

std::uint64_t prompt_tokens_for(std::size_t request_body_bytes) {
  return request_body_bytes / 4 > 0 ? request_body_bytes / 4 : 1;
}

std::string chunk_content(const Plan& plan, unsigned i) {
  if (plan.bytes == 0) return "tok" + std::to_string(i) + " ";
  std::uint64_t size = plan.bytes / plan.chunks;
  if (i + 1 == plan.chunks) size += plan.bytes % plan.chunks;
  return std::string(size, static_cast<char>('a' + i % 26));
}

std::string completion_body(const std::string& id, const std::string& model, const Plan& plan, const Usage& usage) {
  std::string content;
  for (unsigned i = 0; i < plan.chunks; ++i) content += chunk_content(plan, i);
  json body = {{"id", id},
               {"object", "chat.completion"},
               {"created", kCreated},
               {"model", model},
               {"choices",
                {{{"index", 0},
                  {"message", {{"role", "assistant"}, {"content", content}}},
                  {"finish_reason", "stop"}}}},
               {"usage", usage_json(usage)}};
  return body.dump();
}

std::string role_event(const std::string& id, const std::string& model, bool include_usage) {
  return event(chunk(id, model,
                     {{{"index", 0}, {"delta", {{"role", "assistant"}, {"content", ""}}}, {"finish_reason", nullptr}}},
                     include_usage));
}

std::string content_event(const std::string& id, const std::string& model, const std::string& content,
                          bool include_usage) {
  return event(chunk(id, model, {{{"index", 0}, {"delta", {{"content", content}}}, {"finish_reason", nullptr}}},
                     include_usage));
}

std::string finish_event(const std::string& id, const std::string& model, bool include_usage) {
  return event(chunk(id, model, {{{"index", 0}, {"delta", json::object()}, {"finish_reason", "stop"}}}, include_usage));
}

std::string usage_event(const std::string& id, const std::string& model, const Usage& usage) {
  json c = chunk(id, model, json::array(), false);
  c["usage"] = usage_json(usage);
  return event(c);
}

std::string models_body() {
  json data = json::array();
  for (const char* id : {"llama-3.3-70b", "qwen3-235b", "mistral-31-24b", "venice-uncensored"})
    data.push_back({{"id", id}, {"object", "model"}, {"created", kCreated}, {"owned_by", "venice.ai"}, {"type", "text"}});
  return json{{"object", "list"}, {"data", data}}.dump();
}

std::string error_body(unsigned status, std::string_view message) {
  std::string type = status == 401 || status == 403 ? "authentication_error"
                     : status == 429               ? "rate_limit_error"
                     : status >= 500               ? "server_error"
                                                   : "invalid_request_error";
  return json{{"error", {{"message", message}, {"type", type}, {"param", nullptr}, {"code", nullptr}}}}.dump();
}

}  // namespace lagoon::mock
