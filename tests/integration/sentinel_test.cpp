// A sentinel key taken through everything a client can do with it — answered, refused, rate limited,
// revoked, malformed — after which neither the key nor any 8 consecutive characters of it may appear
// in a log line, in /metrics or in an error body. (The access log shows keys as "sk-lgn_…AbCdE".)
#include <gtest/gtest.h>

#include <thread>

#include <nlohmann/json.hpp>

#include "support/environment.hpp"
#include "support/usage_support.hpp"

using namespace lagoon::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

constexpr const char* kAdminToken = "admin-token-for-sentinel-test-0123";

// The first piece of at least 8 characters of `secret` found in `text`, or "".
std::string leaked_piece(const std::string& secret, const std::string& text) {
  for (std::size_t i = 0; i + 8 <= secret.size(); ++i)
    if (text.find(secret.substr(i, 8)) != std::string::npos) return secret.substr(i, 8);
  return "";
}

// Checks every error answer's body and headers for a piece of the key; returns how many there were.
int expect_no_piece_in_error_answers(const std::vector<HttpResponse>& answers, const std::string& sentinel) {
  int errors = 0;
  for (const auto& a : answers) {
    if (a.status < 400) continue;
    ++errors;
    EXPECT_EQ(leaked_piece(sentinel, a.body), "") << a.status << " " << a.body;
    for (const auto& [name, value] : a.headers) EXPECT_EQ(leaked_piece(sentinel, value), "") << name;
  }
  return errors;
}

// Takes the key through everything a client can do with it — answered, refused, rate limited (its rpm
// is 5), mangled, sent where it does not belong, asked about by an admin, revoked — and appends every
// answer to `answers`.
void use_the_key_every_way(unsigned short port, std::int64_t key_id, const std::string& sentinel,
                           std::vector<HttpResponse>& answers) {
  auto send = [&](const std::string& method, const std::string& target, const std::string& body,
                  const std::string& headers) {
    auto r = request(port, method, target, body, headers);
    ASSERT_TRUE(r) << method << " " << target;
    answers.push_back(*r);
  };
  const std::string bearer = "Authorization: Bearer " + sentinel + "\r\n";
  const std::string json_ct = "Content-Type: application/json\r\n";
  send("POST", "/api/v1/chat/completions", R"({"model":"m","messages":[{"role":"user","content":"hi"}]})", bearer + json_ct);
  send("POST", "/v1/chat/completions", R"({"model":"m","messages":[],"stream":true})", bearer + json_ct);
  send("POST", "/api/v1/chat/completions", "{not json", bearer + json_ct);
  send("POST", "/api/v1/chat/completions", R"({"model":7})", bearer + json_ct);
  send("POST", "/api/v1/chat/completions", R"({"model":"m","messages":[],"x_mock":{"status":401}})", bearer + json_ct);
  send("POST", "/api/v1/chat/completions", R"({"model":"m","messages":[],"x_mock":{"status":500}})", bearer + json_ct);
  send("GET", "/api/v1/models", "", bearer);
  send("GET", "/api/v1/key", "", bearer);
  for (int i = 0; i < 4; ++i)  // past rpm 5: 429s
    send("POST", "/api/v1/chat/completions", R"({"model":"m","messages":[]})", bearer + json_ct);
  // Refusals: lowercase scheme, Basic, duplicated header, a mistyped key (bad checksum), a truncated one.
  send("GET", "/api/v1/key", "", "Authorization: bearer " + sentinel + "\r\n");
  send("GET", "/api/v1/key", "", "Authorization: Basic " + sentinel + "\r\n");
  send("GET", "/api/v1/key", "", bearer + bearer);
  std::string mistyped = sentinel;
  mistyped.back() = mistyped.back() == 'a' ? 'b' : 'a';
  send("GET", "/api/v1/key", "", "Authorization: Bearer " + mistyped + "\r\n");
  send("GET", "/api/v1/key", "", "Authorization: Bearer " + sentinel.substr(0, sentinel.size() - 3) + "\r\n");
  send("GET", "/nowhere", "", bearer);
  send("PUT", "/api/v1/chat/completions", "", bearer);
  // Admin calls about it, then a revocation and the refused key.
  send("GET", "/admin/v1/keys/" + std::to_string(key_id), "", std::string("Authorization: Bearer ") + kAdminToken + "\r\n");
  send("GET", "/admin/v1/keys/" + std::to_string(key_id), "", bearer);  // the key is not an admin token
  send("DELETE", "/admin/v1/keys/" + std::to_string(key_id), "", std::string("Authorization: Bearer ") + kAdminToken + "\r\n");
}

}  // namespace

TEST(Sentinel, NoPieceOfAKeyReachesLogsMetricsOrErrorBodies) {
  TestDatabase db;
  Env env = lagoon_env(db);
  ASSERT_EQ(lagoon_cli({"migrate"}, env).code, 0);
  auto [key_id, sentinel] = create_key(env, "alice", {"--rpm", "5"});
  MockUpstream mock;
  Env e = mock.with(env);
  e["LAGOON_ADMIN_TOKEN"] = kAdminToken;
  e["LAGOON_LOG_LEVEL"] = "debug";  // everything the server can say
  LagoonServer s(e);

  std::vector<HttpResponse> answers;
  use_the_key_every_way(s.port(), key_id, sentinel, answers);
  const std::string bearer = "Authorization: Bearer " + sentinel + "\r\n";
  ASSERT_TRUE(wait_until(
      [&] {
        auto r = request(s.port(), "GET", "/api/v1/key", "", bearer);
        if (r) answers.push_back(*r);
        return r && r->status == 401;
      },
      2s));
  ASSERT_TRUE(wait_until([&] { return db.scalar("SELECT count(*) FROM usage_records") != "0"; }, 5s));

  EXPECT_GE(expect_no_piece_in_error_answers(answers, sentinel), 15);
  EXPECT_EQ(leaked_piece(sentinel, s.metrics()), "");
  s.process().signal(SIGTERM);
  ASSERT_EQ(s.process().wait(10s), 0);
  const std::string log = s.process().output();
  EXPECT_GT(std::count(log.begin(), log.end(), '\n'), 20);
  EXPECT_EQ(leaked_piece(sentinel, log), "") << log;
  // The key is still recognisable in the access log by its redacted prefix.
  EXPECT_NE(log.find("\"key_prefix\":\"sk-lgn_…" + sentinel.substr(7, 5) + "\""), std::string::npos);
}

TEST(Sentinel, AccessLogLinesSayWhatHappened) {
  TestDatabase db;
  Env env = lagoon_env(db);
  ASSERT_EQ(lagoon_cli({"migrate"}, env).code, 0);
  auto [key_id, key] = create_key(env);
  MockUpstream mock;
  LagoonServer s(mock.with(env));
  auto r = request(s.port(), "POST", "/api/v1/chat/completions",
                   R"({"model":"llama","messages":[],"stream":true,"x_mock":{"chunks":3}})",
                   "Authorization: Bearer " + key + "\r\nX-Request-Id: access-line-1\r\n");
  ASSERT_EQ(r->status, 200);
  json line;
  ASSERT_TRUE(wait_until(
      [&] {
        const std::string out = s.process().output();
        const auto at = out.find("\"request_id\":\"access-line-1\"");
        if (at == std::string::npos) return false;
        const auto begin = out.rfind('\n', at) + 1;
        line = json::parse(out.substr(begin, out.find('\n', at) - begin), nullptr, false);
        return true;
      },
      3s));
  EXPECT_EQ(line["msg"], "access");
  EXPECT_TRUE(line["time"].is_string());
  EXPECT_EQ(line["status"], 200);
  EXPECT_EQ(line["outcome"], "ok");
  EXPECT_EQ(line["model"], "llama");
  EXPECT_EQ(line["stream"], true);
  EXPECT_EQ(line["upstream_status"], 200);
  EXPECT_GT(line["tokens"].get<int>(), 0);
  EXPECT_TRUE(line["ttfb_ms"].is_number());
  EXPECT_TRUE(line["duration_ms"].is_number());
  EXPECT_EQ(line["user_id"], std::stoll(db.scalar("SELECT id FROM users WHERE name = 'alice'")));
  EXPECT_EQ(line["key_prefix"], "sk-lgn_…" + key.substr(7, 5));
}
