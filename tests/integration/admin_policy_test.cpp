// Key policy through the admin API of a running gateway: each field set, shown and unset over HTTP as
// the CLI does it, bad values refused without a change, rotation seen by the gateway at once, a user's
// new defaults pushed into its keys' cached records, and usage reports kept to tagged keys.
#include <gtest/gtest.h>

#include "admin_money_fixture.hpp"
#include "support/usage_support.hpp"

using namespace lagoon::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

class AdminPolicy : public AdminMoneyTest {
 protected:
  void SetUp() override {
    AdminMoneyTest::SetUp();
    start_server();
  }
  int status_of_key(const json& created) {
    auto r = request(server->port(), "GET", "/api/v1/key", "",
                     "Authorization: Bearer " + created["key"].get<std::string>() + "\r\n");
    return r ? r->status : -1;
  }
  std::optional<lagoon::auth::KeyRecord> cached(const json& created) {
    return cached_record(created["key"].get<std::string>());
  }
  std::string columns(const std::string& sql, const json& id) {
    return db.scalar("SELECT " + sql + " WHERE id = " + std::to_string(id.get<std::int64_t>()));
  }
};

std::string path_of(const json& key) { return "/admin/v1/keys/" + std::to_string(key["id"].get<std::int64_t>()); }

}  // namespace

TEST_F(AdminPolicy, KeysTakeEachFieldUnderItsNameOrAliasAndShowItAsTheCliDoes) {
  admin("POST", "/admin/v1/users", R"({"name":"alice"})", 201);
  const json k = admin("POST", "/admin/v1/keys",
                       R"({"user":"alice","models":["llama-*","venice-uncensored"],"allowed_endpoints":"chat,embeddings",)"
                       R"("expires_at":"2027-01-01T00:00:00Z","max_concurrent":3,"tags":{"team":"search"}})",
                       201);
  EXPECT_TRUE(k["key"].is_string());
  EXPECT_EQ(k["allowed_models"], json({"llama-*", "venice-uncensored"}));
  EXPECT_EQ(k["allowed_endpoints"], json({"chat", "embeddings"}));
  EXPECT_EQ(k["expires_at"], "2027-01-01T00:00:00.000000Z");
  EXPECT_EQ(k["max_concurrent"], 3);
  EXPECT_EQ(k["tags"], (json{{"team", "search"}}));
  const std::string path = path_of(k);
  json shown = k;
  shown.erase("key");
  EXPECT_EQ(admin("GET", path), shown);
  EXPECT_EQ(cli({"keys", "get", std::to_string(k["id"].get<std::int64_t>())}), shown);

  const json changed = admin("PATCH", path, R"({"allowed_models":"m","endpoints":["audio"],"max_concurrent":0})");
  EXPECT_EQ(changed["allowed_models"], json({"m"}));
  EXPECT_EQ(changed["allowed_endpoints"], json({"audio"}));
  EXPECT_EQ(changed["max_concurrent"], 0);
  EXPECT_EQ(changed["expires_at"], k["expires_at"]);
  const json cleared =
      admin("PATCH", path, R"({"models":null,"endpoints":[],"expires_at":"never","max_concurrent":null,"tags":{}})");
  for (const char* field : {"allowed_models", "allowed_endpoints", "expires_at", "max_concurrent"})
    EXPECT_EQ(cleared[field], nullptr) << field;
  EXPECT_EQ(cleared["tags"], json::object());
  EXPECT_EQ(columns("concat_ws(',', allowed_models, allowed_endpoints, expires_at, max_concurrent, tags) FROM api_keys",
                    k["id"]),
            "{}");
  EXPECT_EQ(admin("PATCH", path, R"({"expires_at":null,"models":"a"})")["allowed_models"], json({"a"}));
}

TEST_F(AdminPolicy, BadValuesAre400NamingTheFieldAndChangeNothing) {
  admin("POST", "/admin/v1/users", R"({"name":"alice","max_concurrent":5})", 201);
  const json k = admin("POST", "/admin/v1/keys", R"({"user":"alice","models":"m","tags":{"a":"1"}})", 201);
  const std::string path = path_of(k);
  const auto snapshot = [&] {
    return db.scalar("SELECT string_agg(k::text || u::text, ';') FROM api_keys k JOIN users u ON u.id = k.user_id");
  };
  const std::string before = snapshot();
  const std::vector<std::tuple<std::string, std::string, std::string, std::string>> cases = {
      {"PATCH", path, R"({"models":"llama 3"})", "models"},
      {"PATCH", path, R"({"allowed_models":["m",7]})", "allowed_models"},
      {"PATCH", path, R"({"endpoints":"chat,video"})", "endpoints"},
      {"PATCH", path, R"({"expires_at":"2027-01-01"})", "expires_at"},
      {"PATCH", path, R"({"expires_at":"0000-01-01T00:00:00Z"})", "expires_at"},
      {"PATCH", path, R"({"max_concurrent":1000001})", "max_concurrent"},
      {"PATCH", path, R"({"max_concurrent":-1})", "max_concurrent"},
      {"PATCH", path, R"({"tags":"team=a"})", "tags"},
      {"PATCH", path, R"({"tags":{"big":")" + std::string(5000, 'x') + R"("}})", "tags"},
      {"PATCH", path, R"({"models":"ok","tags":[]})", "tags"},  // one bad member: nothing applied
      {"POST", "/admin/v1/keys", R"({"user":"alice","endpoints":["files"]})", "endpoints"},
      {"POST", "/admin/v1/users", R"({"name":"bob","models":"a b"})", "models"},
      {"PATCH", "/admin/v1/users/alice", R"({"max_concurrent":"2"})", "max_concurrent"},
      {"PATCH", "/admin/v1/users/alice", R"({"tags":{}})", "tags"},
      {"POST", path + "/rotate", R"({"grace":"forever"})", "grace"},
      {"POST", path + "/rotate", R"({"grace_seconds":31622401})", "grace_seconds"},
  };
  for (const auto& [method, target, body, param] : cases) {
    auto r = call(method, target, body);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << method << " " << target << " " << body << " -> " << r->body;
    const auto err = json::parse(r->body, nullptr, false);
    EXPECT_EQ(err["error"]["param"], param) << body;
    EXPECT_EQ(err["error"]["type"], "invalid_request_error");
  }
  EXPECT_EQ(snapshot(), before);
  EXPECT_EQ(db.scalar("SELECT count(*) FROM api_keys"), "1");
  EXPECT_EQ(db.scalar("SELECT count(*) FROM users"), "1");
}

TEST_F(AdminPolicy, ARotatedKeyIsReplacedAtOnceAndItsPredecessorEndsWithItsGrace) {
  admin("POST", "/admin/v1/users", R"({"name":"alice"})", 201);
  const json old = admin("POST", "/admin/v1/keys", R"({"user":"alice","name":"ci","rpm":100})", 201);
  ASSERT_EQ(status_of_key(old), 200);  // now in this instance's caches

  const json graced = admin("POST", path_of(old) + "/rotate", R"({"grace":"1h"})", 201);
  EXPECT_EQ(graced["replaces"], old["id"]);
  EXPECT_EQ(graced["lineage_id"], old["id"]);
  EXPECT_EQ(graced["name"], "ci");
  EXPECT_EQ(graced["rpm_limit"], 100);
  EXPECT_EQ(status_of_key(graced), 200);
  EXPECT_EQ(status_of_key(old), 200);  // in its grace
  // Every instance learns the old key's end of grace: its cached record is rewritten.
  const auto record = cached(old);
  ASSERT_TRUE(record);
  ASSERT_TRUE(record->policy.revokes_at_us);
  EXPECT_EQ(std::to_string(*record->policy.revokes_at_us),
            columns("(extract(epoch FROM revoked_at) * 1000000)::bigint FROM api_keys", old["id"]));
  EXPECT_EQ(admin("GET", path_of(old))["replaced_by"], graced["id"]);

  const json at_once = admin("POST", path_of(graced) + "/rotate", R"({"grace_seconds":0})", 201);
  EXPECT_EQ(at_once["lineage_id"], old["id"]);
  EXPECT_EQ(status_of_key(at_once), 200);
  EXPECT_TRUE(wait_until([&] { return status_of_key(graced) == 401; }, 1s));
  EXPECT_EQ(admin("GET", path_of(graced))["is_active"], false);
  // A revoked key is not rotated; an unknown one is 404.
  auto again = call("POST", path_of(graced) + "/rotate");
  EXPECT_EQ(again->status, 400) << again->body;
  EXPECT_EQ(call("POST", "/admin/v1/keys/999999/rotate")->status, 404);
  // Revoking a key in its grace ends the grace now.
  admin("DELETE", path_of(old));
  EXPECT_TRUE(wait_until([&] { return status_of_key(old) == 401; }, 1s));
  EXPECT_EQ(db.scalar("SELECT count(*) FROM api_keys"), "3");
}

TEST_F(AdminPolicy, ARotationTheInstancesCannotBeToldOfIsStillAnsweredWithTheNewKey) {
  RedisServer own;
  start_server({{"LAGOON_REDIS_URL", own.url()}});
  admin("POST", "/admin/v1/users", R"({"name":"alice"})", 201);
  const json old = admin("POST", "/admin/v1/keys", R"({"user":"alice"})", 201);
  own.kill();
  const json rotated = admin("POST", path_of(old) + "/rotate", R"({"grace":"0"})", 201);
  EXPECT_TRUE(rotated["key"].is_string());  // shown once: never lost to a 503
  EXPECT_EQ(rotated["replaces"], old["id"]);
  EXPECT_NE(rotated["warning"].get<std::string>().find("do not rotate again"), std::string::npos) << rotated;
  // A change that can be repeated is still refused with 503, so it is.
  EXPECT_EQ(call("DELETE", path_of(old))->status, 503);
}

TEST_F(AdminPolicy, AUsersNewDefaultsReachItsKeysCachedRecords) {
  const json u = admin("POST", "/admin/v1/users", R"({"name":"alice","endpoints":"chat"})", 201);
  EXPECT_EQ(u["allowed_endpoints"], json({"chat"}));
  const json k = admin("POST", "/admin/v1/keys", R"({"user":"alice"})", 201);
  ASSERT_EQ(status_of_key(k), 200);
  const json changed = admin("PATCH", "/admin/v1/users/alice", R"({"models":["llama-*"],"max_concurrent":2})");
  EXPECT_EQ(changed["allowed_models"], json({"llama-*"}));
  EXPECT_EQ(changed["allowed_endpoints"], json({"chat"}));
  EXPECT_EQ(changed["max_concurrent"], 2);
  EXPECT_EQ(changed["expires_at"], nullptr);
  EXPECT_EQ(admin("GET", "/admin/v1/users/alice"), changed);
  EXPECT_EQ(cli({"users", "get", "alice"}), changed);
  const auto record = cached(k);
  ASSERT_TRUE(record);
  EXPECT_EQ(record->policy.models, std::vector<std::string>{"llama-*"});
  EXPECT_EQ(record->policy.max_concurrent, 2);
  // The key's own value wins over the user's.
  admin("PATCH", path_of(k), R"({"max_concurrent":0})");
  EXPECT_EQ(cached(k)->policy.max_concurrent, 0);
}

TEST_F(AdminPolicy, UsageReportsKeepToTheKeysWithEveryTagGiven) {
  admin("POST", "/admin/v1/users", R"({"name":"alice"})", 201);
  const json search = admin("POST", "/admin/v1/keys", R"({"user":"alice","tags":{"team":"search","env":"prod"}})", 201);
  const json staging = admin("POST", "/admin/v1/keys", R"({"user":"alice","tags":{"team":"search","env":"dev"}})", 201);
  const json other = admin("POST", "/admin/v1/keys", R"({"user":"alice","tags":{"team":"ads"}})", 201);
  std::string values;
  int n = 0;
  for (const auto& [key, rows] : {std::pair{&search, 1}, std::pair{&staging, 2}, std::pair{&other, 4}})
    for (int i = 0; i < rows; ++i)
      values += std::string(values.empty() ? "" : ",") + "('t" + std::to_string(n++) + "'," +
                std::to_string((*key)["id"].get<std::int64_t>()) + "," + std::to_string((*key)["user_id"].get<std::int64_t>()) +
                ",'m',false,200,'ok',1,2,3,now(),1.0)";
  db.scalar("INSERT INTO usage_records (request_id, api_key_id, user_id, model, stream, status_code, outcome, "
            "prompt_tokens, completion_tokens, total_tokens, started_at, duration_ms) VALUES " + values);

  const json by_key = admin("GET", "/admin/v1/usage?by=key&tag=team:search");
  EXPECT_EQ(by_key["tags"], (json{{"team", "search"}}));
  EXPECT_EQ(by_key["totals"]["requests"], 3);
  ASSERT_EQ(by_key["rows"].size(), 2u);
  EXPECT_EQ(by_key["rows"][0]["key_id"], search["id"]);
  EXPECT_EQ(cli({"usage", "--by", "key", "--tag", "team=search"}), by_key);
  const json both = admin("GET", "/admin/v1/usage?tag=team:search&tag=env:dev");  // every tag must match
  EXPECT_EQ(both["requests"], 2);
  EXPECT_EQ(cli({"usage", "--tag", "team=search", "--tag", "env=dev"}), both);
  EXPECT_EQ(admin("GET", "/admin/v1/users/alice/usage?tag=team:ads")["requests"], 4);
  EXPECT_EQ(admin("GET", "/admin/v1/usage?by=day&tag=team:nobody")["totals"]["requests"], 0);
  // Without a filter, nothing changes in the report's shape.
  EXPECT_FALSE(admin("GET", "/admin/v1/users/alice/usage").contains("tags"));
  EXPECT_EQ(admin("GET", "/admin/v1/users/alice/usage")["requests"], 7);
}
