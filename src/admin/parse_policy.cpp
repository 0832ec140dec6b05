// The key-policy parts of parse_call: what a key or user may use and until when, a key's tags, and a
// rotation's grace. The values are read by db/accounts' policy readers — the CLI's too — so both front
// ends refuse the same things; a refusal here names the member as the client wrote it. Pure.
#include "call_parts.hpp"

#include "lagoon/auth/policy.hpp"

namespace lagoon::admin::parts {
namespace {

using Items = std::optional<std::vector<std::string>>;

// The member under its name or its alias, and the name it was given under.
struct Given {
  const json* value = nullptr;
  std::string field;
};
std::variant<Given, ApiError> given(const json& j, const char* name, const char* alias) {
  auto m = member(j, name, alias);
  if (auto* e = std::get_if<ApiError>(&m)) return std::move(*e);
  const json* v = std::get<const json*>(m);
  return Given{v, v && j.contains(name) ? name : alias ? alias : name};
}

// A list as a client may write it: an array of strings, one comma-separated string, or null.
std::optional<std::vector<std::string>> items_of(const json& v) {
  if (v.is_null()) return std::vector<std::string>();
  if (v.is_string()) return auth::split_list(v.get<std::string>());
  if (!v.is_array()) return std::nullopt;
  std::vector<std::string> out;
  for (const auto& item : v) {
    if (!item.is_string()) return std::nullopt;
    out.push_back(item.get<std::string>());
  }
  return out;
}

// models or endpoints: read by `reader` (db::model_list or db::endpoint_list), which refuses by throwing.
template <class Reader>
std::variant<std::optional<Items>, ApiError> list_member(const json& j, const char* name, const char* alias,
                                                         Reader reader) {
  auto g = given(j, name, alias);
  if (auto* e = std::get_if<ApiError>(&g)) return std::move(*e);
  const auto& [v, field] = std::get<Given>(g);
  if (!v) return std::optional<Items>();
  const auto items = items_of(*v);
  if (!items) return bad("\"" + field + "\" must be an array of strings, a comma-separated string, or null", field);
  try {
    return std::optional<Items>(reader(*items));
  } catch (const db::AccountsError& e) {
    return bad(e.what(), field);
  }
}

std::variant<std::optional<std::optional<std::int64_t>>, ApiError> expiry_member(const json& j) {
  using Result = std::optional<std::optional<std::int64_t>>;
  const auto it = j.find("expires_at");
  if (it == j.end()) return Result();
  if (it->is_null() || (it->is_string() && it->get<std::string>() == "never")) return Result(std::optional<std::int64_t>());
  const auto us = it->is_string() ? auth::parse_rfc3339_us(it->get<std::string>()) : std::nullopt;
  if (!us) return bad("\"expires_at\" must be an RFC 3339 date-time (e.g. 2027-01-01T00:00:00Z), \"never\" or null",
                      "expires_at");
  try {
    db::check_expiry(us);
  } catch (const db::AccountsError& e) {
    return bad(e.what(), "expires_at");
  }
  return Result(us);
}

}  // namespace

std::variant<db::PolicyChanges, ApiError> policy_members(const json& j) {
  db::PolicyChanges c;
  auto models = list_member(j, "models", "allowed_models", db::model_list);
  if (auto* e = std::get_if<ApiError>(&models)) return std::move(*e);
  c.allowed_models = std::get<std::optional<Items>>(models);
  auto endpoints = list_member(j, "endpoints", "allowed_endpoints", db::endpoint_list);
  if (auto* e = std::get_if<ApiError>(&endpoints)) return std::move(*e);
  c.allowed_endpoints = std::get<std::optional<Items>>(endpoints);
  auto expiry = expiry_member(j);
  if (auto* e = std::get_if<ApiError>(&expiry)) return std::move(*e);
  c.expires_at_us = std::get<std::optional<std::optional<std::int64_t>>>(expiry);
  auto concurrent = limit_member(j, "max_concurrent", nullptr, auth::kMaxConcurrent);
  if (auto* e = std::get_if<ApiError>(&concurrent)) return std::move(*e);
  c.max_concurrent = std::get<std::optional<std::optional<std::int64_t>>>(concurrent);
  return c;
}

std::variant<std::optional<json>, ApiError> tags_member(const json& j) {
  const auto it = j.find("tags");
  if (it == j.end()) return std::optional<json>();
  try {
    db::check_tags(*it);
  } catch (const db::AccountsError& e) {
    return bad(e.what(), "tags");
  }
  return std::optional<json>(*it);
}

std::variant<Call, ApiError> rotate_call(std::string_view body, Call call) {
  call.op = Call::Op::rotate_key;
  call.success_status = 201;
  call.grace_seconds = db::kDefaultGraceSeconds;
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return call;
  auto b = parse_body(body, {"grace", "grace_seconds"});
  if (auto* e = std::get_if<ApiError>(&b)) return std::move(*e);
  const json& j = std::get<json>(b);
  if (j.contains("grace") && j.contains("grace_seconds")) return bad("Give \"grace\" or \"grace_seconds\", not both", "grace");
  if (const auto it = j.find("grace"); it != j.end()) {
    const auto s = it->is_string() ? db::grace_seconds(it->get<std::string>()) : std::nullopt;
    if (!s) return bad("\"grace\" must be a duration such as \"24h\", \"90m\", \"7d\" or \"0\" (at most 366 days)", "grace");
    call.grace_seconds = *s;
  }
  if (const auto it = j.find("grace_seconds"); it != j.end()) {
    // A huge unsigned number reads as a negative one: refused as well.
    if (!it->is_number_integer() || it->get<std::int64_t>() < 0 || it->get<std::int64_t>() > db::kMaxGraceSeconds)
      return bad("\"grace_seconds\" must be an integer 0.." + std::to_string(db::kMaxGraceSeconds), "grace_seconds");
    call.grace_seconds = it->get<std::int64_t>();
  }
  return call;
}

}  // namespace lagoon::admin::parts
