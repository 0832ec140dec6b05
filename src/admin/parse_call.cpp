// parse_call: an admin request's method, URL and body checked and turned into a Call — pure, so every
// refusal is table-tested without a server or a database.
#include "lagoon/admin/api.hpp"

#include <vector>

#include "call_parts.hpp"
#include "lagoon/ratelimit/policy.hpp"

namespace lagoon::admin {
namespace {

using namespace parts;

std::variant<std::optional<std::optional<std::string>>, ApiError> name_member(const json& j) {
  const auto it = j.find("name");
  if (it == j.end()) return std::optional<std::optional<std::string>>();
  if (it->is_null()) return std::optional<std::optional<std::string>>(std::optional<std::string>());
  if (!it->is_string()) return bad("\"name\" must be a string or null", "name");
  return std::optional<std::optional<std::string>>(it->get<std::string>());
}

using ratelimit::kMaxRpm;
using ratelimit::kMaxTpm;

// PATCH /users/{id|name}: its budget and the policy its keys inherit.
std::variant<Call, ApiError> update_user_call(std::string_view body, Call call) {
  auto b = parse_body_with_policy(body, {"budget_usd", "budget", "budget_period", "period"}, false);
  if (auto* e = std::get_if<ApiError>(&b)) return std::move(*e);
  auto policy = policy_members(std::get<json>(b));
  if (auto* e = std::get_if<ApiError>(&policy)) return std::move(*e);
  static_cast<db::PolicyChanges&>(call.user_changes) = std::get<db::PolicyChanges>(policy);
  auto budget = budget_members(std::get<json>(b));
  if (auto* e = std::get_if<ApiError>(&budget)) return std::move(*e);
  call.user_changes.budget = std::get<std::optional<db::BudgetChange>>(budget);
  if (call.user_changes.empty())
    return bad("Nothing to change: give \"budget_usd\", \"budget_period\", \"models\", \"endpoints\", "
               "\"expires_at\" or \"max_concurrent\"");
  call.op = Call::Op::update_user;
  return call;
}

// POST /users: a name, and the policy its keys inherit.
std::variant<Call, ApiError> create_user_call(std::string_view body) {
  auto b = parse_body_with_policy(body, {"name"}, false);
  if (auto* e = std::get_if<ApiError>(&b)) return std::move(*e);
  const json& j = std::get<json>(b);
  if (!j.contains("name")) return bad("\"name\" is required", "name");
  if (!j["name"].is_string()) return bad("\"name\" must be a string", "name");
  auto policy = policy_members(j);
  if (auto* e = std::get_if<ApiError>(&policy)) return std::move(*e);
  Call call;
  call.op = Call::Op::create_user;
  call.user_ref = j["name"].get<std::string>();
  call.user_policy = db::options_from(std::get<db::PolicyChanges>(policy));
  call.success_status = 201;
  return call;
}

std::variant<Call, ApiError> users_call(std::string_view method, std::string_view target,
                                        const std::vector<std::string>& seg, std::string_view body) {
  Call call;
  if (seg.size() == 1) {  // /users
    if (method == "GET") return users_list_call(target);
    if (method != "POST") return not_allowed(method, "GET, POST");
    return create_user_call(body);
  }
  call.user_ref = seg[1];
  if (seg.size() == 2) {
    if (method == "GET") call.op = Call::Op::get_user;
    else if (method == "DELETE") call.op = Call::Op::deactivate_user;
    else if (method == "PATCH") return update_user_call(body, std::move(call));
    else return not_allowed(method, "GET, PATCH, DELETE");
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

// A key body's policy and tags, into `policy` and `tags`.
std::optional<ApiError> key_policy(const json& j, db::PolicyChanges& policy, std::optional<json>& tags) {
  auto p = policy_members(j);
  if (auto* e = std::get_if<ApiError>(&p)) return std::move(*e);
  policy = std::get<db::PolicyChanges>(p);
  auto t = tags_member(j);
  if (auto* e = std::get_if<ApiError>(&t)) return std::move(*e);
  tags = std::get<std::optional<json>>(t);
  return std::nullopt;
}

// PATCH /keys/{id}: at least one of name, rpm, tpm, budget, policy, tags.
std::variant<Call, ApiError> update_key_call(std::string_view body, Call call) {
  auto b = parse_body_with_policy(
      body, {"name", "rpm", "rpm_limit", "tpm", "tpm_limit", "budget_usd", "budget", "budget_period", "period"}, true);
  if (auto* e = std::get_if<ApiError>(&b)) return std::move(*e);
  const json& j = std::get<json>(b);
  if (auto e = key_policy(j, call.key_changes, call.key_changes.tags)) return std::move(*e);
  auto name = name_member(j);
  if (auto* e = std::get_if<ApiError>(&name)) return std::move(*e);
  call.key_changes.name = std::get<std::optional<std::optional<std::string>>>(name);
  auto rpm = limit_member(j, "rpm", "rpm_limit", kMaxRpm);
  if (auto* e = std::get_if<ApiError>(&rpm)) return std::move(*e);
  call.key_changes.rpm_limit = std::get<std::optional<std::optional<std::int64_t>>>(rpm);
  auto tpm = limit_member(j, "tpm", "tpm_limit", kMaxTpm);
  if (auto* e = std::get_if<ApiError>(&tpm)) return std::move(*e);
  call.key_changes.tpm_limit = std::get<std::optional<std::optional<std::int64_t>>>(tpm);
  auto budget = budget_members(j);
  if (auto* e = std::get_if<ApiError>(&budget)) return std::move(*e);
  call.key_changes.budget = std::get<std::optional<db::BudgetChange>>(budget);
  if (call.key_changes.empty())
    return bad("Nothing to change: give \"name\", \"rpm\", \"tpm\", \"budget_usd\", \"budget_period\", \"models\", "
               "\"endpoints\", \"expires_at\", \"max_concurrent\" or \"tags\"");
  call.op = Call::Op::update_key;
  return call;
}

// POST /keys: whose key (a user's id or name), and its optional name, limits, budget, policy and tags.
std::variant<Call, ApiError> create_key_call(std::string_view body) {
  Call call;
  auto b = parse_body_with_policy(body, {"user", "user_id", "name", "rpm", "rpm_limit", "tpm", "tpm_limit", "budget_usd",
                                         "budget", "budget_period", "period"}, true);
  if (auto* e = std::get_if<ApiError>(&b)) return std::move(*e);
  const json& j = std::get<json>(b);
  db::PolicyChanges policy;
  std::optional<json> tags;
  if (auto e = key_policy(j, policy, tags)) return std::move(*e);
  static_cast<db::PolicyOptions&>(call.key_options) = db::options_from(policy);
  if (tags) call.key_options.tags = *tags;
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
  auto budget = budget_members(j);
  if (auto* e = std::get_if<ApiError>(&budget)) return std::move(*e);
  if (const auto& change = std::get<std::optional<db::BudgetChange>>(budget)) {
    // A new key has no budget whose period could be kept or changed.
    if (change->period && !change->amount) return bad("\"budget_period\" needs \"budget_usd\"", "budget_period");
    if (change->amount) call.key_options.budget = money::Budget{*change->amount, change->period.value_or(money::Period::total)};
  }
  call.op = Call::Op::create_key;
  call.success_status = 201;
  return call;
}

std::variant<Call, ApiError> keys_call(std::string_view method, std::string_view target,
                                       const std::vector<std::string>& seg, std::string_view body) {
  Call call;
  if (seg.size() == 1) {  // /keys
    if (method == "GET") return keys_list_call(target);
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
  if (seg.size() == 3 && seg[2] == "rotate") {
    if (method != "POST") return not_allowed(method, "POST");
    return rotate_call(body, std::move(call));
  }
  return not_found("Unknown admin URL");
}

}  // namespace

std::variant<Call, ApiError> parse_call(std::string_view method, std::string_view target, std::string_view body) {
  std::string_view path = target.substr(0, target.find('?'));
  constexpr std::string_view kBase = "/admin/v1";
  if (path.substr(0, kBase.size()) != kBase) return not_found("Unknown admin URL");
  path.remove_prefix(kBase.size());
  // A model id may hold '/' ("openai/whisper-large-v3"): the rest of the path is the id, escaped or not.
  constexpr std::string_view kPrices = "/prices";
  if (path == kPrices) return prices_call(method, "", body);
  if (path.substr(0, kPrices.size() + 1) == "/prices/") {
    auto model = decode(path.substr(kPrices.size() + 1));
    if (!model || model->empty()) return not_found("Unknown admin URL");
    return prices_call(method, *model, body);
  }
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
  if (seg[0] == "usage" && (seg.size() == 1 || (seg.size() == 2 && seg[1] == "series"))) {
    if (method != "GET") return not_allowed(method, "GET");
    return seg.size() == 1 ? report_call(target) : series_call(target);
  }
  if (seg[0] == "metrics" && seg.size() == 1) {
    if (method != "GET") return not_allowed(method, "GET");
    Call call;
    call.op = Call::Op::metrics;
    return call;
  }
  return not_found("Unknown admin URL");
}

}  // namespace lagoon::admin
