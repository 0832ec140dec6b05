#include "commands.hpp"

#include <algorithm>
#include <charconv>

#include "lagoon/admin/money_args.hpp"
#include "lagoon/ratelimit/policy.hpp"

namespace lagoon::cli {
namespace {

using ratelimit::kMaxRpm;
using ratelimit::kMaxTpm;

constexpr std::int64_t kMaxId = 9223372036854775807LL;

// --rpm/--tpm of `keys update`: a number, or "default" for the configured default (NULL).
std::optional<std::int64_t> limit_or_default(const std::string& what, const std::string& s, std::int64_t max) {
  if (s == "default") return std::nullopt;
  return parse_int(what, s, 0, max);
}

std::int64_t id_argument(const Command& cmd) { return parse_int("ID", cmd.positional.at(0), 1, kMaxId); }

admin::Outcome create_key(const Command& cmd, const config::Config& cfg, pqxx::connection& conn) {
  config::require_pepper(cfg);
  db::KeyOptions o;
  o.name = option(cmd, "name");
  if (auto v = option(cmd, "rpm")) o.rpm_limit = parse_int("--rpm", *v, 0, kMaxRpm);
  if (auto v = option(cmd, "tpm")) o.tpm_limit = parse_int("--tpm", *v, 0, kMaxTpm);
  if (const auto change = budget_change(cmd)) {
    if (change->period && !change->amount) throw UsageError("--period needs --budget: a new key has no budget yet");
    if (change->amount) o.budget = money::Budget{*change->amount, change->period.value_or(money::Period::total)};
  }
  static_cast<db::PolicyOptions&>(o) = db::options_from(policy_changes(cmd));
  if (auto tags = tags_option(cmd)) o.tags = std::move(*tags);
  return admin::create_key(conn, cfg.key_pepper, cmd.options.at("user"), o);
}

admin::Outcome update_key(const Command& cmd, pqxx::connection& conn) {
  db::KeyChanges c;
  static_cast<db::PolicyChanges&>(c) = policy_changes(cmd);
  if (auto v = option(cmd, "name")) c.name = std::optional<std::string>(*v);
  if (auto v = option(cmd, "rpm")) c.rpm_limit = limit_or_default("--rpm", *v, kMaxRpm);
  if (auto v = option(cmd, "tpm")) c.tpm_limit = limit_or_default("--tpm", *v, kMaxTpm);
  c.budget = budget_change(cmd);
  c.tags = tags_option(cmd);
  if (c.empty())
    throw UsageError("keys update needs --name, --rpm, --tpm, --budget, --period, --models, --endpoints, --expires, "
                     "--max-concurrent or --tags");
  return admin::update_key(conn, id_argument(cmd), c);
}

admin::Outcome update_user(const Command& cmd, pqxx::connection& conn) {
  db::UserChanges c;
  static_cast<db::PolicyChanges&>(c) = policy_changes(cmd);
  c.budget = budget_change(cmd);
  if (c.empty())
    throw UsageError("users update needs --budget or --period, or a policy flag (--models, --endpoints, --expires, "
                     "--max-concurrent)");
  return admin::update_user(conn, cmd.positional.at(0), c);
}

// prices set MODEL --input X --output Y …: the flags are the API's rate names with '-' for '_'.
admin::Outcome set_price(const Command& cmd, pqxx::connection& conn) {
  admin::Rates rates;
  auto flag = [](std::string name) {
    std::replace(name.begin(), name.end(), '_', '-');
    return name;
  };
  for (const char* name : admin::kRateNames) {
    const auto text = option(cmd, flag(name));
    if (!text) continue;
    auto& into = admin::rate_field(rates, name);
    into = admin::rate(*text);
    if (!into)
      throw UsageError("--" + flag(name) + ": expected " + std::string(admin::kRateRule) + ", got \"" + *text + "\"");
  }
  auto price = admin::price_from_rates(rates);
  if (auto* p = std::get_if<admin::RatesProblem>(&price)) throw UsageError(p->message + " (--" + flag(p->field) + ")");
  return admin::set_price(conn, cmd.positional.at(0), std::get<money::Price>(price));
}

admin::Outcome usage(const Command& cmd, pqxx::connection& conn) {
  db::UsageQuery q;
  const auto key = option(cmd, "key");
  q.user_ref = option(cmd, "user");
  q.tags = tag_filter(cmd);
  if (auto by = option(cmd, "by")) {
    q.by = db::grouping_from(*by);
    if (!q.by) throw UsageError("--by: expected key, user, model or day, got \"" + *by + "\"");
    if (key && q.user_ref) throw UsageError("usage takes at most one of --key ID and --user NAME|ID");
  } else if ((key && q.user_ref) || (!key && !q.user_ref && q.tags.empty())) {
    throw UsageError("usage needs exactly one of --key ID and --user NAME|ID, or --by to group everyone's usage "
                     "(or --tag NAME=VALUE alone: the usage of the keys so tagged)");
  }
  if (key) q.key_id = parse_int("--key", *key, 1, kMaxId);
  for (const auto& [flag, into] : {std::pair{"from", &q.from}, std::pair{"to", &q.to}}) {
    if (auto v = option(cmd, flag)) {
      if (!admin::valid_timestamp(*v))
        throw UsageError(std::string("--") + flag + ": expected an RFC 3339 date or date-time, got \"" + *v + "\"");
      *into = *v;
    }
  }
  return admin::usage(conn, q);
}

}  // namespace

std::int64_t parse_int(const std::string& what, const std::string& s, std::int64_t lo, std::int64_t hi) {
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || v < lo || v > hi)
    throw UsageError(what + ": expected an integer " + std::to_string(lo) + ".." + std::to_string(hi) + ", got \"" + s + "\"");
  return v;
}

std::optional<std::string> option(const Command& cmd, const std::string& name) {
  auto it = cmd.options.find(name);
  if (it == cmd.options.end()) return std::nullopt;
  return it->second;
}

std::optional<db::BudgetChange> budget_change(const Command& cmd) {
  const auto amount = option(cmd, "budget");
  const auto period = option(cmd, "period");
  if (!amount && !period) return std::nullopt;
  db::BudgetChange c;
  if (amount == "none") {
    if (period) throw UsageError("--budget none removes the budget: it takes no --period");
    c.remove = true;
  } else if (amount) {
    c.amount = admin::budget_amount(*amount);
    if (!c.amount) throw UsageError("--budget: expected " + std::string(admin::kBudgetRule) + ", or none; got \"" + *amount + "\"");
  }
  if (period) {
    c.period = money::period_from(*period);
    if (!c.period) throw UsageError("--period: expected " + std::string(admin::kPeriodRule) + ", got \"" + *period + "\"");
  }
  return c;
}

admin::Outcome run_operation(const Command& cmd, const config::Config& cfg, pqxx::connection& conn) {
  if (cmd.name == "users create")
    return admin::create_user(conn, cmd.options.at("name"), db::options_from(policy_changes(cmd)));
  if (cmd.name == "users get") return admin::get_user(conn, cmd.positional.at(0));
  if (cmd.name == "users deactivate") return admin::deactivate_user(conn, cmd.positional.at(0));
  if (cmd.name == "users update") return update_user(cmd, conn);
  if (cmd.name == "keys create") return create_key(cmd, cfg, conn);
  if (cmd.name == "keys revoke") return admin::revoke_key(conn, id_argument(cmd));
  if (cmd.name == "keys rotate") {
    config::require_pepper(cfg);
    return admin::rotate_key(conn, cfg.key_pepper, id_argument(cmd), grace_option(cmd));
  }
  if (cmd.name == "keys list") return admin::list_keys(conn, cmd.options.at("user"));
  if (cmd.name == "keys get") return admin::get_key(conn, id_argument(cmd));
  if (cmd.name == "keys update") return update_key(cmd, conn);
  if (cmd.name == "prices list") return admin::list_prices(conn);
  if (cmd.name == "prices set") return set_price(cmd, conn);
  if (cmd.name == "prices unset") return admin::delete_price(conn, cmd.positional.at(0));
  if (cmd.name == "usage") return usage(cmd, conn);
  throw UsageError("unknown command \"" + cmd.name + "\"");
}

}  // namespace lagoon::cli
