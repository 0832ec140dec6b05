#include "lagoon/chat/request.hpp"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "fast_scan.hpp"

namespace lagoon::chat {

namespace {

using nlohmann::json;

}  // namespace

bool has_nul(std::string_view text) noexcept { return text.find('\0') != std::string_view::npos; }

bool nests_deeper_than(std::string_view s, std::size_t limit) noexcept {
  std::size_t depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > limit) return true;
    } else if (c == '}' || c == ']') {
      if (depth > 0) --depth;
    }
  }
  return false;
}

namespace {

// Byte spans of a JSON object's top-level members. Total: text that is not, at its top level, one object
// of `"key": value` members (a truncated or garbled upstream chunk) has no members, so callers leave it
// alone; nothing here throws or reads past the text.
class TopLevel {
 public:
  explicit TopLevel(std::string_view s) : s_(s) {}

  struct Member {
    std::size_t key_begin = 0, value_begin = 0, value_end = 0;
  };

  // The span of the last member named `name` (as nlohmann would read the key), if any.
  std::optional<Member> find(std::string_view name) {
    std::optional<Member> found;
    std::size_t i = skip_ws(0);
    if (i >= s_.size() || s_[i] != '{') return std::nullopt;
    i = skip_ws(i + 1);
    if (i < s_.size() && s_[i] == '}') return std::nullopt;  // {}
    for (;;) {
      if (i >= s_.size() || s_[i] != '"') return std::nullopt;
      const std::size_t key_begin = i;
      i = skip_string(i);
      if (i == kUnterminated) return std::nullopt;
      const std::string_view raw_key = s_.substr(key_begin, i - key_begin);
      bool match = false;
      if (raw_key.find('\\') == std::string_view::npos) {
        match = raw_key.substr(1, raw_key.size() - 2) == name;
      } else {
        const json key = json::parse(raw_key, nullptr, false);
        if (!key.is_string()) return std::nullopt;  // a bad escape
        match = key.get_ref<const std::string&>() == name;
      }
      i = skip_ws(i);
      if (i >= s_.size() || s_[i] != ':') return std::nullopt;
      const std::size_t value_begin = skip_ws(i + 1);
      i = skip_value(value_begin);
      if (i == value_begin) return std::nullopt;  // no value
      if (match) found = Member{key_begin, value_begin, i};
      i = skip_ws(i);
      if (i >= s_.size()) return std::nullopt;  // cut off
      if (s_[i] == '}') return skip_ws(i + 1) == s_.size() ? found : std::nullopt;
      if (s_[i] != ',') return std::nullopt;
      i = skip_ws(i + 1);
    }
  }

 private:
  static constexpr std::size_t kUnterminated = std::string_view::npos;

  std::size_t skip_ws(std::size_t i) const {
    while (i < s_.size() && (s_[i] == ' ' || s_[i] == '\t' || s_[i] == '\n' || s_[i] == '\r')) ++i;
    return i;
  }
  // At the opening quote; returns past the closing one, or kUnterminated.
  std::size_t skip_string(std::size_t i) const {
    for (++i; i < s_.size(); ++i) {
      if (s_[i] == '\\') ++i;
      else if (s_[i] == '"') return i + 1;
    }
    return kUnterminated;
  }
  std::size_t skip_value(std::size_t i) const {
    if (i >= s_.size()) return i;
    if (s_[i] == '"') return std::min(skip_string(i), s_.size());
    if (s_[i] == '{' || s_[i] == '[') {
      std::size_t depth = 0;
      for (; i < s_.size(); ++i) {
        const char c = s_[i];
        if (c == '"') {
          i = skip_string(i);
          if (i == kUnterminated) return s_.size();
          --i;
        } else if (c == '{' || c == '[') {
          ++depth;
        } else if (c == '}' || c == ']') {
          if (--depth == 0) return i + 1;
        }
      }
      return i;
    }
    while (i < s_.size() && s_[i] != ',' && s_[i] != '}' && s_[i] != ' ' && s_[i] != '\t' && s_[i] != '\n' &&
           s_[i] != '\r')
      ++i;
    return i;
  }

  std::string_view s_;
};

std::size_t text_chars(const json& content) {
  if (content.is_string()) return content.get_ref<const std::string&>().size();
  std::size_t n = 0;
  if (content.is_array())
    for (const auto& part : content)
      if (part.is_object()) {
        auto t = part.find("text");
        if (t != part.end() && t->is_string()) n += t->get_ref<const std::string&>().size();
      }
  return n;
}


// A stream's body with `stream_options: {"include_usage": true}` where the client sent no
// stream_options (added as the first member) or an explicit null (replaced, not repeated); the rest
// byte for byte.
std::string with_include_usage(std::string_view body) {
  std::string out;
  if (auto span = TopLevel(body).find("stream_options")) {
    out.assign(body.substr(0, span->value_begin));
    out += R"({"include_usage":true})";
    out.append(body.substr(span->value_end));
  } else {
    const std::size_t open = body.find('{');
    out.assign(body.substr(0, open + 1));
    out += R"("stream_options":{"include_usage":true},)";
    out.append(body.substr(open + 1));
  }
  return out;
}
}  // namespace

std::string without_null_member(std::string_view object_text, std::string_view name) {
  auto m = TopLevel(object_text).find(name);
  if (!m || object_text.substr(m->value_begin, m->value_end - m->value_begin) != "null")
    return std::string(object_text);
  // Remove the member with one of its commas: the one after it, else the one before it.
  std::size_t begin = m->key_begin, end = m->value_end;
  std::size_t after = end;
  while (after < object_text.size() && (object_text[after] == ' ' || object_text[after] == '\t' ||
                                        object_text[after] == '\n' || object_text[after] == '\r'))
    ++after;
  if (after < object_text.size() && object_text[after] == ',') {
    end = after + 1;
  } else {
    std::size_t before = begin;
    while (before > 0 && object_text[before - 1] != ',' && object_text[before - 1] != '{') --before;
    if (before > 0 && object_text[before - 1] == ',') begin = before - 1;
  }
  std::string out(object_text.substr(0, begin));
  out.append(object_text.substr(end));
  return out;
}

namespace {

std::optional<ChatRequest> parse_fast(std::string_view body) {
  detail::FastScan scan;
  if (!nlohmann::json::sax_parse(body.begin(), body.end(), &scan) || !scan.complete()) return std::nullopt;
  const auto& f = scan.facts();
  using Options = detail::FastScan::Facts::Options;
  if (f.stream && !f.client_wants_usage && f.options == Options::object) return std::nullopt;  // needs a rewrite
  if (model_problem(f.model)) return std::nullopt;  // the DOM path words the refusal
  ChatRequest r;
  r.model = f.model;
  r.stream = f.stream;
  r.client_wants_usage = f.options == Options::object && f.client_wants_usage;
  r.max_tokens = f.max_completion_tokens && f.max_tokens ? std::max(*f.max_completion_tokens, *f.max_tokens)
                 : f.max_completion_tokens               ? f.max_completion_tokens
                                                         : f.max_tokens;
  r.prompt_chars = f.prompt_chars;
  r.body_bytes = body.size();
  if (!r.stream || r.client_wants_usage) {
    r.upstream_body.assign(body);
    return r;
  }
  r.upstream_body = with_include_usage(body);
  return r;
}

// The client's bytes, except that a stream whose client did not ask for usage gets include_usage — inside
// the client's own stream_options object when there is one, so its other options still reach upstream.
std::string upstream_body(std::string_view body, const ChatRequest& r, const json* options) {
  if (!r.stream || r.client_wants_usage) return std::string(body);
  if (!options) return with_include_usage(body);
  json patched = *options;
  patched["include_usage"] = true;
  auto span = TopLevel(body).find("stream_options");
  std::string out(body.substr(0, span->value_begin));
  out += patched.dump();
  out.append(body.substr(span->value_end));
  return out;
}

}  // namespace

std::string_view base_model(std::string_view model) noexcept { return model.substr(0, model.find(':')); }

std::optional<std::string> model_problem(std::string_view model) {
  if (model.size() > kMaxModelBytes)
    return "model must be at most " + std::to_string(kMaxModelBytes) + " bytes long";
  for (const char c : model)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return std::string("model must not contain control characters");
  return std::nullopt;
}

std::variant<ChatRequest, InvalidRequest> parse_chat_request(std::string_view body) {
  if (!nests_deeper_than(body, kMaxJsonDepth) && !has_nul(body))
    if (auto fast = parse_fast(body)) return std::move(*fast);
  return parse_chat_request_dom(body);
}

std::variant<ChatRequest, InvalidRequest> parse_chat_request_dom(std::string_view body) {
  if (nests_deeper_than(body, kMaxJsonDepth))
    return InvalidRequest{"The request body nests deeper than " + std::to_string(kMaxJsonDepth) + " levels.", {}};
  const json j = has_nul(body) ? json(json::value_t::discarded) : json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded())
    return InvalidRequest{"We could not parse the JSON body of your request. (HINT: This likely means you aren't "
                          "using your HTTP library correctly. The OpenAI API expects a JSON payload.)",
                          {}};
  if (!j.is_object()) return InvalidRequest{"The request body must be a JSON object.", {}};

  ChatRequest r;
  auto model = j.find("model");
  if (model == j.end()) return InvalidRequest{"you must provide a model parameter", "model"};
  if (!model->is_string() || model->get_ref<const std::string&>().empty())
    return InvalidRequest{"model must be a non-empty string", "model"};
  r.model = model->get<std::string>();
  if (auto problem = model_problem(r.model)) return InvalidRequest{*problem, "model"};
  r.body_bytes = body.size();

  auto messages = j.find("messages");
  if (messages == j.end()) return InvalidRequest{"Missing required parameter: 'messages'.", "messages"};
  if (!messages->is_array()) return InvalidRequest{"'messages' must be an array.", "messages"};
  for (const auto& m : *messages)
    if (m.is_object())
      if (auto c = m.find("content"); c != m.end()) r.prompt_chars += text_chars(*c);

  if (auto stream = j.find("stream"); stream != j.end() && !stream->is_null()) {
    if (!stream->is_boolean()) return InvalidRequest{"'stream' must be a boolean.", "stream"};
    r.stream = stream->get<bool>();
  }
  for (const char* name : {"max_completion_tokens", "max_tokens"}) {
    auto v = j.find(name);
    if (v == j.end() || v->is_null()) continue;
    if (!v->is_number_integer() || v->get<std::int64_t>() < 0)
      return InvalidRequest{std::string("'") + name + "' must be a non-negative integer.", name};
    r.max_tokens = std::max(r.max_tokens.value_or(0), v->get<std::int64_t>());
  }

  auto options = j.find("stream_options");
  if (options != j.end() && !options->is_null() && !options->is_object())
    return InvalidRequest{"'stream_options' must be an object.", "stream_options"};
  const bool has_options = options != j.end() && options->is_object();
  if (has_options) {
    auto iu = options->find("include_usage");
    r.client_wants_usage = iu != options->end() && iu->is_boolean() && iu->get<bool>();
  }

  r.upstream_body = upstream_body(body, r, has_options ? &*options : nullptr);
  return r;
}

}  // namespace lagoon::chat
