// The pieces parse_call() is made of, shared by its files (parse_call.cpp: users and keys;
// parse_money.cpp: budgets, prices and usage reports; parse_policy.cpp: key policy, tags and rotation):
// refusals, percent-decoding, the query string, the JSON body and its members. Internal to src/admin;
// pure, thread-safe.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "lagoon/admin/api.hpp"

namespace lagoon::admin::parts {

using nlohmann::json;

ApiError bad(std::string message, std::optional<std::string> param = std::nullopt);
ApiError not_found(std::string message);
ApiError not_allowed(std::string_view method, std::string_view allow);

// Percent-decoding of a path segment or query value; nullopt for a broken escape. '+' stays '+', so a
// timestamp's "+01:00" offset arrives intact when a client does not escape it.
std::optional<std::string> decode(std::string_view s);

std::optional<std::int64_t> positive_id(std::string_view s);

// A name given twice is refused, unless it is `repeatable` (each value is kept, in order).
using Query = std::multimap<std::string, std::string>;
std::variant<Query, ApiError> parse_query(std::string_view target, std::initializer_list<std::string_view> allowed,
                                          std::initializer_list<std::string_view> repeatable = {});

// The JSON object body of a POST, PUT or PATCH, with only `allowed` members.
std::variant<json, ApiError> parse_body(std::string_view body, std::initializer_list<std::string_view> allowed);

// A member given under either of two names (the CLI's short one or the name it is shown with); null
// when neither is there.
std::variant<const json*, ApiError> member(const json& j, const char* name, const char* alias);

// A limit: absent (outer nullopt), null (inner nullopt) or an integer 0..max.
std::variant<std::optional<std::optional<std::int64_t>>, ApiError> limit_member(const json& j, const char* name,
                                                                                const char* alias, std::int64_t max);

// "budget_usd" (alias "budget"): a decimal string or number, or null to remove the budget; and
// "budget_period" (alias "period"). Absent both: no change (nullopt).
std::variant<std::optional<db::BudgetChange>, ApiError> budget_members(const json& j);

// The policy members of a key or user body (api.hpp): "models"/"allowed_models",
// "endpoints"/"allowed_endpoints", "expires_at", "max_concurrent". Absent: no change.
inline constexpr std::string_view kPolicyMembers[] = {"models",     "allowed_models", "endpoints", "allowed_endpoints",
                                                      "expires_at", "max_concurrent"};
std::variant<db::PolicyChanges, ApiError> policy_members(const json& j);
// "tags": a JSON object; absent: nullopt.
std::variant<std::optional<json>, ApiError> tags_member(const json& j);
// The body's members, each of which must be in `allowed` or kPolicyMembers (and "tags" if `with_tags`).
std::variant<json, ApiError> parse_body_with_policy(std::string_view body, std::initializer_list<std::string_view> allowed,
                                                    bool with_tags);

// POST /keys/{id}/rotate: {"grace": DURATION} or {"grace_seconds": N}, or no body (the default grace).
std::variant<Call, ApiError> rotate_call(std::string_view body, Call call);

// tag=NAME:VALUE — the name up to the first ':' (a tag's name may hold none), the value the rest — into
// `tags`; a name given twice is refused.
std::optional<ApiError> tag_filter(const std::string& text, std::map<std::string, std::string>& tags);
// from, to, by and tag of a usage query string, into `usage`.
std::optional<ApiError> usage_query(const Query& query, db::UsageQuery& usage);
// key= (an id) or user= (an id or name) of a usage query string, into `usage`; not both.
std::optional<ApiError> usage_scope(const Query& query, db::UsageQuery& usage);

// GET /users/{id|name}/usage and /keys/{id}/usage: from, to and by from the query string, into
// call.usage (whose key or user is set).
std::variant<Call, ApiError> usage_call(std::string_view target, Call call);
// GET /usage: also key= or user=, with the CLI's rules (exactly one of them without by, at most one with).
std::variant<Call, ApiError> report_call(std::string_view target);

// The console's listings and series (parse_lists.cpp): GET /users, GET /keys and GET /usage/series, from
// the query string.
std::variant<Call, ApiError> users_list_call(std::string_view target);
std::variant<Call, ApiError> keys_list_call(std::string_view target);
std::variant<Call, ApiError> series_call(std::string_view target);

// /admin/v1/prices[/{model}] — `model` is the rest of the path, percent-decoded ("" for the collection).
std::variant<Call, ApiError> prices_call(std::string_view method, const std::string& model, std::string_view body);

}  // namespace lagoon::admin::parts
