// The admin HTTP API on the real binary: every route, its errors, its agreement with the CLI (they
// share one implementation), and that admin work cannot crowd requests out of the Postgres pool.
#include <gtest/gtest.h>

#include <mutex>

#include <atomic>
#include <thread>

#include <nlohmann/json.hpp>

#include "support/environment.hpp"
#include "support/usage_support.hpp"

using namespace lagoon::test;
using namespace std::chrono_literals;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kToken = "admin-token-for-tests-0123456789";

class Admin : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(lagoon_cli({"migrate"}, env).code, 0);
    Env e = mock.with(env);
    e["LAGOON_ADMIN_TOKEN"] = kToken;
    server = std::make_unique<LagoonServer>(e);
  }
  std::optional<HttpResponse> call(const std::string& method, const std::string& target, const std::string& body = "",
                                   const std::string& token = kToken) {
    std::string headers = token.empty() ? "" : "Authorization: Bearer " + token + "\r\n";
    if (!body.empty()) headers += "Content-Type: application/json\r\n";
    return request(server->port(), method, target, body, headers);
  }
  json ok(const std::string& method, const std::string& target, const std::string& body = "", int status = 200) {
    auto r = call(method, target, body);
    EXPECT_TRUE(r);
    if (!r) return {};
    EXPECT_EQ(r->status, status) << method << " " << target << " " << body << " -> " << r->body;
    EXPECT_EQ(r->header("content-type"), "application/json");
    return json::parse(r->body, nullptr, false);
  }
  int status_of_key(const std::string& key) {
    auto r = request(server->port(), "GET", "/api/v1/key", "", "Authorization: Bearer " + key + "\r\n");
    return r ? r->status : -1;
  }
  json cli_json(const std::vector<std::string>& args) {
    auto r = lagoon_cli(args, env);
    EXPECT_EQ(r.code, 0) << r.err;
    return json::parse(r.out, nullptr, false);
  }

  TestDatabase db;
  Env env = lagoon_env(db);
  MockUpstream mock;
  std::unique_ptr<LagoonServer> server;
};

}  // namespace

TEST_F(Admin, IsAbsentWithoutAToken) {
  Env e = mock.with(env);
  LagoonServer plain(e);
  auto r = request(plain.port(), "GET", "/admin/v1/users/1", "", std::string("Authorization: Bearer ") + kToken + "\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  auto twice = request(plain.port(), "GET", "/admin/v1/users/1", "",
                       "Authorization: Bearer a\r\nAuthorization: Bearer b\r\n");
  EXPECT_EQ(twice->status, 404);
}

TEST_F(Admin, AWrongOrMissingTokenIs401) {
  for (const std::string& header :
       {std::string(""), std::string("Authorization: Bearer wrong-token-0123456789\r\n"),
        std::string("Authorization: Basic YWRtaW46YWRtaW4=\r\n"), std::string("Authorization: Bearer ") + kToken + "x\r\n",
        std::string("Authorization: Bearer ") + std::string(kToken).substr(1) + "\r\n"}) {
    auto r = request(server->port(), "POST", "/admin/v1/users", R"({"name":"mallory"})",
                     header + "Content-Type: application/json\r\n");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401) << header;
    EXPECT_EQ(r->header("www-authenticate"), "Bearer");
    EXPECT_EQ(json::parse(r->body)["error"]["code"], "invalid_api_key");
    EXPECT_EQ(r->body.find(kToken), std::string::npos);
  }
  EXPECT_EQ(db.scalar("SELECT count(*) FROM users"), "0");
  EXPECT_EQ(server->metric("lagoon_admin_unauthorized_total"), 5);
}

TEST_F(Admin, UsersAreCreatedReadAndDeactivated) {
  const json u = ok("POST", "/admin/v1/users", R"({"name":"alice"})", 201);
  EXPECT_EQ(u["name"], "alice");
  EXPECT_EQ(u["is_active"], true);
  const auto id = u["id"].get<std::int64_t>();
  EXPECT_EQ(ok("GET", "/admin/v1/users/" + std::to_string(id)), u);
  EXPECT_EQ(ok("GET", "/admin/v1/users/alice"), u);
  EXPECT_EQ(call("POST", "/admin/v1/users", R"({"name":"alice"})")->status, 409);
  EXPECT_EQ(call("GET", "/admin/v1/users/9999")->status, 404);
  EXPECT_EQ(call("GET", "/admin/v1/users/nobody")->status, 404);
  EXPECT_EQ(call("DELETE", "/admin/v1/users/nobody")->status, 404);
  // Names are percent-decoded path segments.
  const json spaced = ok("POST", "/admin/v1/users", R"({"name":"bob smith"})", 201);
  EXPECT_EQ(ok("GET", "/admin/v1/users/bob%20smith"), spaced);

  auto [key_id, key] = create_key(env, "alice");
  ASSERT_EQ(status_of_key(key), 200);
  const json off = ok("DELETE", "/admin/v1/users/alice");
  EXPECT_EQ(off["is_active"], false);
  EXPECT_EQ(off["id"], id);
  // Its keys stop working at once, though this instance had the key cached.
  EXPECT_TRUE(wait_until([&] { return status_of_key(key) == 401; }, 1s));
  EXPECT_EQ(ok("DELETE", "/admin/v1/users/alice")["is_active"], false);  // twice is harmless
}

TEST_F(Admin, KeysAreCreatedListedReadUpdatedAndRevoked) {
  const auto user_id = ok("POST", "/admin/v1/users", R"({"name":"alice"})", 201)["id"].get<std::int64_t>();
  const json created = ok("POST", "/admin/v1/keys", R"({"user":"alice","name":"ci","rpm":5})", 201);
  const std::string key = created["key"];
  EXPECT_EQ(key.rfind("sk-", 0), 0u);
  EXPECT_EQ(created["user_id"], user_id);
  EXPECT_EQ(created["rpm_limit"], 5);
  EXPECT_EQ(created["tpm_limit"], nullptr);
  const auto id = created["id"].get<std::int64_t>();
  const std::string path = "/admin/v1/keys/" + std::to_string(id);
  ASSERT_EQ(status_of_key(key), 200);
  // That request's usage row moves the key's last_used_at when the flusher writes it: wait for it, so
  // the two listings compared below cannot straddle the write.
  ASSERT_TRUE(wait_until([&] { return !ok("GET", path)["last_used_at"].is_null(); }, 10s));

  const json got = ok("GET", path);
  EXPECT_EQ(got["prefix"], created["prefix"]);
  EXPECT_EQ(got["name"], "ci");
  EXPECT_EQ(got["is_active"], true);
  EXPECT_FALSE(got.contains("key")) << "the full key is shown only once";
  EXPECT_EQ(got.dump().find(key.substr(10)), std::string::npos);
  // By user id in the body too, and the aliases the key is shown with.
  const json second = ok("POST", "/admin/v1/keys", R"({"user_id":)" + std::to_string(user_id) + R"(,"tpm_limit":1000})", 201);
  EXPECT_EQ(second["tpm_limit"], 1000);

  const json list = ok("GET", "/admin/v1/keys?user=alice");
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0]["id"], id);
  EXPECT_EQ(ok("GET", "/admin/v1/users/" + std::to_string(user_id) + "/keys"), list);

  const json updated = ok("PATCH", path, R"({"rpm":7,"tpm":null,"name":"renamed"})");
  EXPECT_EQ(updated["rpm_limit"], 7);
  EXPECT_EQ(updated["tpm_limit"], nullptr);
  EXPECT_EQ(updated["name"], "renamed");
  // The running instance sees the new limit within a second (its cached copy was invalidated).
  json seen;
  EXPECT_TRUE(wait_until(
      [&] {
        auto r = request(server->port(), "GET", "/api/v1/key", "", "Authorization: Bearer " + key + "\r\n");
        seen = json::parse(r->body)["data"];
        return seen["rpm_limit"] == 7;
      },
      1s))
      << seen;

  const json revoked = ok("DELETE", path);
  EXPECT_EQ(revoked["id"], id);
  EXPECT_EQ(revoked["revoked"], true);
  EXPECT_TRUE(revoked["revoked_at"].is_string());
  EXPECT_TRUE(wait_until([&] { return status_of_key(key) == 401; }, 1s));
  EXPECT_EQ(ok("DELETE", path)["revoked_at"], revoked["revoked_at"]);  // twice keeps the first time
  EXPECT_EQ(ok("GET", path)["is_active"], false);

  for (const auto& [method, target] : std::vector<std::pair<std::string, std::string>>{
           {"GET", "/admin/v1/keys/9999"}, {"DELETE", "/admin/v1/keys/9999"}, {"GET", "/admin/v1/keys/abc"},
           {"GET", "/admin/v1/keys/9999/usage"}, {"GET", "/admin/v1/keys?user=nobody"}})
    EXPECT_EQ(call(method, target)->status, 404) << method << " " << target;
  EXPECT_EQ(call("PATCH", "/admin/v1/keys/9999", R"({"rpm":1})")->status, 404);
  EXPECT_EQ(call("POST", "/admin/v1/keys", R"({"user":"nobody"})")->status, 404);
}

TEST_F(Admin, BadRequestsAre400NamingTheFieldAndChangeNothing) {
  ok("POST", "/admin/v1/users", R"({"name":"alice"})", 201);
  const auto key_id = ok("POST", "/admin/v1/keys", R"({"user":"alice"})", 201)["id"].get<std::int64_t>();
  const std::string kp = "/admin/v1/keys/" + std::to_string(key_id);
  struct Case {
    std::string method, target, body;
    int status;
    json param;
  };
  const std::vector<Case> cases = {
      {"POST", "/admin/v1/users", "{\"name\":", 400, nullptr},
      {"POST", "/admin/v1/users", "", 400, nullptr},
      {"POST", "/admin/v1/users", "[]", 400, nullptr},
      {"POST", "/admin/v1/users", R"({})", 400, "name"},
      {"POST", "/admin/v1/users", R"({"name":7})", 400, "name"},
      {"POST", "/admin/v1/users", R"({"name":"x","admin":true})", 400, "admin"},
      {"POST", "/admin/v1/users", R"({"name":""})", 400, "name"},
      {"POST", "/admin/v1/users", R"({"name":"a\u0007b"})", 400, "name"},
      {"POST", "/admin/v1/users", R"({"name":"12345"})", 400, "name"},  // would read as a user id
      {"POST", "/admin/v1/keys", R"({"name":"k"})", 400, "user"},
      {"POST", "/admin/v1/keys", R"({"user":true})", 400, "user"},
      {"POST", "/admin/v1/keys", R"({"user_id":"alice"})", 400, "user_id"},
      {"POST", "/admin/v1/keys", R"({"user":"alice","rmp":5})", 400, "rmp"},
      {"POST", "/admin/v1/keys", R"({"user":"alice","rpm":"5"})", 400, "rpm"},
      {"POST", "/admin/v1/keys", R"({"user":"alice","rpm":-1})", 400, "rpm"},
      {"POST", "/admin/v1/keys", R"({"user":"alice","rpm":1.5})", 400, "rpm"},
      {"POST", "/admin/v1/keys", R"({"user":"alice","rpm":3000000000})", 400, "rpm"},
      {"POST", "/admin/v1/keys", R"({"user":"alice","tpm_limit":[1]})", 400, "tpm_limit"},
      {"POST", "/admin/v1/keys", R"({"user":"alice","tpm":1000000001})", 400, "tpm"},
      {"POST", "/admin/v1/keys", R"({"user":"alice","rpm":1,"rpm_limit":2})", 400, "rpm_limit"},
      {"POST", "/admin/v1/keys", R"({"user":"alice","name":5})", 400, "name"},
      {"PATCH", kp, R"({})", 400, nullptr},
      {"PATCH", kp, R"({"tpm":"many"})", 400, "tpm"},
      {"PATCH", kp, R"({"is_active":true})", 400, "is_active"},
      {"GET", "/admin/v1/keys?sort=name", "", 400, "sort"},
      {"GET", "/admin/v1/keys?user=alice&limit=0", "", 400, "limit"},
      {"GET", kp + "/usage?from=yesterday", "", 400, "from"},
      {"GET", kp + "/usage?to=2026-13", "", 400, "to"},
      {"GET", kp + "/usage?from=2026-02-30", "", 400, "from"},
      {"GET", kp + "/usage?from=2026-01-01&from=2026-01-02", "", 400, "from"},
  };
  for (const auto& c : cases) {
    auto r = call(c.method, c.target, c.body);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, c.status) << c.method << " " << c.target << " " << c.body << " -> " << r->body;
    const auto err = json::parse(r->body, nullptr, false);
    ASSERT_TRUE(err.contains("error")) << r->body;
    EXPECT_EQ(err["error"]["param"], c.param) << c.method << " " << c.target << " " << c.body;
    EXPECT_FALSE(err["error"]["message"].get<std::string>().empty());
  }
  EXPECT_EQ(db.scalar("SELECT count(*) FROM users"), "1");
  EXPECT_EQ(db.scalar("SELECT count(*) FROM api_keys"), "1");
  EXPECT_EQ(db.scalar("SELECT concat_ws(',', name, rpm_limit, tpm_limit, is_active) FROM api_keys"), "t");

  auto wrong = call("PUT", kp, R"({"rpm":1})");
  EXPECT_EQ(wrong->status, 405);
  EXPECT_EQ(wrong->header("allow"), "GET, PATCH, DELETE");
  EXPECT_EQ(call("PUT", "/admin/v1/users")->header("allow"), "GET, POST");
  EXPECT_EQ(call("GET", "/admin/v1/nothing")->status, 404);
  EXPECT_EQ(call("GET", "/admin/v1/keys/1/usage/more")->status, 404);
}

TEST_F(Admin, UsageTotalsPerKeyAndPerUser) {
  ok("POST", "/admin/v1/users", R"({"name":"alice"})", 201);
  const json k1 = ok("POST", "/admin/v1/keys", R"({"user":"alice"})", 201);
  const json k2 = ok("POST", "/admin/v1/keys", R"({"user":"alice"})", 201);
  auto chat = [&](const json& k, const std::string& body) {
    return request(server->port(), "POST", "/api/v1/chat/completions", body,
                   "Authorization: Bearer " + k["key"].get<std::string>() + "\r\nContent-Type: application/json\r\n");
  };
  ASSERT_EQ(chat(k1, R"({"model":"a","messages":[]})")->status, 200);
  ASSERT_EQ(chat(k1, R"({"model":"a","messages":[],"stream":true})")->status, 200);
  ASSERT_EQ(chat(k1, R"({"model":"b","messages":[]})")->status, 200);
  ASSERT_EQ(chat(k1, R"({"model":7})")->status, 400);
  ASSERT_EQ(chat(k2, R"({"model":"b","messages":[]})")->status, 200);
  ASSERT_TRUE(wait_until([&] { return db.scalar("SELECT count(*) FROM usage_records") == "5"; }, 5s));

  const std::string k1_usage = "/admin/v1/keys/" + std::to_string(k1["id"].get<std::int64_t>()) + "/usage";
  const json u = ok("GET", k1_usage);
  EXPECT_EQ(u["key_id"], k1["id"]);
  EXPECT_EQ(u["requests"], 4);
  const auto k1_tokens = std::stoll(db.scalar("SELECT sum(total_tokens) FROM usage_records WHERE api_key_id = " +
                                              std::to_string(k1["id"].get<std::int64_t>())));
  EXPECT_EQ(u["total_tokens"], k1_tokens);
  EXPECT_GT(k1_tokens, 0);
  EXPECT_EQ(u["prompt_tokens"].get<long long>() + u["completion_tokens"].get<long long>(), k1_tokens);
  ASSERT_EQ(u["by_model"].size(), 3u);  // a, b, and none for the request that named no valid model
  EXPECT_EQ(u["by_model"][0]["model"], "a");
  EXPECT_EQ(u["by_model"][0]["requests"], 2);
  ASSERT_EQ(u["by_outcome"].size(), 2u);
  EXPECT_EQ(u["by_outcome"][0]["outcome"], "ok");
  EXPECT_EQ(u["by_outcome"][0]["requests"], 3);
  EXPECT_EQ(u["by_outcome"][1]["outcome"], "invalid_request");

  const json by_user = ok("GET", "/admin/v1/users/alice/usage");
  EXPECT_EQ(by_user["requests"], 5);
  EXPECT_EQ(by_user["user_id"], k1["user_id"]);
  // Ranges: [from, to).
  EXPECT_EQ(ok("GET", k1_usage + "?from=2999-01-01")["requests"], 0);
  EXPECT_EQ(ok("GET", k1_usage + "?to=2000-01-01T00:00:00Z")["requests"], 0);
  const json ranged = ok("GET", k1_usage + "?from=2000-01-01T00:00:00%2B02:00&to=2999-01-01T00:00:00Z");
  EXPECT_EQ(ranged["requests"], 4);
  EXPECT_EQ(ranged["from"], "2000-01-01T00:00:00+02:00");

  // The CLI answers with the same document: one implementation behind both.
  EXPECT_EQ(cli_json({"usage", "--key", std::to_string(k1["id"].get<std::int64_t>())}), u);
  EXPECT_EQ(cli_json({"usage", "--user", "alice"}), by_user);
}

TEST_F(Admin, TheCliAndTheApiShowTheSameDocuments) {
  ok("POST", "/admin/v1/users", R"({"name":"alice"})", 201);
  EXPECT_EQ(cli_json({"users", "get", "alice"}), ok("GET", "/admin/v1/users/alice"));
  const auto id = cli_json({"keys", "create", "--user", "alice", "--rpm", "9"})["id"].get<std::int64_t>();
  EXPECT_EQ(cli_json({"keys", "get", std::to_string(id)}), ok("GET", "/admin/v1/keys/" + std::to_string(id)));
  EXPECT_EQ(cli_json({"keys", "list", "--user", "alice"}), ok("GET", "/admin/v1/keys?user=alice"));
  const json updated = cli_json({"keys", "update", std::to_string(id), "--tpm", "500", "--rpm", "default"});
  EXPECT_EQ(updated["tpm_limit"], 500);
  EXPECT_EQ(updated["rpm_limit"], nullptr);
  EXPECT_EQ(updated, ok("GET", "/admin/v1/keys/" + std::to_string(id)));
}

// Admin calls made slow (usage over 400,000 rows) hammer the admin API from four clients while forty
// never-seen keys (each a Postgres lookup with a 100 ms acquire deadline) authenticate. With the cap
// of one admin connection, a connection is always left for them; with admin_db_connections equal to the
// pool, they would be refused (run with LAGOON_TEST_ADMIN_CAP=3 to see this test fail).
TEST_F(Admin, AdminCallsCannotCrowdRequestsOutOfThePool) {
  ok("POST", "/admin/v1/users", R"({"name":"alice"})", 201);
  const auto key_id = ok("POST", "/admin/v1/keys", R"({"user":"alice"})", 201)["id"].get<std::int64_t>();
  db.scalar("INSERT INTO usage_records (request_id, api_key_id, user_id, model, stream, status_code, outcome, "
            "prompt_tokens, completion_tokens, total_tokens, started_at, duration_ms) "
            "SELECT 'bulk-' || i, " + std::to_string(key_id) + ", (SELECT id FROM users WHERE name = 'alice'), "
            "'m' || (i % 7), false, 200, 'ok', 1, 2, 3, now(), 1.0 FROM generate_series(1, 400000) i");
  db.scalar("ANALYZE usage_records");
  std::vector<std::string> keys;
  for (int i = 0; i < 40; ++i) keys.push_back(create_key(env, "alice").second);

  Env e = mock.with(env);
  e["LAGOON_ADMIN_TOKEN"] = kToken;
  e["LAGOON_DB_POOL_SIZE"] = "3";
  e["LAGOON_DB_ACQUIRE_TIMEOUT_MS"] = "100";
  const char* cap = std::getenv("LAGOON_TEST_ADMIN_CAP");
  e["LAGOON_ADMIN_DB_CONNECTIONS"] = cap ? cap : "1";
  server = std::make_unique<LagoonServer>(e);
  const auto t0 = Clock::now();
  ASSERT_EQ(ok("GET", "/admin/v1/users/alice/usage")["requests"], 400000);
  const auto one_call = Clock::now() - t0;

  std::atomic<bool> stop{false};
  std::atomic<int> admin_ok{0}, admin_other{0};
  std::mutex errors_mutex;
  std::vector<std::string> errors;  // an exception must not escape a thread (std::terminate hides the cause)
  std::vector<std::thread> admins;
  for (int t = 0; t < 4; ++t)
    admins.emplace_back([&] {
      while (!stop) {
        try {
          auto r = call("GET", "/admin/v1/users/alice/usage");
          (r && r->status == 200 ? admin_ok : admin_other)++;
        } catch (const std::exception& ex) {
          std::lock_guard lock(errors_mutex);
          errors.push_back(ex.what());
          admin_other++;
        }
      }
    });
  std::this_thread::sleep_for(200ms);
  int refused = 0;
  for (const auto& k : keys)
    if (status_of_key(k) != 200) ++refused;
  stop = true;
  for (auto& t : admins) t.join();
  for (const auto& err : errors) ADD_FAILURE() << "admin client: " << err << "; lagoon running: " << server->process().running();
  EXPECT_EQ(refused, 0) << "one admin call took "
                        << std::chrono::duration_cast<std::chrono::milliseconds>(one_call).count() << " ms";
  EXPECT_GT(admin_ok.load(), 0);
  EXPECT_EQ(server->metric(R"(lagoon_db_leases_total{purpose="auth"})"), 40);
}
