#include "call_parts.hpp"

#include <algorithm>
#include <charconv>

namespace lagoon::admin::parts {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool one_of(std::initializer_list<std::string_view> names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// The body as a JSON object whose every member `known` accepts.
template <class Known>
std::variant<json, ApiError> object_with(std::string_view body, Known known) {
  json j = json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_discarded()) return bad(body.empty() ? "A JSON object body is required" : "The body is not valid JSON");
  if (!j.is_object()) return bad("The body must be a JSON object");
  for (const auto& [k, v] : j.items())
    if (!known(k)) return bad("Unknown field \"" + k + "\"", k);
  return j;
}

}  // namespace

ApiError bad(std::string message, std::optional<std::string> param) {
  return ApiError{http::ErrorKind::invalid_request, std::move(message), std::move(param), {}};
}
ApiError not_found(std::string message) { return ApiError{http::ErrorKind::not_found, std::move(message), {}, {}}; }
ApiError not_allowed(std::string_view method, std::string_view allow) {
  return ApiError{http::ErrorKind::method_not_allowed, "Method " + std::string(method) + " is not allowed here", {},
                  std::string(allow)};
}

std::optional<std::string> decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    const int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

std::optional<std::int64_t> positive_id(std::string_view s) {
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || v <= 0) return std::nullopt;
  return v;
}

std::variant<Query, ApiError> parse_query(std::string_view target, std::initializer_list<std::string_view> allowed,
                                          std::initializer_list<std::string_view> repeatable) {
  Query q;
  const auto mark = target.find('?');
  if (mark == std::string_view::npos) return q;
  std::string_view rest = target.substr(mark + 1);
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    if (pair.empty()) continue;
    const auto eq = pair.find('=');
    auto name = decode(pair.substr(0, eq));
    auto value = decode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    if (!name || !value) return bad("Malformed percent-escape in the query string");
    const bool known = one_of(allowed, *name) || one_of(repeatable, *name);
    if (!known) return bad("Unknown query parameter \"" + *name + "\"", *name);
    if (q.count(*name) && !one_of(repeatable, *name))
      return bad("Query parameter \"" + *name + "\" given twice", *name);
    q.emplace(*name, *value);
  }
  return q;
}

std::variant<json, ApiError> parse_body(std::string_view body, std::initializer_list<std::string_view> allowed) {
  return object_with(body, [&](const std::string& k) { return one_of(allowed, k); });
}

std::variant<json, ApiError> parse_body_with_policy(std::string_view body, std::initializer_list<std::string_view> allowed,
                                                    bool with_tags) {
  return object_with(body, [&](const std::string& k) {
    return one_of(allowed, k) || std::find(std::begin(kPolicyMembers), std::end(kPolicyMembers), k) !=
                                     std::end(kPolicyMembers) || (with_tags && k == "tags");
  });
}

std::variant<std::optional<std::optional<std::int64_t>>, ApiError> limit_member(const json& j, const char* name,
                                                                                const char* alias, std::int64_t max) {
  auto m = member(j, name, alias);
  if (auto* e = std::get_if<ApiError>(&m)) return std::move(*e);
  const json* v = std::get<const json*>(m);
  if (!v) return std::optional<std::optional<std::int64_t>>();
  const std::string field = j.contains(name) ? name : alias;
  if (v->is_null()) return std::optional<std::optional<std::int64_t>>(std::optional<std::int64_t>());
  const std::string rule = "\"" + field + "\" must be an integer 0.." + std::to_string(max) + " (0 = unlimited) or null";
  if (!v->is_number_integer() || (v->is_number_unsigned() && v->get<std::uint64_t>() > static_cast<std::uint64_t>(max)))
    return bad(rule, field);
  const auto n = v->get<std::int64_t>();
  if (n < 0 || n > max) return bad(rule, field);
  return std::optional<std::optional<std::int64_t>>(std::optional<std::int64_t>(n));
}

std::variant<const json*, ApiError> member(const json& j, const char* name, const char* alias) {
  const auto a = j.find(name);
  const auto b = alias ? j.find(alias) : j.end();
  if (a != j.end() && b != j.end())
    return bad(std::string("Give \"") + name + "\" or \"" + alias + "\", not both", std::string(alias));
  if (a != j.end()) return &*a;
  if (b != j.end()) return &*b;
  return static_cast<const json*>(nullptr);
}

}  // namespace lagoon::admin::parts
