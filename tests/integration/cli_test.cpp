// The CLI promises of INTERFACE.md, against a real Postgres: migrate, users, keys, exit codes.
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>
#include <unistd.h>

#include "lagoon/keys/api_key.hpp"
#include "support/environment.hpp"

using namespace lagoon::test;
using nlohmann::json;

namespace {

json ok_json(const RunResult& r) {
  EXPECT_EQ(r.code, 0) << r.err;
  return json::parse(r.out);
}

class Cli : public ::testing::Test {
 protected:
  void SetUp() override { ok_json(lagoon_cli({"migrate"}, env)); }
  TestDatabase db;
  Env env = lagoon_env(db);
};

}  // namespace

TEST(Migrate, AppliesOnceAndTheSecondRunChangesNothing) {
  TestDatabase db;
  auto env = lagoon_env(db);
  auto first = ok_json(lagoon_cli({"migrate"}, env));
  EXPECT_EQ(first["applied"], json::array({1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(first["version"], 7);
  auto second = ok_json(lagoon_cli({"migrate"}, env));
  EXPECT_EQ(second["applied"], json::array());
  EXPECT_EQ(second["version"], 7);
  EXPECT_EQ(db.scalar("SELECT count(*) FROM schema_migrations"), "7");
}

TEST(Migrate, CreatesEveryColumnOfTheInterface) {
  TestDatabase db;
  ok_json(lagoon_cli({"migrate"}, lagoon_env(db)));
  const std::map<std::string, std::vector<std::string>> tables = {
      {"users", {"id", "name", "is_active", "created_at"}},
      {"api_keys", {"id", "user_id", "name", "prefix", "digest", "is_active", "rpm_limit", "tpm_limit", "created_at",
                    "last_used_at", "revoked_at", "budget_usd", "budget_period", "expires_at", "allowed_models",
                    "allowed_endpoints", "max_concurrent", "tags"}},
      {"sessions", {"id", "api_key_id", "user_id", "model", "created_at", "expires_at", "is_active", "last_used_at",
                    "request_count"}},
      {"usage_records", {"request_id", "api_key_id", "user_id", "session_id", "model", "stream", "status_code",
                         "outcome", "prompt_tokens", "completion_tokens", "total_tokens", "tokens_estimated",
                         "started_at", "duration_ms", "ttfb_ms", "endpoint", "units", "unit", "cost_usd", "cost_source",
                         "upstream_cost_usd", "price_version"}},
      {"price_tables", {"version", "fetched_at", "digest", "models", "prices"}},
      {"price_overrides", {"model", "prices", "updated_at"}},
  };
  for (const auto& [table, columns] : tables)
    for (const auto& column : columns)
      EXPECT_EQ(db.scalar("SELECT count(*) FROM information_schema.columns WHERE table_name = '" + table +
                          "' AND column_name = '" + column + "'"),
                "1")
          << table << "." << column;
}

TEST(Migrate, ConcurrentRunsApplyEachMigrationOnce) {
  TestDatabase db;
  auto env = lagoon_env(db);
  std::vector<std::unique_ptr<Process>> ps;
  for (int i = 0; i < 4; ++i)
    ps.push_back(std::make_unique<Process>(std::vector<std::string>{LAGOON_BINARY, "migrate"}, env,
                                           "/tmp/lagoon-migrate-" + db.name() + "-" + std::to_string(i)));
  for (auto& p : ps) EXPECT_EQ(p->wait(std::chrono::seconds(30)), 0) << p->output();
  EXPECT_EQ(db.scalar("SELECT count(*) FROM schema_migrations"), "7");
}

TEST_F(Cli, UsersCreatePrintsIdAndName) {
  auto u = ok_json(lagoon_cli({"users", "create", "--name", "alice"}, env));
  EXPECT_TRUE(u["id"].is_number_integer());
  EXPECT_EQ(u["name"], "alice");
}

TEST_F(Cli, DuplicateUserIsARuntimeFailure) {
  ok_json(lagoon_cli({"users", "create", "--name", "bob"}, env));
  auto r = lagoon_cli({"users", "create", "--name", "bob"}, env);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("already exists"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST_F(Cli, KeysCreateShowsTheKeyOnceAndStoresOnlyItsDigest) {
  auto u = ok_json(lagoon_cli({"users", "create", "--name", "carol"}, env));
  auto k = ok_json(lagoon_cli({"keys", "create", "--user", "carol", "--name", "laptop", "--rpm", "60", "--tpm", "1000"}, env));
  const std::string key = k["key"];
  EXPECT_TRUE(lagoon::keys::well_formed(key)) << key;
  EXPECT_EQ(k["prefix"], key.substr(0, 12));
  EXPECT_EQ(k["user_id"], u["id"]);
  const std::string id = std::to_string(k["id"].get<long long>());
  EXPECT_EQ(db.scalar("SELECT encode(digest, 'hex') FROM api_keys WHERE id = " + id),
            lagoon::keys::to_hex(lagoon::keys::digest(kTestPepper, key)));
  EXPECT_EQ(db.scalar("SELECT rpm_limit::text || '/' || tpm_limit::text FROM api_keys WHERE id = " + id), "60/1000");
  // The full key appears in no column of any row.
  EXPECT_EQ(db.scalar("SELECT count(*) FROM api_keys k WHERE strpos(k::text, '" + key.substr(12) + "') > 0"), "0");
}

TEST_F(Cli, KeysCreateAcceptsTheUserIdToo) {
  auto u = ok_json(lagoon_cli({"users", "create", "--name", "dave"}, env));
  auto k = ok_json(lagoon_cli({"keys", "create", "--user", std::to_string(u["id"].get<long long>())}, env));
  EXPECT_EQ(k["user_id"], u["id"]);
}

TEST_F(Cli, KeysListAndRevoke) {
  ok_json(lagoon_cli({"users", "create", "--name", "erin"}, env));
  auto k1 = ok_json(lagoon_cli({"keys", "create", "--user", "erin", "--name", "one"}, env));
  auto k2 = ok_json(lagoon_cli({"keys", "create", "--user", "erin"}, env));
  auto revoked = ok_json(lagoon_cli({"keys", "revoke", std::to_string(k1["id"].get<long long>())}, env));
  EXPECT_EQ(revoked["id"], k1["id"]);
  EXPECT_EQ(revoked["revoked"], true);
  auto list = ok_json(lagoon_cli({"keys", "list", "--user", "erin"}, env));
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0]["id"], k1["id"]);
  EXPECT_EQ(list[0]["name"], "one");
  EXPECT_EQ(list[0]["is_active"], false);
  EXPECT_TRUE(list[0]["last_used_at"].is_null());
  EXPECT_EQ(list[1]["id"], k2["id"]);
  EXPECT_EQ(list[1]["is_active"], true);
  EXPECT_TRUE(list[1]["name"].is_null());
  for (const auto& k : list) {
    EXPECT_FALSE(k.contains("key"));
    EXPECT_TRUE(k.contains("prefix"));
  }
}

TEST_F(Cli, UnknownUserOrKeyIsARuntimeFailure) {
  EXPECT_EQ(lagoon_cli({"keys", "create", "--user", "nobody"}, env).code, 1);
  EXPECT_EQ(lagoon_cli({"keys", "list", "--user", "nobody"}, env).code, 1);
  auto r = lagoon_cli({"keys", "revoke", "999999"}, env);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("no key with id 999999"), std::string::npos);
}

TEST_F(Cli, BadUsageExitsTwo) {
  EXPECT_EQ(lagoon_cli({"keys", "revoke", "abc"}, env).code, 2);
  EXPECT_EQ(lagoon_cli({"keys", "create", "--user", "x", "--rpm", "-5"}, env).code, 2);
  EXPECT_EQ(lagoon_cli({"users", "create", "--name", ""}, env).code, 2);
  EXPECT_EQ(lagoon_cli({"frobnicate"}, env).code, 2);
  EXPECT_EQ(lagoon_cli({}, env).code, 2);
}

TEST_F(Cli, AnAllDigitUserNameIsRefusedSinceItWouldReadAsAnId) {
  ok_json(lagoon_cli({"users", "create", "--name", "alice"}, env));
  for (const std::string name : {"1", "42", "007"}) {
    auto r = lagoon_cli({"users", "create", "--name", name}, env);
    EXPECT_EQ(r.code, 2) << name;
    EXPECT_NE(r.err.find("user name must not be all digits"), std::string::npos) << r.err;
  }
  EXPECT_EQ(ok_json(lagoon_cli({"users", "create", "--name", "42b"}, env))["name"], "42b");
}

TEST(CliConfig, BadValueExitsTwoNamingTheField) {
  auto r = lagoon_cli({"migrate"}, {{"LAGOON_DATABASE_URL", "postgresql://x/y"}, {"LAGOON_DB_POOL_SIZE", "x"}});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("LAGOON_DB_POOL_SIZE: expected an integer 1..1024, got \"x\""), std::string::npos) << r.err;
}

TEST(CliConfig, APasswordInADatabaseOrRedisUrlIsNeverPrinted) {
  // libpq quotes the part of a URL it cannot read: here, the password.
  auto pg = lagoon_cli({"migrate"}, {{"LAGOON_DATABASE_URL", "postgresql://u:s3cr%zzet@127.0.0.1:1/db"}});
  EXPECT_NE(pg.code, 0);
  EXPECT_FALSE(pg.err.empty());
  EXPECT_EQ(pg.err.find("s3cr"), std::string::npos) << pg.err;
  EXPECT_EQ(pg.out.find("s3cr"), std::string::npos) << pg.out;
  auto redis = lagoon_cli({"migrate"}, {{"LAGOON_DATABASE_URL", "postgresql://x/y"},
                                        {"LAGOON_REDIS_URL", "rediss://:hunter2@cache:6380"}});
  EXPECT_EQ(redis.code, 2);
  EXPECT_NE(redis.err.find("LAGOON_REDIS_URL"), std::string::npos) << redis.err;
  EXPECT_EQ(redis.err.find("hunter2"), std::string::npos) << redis.err;
}

TEST(CliConfig, MissingRequiredSettingsExitTwo) {
  auto no_db = lagoon_cli({"migrate"}, {});
  EXPECT_EQ(no_db.code, 2);
  EXPECT_NE(no_db.err.find("LAGOON_DATABASE_URL"), std::string::npos);
  TestDatabase db;
  auto env = lagoon_env(db);
  env.erase("LAGOON_KEY_PEPPER");
  auto no_pepper = lagoon_cli({"keys", "create", "--user", "x"}, env);
  EXPECT_EQ(no_pepper.code, 2);
  EXPECT_NE(no_pepper.err.find("LAGOON_KEY_PEPPER"), std::string::npos);
  auto serve = lagoon_cli({"serve"}, env);
  EXPECT_EQ(serve.code, 2);
}

TEST(CliConfig, ConfigFileIsReadAndSecretsInItAreRefused) {
  const std::string path = "/tmp/lagoon-cli-config-" + std::to_string(::getpid()) + ".json";
  {
    std::ofstream f(path);
    f << R"({"key_pepper": "0123456789abcdef0123456789abcdef0123"})";
  }
  auto r = lagoon_cli({"migrate", "--config", path}, {{"LAGOON_DATABASE_URL", "postgresql://x/y"}});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("key_pepper: secrets are read only from the environment"), std::string::npos) << r.err;
  EXPECT_EQ(lagoon_cli({"migrate", "--config", "/nonexistent.json"}, {}).code, 2);
  std::remove(path.c_str());
}

TEST(CliConfig, UnreachableDatabaseIsARuntimeFailure) {
  auto r = lagoon_cli({"migrate"}, {{"LAGOON_DATABASE_URL", "postgresql://postgres@127.0.0.1:" +
                                                               std::to_string(free_port()) + "/x"}});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("cannot reach Postgres"), std::string::npos) << r.err;
}

TEST(CliBasics, VersionAndHelp) {
  auto v = lagoon_cli({"--version"}, {});
  EXPECT_EQ(v.code, 0);
  EXPECT_EQ(v.out.rfind("lagoon ", 0), 0u);
  auto h = lagoon_cli({"--help"}, {});
  EXPECT_EQ(h.code, 0);
  EXPECT_NE(h.out.find("lagoon keys create"), std::string::npos);
}
