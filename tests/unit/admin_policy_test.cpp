// The pure parts of key policy in the CLI and the admin API: how models, endpoints, expiry, concurrency,
// tags, a rotation's grace and a usage report's tag filter are read, and that both front ends refuse the
// same values (they share db's policy readers).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "lagoon/admin/api.hpp"
#include "lagoon/cli/cli.hpp"
#include "lagoon/db/accounts.hpp"

namespace admin = lagoon::admin;
namespace cli = lagoon::cli;
namespace db = lagoon::db;
using nlohmann::json;
using Strings = std::vector<std::string>;

namespace {

constexpr std::int64_t k2027 = 1'798'761'600'000'000;  // 2027-01-01T00:00:00Z in Unix µs

// A change that sets a field, and one that unsets it.
template <class T>
std::optional<std::optional<T>> set_to(T v) {
  return std::optional<std::optional<T>>(std::in_place, std::move(v));
}
template <class T>
std::optional<std::optional<T>> unset() {
  return std::optional<std::optional<T>>(std::in_place, std::nullopt);
}

admin::Call call(const std::string& method, const std::string& target, const std::string& body = "") {
  auto parsed = admin::parse_call(method, target, body);
  if (auto* e = std::get_if<admin::ApiError>(&parsed)) ADD_FAILURE() << target << " " << body << ": " << e->message;
  return std::get<admin::Call>(parsed);
}

admin::ApiError refused(const std::string& method, const std::string& target, const std::string& body = "") {
  auto parsed = admin::parse_call(method, target, body);
  if (std::holds_alternative<admin::Call>(parsed)) {
    ADD_FAILURE() << method << " " << target << " " << body << " was accepted";
    return {};
  }
  return std::get<admin::ApiError>(parsed);
}

}  // namespace

TEST(AdminPolicyReaders, ModelsAreCheckedDeduplicatedAndAnEmptyListIsUnset) {
  EXPECT_EQ(db::model_list({"llama-*", "venice-uncensored", "llama-*"}), (Strings{"llama-*", "venice-uncensored"}));
  EXPECT_EQ(db::model_list({}), std::nullopt);
  for (const Strings& bad : {Strings{"llama 3"}, Strings{"m:param=1"}, Strings{std::string(201, 'a')}, Strings{""}}) {
    try {
      db::model_list(bad);
      ADD_FAILURE() << bad[0] << " was accepted";
    } catch (const db::AccountsError& e) {
      EXPECT_EQ(e.kind(), db::AccountsError::Kind::invalid);
      EXPECT_EQ(e.param(), "models");
    }
  }
}

TEST(AdminPolicyReaders, EndpointsComeOutInOneOrderOnceEach) {
  EXPECT_EQ(db::endpoint_list({"responses", "chat", "chat"}), (Strings{"chat", "responses"}));
  EXPECT_EQ(db::endpoint_list({}), std::nullopt);
  EXPECT_THROW(db::endpoint_list({"chat", "video"}), db::AccountsError);
  EXPECT_THROW(db::endpoint_list({"Chat"}), db::AccountsError);
}

TEST(AdminPolicyReaders, RangesOfExpiryConcurrencyAndTags) {
  EXPECT_NO_THROW(db::check_expiry(k2027));
  EXPECT_NO_THROW(db::check_expiry(std::nullopt));
  EXPECT_THROW(db::check_expiry(-62'135'596'800'000'001), db::AccountsError);  // before 0001-01-01
  EXPECT_NO_THROW(db::check_max_concurrent(0));
  EXPECT_NO_THROW(db::check_max_concurrent(1'000'000));
  EXPECT_THROW(db::check_max_concurrent(1'000'001), db::AccountsError);
  EXPECT_THROW(db::check_max_concurrent(-1), db::AccountsError);
  EXPECT_NO_THROW(db::check_tags(json::object()));
  EXPECT_THROW(db::check_tags(json::array()), db::AccountsError);
  EXPECT_THROW(db::check_tags(json{{"big", std::string(5000, 'x')}}), db::AccountsError);
}

TEST(AdminPolicyReaders, AGraceIsADurationOfAtMost366Days) {
  const std::vector<std::pair<std::string, std::optional<std::int64_t>>> cases = {
      {"24h", 86400}, {"90m", 5400}, {"1h30m", 5400}, {"7d", 604800}, {"0", 0},   {"0s", 0},
      {"366d", 366 * 86400}, {"367d", std::nullopt}, {"1h0", std::nullopt},  // a bare number after a unit is a typo
      {"", std::nullopt},     {"24", std::nullopt},  {"-1h", std::nullopt},  {"1w", std::nullopt}, {"h", std::nullopt},
  };
  for (const auto& [text, want] : cases) EXPECT_EQ(db::grace_seconds(text), want) << text;
}

TEST(CliPolicyFlags, SetOrUnsetEachFieldAndLeaveTheRestAlone) {
  auto c = cli::policy_changes(cli::parse({"keys", "update", "7", "--models", "llama-*, venice-uncensored",
                                            "--endpoints", "chat,embeddings", "--expires", "2027-01-01T01:00:00+01:00",
                                            "--max-concurrent", "0"}));
  EXPECT_EQ(c.allowed_models, set_to(Strings{"llama-*", "venice-uncensored"}));
  EXPECT_EQ(c.allowed_endpoints, set_to(Strings{"chat", "embeddings"}));
  EXPECT_EQ(c.expires_at_us, set_to<std::int64_t>(k2027));
  EXPECT_EQ(c.max_concurrent, set_to<std::int64_t>(0));

  const auto unset_list = unset<Strings>();
  const auto unset_number = unset<std::int64_t>();
  for (const std::string word : {"", "inherit"}) {
    c = cli::policy_changes(cli::parse({"keys", "update", "7", "--models", word, "--endpoints", word,
                                         "--max-concurrent", "inherit", "--expires", "never"}));
    EXPECT_EQ(c.allowed_models, unset_list) << word;
    EXPECT_EQ(c.allowed_endpoints, unset_list) << word;
    EXPECT_EQ(c.max_concurrent, unset_number);
    EXPECT_EQ(c.expires_at_us, unset_number);
  }
  c = cli::policy_changes(cli::parse({"users", "update", "alice", "--max-concurrent", "3"}));
  EXPECT_FALSE(c.allowed_models);
  EXPECT_FALSE(c.expires_at_us);
  EXPECT_TRUE(cli::policy_changes(cli::parse({"keys", "update", "7", "--name", "x"})).empty());
  EXPECT_EQ(cli::policy_changes(cli::parse({"users", "create", "--name", "a", "--models", "m"})).allowed_models,
            set_to(Strings{"m"}));
}

TEST(CliPolicyFlags, RefuseWhatTheAdminApiRefuses) {
  for (const auto& args : std::vector<Strings>{
           {"keys", "update", "7", "--models", "llama 3"},
           {"keys", "update", "7", "--endpoints", "chat,video"},
           {"keys", "update", "7", "--expires", "2027-01-01"},  // a date-time, not a date
           {"keys", "update", "7", "--expires", "tomorrow"},
           {"keys", "update", "7", "--max-concurrent", "-1"},
           {"keys", "update", "7", "--max-concurrent", "1000001"},
           {"keys", "update", "7", "--max-concurrent", "unlimited"},
           {"users", "create", "--name", "a", "--endpoints", "all"},
       })
    EXPECT_THROW(cli::policy_changes(cli::parse(args)), cli::UsageError) << ::testing::PrintToString(args);
  // Tags only on keys, grace only on rotation.
  EXPECT_THROW(cli::parse({"users", "update", "a", "--tags", "{}"}), cli::UsageError);
  EXPECT_THROW(cli::parse({"keys", "update", "7", "--grace", "1h"}), cli::UsageError);
}

TEST(CliPolicyFlags, TagsAreAJsonObject) {
  EXPECT_EQ(cli::tags_option(cli::parse({"keys", "update", "7", "--tags", R"({"team":"search"})"})),
            (json{{"team", "search"}}));
  EXPECT_EQ(cli::tags_option(cli::parse({"keys", "update", "7", "--tags", "{}"})), json::object());
  EXPECT_EQ(cli::tags_option(cli::parse({"keys", "update", "7", "--name", "n"})), std::nullopt);
  for (const std::string bad : {"[]", "team=search", "\"x\"", "{"})
    EXPECT_THROW(cli::tags_option(cli::parse({"keys", "update", "7", "--tags", bad})), cli::UsageError) << bad;
}

TEST(CliRotate, TakesAGraceOfADayUnlessToldOtherwise) {
  const auto r = cli::parse({"keys", "rotate", "7"});
  EXPECT_EQ(r.name, "keys rotate");
  EXPECT_EQ(r.positional, Strings{"7"});
  EXPECT_EQ(cli::grace_option(r), 86400);
  EXPECT_EQ(cli::grace_option(cli::parse({"keys", "rotate", "7", "--grace", "0"})), 0);
  EXPECT_EQ(cli::grace_option(cli::parse({"keys", "rotate", "7", "--grace=1h30m"})), 5400);
  EXPECT_THROW(cli::grace_option(cli::parse({"keys", "rotate", "7", "--grace", "400d"})), cli::UsageError);
  EXPECT_THROW(cli::parse({"keys", "rotate"}), cli::UsageError);
}

TEST(CliUsageTags, AreRepeatableAndAllMustMatch) {
  const auto cmd = cli::parse({"usage", "--by", "key", "--tag", "team=search", "--tag=env=prod=eu"});
  EXPECT_EQ(cmd.repeated.at("tag"), (Strings{"team=search", "env=prod=eu"}));
  EXPECT_EQ(cli::tag_filter(cmd), (std::map<std::string, std::string>{{"team", "search"}, {"env", "prod=eu"}}));
  EXPECT_TRUE(cli::tag_filter(cli::parse({"usage", "--by", "day"})).empty());
  EXPECT_THROW(cli::tag_filter(cli::parse({"usage", "--tag", "team"})), cli::UsageError);
  EXPECT_THROW(cli::tag_filter(cli::parse({"usage", "--tag", "=x"})), cli::UsageError);
  EXPECT_THROW(cli::tag_filter(cli::parse({"usage", "--tag", "a=1", "--tag", "a=2"})), cli::UsageError);
  EXPECT_THROW(cli::parse({"usage", "--by", "day", "--by", "key"}), cli::UsageError);  // others still once
  EXPECT_THROW(cli::parse({"keys", "list", "--user", "a", "--tag", "a=1"}), cli::UsageError);
}

TEST(AdminPolicyCalls, KeysTakeEachFieldUnderItsNameOrAlias) {
  auto c = call("POST", "/admin/v1/keys",
                R"({"user":"a","models":["llama-*","m"],"allowed_endpoints":"chat, audio","expires_at":"2027-01-01T00:00:00Z",)"
                R"("max_concurrent":2,"tags":{"team":"search"}})");
  EXPECT_EQ(c.op, admin::Call::Op::create_key);
  EXPECT_EQ(c.key_options.allowed_models, (Strings{"llama-*", "m"}));
  EXPECT_EQ(c.key_options.allowed_endpoints, (Strings{"chat", "audio"}));
  EXPECT_EQ(c.key_options.expires_at_us, k2027);
  EXPECT_EQ(c.key_options.max_concurrent, 2);
  EXPECT_EQ(c.key_options.tags, (json{{"team", "search"}}));
  EXPECT_EQ(call("POST", "/admin/v1/keys", R"({"user":"a"})").key_options.tags, json::object());

  c = call("PATCH", "/admin/v1/keys/3", R"({"allowed_models":"a,b","endpoints":[],"expires_at":"never","max_concurrent":null})");
  EXPECT_EQ(c.key_changes.allowed_models, set_to(Strings{"a", "b"}));
  EXPECT_EQ(c.key_changes.allowed_endpoints, unset<Strings>());
  EXPECT_EQ(c.key_changes.expires_at_us, unset<std::int64_t>());
  EXPECT_EQ(c.key_changes.max_concurrent, unset<std::int64_t>());
  EXPECT_FALSE(c.key_changes.tags);
  c = call("PATCH", "/admin/v1/keys/3", R"({"models":null,"expires_at":null,"tags":{}})");
  EXPECT_EQ(c.key_changes.allowed_models, unset<Strings>());
  EXPECT_EQ(c.key_changes.tags, json::object());
  EXPECT_FALSE(c.key_changes.allowed_endpoints);
}

TEST(AdminPolicyCalls, UsersTakeThePolicyTheirKeysInherit) {
  auto c = call("POST", "/admin/v1/users", R"({"name":"a","models":"llama-*","max_concurrent":4})");
  EXPECT_EQ(c.op, admin::Call::Op::create_user);
  EXPECT_EQ(c.user_policy.allowed_models, (Strings{"llama-*"}));
  EXPECT_EQ(c.user_policy.max_concurrent, 4);
  c = call("PATCH", "/admin/v1/users/a", R"({"endpoints":["chat"],"expires_at":"2027-01-01T00:00:00Z"})");
  EXPECT_EQ(c.op, admin::Call::Op::update_user);
  EXPECT_EQ(c.user_changes.allowed_endpoints, set_to(Strings{"chat"}));
  EXPECT_EQ(c.user_changes.expires_at_us, set_to<std::int64_t>(k2027));
  EXPECT_FALSE(c.user_changes.budget);
}

TEST(AdminPolicyCalls, BadValuesAre400NamingTheFieldAsGiven) {
  for (const auto& [method, target, body, param] : std::vector<std::tuple<std::string, std::string, std::string, std::string>>{
           {"POST", "/admin/v1/keys", R"({"user":"a","models":"llama 3"})", "models"},
           {"POST", "/admin/v1/keys", R"({"user":"a","allowed_models":[1]})", "allowed_models"},
           {"POST", "/admin/v1/keys", R"({"user":"a","models":"m","allowed_models":"m"})", "allowed_models"},
           {"POST", "/admin/v1/keys", R"({"user":"a","endpoints":["video"]})", "endpoints"},
           {"POST", "/admin/v1/keys", R"({"user":"a","allowed_endpoints":{"chat":true}})", "allowed_endpoints"},
           {"POST", "/admin/v1/keys", R"({"user":"a","expires_at":"2027-01-01"})", "expires_at"},
           {"POST", "/admin/v1/keys", R"({"user":"a","expires_at":1798761600})", "expires_at"},
           {"POST", "/admin/v1/keys", R"({"user":"a","max_concurrent":-1})", "max_concurrent"},
           {"POST", "/admin/v1/keys", R"({"user":"a","max_concurrent":1000001})", "max_concurrent"},
           {"POST", "/admin/v1/keys", R"({"user":"a","max_concurrent":"2"})", "max_concurrent"},
           {"POST", "/admin/v1/keys", R"({"user":"a","tags":["x"]})", "tags"},
           {"PATCH", "/admin/v1/keys/3", R"({"tags":null})", "tags"},
           {"PATCH", "/admin/v1/keys/3", R"({"lineage_id":1})", "lineage_id"},
           {"POST", "/admin/v1/users", R"({"name":"a","tags":{}})", "tags"},  // tags are a key's
           {"PATCH", "/admin/v1/users/a", R"({"max_concurrent":1.5})", "max_concurrent"},
           {"PATCH", "/admin/v1/users/a", R"({"models":"*","expires_at":"soon"})", "expires_at"},
       })
    EXPECT_EQ(refused(method, target, body).param, param) << method << " " << target << " " << body;
  EXPECT_EQ(refused("PATCH", "/admin/v1/users/a", "{}").param, std::nullopt);  // nothing to change
}

TEST(AdminRotateCalls, TakeAGraceOrTheDefault) {
  auto c = call("POST", "/admin/v1/keys/7/rotate");
  EXPECT_EQ(c.op, admin::Call::Op::rotate_key);
  EXPECT_EQ(c.key_id, 7);
  EXPECT_EQ(c.grace_seconds, 86400);
  EXPECT_EQ(c.success_status, 201u);
  EXPECT_EQ(call("POST", "/admin/v1/keys/7/rotate", R"({"grace":"0"})").grace_seconds, 0);
  EXPECT_EQ(call("POST", "/admin/v1/keys/7/rotate", R"({"grace":"90m"})").grace_seconds, 5400);
  EXPECT_EQ(call("POST", "/admin/v1/keys/7/rotate", R"({"grace_seconds":60})").grace_seconds, 60);
  EXPECT_EQ(call("POST", "/admin/v1/keys/7/rotate", "{}").grace_seconds, 86400);
  for (const auto& [body, param] : std::vector<std::pair<std::string, std::string>>{
           {R"({"grace":"forever"})", "grace"},
           {R"({"grace":"1h0"})", "grace"},
           {R"({"grace":3600})", "grace"},
           {R"({"grace_seconds":-1})", "grace_seconds"},
           {R"({"grace_seconds":31622401})", "grace_seconds"},
           {R"({"grace_seconds":18446744073709551615})", "grace_seconds"},
           {R"({"grace_seconds":"60"})", "grace_seconds"},
           {R"({"grace":"1h","grace_seconds":60})", "grace"},
           {R"({"when":"now"})", "when"},
       })
    EXPECT_EQ(refused("POST", "/admin/v1/keys/7/rotate", body).param, param) << body;
  EXPECT_EQ(refused("GET", "/admin/v1/keys/7/rotate").allow, "POST");
  EXPECT_EQ(refused("POST", "/admin/v1/keys/x/rotate").kind, lagoon::http::ErrorKind::not_found);
}

TEST(AdminUsageTags, AreRepeatedNameValuePairs) {
  auto c = call("GET", "/admin/v1/usage?by=key&tag=team:search&tag=env:prod:eu");
  EXPECT_EQ(c.usage.tags, (std::map<std::string, std::string>{{"team", "search"}, {"env", "prod:eu"}}));
  c = call("GET", "/admin/v1/usage?tag=team%3Asearch");  // tags alone say whose usage
  EXPECT_EQ(c.usage.tags.at("team"), "search");
  EXPECT_FALSE(c.usage.by);
  EXPECT_EQ(call("GET", "/admin/v1/users/a/usage?tag=t:1").usage.tags.size(), 1u);
  for (const std::string target : {"/admin/v1/usage?by=key&tag=team", "/admin/v1/usage?by=key&tag=:x",
                                   "/admin/v1/usage?by=key&tag=a:1&tag=a:2"})
    EXPECT_EQ(refused("GET", target).param, "tag") << target;
  EXPECT_EQ(refused("GET", "/admin/v1/usage?by=key&by=day").param, "by");  // others still once
}
