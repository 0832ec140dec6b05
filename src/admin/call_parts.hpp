// The pieces parse_call() is made of, shared by its files (parse_call.cpp: users and keys;
// parse_money.cpp: budgets, prices and usage reports): refusals, percent-decoding, the query string,
// the JSON body and its members. Internal to src/admin; pure, thread-safe.
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

using Query = std::map<std::string, std::string>;
std::variant<Query, ApiError> parse_query(std::string_view target, std::initializer_list<std::string_view> allowed);

// The JSON object body of a POST, PUT or PATCH, with only `allowed` members.
std::variant<json, ApiError> parse_body(std::string_view body, std::initializer_list<std::string_view> allowed);

// A member given under either of two names (the CLI's short one or the name it is shown with); null
// when neither is there.
std::variant<const json*, ApiError> member(const json& j, const char* name, const char* alias);

// "budget_usd" (alias "budget"): a decimal string or number, or null to remove the budget; and
// "budget_period" (alias "period"). Absent both: no change (nullopt).
std::variant<std::optional<db::BudgetChange>, ApiError> budget_members(const json& j);

// GET /users/{id|name}/usage and /keys/{id}/usage: from, to and by from the query string, into
// call.usage (whose key or user is set).
std::variant<Call, ApiError> usage_call(std::string_view target, Call call);
// GET /usage: also key= or user=, with the CLI's rules (exactly one of them without by, at most one with).
std::variant<Call, ApiError> report_call(std::string_view target);

// /admin/v1/prices[/{model}] — `model` is the rest of the path, percent-decoded ("" for the collection).
std::variant<Call, ApiError> prices_call(std::string_view method, const std::string& model, std::string_view body);

}  // namespace lagoon::admin::parts
