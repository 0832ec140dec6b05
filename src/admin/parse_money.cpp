// The money parts of parse_call: budgets in the bodies that create or change keys and users, the price
// routes, and the usage reports' query strings. Pure.
#include "call_parts.hpp"

#include "lagoon/admin/money_args.hpp"
#include "lagoon/admin/operations.hpp"

namespace lagoon::admin::parts {

std::variant<std::optional<db::BudgetChange>, ApiError> budget_members(const json& j) {
  auto a = member(j, "budget_usd", "budget");
  if (auto* e = std::get_if<ApiError>(&a)) return std::move(*e);
  auto p = member(j, "budget_period", "period");
  if (auto* e = std::get_if<ApiError>(&p)) return std::move(*e);
  const json* amount = std::get<const json*>(a);
  const json* period = std::get<const json*>(p);
  if (!amount && !period) return std::optional<db::BudgetChange>();
  const std::string amount_field = j.contains("budget_usd") ? "budget_usd" : "budget";
  const std::string period_field = j.contains("budget_period") ? "budget_period" : "period";
  db::BudgetChange change;
  if (amount && amount->is_null()) {
    change.remove = true;
  } else if (amount) {
    change.amount = budget_amount_of(*amount);
    if (!change.amount)
      return bad("\"" + amount_field + "\" must be " + std::string(kBudgetRule) + ", or null", amount_field);
  }
  if (period) {
    if (change.remove) return bad("A budget being removed takes no period", period_field);
    const auto name = period->is_string() ? money::period_from(period->get<std::string>()) : std::nullopt;
    if (!name) return bad("\"" + period_field + "\" must be " + std::string(kPeriodRule), period_field);
    change.period = name;
  }
  return std::optional<db::BudgetChange>(change);
}

std::optional<ApiError> tag_filter(const std::string& text, std::map<std::string, std::string>& tags) {
  const auto colon = text.find(':');
  if (colon == std::string::npos || colon == 0) return bad("\"tag\" must be NAME:VALUE, e.g. tag=team:search", "tag");
  if (!tags.emplace(text.substr(0, colon), text.substr(colon + 1)).second)
    return bad("\"tag\" names \"" + text.substr(0, colon) + "\" twice", "tag");
  return std::nullopt;
}

std::optional<ApiError> usage_query(const Query& query, db::UsageQuery& usage) {
  for (const auto& [k, v] : query) {
    if (k == "tag") {
      if (auto e = tag_filter(v, usage.tags)) return e;
    } else if (k == "by") {
      usage.by = db::grouping_from(v);
      if (!usage.by) return bad("\"by\" must be key, user, model or day", k);
    } else if (k == "from" || k == "to") {
      if (!valid_timestamp(v))
        return bad("\"" + k + "\" must be an RFC 3339 date or date-time, e.g. 2026-11-27T00:00:00Z", k);
      (k == "from" ? usage.from : usage.to) = v;
    }
  }
  return std::nullopt;
}

std::variant<Call, ApiError> usage_call(std::string_view target, Call call) {
  auto q = parse_query(target, {"from", "to", "by"}, {"tag"});
  if (auto* e = std::get_if<ApiError>(&q)) return std::move(*e);
  if (auto e = usage_query(std::get<Query>(q), call.usage)) return std::move(*e);
  call.op = Call::Op::usage;
  return call;
}

std::variant<Call, ApiError> report_call(std::string_view target) {
  auto q = parse_query(target, {"key", "user", "from", "to", "by"}, {"tag"});
  if (auto* e = std::get_if<ApiError>(&q)) return std::move(*e);
  const Query& query = std::get<Query>(q);
  Call call;
  if (auto e = usage_query(query, call.usage)) return std::move(*e);
  if (auto e = usage_scope(query, call.usage)) return std::move(*e);
  if (!call.usage.by && !call.usage.key_id && !call.usage.user_ref && call.usage.tags.empty())
    return bad("Say whose usage (key=, user= or tag=), or group everyone's with by=", "by");
  call.op = Call::Op::usage;
  return call;
}

std::optional<ApiError> usage_scope(const Query& query, db::UsageQuery& usage) {
  if (const auto key = query.find("key"); key != query.end()) {
    usage.key_id = positive_id(key->second);
    if (!usage.key_id) return bad("\"key\" must be a key's id", "key");
  }
  if (const auto user = query.find("user"); user != query.end()) {
    if (user->second.empty()) return bad("\"user\" must be a user's id or name", "user");
    usage.user_ref = user->second;
  }
  if (usage.key_id && usage.user_ref) return bad("Give \"key\" or \"user\", not both", "user");
  return std::nullopt;
}

namespace {

// PUT /prices/{model}: the rates, each a decimal string or a number.
std::variant<Call, ApiError> set_price_call(const std::string& model, std::string_view body) {
  auto b = parse_body(
      body, {"input", "output", "cache_input", "cache_write", "per_image", "per_million_characters", "per_second"});
  if (auto* e = std::get_if<ApiError>(&b)) return std::move(*e);
  Rates rates;
  for (const auto& [field, value] : std::get<json>(b).items()) {
    auto& into = rate_field(rates, field);
    into = rate_of(value);
    if (!into) return bad("\"" + field + "\" must be " + std::string(kRateRule), field);
  }
  auto price = price_from_rates(rates);
  if (auto* p = std::get_if<RatesProblem>(&price)) return bad(p->message, p->field);
  Call call;
  call.op = Call::Op::set_price;
  call.model = model;
  call.price = std::get<money::Price>(price);
  return call;
}

}  // namespace

std::variant<Call, ApiError> prices_call(std::string_view method, const std::string& model, std::string_view body) {
  Call call;
  if (model.empty()) {
    if (method != "GET") return not_allowed(method, "GET");
    call.op = Call::Op::list_prices;
    return call;
  }
  if (method == "PUT") return set_price_call(model, body);
  if (method != "DELETE") return not_allowed(method, "PUT, DELETE");
  call.op = Call::Op::delete_price;
  call.model = model;
  return call;
}

}  // namespace lagoon::admin::parts
