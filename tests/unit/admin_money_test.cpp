// The pure parts of budgets, price overrides and usage reports in the CLI and the admin API: how amounts,
// periods and rates are read, how a budget change applies, and how admin calls are parsed.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "lagoon/admin/api.hpp"
#include "lagoon/admin/money_args.hpp"
#include "lagoon/cli/cli.hpp"
#include "lagoon/db/accounts.hpp"
#include "lagoon/db/usage_report.hpp"

namespace admin = lagoon::admin;
namespace db = lagoon::db;
namespace money = lagoon::money;
using nlohmann::json;
using money::Budget;
using money::Period;

namespace {

constexpr money::Pico kUsd = money::kPicoPerUsd;

}  // namespace

TEST(BudgetAmount, IsADecimalOfUsdInWholeMicroDollarsUpToAMillion) {
  const std::vector<std::pair<std::string, std::optional<money::Pico>>> cases = {
      {"0", 0},
      {"12.5", 12'500'000'000'000},
      {"0.000001", 1'000'000},
      {"1000000", 1'000'000 * kUsd},
      {"1000000.000000", 1'000'000 * kUsd},
      {"1e-3", 1'000'000'000},
      {"0.0000001", std::nullopt},  // finer than a micro-dollar: refused, not rounded
      {"0.0000010000001", std::nullopt},
      {"1000000.000001", std::nullopt},
      {"-1", std::nullopt},
      {"+1", std::nullopt},
      {"", std::nullopt},
      {"abc", std::nullopt},
      {"1,5", std::nullopt},
      {"none", std::nullopt},
  };
  for (const auto& [text, want] : cases) EXPECT_EQ(admin::budget_amount(text), want) << text;
  EXPECT_EQ(admin::budget_amount_of(json(2.5)), 2'500'000'000'000);
  EXPECT_EQ(admin::budget_amount_of(json(7)), 7 * kUsd);
  EXPECT_EQ(admin::budget_amount_of(json("0.1")), 100'000'000'000);
  EXPECT_EQ(admin::budget_amount_of(json(0.1)), 100'000'000'000);  // the double's shortest decimal
  EXPECT_FALSE(admin::budget_amount_of(json(-1)));
  EXPECT_FALSE(admin::budget_amount_of(json(true)));
  EXPECT_FALSE(admin::budget_amount_of(json(nullptr)));
  EXPECT_FALSE(admin::budget_amount_of(json::array({1})));
}

TEST(BudgetChange, AppliesToWhatThereIsAndRefusesAPeriodWithNothingToApplyItTo) {
  const Budget daily{5 * kUsd, Period::daily};
  const auto change = [](bool remove, std::optional<money::Pico> amount, std::optional<Period> period) {
    return db::BudgetChange{remove, amount, period};
  };
  EXPECT_EQ(db::changed_budget(std::nullopt, change(false, 3 * kUsd, std::nullopt)), (Budget{3 * kUsd, Period::total}));
  EXPECT_EQ(db::changed_budget(daily, change(false, 3 * kUsd, std::nullopt)), (Budget{3 * kUsd, Period::daily}));
  EXPECT_EQ(db::changed_budget(daily, change(false, std::nullopt, Period::monthly)), (Budget{5 * kUsd, Period::monthly}));
  EXPECT_EQ(db::changed_budget(std::nullopt, change(false, 0, Period::monthly)), (Budget{0, Period::monthly}));
  EXPECT_EQ(db::changed_budget(daily, change(true, std::nullopt, std::nullopt)), std::nullopt);
  EXPECT_EQ(db::changed_budget(std::nullopt, change(true, std::nullopt, std::nullopt)), std::nullopt);
  for (const auto& [current, bad] : std::vector<std::pair<std::optional<Budget>, db::BudgetChange>>{
           {std::nullopt, change(false, std::nullopt, Period::daily)},
           {daily, change(true, std::nullopt, Period::daily)},
           {daily, change(false, money::kMaxBudget + 1'000'000, std::nullopt)},
           {daily, change(false, 1, std::nullopt)},
       }) {
    try {
      db::changed_budget(current, bad);
      ADD_FAILURE() << "accepted";
    } catch (const db::AccountsError& e) {
      EXPECT_EQ(e.kind(), db::AccountsError::Kind::invalid);
      EXPECT_TRUE(e.param() == "budget_period" || e.param() == "budget_usd") << e.what();
    }
  }
}

TEST(CliBudgetOptions, AreReadIntoOneChange) {
  using lagoon::cli::budget_change;
  using lagoon::cli::parse;
  EXPECT_EQ(budget_change(parse({"keys", "update", "7", "--name", "x"})), std::nullopt);
  EXPECT_EQ(budget_change(parse({"keys", "update", "7", "--budget", "2.5"})),
            (db::BudgetChange{false, 2'500'000'000'000, std::nullopt}));
  EXPECT_EQ(budget_change(parse({"users", "update", "a", "--budget", "none"})), (db::BudgetChange{true, {}, {}}));
  EXPECT_EQ(budget_change(parse({"users", "update", "a", "--period", "monthly"})),
            (db::BudgetChange{false, std::nullopt, Period::monthly}));
  EXPECT_EQ(budget_change(parse({"keys", "create", "--user", "a", "--budget=1", "--period=total"})),
            (db::BudgetChange{false, kUsd, Period::total}));
  for (const auto& args : std::vector<std::vector<std::string>>{{"keys", "update", "7", "--budget", "-1"},
                                                                {"keys", "update", "7", "--budget", "0.0000001"},
                                                                {"keys", "update", "7", "--period", "weekly"},
                                                                {"keys", "update", "7", "--budget", "none", "--period", "daily"}})
    EXPECT_THROW(budget_change(parse(args)), lagoon::cli::UsageError) << ::testing::PrintToString(args);
}

TEST(AdminBudgetCalls, AreParsedFromTheBodiesThatCreateOrChange) {
  auto c = std::get<admin::Call>(admin::parse_call("PATCH", "/admin/v1/users/bob%20smith", R"({"budget_usd":"1.5"})"));
  EXPECT_EQ(c.op, admin::Call::Op::update_user);
  EXPECT_EQ(c.user_ref, "bob smith");
  EXPECT_EQ(c.user_changes.budget, (db::BudgetChange{false, 1'500'000'000'000, std::nullopt}));
  c = std::get<admin::Call>(admin::parse_call("PATCH", "/admin/v1/keys/3", R"({"budget":null})"));
  EXPECT_EQ(c.key_changes.budget, (db::BudgetChange{true, {}, {}}));
  EXPECT_FALSE(c.key_changes.rpm_limit);
  c = std::get<admin::Call>(admin::parse_call("PATCH", "/admin/v1/keys/3", R"({"budget_period":"daily"})"));
  EXPECT_EQ(c.key_changes.budget, (db::BudgetChange{false, std::nullopt, Period::daily}));
  c = std::get<admin::Call>(admin::parse_call("POST", "/admin/v1/keys", R"({"user":"a","budget_usd":2})"));
  EXPECT_EQ(c.key_options.budget, (Budget{2 * kUsd, Period::total}));
  c = std::get<admin::Call>(admin::parse_call("POST", "/admin/v1/keys", R"({"user":"a","budget_usd":null})"));
  EXPECT_EQ(c.key_options.budget, std::nullopt);

  for (const auto& [method, target, body, param] : std::vector<std::tuple<std::string, std::string, std::string, std::string>>{
           {"PATCH", "/admin/v1/users/a", R"({"budget_usd":"x"})", "budget_usd"},
           {"PATCH", "/admin/v1/users/a", R"({"period":"yearly"})", "period"},
           {"PATCH", "/admin/v1/users/a", R"({"budget_usd":null,"period":"total"})", "period"},
           {"PATCH", "/admin/v1/users/a", R"({"budget_usd":1,"budget":1})", "budget"},
           {"POST", "/admin/v1/keys", R"({"user":"a","period":"daily"})", "budget_period"},
       }) {
    auto e = std::get<admin::ApiError>(admin::parse_call(method, target, body));
    EXPECT_EQ(e.param, param) << body;
  }
  auto e = std::get<admin::ApiError>(admin::parse_call("PUT", "/admin/v1/users/a", "{}"));
  EXPECT_EQ(e.allow, "GET, PATCH, DELETE");
}

TEST(PriceRates, MakeAPriceWhenTheyAreEnoughForOne) {
  EXPECT_EQ(admin::rate("0.7"), 700'000'000'000);
  EXPECT_EQ(admin::rate("0.0000001"), 100'000);  // a rate may be finer than a micro-dollar
  EXPECT_EQ(admin::rate("1000000"), 1'000'000 * kUsd);
  EXPECT_FALSE(admin::rate("1000000.01"));
  EXPECT_FALSE(admin::rate("-0.1"));
  EXPECT_FALSE(admin::rate("x"));
  EXPECT_EQ(admin::rate_of(json(2.8)), 2'800'000'000'000);
  EXPECT_FALSE(admin::rate_of(json(nullptr)));

  admin::Rates tokens;
  tokens.input = 1 * kUsd;
  tokens.output = 2 * kUsd;
  tokens.cache_write = 3 * kUsd;
  auto p = std::get<money::Price>(admin::price_from_rates(tokens));
  EXPECT_EQ(p.tokens, (money::TokenRates{kUsd, 2 * kUsd, std::nullopt, 3 * kUsd}));
  admin::Rates seconds;
  seconds.per_second = 100'000'000;
  EXPECT_EQ(std::get<money::Price>(admin::price_from_rates(seconds)).per_second, 100'000'000);

  auto problem = [](admin::Rates r) { return std::get<admin::RatesProblem>(admin::price_from_rates(r)).field; };
  EXPECT_EQ(problem({}), "input");
  admin::Rates half;
  half.input = kUsd;
  EXPECT_EQ(problem(half), "output");
  admin::Rates cache_only;
  cache_only.cache_input = kUsd;
  cache_only.per_image = kUsd;
  EXPECT_EQ(problem(cache_only), "input");
}

TEST(AdminPriceCalls, TakeTheRestOfThePathAsTheModel) {
  auto c = std::get<admin::Call>(admin::parse_call("PUT", "/admin/v1/prices/openai/whisper-large-v3", R"({"per_second":"0.0001"})"));
  EXPECT_EQ(c.op, admin::Call::Op::set_price);
  EXPECT_EQ(c.model, "openai/whisper-large-v3");
  EXPECT_EQ(c.price.per_second, 100'000'000);
  c = std::get<admin::Call>(admin::parse_call("DELETE", "/admin/v1/prices/openai%2Fwhisper-large-v3", ""));
  EXPECT_EQ(c.op, admin::Call::Op::delete_price);
  EXPECT_EQ(c.model, "openai/whisper-large-v3");
  c = std::get<admin::Call>(admin::parse_call("DELETE", "/admin/v1/prices/m%3Astrip_thinking%3Dtrue", ""));
  EXPECT_EQ(c.model, "m:strip_thinking=true");
  EXPECT_EQ(std::get<admin::Call>(admin::parse_call("GET", "/admin/v1/prices", "")).op, admin::Call::Op::list_prices);

  EXPECT_EQ(std::get<admin::ApiError>(admin::parse_call("GET", "/admin/v1/prices/", "")).kind,
            lagoon::http::ErrorKind::not_found);
  EXPECT_EQ(std::get<admin::ApiError>(admin::parse_call("GET", "/admin/v1/prices/a%zz", "")).kind,
            lagoon::http::ErrorKind::not_found);
  EXPECT_EQ(std::get<admin::ApiError>(admin::parse_call("POST", "/admin/v1/prices", "{}")).allow, "GET");
  EXPECT_EQ(std::get<admin::ApiError>(admin::parse_call("GET", "/admin/v1/prices/m", "")).allow, "PUT, DELETE");
  EXPECT_EQ(std::get<admin::ApiError>(admin::parse_call("PUT", "/admin/v1/prices/m", R"({"input":1})")).param, "output");
  EXPECT_EQ(std::get<admin::ApiError>(admin::parse_call("PUT", "/admin/v1/prices/m", R"({"per_image":"-1"})")).param,
            "per_image");
}

TEST(UsageReportParts, NumericTextLosesOnlyTheZerosItsScaleAdded) {
  for (const auto& [in, out] : std::vector<std::pair<std::string, std::string>>{
           {"0", "0"}, {"0.000000000000", "0"}, {"12.000", "12"}, {"0.001500000000", "0.0015"}, {"100", "100"},
           {"10000002.626956789012", "10000002.626956789012"}, {"1.10", "1.1"}})
    EXPECT_EQ(db::trim_decimal(in), out) << in;
  for (auto g : {db::Grouping::key, db::Grouping::user, db::Grouping::model, db::Grouping::day})
    EXPECT_EQ(db::grouping_from(db::grouping_name(g)), g);
  EXPECT_FALSE(db::grouping_from("week"));
}

TEST(AdminUsageCalls, TakeAGroupingAndForEveryoneAScope) {
  auto c = std::get<admin::Call>(admin::parse_call("GET", "/admin/v1/keys/4/usage?by=day&from=2026-11-01", ""));
  EXPECT_EQ(c.op, admin::Call::Op::usage);
  EXPECT_EQ(c.usage.key_id, 4);
  EXPECT_EQ(c.usage.by, db::Grouping::day);
  EXPECT_EQ(c.usage.from, "2026-11-01");
  c = std::get<admin::Call>(admin::parse_call("GET", "/admin/v1/usage?by=user", ""));
  EXPECT_EQ(c.usage.by, db::Grouping::user);
  EXPECT_FALSE(c.usage.key_id);
  EXPECT_FALSE(c.usage.user_ref);
  c = std::get<admin::Call>(admin::parse_call("GET", "/admin/v1/usage?user=bob%20smith", ""));
  EXPECT_EQ(c.usage.user_ref, "bob smith");
  EXPECT_FALSE(c.usage.by);
  c = std::get<admin::Call>(admin::parse_call("GET", "/admin/v1/usage?key=9&by=model&to=2026-12-01T00:00:00Z", ""));
  EXPECT_EQ(c.usage.key_id, 9);
  EXPECT_EQ(c.usage.to, "2026-12-01T00:00:00Z");
  for (const auto& [target, param] : std::vector<std::pair<std::string, std::string>>{
           {"/admin/v1/usage", "by"},
           {"/admin/v1/usage?from=2026-01-01", "by"},
           {"/admin/v1/usage?key=1&user=a&by=day", "user"},
           {"/admin/v1/usage?key=0&by=day", "key"},
           {"/admin/v1/usage?by=Day", "by"},
           {"/admin/v1/users/a/usage?by=", "by"},
       })
    EXPECT_EQ(std::get<admin::ApiError>(admin::parse_call("GET", target, "")).param, param) << target;
}
