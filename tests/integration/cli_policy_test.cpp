// Key policy through the CLI, on the real binary and Postgres: what each flag stores and shows, how each
// field is unset again, that a refused value changes nothing, users' defaults, and rotation — the new
// key's copy of the old one, its lineage, and the old key's grace.
#include <gtest/gtest.h>

#include "admin_money_fixture.hpp"

using namespace lagoon::test;
using nlohmann::json;

namespace {

class CliPolicy : public AdminMoneyTest {
 protected:
  // The key's policy columns as Postgres holds them, NULLs written out.
  std::string policy_columns(const std::string& table, const json& id) {
    return db.scalar("SELECT concat_ws('|', coalesce(allowed_models::text, 'NULL'), "
                     "coalesce(allowed_endpoints::text, 'NULL'), coalesce(to_char(expires_at AT TIME ZONE 'UTC', "
                     "'YYYY-MM-DD HH24:MI:SS'), 'NULL'), coalesce(max_concurrent::text, 'NULL')) FROM " +
                     table + " WHERE id = " + std::to_string(id.get<std::int64_t>()));
  }
  std::string key_column(const std::string& column, const json& id) {
    return db.scalar("SELECT " + column + " FROM api_keys WHERE id = " + std::to_string(id.get<std::int64_t>()));
  }
};

std::string id_of(const json& j) { return std::to_string(j["id"].get<std::int64_t>()); }

}  // namespace

TEST_F(CliPolicy, KeysCarryTheirPolicyAndTagsWhereverTheyAreShown) {
  cli({"users", "create", "--name", "alice"});
  const json k = cli({"keys", "create", "--user", "alice", "--models", "llama-*, venice-uncensored,llama-*",
                      "--endpoints", "embeddings,chat", "--expires", "2027-01-01T01:00:00+01:00", "--max-concurrent",
                      "3", "--tags", R"({"team":"search","cost_center":7})"});
  EXPECT_TRUE(k["key"].is_string());
  EXPECT_EQ(k["allowed_models"], json({"llama-*", "venice-uncensored"}));
  EXPECT_EQ(k["allowed_endpoints"], json({"chat", "embeddings"}));
  EXPECT_EQ(k["expires_at"], "2027-01-01T00:00:00.000000Z");
  EXPECT_EQ(k["max_concurrent"], 3);
  EXPECT_EQ(k["tags"], (json{{"team", "search"}, {"cost_center", 7}}));
  EXPECT_EQ(k["lineage_id"], nullptr);
  EXPECT_EQ(k["replaced_by"], nullptr);
  EXPECT_EQ(policy_columns("api_keys", k["id"]), "{llama-*,venice-uncensored}|{chat,embeddings}|2027-01-01 00:00:00|3");
  json shown = k;
  shown.erase("key");
  EXPECT_EQ(cli({"keys", "get", id_of(k)}), shown);
  EXPECT_EQ(cli({"keys", "list", "--user", "alice"})[0], shown);

  // A key created without them has none of its own (it inherits) and no tags.
  const json plain = cli({"keys", "create", "--user", "alice"});
  for (const char* field : {"allowed_models", "allowed_endpoints", "expires_at", "max_concurrent"})
    EXPECT_EQ(plain[field], nullptr) << field;
  EXPECT_EQ(plain["tags"], json::object());
  EXPECT_EQ(policy_columns("api_keys", plain["id"]), "NULL|NULL|NULL|NULL");
}

TEST_F(CliPolicy, EachFieldIsChangedAndUnsetAlone) {
  cli({"users", "create", "--name", "alice"});
  const json k = cli({"keys", "create", "--user", "alice", "--models", "m", "--endpoints", "chat", "--expires",
                      "2027-01-01T00:00:00Z", "--max-concurrent", "3", "--tags", R"({"team":"a"})"});
  const std::string id = id_of(k);
  EXPECT_EQ(cli({"keys", "update", id, "--models", "a,b"})["allowed_models"], json({"a", "b"}));
  EXPECT_EQ(policy_columns("api_keys", k["id"]), "{a,b}|{chat}|2027-01-01 00:00:00|3");
  EXPECT_EQ(cli({"keys", "update", id, "--models", "inherit"})["allowed_models"], nullptr);
  EXPECT_EQ(cli({"keys", "update", id, "--endpoints", ""})["allowed_endpoints"], nullptr);
  EXPECT_EQ(policy_columns("api_keys", k["id"]), "NULL|NULL|2027-01-01 00:00:00|3");  // NULL, never '{}'
  EXPECT_EQ(cli({"keys", "update", id, "--models", ""})["allowed_models"], nullptr);
  EXPECT_EQ(cli({"keys", "update", id, "--endpoints", "inherit"})["allowed_endpoints"], nullptr);
  EXPECT_EQ(cli({"keys", "update", id, "--max-concurrent", "0"})["max_concurrent"], 0);  // unlimited, not inherited
  EXPECT_EQ(cli({"keys", "update", id, "--max-concurrent", "inherit"})["max_concurrent"], nullptr);
  EXPECT_EQ(cli({"keys", "update", id, "--expires", "2028-02-29T12:30:00.5Z"})["expires_at"],
            "2028-02-29T12:30:00.500000Z");
  EXPECT_EQ(cli({"keys", "update", id, "--expires", "never"})["expires_at"], nullptr);
  EXPECT_EQ(cli({"keys", "update", id, "--tags", R"({"team":"b","env":"prod"})"})["tags"],
            (json{{"team", "b"}, {"env", "prod"}}));
  const json emptied = cli({"keys", "update", id, "--tags", "{}"});
  EXPECT_EQ(emptied["tags"], json::object());
  EXPECT_EQ(key_column("tags::text", k["id"]), "{}");
  EXPECT_EQ(policy_columns("api_keys", k["id"]), "NULL|NULL|NULL|NULL");
  EXPECT_EQ(emptied["name"], nullptr);  // nothing else moved
  EXPECT_EQ(emptied["is_active"], true);
}

TEST_F(CliPolicy, ARefusedValueExitsTwoNamingTheFlagAndChangesNothing) {
  cli({"users", "create", "--name", "alice"});
  const json k = cli({"keys", "create", "--user", "alice", "--models", "m", "--max-concurrent", "1"});
  const std::string id = id_of(k);
  const std::string before = policy_columns("api_keys", k["id"]) + key_column("tags::text", k["id"]);
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"keys", "update", id, "--models", "llama 3"}, "--models: model pattern \"llama 3\""},
      {{"keys", "update", id, "--models", "m:param=1"}, "--models:"},
      {{"keys", "update", id, "--endpoints", "chat,video"}, "--endpoints: unknown endpoint \"video\""},
      {{"keys", "update", id, "--expires", "2027-01-01"}, "--expires: expected an RFC 3339 date-time"},
      {{"keys", "update", id, "--expires", "0000-06-01T00:00:00Z"}, "--expires: expires_at must lie between"},
      {{"keys", "update", id, "--max-concurrent", "-1"}, "--max-concurrent: expected an integer 0..1000000"},
      {{"keys", "update", id, "--max-concurrent", "1000001"}, "--max-concurrent: expected an integer 0..1000000"},
      {{"keys", "update", id, "--tags", "[1]"}, "--tags: tags must be a JSON object"},
      {{"keys", "update", id, "--tags", "{\"a\":"}, "--tags: expected a JSON object"},
      {{"keys", "update", id, "--models", "ok", "--tags", "x"}, "--tags:"},  // one bad flag: none applied
      {{"keys", "create", "--user", "alice", "--endpoints", "images,files"}, "--endpoints: unknown endpoint"},
      {{"users", "update", "alice", "--models", "a b"}, "--models:"},
      {{"users", "create", "--name", "bob", "--max-concurrent", "many"}, "--max-concurrent:"},
      {{"keys", "update", id}, "keys update needs --name"},
  };
  for (const auto& [args, message] : cases) cli_fails(args, 2, message);
  EXPECT_EQ(policy_columns("api_keys", k["id"]) + key_column("tags::text", k["id"]), before);
  EXPECT_EQ(db.scalar("SELECT count(*) FROM api_keys"), "1");
  EXPECT_EQ(db.scalar("SELECT count(*) FROM users"), "1");
  EXPECT_EQ(policy_columns("users", cli({"users", "get", "alice"})["id"]), "NULL|NULL|NULL|NULL");
}

TEST_F(CliPolicy, UsersCarryTheDefaultsTheirKeysInherit) {
  const json u = cli({"users", "create", "--name", "alice", "--models", "llama-*", "--endpoints", "chat",
                      "--max-concurrent", "2"});
  EXPECT_EQ(u["allowed_models"], json({"llama-*"}));
  EXPECT_EQ(u["allowed_endpoints"], json({"chat"}));
  EXPECT_EQ(u["expires_at"], nullptr);
  EXPECT_EQ(u["max_concurrent"], 2);
  EXPECT_FALSE(u.contains("tags"));
  EXPECT_EQ(policy_columns("users", u["id"]), "{llama-*}|{chat}|NULL|2");
  const json changed = cli({"users", "update", "alice", "--expires", "2027-06-01T00:00:00Z", "--models", "inherit"});
  EXPECT_EQ(changed["expires_at"], "2027-06-01T00:00:00.000000Z");
  EXPECT_EQ(changed["allowed_models"], nullptr);
  EXPECT_EQ(changed["allowed_endpoints"], json({"chat"}));
  EXPECT_EQ(cli({"users", "get", "alice"}), changed);
  EXPECT_EQ(policy_columns("users", u["id"]), "NULL|{chat}|2027-06-01 00:00:00|2");
  // A budget change beside them leaves them be.
  EXPECT_EQ(cli({"users", "update", "alice", "--budget", "5"})["max_concurrent"], 2);
}

TEST_F(CliPolicy, RotationCopiesTheKeyJoinsItsLineageAndGivesTheOldOneADayOfGrace) {
  cli({"users", "create", "--name", "alice"});
  const json old = cli({"keys", "create", "--user", "alice", "--name", "ci", "--rpm", "60", "--tpm", "900",
                        "--budget", "5", "--period", "daily", "--models", "m*", "--endpoints", "chat",
                        "--expires", "2030-01-01T00:00:00Z", "--max-concurrent", "4", "--tags", R"({"team":"a"})"});
  const json r = cli({"keys", "rotate", id_of(old)});
  EXPECT_EQ(r["replaces"], old["id"]);
  EXPECT_TRUE(r["key"].is_string());
  EXPECT_NE(r["key"], old["key"]);
  EXPECT_EQ(r["prefix"], r["key"].get<std::string>().substr(0, 12));
  EXPECT_EQ(r["lineage_id"], old["id"]);
  EXPECT_EQ(r["replaced_by"], nullptr);
  for (const char* same : {"user_id", "name", "rpm_limit", "tpm_limit", "budget_usd", "budget_period", "allowed_models",
                           "allowed_endpoints", "expires_at", "max_concurrent", "tags"})
    EXPECT_EQ(r[same], old[same]) << same;
  // The old key works for 24 h more, and says what replaced it.
  const json after = cli({"keys", "get", id_of(old)});
  EXPECT_EQ(after["is_active"], true);
  EXPECT_EQ(after["replaced_by"], r["id"]);
  EXPECT_EQ(after["revoked_at"], r["old_key_revoked_at"]);
  EXPECT_EQ(key_column("revoked_at - now() BETWEEN interval '23 hours 59 minutes' AND interval '24 hours'", old["id"]),
            "t");
  // A second rotation, of the new key, without grace: the chain keeps its first key; the replaced key
  // is revoked at once.
  const json second = cli({"keys", "rotate", id_of(r), "--grace", "0"});
  EXPECT_EQ(second["lineage_id"], old["id"]);
  const json gone = cli({"keys", "get", id_of(r)});
  EXPECT_EQ(gone["is_active"], false);
  EXPECT_EQ(gone["revoked_at"], second["old_key_revoked_at"]);
  EXPECT_EQ(key_column("is_active::text || (revoked_at <= now())::text", r["id"]), "falsetrue");
  EXPECT_EQ(db.scalar("SELECT count(*) FROM api_keys"), "3");
}

TEST_F(CliPolicy, AGraceOnlyEverShortensAndRevokingEndsItNow) {
  cli({"users", "create", "--name", "alice"});
  const json k = cli({"keys", "create", "--user", "alice"});
  cli({"keys", "rotate", id_of(k), "--grace", "1h"});
  const std::string hour = key_column("revoked_at", k["id"]);
  cli({"keys", "rotate", id_of(k), "--grace", "7d"});  // still in use: may be rotated again, its end stays
  EXPECT_EQ(key_column("revoked_at", k["id"]), hour);
  EXPECT_EQ(key_column("revoked_at - now() BETWEEN interval '59 minutes' AND interval '1 hour'", k["id"]), "t");
  const json revoked = cli({"keys", "revoke", id_of(k)});
  EXPECT_EQ(key_column("revoked_at <= now()", k["id"]), "t");
  EXPECT_EQ(cli({"keys", "revoke", id_of(k)})["revoked_at"], revoked["revoked_at"]);  // twice keeps the first
  // A rotated key whose grace has ended reads as inactive, though its flag was never cleared.
  const json other = cli({"keys", "create", "--user", "alice"});
  cli({"keys", "rotate", id_of(other)});
  db.scalar("UPDATE api_keys SET revoked_at = now() - interval '1 second' WHERE id = " + id_of(other));
  EXPECT_EQ(cli({"keys", "get", id_of(other)})["is_active"], false);
  EXPECT_EQ(key_column("is_active", other["id"]), "t");
}

TEST_F(CliPolicy, OnlyAKeyInUseCanBeRotated) {
  cli({"users", "create", "--name", "alice"});
  const json k = cli({"keys", "create", "--user", "alice"});
  cli({"keys", "revoke", id_of(k)});
  cli_fails({"keys", "rotate", id_of(k)}, 2, "is revoked");
  const json ended = cli({"keys", "create", "--user", "alice"});
  cli({"keys", "rotate", id_of(ended)});
  db.scalar("UPDATE api_keys SET revoked_at = now() - interval '1 second' WHERE id = " + id_of(ended));
  cli_fails({"keys", "rotate", id_of(ended)}, 2, "is revoked");
  cli({"users", "create", "--name", "bob"});
  const json bobs = cli({"keys", "create", "--user", "bob"});
  cli({"users", "deactivate", "bob"});
  cli_fails({"keys", "rotate", id_of(bobs)}, 2, "user \"bob\" is deactivated");
  cli_fails({"keys", "rotate", "999999"}, 1, "no key with id 999999");
  cli_fails({"keys", "rotate", id_of(k), "--grace", "367d"}, 2, "--grace: expected a duration");
  cli_fails({"keys", "rotate", id_of(k), "--grace", "1h0"}, 2, "--grace: expected a duration");
  EXPECT_EQ(db.scalar("SELECT count(*) FROM api_keys"), "4");  // the three keys and one successor
  EXPECT_EQ(key_column("replaced_by IS NULL", k["id"]), "t");
}

TEST_F(CliPolicy, ARotationTheInstancesCannotBeToldOfShowsTheNewKeyAndSaysNotToRepeatIt) {
  auto [id, key] = create_key(env, "alice");
  Env away = env;
  away["LAGOON_REDIS_URL"] = "redis://127.0.0.1:" + std::to_string(free_port()) + "/0";  // nothing listens
  auto r = lagoon_cli({"keys", "rotate", std::to_string(id), "--grace", "0"}, away);
  EXPECT_EQ(r.code, 1);
  const json rotated = json::parse(r.out, nullptr, false);
  EXPECT_TRUE(rotated["key"].is_string()) << r.out;  // shown once: never lost
  EXPECT_EQ(rotated["replaces"], id);
  EXPECT_NE(r.err.find("is rotated (replaced by key"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("do not rotate again"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("Run `lagoon keys rotate"), std::string::npos) << r.err;
  // What it says instead: revoking, which is idempotent, tells the instances.
  cli({"keys", "revoke", std::to_string(id)});
  const auto record = cached_record(key);
  ASSERT_TRUE(record);
  EXPECT_FALSE(record->key_active);
}
