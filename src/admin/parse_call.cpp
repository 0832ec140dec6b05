// parse_call: an admin request's method, URL and body checked and turned into a Call — pure, so every
// refusal is table-tested without a server or a database.
#include "lagoon/admin/api.hpp"

#include <charconv>
#include <map>
#include <vector>

#include <nlohmann/json.hpp>

#include "lagoon/admin/operations.hpp"
#include "lagoon/ratelimit/policy.hpp"

namespace lagoon::admin {
namespace {

using nlohmann::json;

ApiError bad(std::string message, std::optional<std::string> param = std::nullopt) {
  return ApiError{http::ErrorKind::invalid_request, std::move(message), std::move(param), {}};
}
ApiError not_found(std::string message) { return ApiError{http::ErrorKind::not_found, std::move(message), {}, {}}; }
ApiError not_allowed(std::string_view method, std::string_view allow) {
  return ApiError{http::ErrorKind::method_not_allowed, "Method " + std::string(method) + " is not allowed here", {},
                  std::string(allow)};
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decoding of a path segment or query value; nullopt for a broken escape. '+' stays '+', so a
// timestamp's "+01:00" offset arrives intact when a client does not escape it.
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

using Query = std::map<std::string, std::string>;

std::variant<Query, ApiError> parse_query(std::string_view target, std::initializer_list<std::string_view> allowed) {
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
    bool known = false;
    for (auto a : allowed) known = known || a == *name;
    if (!known) return bad("Unknown query parameter \"" + *name + "\"", *name);
    if (!q.emplace(*name, *value).second) return bad("Query parameter \"" + *name + "\" given twice", *name);
  }
  return q;
}

// The JSON object body of a POST or PATCH, with only `allowed` members.
std::variant<json, ApiError> parse_body(std::string_view body, std::initializer_list<std::string_view> allowed) {
  json j = json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_discarded()) return bad(body.empty() ? "A JSON object body is required" : "The body is not valid JSON");
  if (!j.is_object()) return bad("The body must be a JSON object");
  for (const auto& [k, v] : j.items()) {
    bool known = false;
    for (auto a : allowed) known = known || a == k;
    if (!known) return bad("Unknown field \"" + k + "\"", k);
  }
  return j;
}

// A member given under either of two names (the CLI's short one or the name it is shown with).
std::variant<const json*, ApiError> member(const json& j, const char* name, const char* alias) {
  const auto a = j.find(name);
  const auto b = alias ? j.find(alias) : j.end();
  if (a != j.end() && b != j.end())
    return bad(std::string("Give \"") + name + "\" or \"" + alias + "\", not both", std::string(alias));
  if (a != j.end()) return &*a;
  if (b != j.end()) return &*b;
  return static_cast<const json*>(nullptr);
}

// A limit: absent (outer nullopt), null (inner nullopt = configured default) or an integer in range.
std::variant<std::optional<std::optional<std::int64_t>>, ApiError> limit_member(const json& j, const char* name,
                                                                                const char* alias, std::int64_t max) {
  auto m = member(j, name, alias);
  if (auto* e = std::get_if<ApiError>(&m)) return std::move(*e);
  const json* v = std::get<const json*>(m);
  if (!v) return std::optional<std::optional<std::int64_t>>();
  const std::string field = j.contains(name) ? name : alias;
  if (v->is_null()) return std::optional<std::optional<std::int64_t>>(std::optional<std::int64_t>());
  if (!v->is_number_integer() || (v->is_number_unsigned() && v->get<std::uint64_t>() > static_cast<std::uint64_t>(max)))
    return bad("\"" + field + "\" must be an integer 0.." + std::to_string(max) + " (0 = unlimited) or null", field);
  const auto n = v->get<std::int64_t>();
  if (n < 0 || n > max)
    return bad("\"" + field + "\" must be an integer 0.." + std::to_string(max) + " (0 = unlimited) or null", field);
  return std::optional<std::optional<std::int64_t>>(std::optional<std::int64_t>(n));
}

std::variant<std::optional<std::optional<std::string>>, ApiError> name_member(const json& j) {
  const auto it = j.find("name");
  if (it == j.end()) return std::optional<std::optional<std::string>>();
  if (it->is_null()) return std::optional<std::optional<std::string>>(std::optional<std::string>());
  if (!it->is_string()) return bad("\"name\" must be a string or null", "name");
  return std::optional<std::optional<std::string>>(it->get<std::string>());
}

using ratelimit::kMaxRpm;
using ratelimit::kMaxTpm;

std::variant<Call, ApiError> usage_call(std::string_view target, Call call) {
  auto q = parse_query(target, {"from", "to"});
  if (auto* e = std::get_if<ApiError>(&q)) return std::move(*e);
  for (const auto& [k, v] : std::get<Query>(q)) {
    if (!valid_timestamp(v))
      return bad("\"" + k + "\" must be an RFC 3339 date or date-time, e.g. 2026-11-27T00:00:00Z", k);
    (k == "from" ? call.usage.from : call.usage.to) = v;
  }
  call.op = Call::Op::usage;
  return call;
}

std::variant<Call, ApiError> users_call(std::string_view method, std::string_view target,
                                        const std::vector<std::string>& seg, std::string_view body) {
  Call call;
  if (seg.size() == 1) {  // /users
    if (method != "POST") return not_allowed(method, "POST");
    auto b = parse_body(body, {"name"});
    if (auto* e = std::get_if<ApiError>(&b)) return std::move(*e);
    const json& j = std::get<json>(b);
    if (!j.contains("name")) return bad("\"name\" is required", "name");
    if (!j["name"].is_string()) return bad("\"name\" must be a string", "name");
    call.op = Call::Op::create_user;
    call.user_ref = j["name"].get<std::string>();
    call.success_status = 201;
    return call;
  }
  call.user_ref = seg[1];
  if (seg.size() == 2) {
    if (method == "GET") call.op = Call::Op::get_user;
    else if (method == "DELETE") call.op = Call::Op::deactivate_user;
    else return not_allowed(method, "GET, DELETE");
    return call;
  }
  if (seg.size() == 3 && (seg[2] == "keys" || seg[2] == "usage")) {
    if (method != "GET") return not_allowed(method, "GET");
    if (seg[2] == "keys") {
      call.op = Call::Op::list_keys;
      return call;
    }
    call.usage.user_ref = seg[1];
    return usage_call(target, std::move(call));
  }
  return not_found("Unknown admin URL");
}

// PATCH /keys/{id}: at least one of name, rpm, tpm.
std::variant<Call, ApiError> update_key_call(std::string_view body, Call call) {
  auto b = parse_body(body, {"name", "rpm", "rpm_limit", "tpm", "tpm_limit"});
  if (auto* e = std::get_if<ApiError>(&b)) return std::move(*e);
  const json& j = std::get<json>(b);
  auto name = name_member(j);
  if (auto* e = std::get_if<ApiError>(&name)) return std::move(*e);
  call.key_changes.name = std::get<std::optional<std::optional<std::string>>>(name);
  auto rpm = limit_member(j, "rpm", "rpm_limit", kMaxRpm);
  if (auto* e = std::get_if<ApiError>(&rpm)) return std::move(*e);
  call.key_changes.rpm_limit = std::get<std::optional<std::optional<std::int64_t>>>(rpm);
  auto tpm = limit_member(j, "tpm", "tpm_limit", kMaxTpm);
  if (auto* e = std::get_if<ApiError>(&tpm)) return std::move(*e);
  call.key_changes.tpm_limit = std::get<std::optional<std::optional<std::int64_t>>>(tpm);
  if (call.key_changes.empty()) return bad("Nothing to change: give \"name\", \"rpm\" or \"tpm\"");
  call.op = Call::Op::update_key;
  return call;
}

// POST /keys: whose key (a user's id or name), and its optional name and limits.
std::variant<Call, ApiError> create_key_call(std::string_view body) {
  Call call;
  auto b = parse_body(body, {"user", "user_id", "name", "rpm", "rpm_limit", "tpm", "tpm_limit"});
  if (auto* e = std::get_if<ApiError>(&b)) return std::move(*e);
  const json& j = std::get<json>(b);
  auto u = member(j, "user", "user_id");
  if (auto* e = std::get_if<ApiError>(&u)) return std::move(*e);
  const json* user = std::get<const json*>(u);
  const std::string user_field = j.contains("user") ? "user" : "user_id";
  if (!user) return bad("\"user\" (a user's id or name) is required", "user");
  if (user->is_number_integer() && user->get<std::int64_t>() > 0) call.user_ref = std::to_string(user->get<std::int64_t>());
  else if (user->is_string() && user_field == "user") call.user_ref = user->get<std::string>();
  else return bad("\"" + user_field + "\" must be a user's id" + (user_field == "user" ? " or name" : ""), user_field);
  auto name = name_member(j);
  if (auto* e = std::get_if<ApiError>(&name)) return std::move(*e);
  if (auto n = std::get<std::optional<std::optional<std::string>>>(name)) call.key_options.name = *n;
  auto rpm = limit_member(j, "rpm", "rpm_limit", kMaxRpm);
  if (auto* e = std::get_if<ApiError>(&rpm)) return std::move(*e);
  if (auto r = std::get<std::optional<std::optional<std::int64_t>>>(rpm)) call.key_options.rpm_limit = *r;
  auto tpm = limit_member(j, "tpm", "tpm_limit", kMaxTpm);
  if (auto* e = std::get_if<ApiError>(&tpm)) return std::move(*e);
  if (auto t = std::get<std::optional<std::optional<std::int64_t>>>(tpm)) call.key_options.tpm_limit = *t;
  call.op = Call::Op::create_key;
  call.success_status = 201;
  return call;
}

std::variant<Call, ApiError> keys_call(std::string_view method, std::string_view target,
                                       const std::vector<std::string>& seg, std::string_view body) {
  Call call;
  if (seg.size() == 1) {  // /keys
    if (method == "GET") {
      auto q = parse_query(target, {"user"});
      if (auto* e = std::get_if<ApiError>(&q)) return std::move(*e);
      const auto& query = std::get<Query>(q);
      if (!query.count("user") || query.at("user").empty())
        return bad("Say whose keys: ?user=ID or NAME", "user");
      call.op = Call::Op::list_keys;
      call.user_ref = query.at("user");
      return call;
    }
    if (method != "POST") return not_allowed(method, "GET, POST");
    return create_key_call(body);
  }
  const auto id = positive_id(seg[1]);
  if (!id) return not_found("No key with id \"" + seg[1] + "\"");
  call.key_id = *id;
  if (seg.size() == 2) {
    if (method == "GET") {
      call.op = Call::Op::get_key;
      return call;
    }
    if (method == "DELETE") {
      call.op = Call::Op::revoke_key;
      return call;
    }
    if (method != "PATCH") return not_allowed(method, "GET, PATCH, DELETE");
    return update_key_call(body, std::move(call));
  }
  if (seg.size() == 3 && seg[2] == "usage") {
    if (method != "GET") return not_allowed(method, "GET");
    call.usage.key_id = *id;
    return usage_call(target, std::move(call));
  }
  return not_found("Unknown admin URL");
}

}  // namespace

std::variant<Call, ApiError> parse_call(std::string_view method, std::string_view target, std::string_view body) {
  std::string_view path = target.substr(0, target.find('?'));
  constexpr std::string_view kBase = "/admin/v1";
  if (path.substr(0, kBase.size()) != kBase) return not_found("Unknown admin URL");
  path.remove_prefix(kBase.size());
  std::vector<std::string> seg;
  while (!path.empty()) {
    if (path[0] != '/') return not_found("Unknown admin URL");
    path.remove_prefix(1);
    const auto slash = path.find('/');
    auto piece = decode(path.substr(0, slash));
    if (!piece || piece->empty()) return not_found("Unknown admin URL");
    seg.push_back(std::move(*piece));
    path = slash == std::string_view::npos ? std::string_view() : path.substr(slash);
  }
  if (seg.empty()) return not_found("Unknown admin URL");
  if (seg[0] == "users" && seg.size() <= 3) return users_call(method, target, seg, body);
  if (seg[0] == "keys" && seg.size() <= 3) return keys_call(method, target, seg, body);
  return not_found("Unknown admin URL");
}

}  // namespace lagoon::admin
