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
    if (!change.amount) return bad("\"" + amount_field + "\" must be " + std::string(kBudgetRule) + ", or null", amount_field);
  }
  if (period) {
    if (change.remove) return bad("A budget being removed takes no period", period_field);
    const auto name = period->is_string() ? money::period_from(period->get<std::string>()) : std::nullopt;
    if (!name) return bad("\"" + period_field + "\" must be " + std::string(kPeriodRule), period_field);
    change.period = name;
  }
  return std::optional<db::BudgetChange>(change);
}

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

}  // namespace lagoon::admin::parts
