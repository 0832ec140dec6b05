#include "lagoon/mock/responses.hpp"

#include <charconv>
#include <cmath>
#include <cstring>

#include <nlohmann/json.hpp>

#include "lagoon/mock/media.hpp"

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
  json usage = {{"prompt_tokens", u.prompt_tokens},
                {"completion_tokens", u.completion_tokens},
                {"total_tokens", u.prompt_tokens + u.completion_tokens}};
  json details = json::object();
  if (u.cached_tokens) details["cached_tokens"] = *u.cached_tokens;
  if (u.cache_write_tokens) details["cache_creation_input_tokens"] = *u.cache_write_tokens;
  if (!details.empty()) usage["prompt_tokens_details"] = std::move(details);
  return usage;
}

// A whole number is written as one ("diem": 0, as Venice writes it), anything else as the shortest
// decimal that reads back as the same double.
json amount(double value) {
  if (value == std::trunc(value) && std::fabs(value) < 9007199254740992.0) return static_cast<std::int64_t>(value);
  return value;
}

json cost_json(const Cost& c) { return {{"diem", amount(c.diem)}, {"usd", amount(c.usd)}}; }

}  // namespace

Plan plan_from(const std::function<std::string_view(std::string_view)>& header) {
  Plan p;
  if (auto v = number<unsigned>(header("x-mock-status")); v && *v >= 100 && *v <= 599) p.status = *v;
  if (auto v = number<unsigned>(header("x-mock-first-byte-ms"))) p.first_byte = std::chrono::milliseconds(*v);
  if (auto v = number<unsigned>(header("x-mock-chunks")); v && *v <= 10'000'000) p.chunks = *v;
  if (auto v = number<unsigned>(header("x-mock-gap-ms"))) p.gap = std::chrono::milliseconds(*v);
  if (auto v = number<std::uint64_t>(header("x-mock-bytes")); v && *v <= (1ull << 32)) p.bytes = *v;
  if (auto v = number<unsigned>(header("x-mock-reset-after"))) p.reset_after = *v;
  p.no_duration = header("x-mock-no-duration") == "1";
  if (auto v = number<std::uint64_t>(header("x-mock-cached-tokens")); v && *v <= kMaxDirectiveTokens)
    p.cached_tokens = *v;
  if (auto v = number<std::uint64_t>(header("x-mock-cache-write-tokens")); v && *v <= kMaxDirectiveTokens)
    p.cache_write_tokens = *v;
  const std::string_view cost = header("x-mock-cost");
  p.no_cost = cost == "none";
  if (auto v = number<double>(cost); v && std::isfinite(*v)) p.cost_usd = *v;
  if (auto v = number<double>(header("x-mock-cost-diem")); v && std::isfinite(*v)) p.cost_diem = *v;
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

std::string content_text(const Plan& plan) {
  std::string content;
  for (unsigned i = 0; i < plan.chunks; ++i) content += chunk_content(plan, i);
  return content;
}

std::string completion_body(const std::string& id, const std::string& model, const Plan& plan, const Usage& usage,
                            const std::optional<Cost>& cost) {
  const std::string content = content_text(plan);
  json body = {{"id", id},
               {"object", "chat.completion"},
               {"created", kCreated},
               {"model", model},
               {"choices",
                {{{"index", 0},
                  {"message", {{"role", "assistant"}, {"content", content}}},
                  {"finish_reason", "stop"}}}},
               {"usage", usage_json(usage)}};
  if (cost) body["cost"] = cost_json(*cost);
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

std::string usage_event(const std::string& id, const std::string& model, const Usage& usage,
                        const std::optional<Cost>& cost) {
  json c = chunk(id, model, json::array(), false);
  c["usage"] = usage_json(usage);
  if (cost) c["cost"] = cost_json(*cost);
  return event(c);
}

std::string error_body(unsigned status, std::string_view message) {
  std::string type = status == 401 || status == 403 ? "authentication_error"
                     : status == 429               ? "rate_limit_error"
                     : status >= 500               ? "server_error"
                                                   : "invalid_request_error";
  return json{{"error", {{"message", message}, {"type", type}, {"param", nullptr}, {"code", nullptr}}}}.dump();
}

std::string error_message_for(unsigned status) {
  return status == 402 ? "Insufficient USD or Diem balance to complete request"
                       : "mock upstream error " + std::to_string(status);
}

// ---- Binary answers ----

std::uint64_t fnv1a64(std::string_view bytes) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

std::string mock_bytes(std::uint64_t size, std::string_view key) {
  std::uint64_t state = fnv1a64(key) ^ (size * 0x9E3779B97F4A7C15ull);
  std::string out(size, '\0');
  for (std::uint64_t at = 0; at < size; at += 8) {
    // splitmix64 (Steele, Lea, Flood 2014): fast, and every seed gives a full-period stream.
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    for (std::uint64_t i = 0; i < 8 && at + i < size; ++i) out[at + i] = static_cast<char>((z >> (8 * i)) & 0xff);
  }
  return out;
}

std::uint64_t binary_size(const Plan& plan) { return plan.bytes > 0 ? plan.bytes : kDefaultBinaryBytes; }

std::string image_key(std::string_view prompt, unsigned index) {
  return std::string(prompt) + "#" + std::to_string(index);
}

std::string edit_key(std::string_view op, std::string_view image) { return std::string(op) + ":" + std::string(image); }

// ---- Embeddings ----

std::uint64_t embedding_tokens_for(const std::vector<std::string>& inputs) {
  std::uint64_t n = 0;
  for (const auto& in : inputs) n += prompt_tokens_for(in.size());
  return n;
}

std::vector<float> embedding_vector(std::string_view input, unsigned dimensions) {
  const std::string bytes = mock_bytes(4ull * dimensions, input);
  std::vector<float> v(dimensions);
  for (unsigned i = 0; i < dimensions; ++i) {
    std::uint32_t u = 0;
    for (unsigned b = 0; b < 4; ++b)
      u |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[4 * i + b])) << (8 * b);
    v[i] = static_cast<float>(static_cast<double>(u) / 2147483648.0 - 1.0);
  }
  return v;
}

std::string embeddings_body(const std::vector<std::string>& inputs, const std::string& model, unsigned dimensions,
                            bool base64) {
  json data = json::array();
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const auto v = embedding_vector(inputs[i], dimensions);
    json embedding;
    if (base64) {
      std::string raw(v.size() * 4, '\0');
      for (std::size_t k = 0; k < v.size(); ++k) {
        std::uint32_t u = 0;
        std::memcpy(&u, &v[k], 4);
        for (unsigned b = 0; b < 4; ++b) raw[4 * k + b] = static_cast<char>((u >> (8 * b)) & 0xff);
      }
      embedding = base64_encode(raw);
    } else {
      embedding = v;
    }
    data.push_back({{"object", "embedding"}, {"index", i}, {"embedding", std::move(embedding)}});
  }
  const auto tokens = embedding_tokens_for(inputs);
  return json{{"object", "list"},
              {"data", std::move(data)},
              {"model", model},
              {"usage", {{"prompt_tokens", tokens}, {"total_tokens", tokens}}}}
      .dump();
}

// ---- Images ----

std::string images_generations_body(std::string_view prompt, unsigned n, std::uint64_t size, bool as_url,
                                    std::string_view content_type) {
  json data = json::array();
  for (unsigned i = 0; i < n; ++i) {
    std::string b64 = base64_encode(mock_bytes(size, image_key(prompt, i)));
    if (as_url)
      data.push_back({{"url", "data:" + std::string(content_type) + ";base64," + b64}});
    else
      data.push_back({{"b64_json", std::move(b64)}});
  }
  return json{{"created", kCreated}, {"data", std::move(data)}}.dump();
}

std::string image_generate_body(const std::string& id, std::string_view prompt, unsigned variants, std::uint64_t size,
                                const json& request) {
  json images = json::array();
  for (unsigned i = 0; i < variants; ++i) images.push_back(base64_encode(mock_bytes(size, image_key(prompt, i))));
  return json{
      {"id", id},
      {"images", std::move(images)},
      {"timing",
       {{"inferenceDuration", 1234}, {"inferencePreprocessingTime", 12}, {"inferenceQueueTime", 5}, {"total", 1251}}},
      {"request", request}}
      .dump();
}

// ---- Audio ----

std::string transcript_text(const Plan& plan) {
  std::string text = content_text(plan);
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

std::string transcription_body(const std::string& text, std::optional<double> duration, bool timestamps) {
  json body = {{"text", text}};
  if (duration) body["duration"] = *duration;
  if (timestamps) {
    std::vector<std::string> words;
    for (std::size_t at = 0; at < text.size();) {
      const auto space = text.find(' ', at);
      words.push_back(text.substr(at, space == std::string::npos ? std::string::npos : space - at));
      at = space == std::string::npos ? text.size() : space + 1;
    }
    const double length = duration.value_or(1.0);
    const double step = words.empty() ? length : length / static_cast<double>(words.size());
    json word = json::array();
    for (std::size_t i = 0; i < words.size(); ++i)
      word.push_back(
          {{"word", words[i]}, {"start", step * static_cast<double>(i)}, {"end", step * static_cast<double>(i + 1)}});
    body["timestamps"] = {{"word", std::move(word)}, {"segment", {{{"text", text}, {"start", 0.0}, {"end", length}}}}};
  }
  return body.dump();
}

// ---- Responses API ----

namespace {

std::string item_id(const std::string& id) { return "msg_" + id; }

json output_text(const std::string& text) {
  return {{"type", "output_text"}, {"text", text}, {"annotations", json::array()}};
}

json message_item(const std::string& id, std::string_view status, json content) {
  return {{"type", "message"},
          {"id", item_id(id)},
          {"status", status},
          {"role", "assistant"},
          {"content", std::move(content)}};
}

json response_json(const std::string& id, const std::string& model, std::string_view status, json output, json usage) {
  return {{"id", id},       {"object", "response"},        {"created_at", kCreated},   {"status", status},
          {"model", model}, {"output", std::move(output)}, {"usage", std::move(usage)}};
}

json response_usage(const ResponseUsage& u) {
  return {{"input_tokens", u.input_tokens},
          {"input_tokens_details", {{"cached_tokens", 0}}},
          {"output_tokens", u.output_tokens},
          {"output_tokens_details", {{"reasoning_tokens", 0}}},
          {"total_tokens", u.input_tokens + u.output_tokens}};
}

json completed_response(const std::string& id, const std::string& model, const std::string& text,
                        const ResponseUsage& usage) {
  return response_json(id, model, "completed",
                       json::array({message_item(id, "completed", json::array({output_text(text)}))}),
                       response_usage(usage));
}

// "event: TYPE\ndata: {…, "type": TYPE, "sequence_number": N}\n\n" — OpenAI repeats the type in the data.
std::string typed_event(std::string_view type, unsigned sequence_number, json fields) {
  fields["type"] = type;
  fields["sequence_number"] = sequence_number;
  return "event: " + std::string(type) + "\ndata: " + fields.dump() + "\n\n";
}

}  // namespace

std::string response_body(const std::string& id, const std::string& model, const std::string& text,
                          const ResponseUsage& usage) {
  return completed_response(id, model, text, usage).dump();
}

std::string response_opening_events(const std::string& id, const std::string& model) {
  const json in_progress = response_json(id, model, "in_progress", json::array(), nullptr);
  return typed_event("response.created", 0, {{"response", in_progress}}) +
         typed_event("response.in_progress", 1, {{"response", in_progress}}) +
         typed_event("response.output_item.added", 2,
                     {{"output_index", 0}, {"item", message_item(id, "in_progress", json::array())}}) +
         typed_event("response.content_part.added", 3,
                     {{"item_id", item_id(id)}, {"output_index", 0}, {"content_index", 0}, {"part", output_text("")}});
}

std::string response_delta_event(const std::string& id, unsigned sequence_number, const std::string& delta) {
  return typed_event("response.output_text.delta", sequence_number,
                     {{"item_id", item_id(id)},
                      {"output_index", 0},
                      {"content_index", 0},
                      {"delta", delta},
                      {"logprobs", json::array()}});
}

std::string response_closing_events(const std::string& id, const std::string& model, const std::string& text,
                                    const ResponseUsage& usage, unsigned first_sequence_number) {
  unsigned seq = first_sequence_number;
  const json where = {{"item_id", item_id(id)}, {"output_index", 0}, {"content_index", 0}};
  json done = where;
  done["text"] = text;
  done["logprobs"] = json::array();
  json part_done = where;
  part_done["part"] = output_text(text);
  std::string out = typed_event("response.output_text.done", seq++, std::move(done));
  out += typed_event("response.content_part.done", seq++, std::move(part_done));
  out += typed_event("response.output_item.done", seq++,
                     {{"output_index", 0}, {"item", message_item(id, "completed", json::array({output_text(text)}))}});
  out += typed_event("response.completed", seq++, {{"response", completed_response(id, model, text, usage)}});
  return out;
}

}  // namespace lagoon::mock
