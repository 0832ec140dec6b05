// What the integration tests of operators' money — budgets, prices, usage reports — share: a migrated database, the CLI
// against it, and on demand `lagoon serve` with the admin API on (token kAdminToken) in front of the mock
// upstream; and the record of a key as the Redis cache holds it, to see an invalidation rewrite it.
// Not thread-safe; each test owns its fixture.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <hiredis/hiredis.h>
#include <nlohmann/json.hpp>

#include "lagoon/auth/key_record.hpp"
#include "lagoon/config/url.hpp"
#include "lagoon/keys/api_key.hpp"
#include "lagoon/redis/sync.hpp"
#include "support/environment.hpp"

namespace lagoon::test {

inline constexpr const char* kAdminToken = "admin-token-for-money-tests-0123";

// A subscription to one Redis channel, as a running gateway holds one: what is announced there after it.
class ChannelListener {
 public:
  ChannelListener(const std::string& redis_url, const std::string& channel) {
    const auto endpoint = config::parse_redis_url(redis_url);
    const timeval second{1, 0};
    ctx_ = redisConnectWithTimeout(endpoint.host.c_str(), endpoint.port, second);
    if (!ctx_ || ctx_->err) throw std::runtime_error("cannot reach Redis to subscribe");
    redisSetTimeout(ctx_, second);
    freeReplyObject(redisCommand(ctx_, "SUBSCRIBE %s", channel.c_str()));
  }
  ~ChannelListener() { redisFree(ctx_); }
  ChannelListener(const ChannelListener&) = delete;
  ChannelListener& operator=(const ChannelListener&) = delete;

  // How many messages saying `payload` came until none came for a second. Once: the timeout that ends
  // it ends the subscription.
  int heard(const std::string& payload) {
    int n = 0;
    void* reply = nullptr;
    while (redisGetReply(ctx_, &reply) == REDIS_OK && reply) {
      const auto* r = static_cast<redisReply*>(reply);
      if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 && std::string(r->element[2]->str, r->element[2]->len) == payload)
        ++n;
      freeReplyObject(reply);
      reply = nullptr;
    }
    return n;
  }

 private:
  redisContext* ctx_ = nullptr;
};

// For a test that reads "today" and "this month" (UTC) after writing usage now: if midnight UTC (the
// start of a day and perhaps of a month) is less than `margin` away, waits until it has passed, so the
// day cannot turn between what the test writes and what it reads.
inline void keep_clear_of_utc_midnight(std::chrono::seconds margin) {
  using namespace std::chrono;
  const auto now = system_clock::now();
  const auto next_midnight = floor<days>(now) + days(1);
  if (next_midnight - now < margin) std::this_thread::sleep_until(next_midnight + seconds(1));
}

class AdminMoneyTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(lagoon_cli({"migrate"}, env).code, 0); }

  // `lagoon ARGS…`, which must succeed; its JSON.
  nlohmann::json cli(const std::vector<std::string>& args) {
    auto r = lagoon_cli(args, env);
    EXPECT_EQ(r.code, 0) << r.err;
    return nlohmann::json::parse(r.out, nullptr, false);
  }
  // `lagoon ARGS…`, which must exit with `code` and say `message` on stderr, printing nothing.
  void cli_fails(const std::vector<std::string>& args, int code, const std::string& message) {
    auto r = lagoon_cli(args, env);
    EXPECT_EQ(r.code, code) << ::testing::PrintToString(args) << ": " << r.err;
    EXPECT_NE(r.err.find(message), std::string::npos) << ::testing::PrintToString(args) << ": " << r.err;
    EXPECT_EQ(r.out, "") << ::testing::PrintToString(args);
  }

  LagoonServer& start_server(Env extra = {}) {
    Env e = mock.with(env);
    e["LAGOON_ADMIN_TOKEN"] = kAdminToken;
    for (auto& [k, v] : extra) e[k] = v;
    server = std::make_unique<LagoonServer>(e);
    return *server;
  }
  std::optional<HttpResponse> call(const std::string& method, const std::string& target, const std::string& body = "") {
    std::string headers = std::string("Authorization: Bearer ") + kAdminToken + "\r\n";
    if (!body.empty()) headers += "Content-Type: application/json\r\n";
    return request(server->port(), method, target, body, headers);
  }
  // An admin call that must answer `status`; its JSON.
  nlohmann::json admin(const std::string& method, const std::string& target, const std::string& body = "",
                       int status = 200) {
    auto r = call(method, target, body);
    EXPECT_TRUE(r);
    if (!r) return {};
    EXPECT_EQ(r->status, status) << method << " " << target << " " << body << " -> " << r->body;
    return nlohmann::json::parse(r->body, nullptr, false);
  }

  // The key's entry in this test's Redis cache, as every instance would read it; nullopt when absent.
  std::optional<auth::KeyRecord> cached_record(const std::string& key) {
    redis::SyncConnection redis(config::parse_redis_url(env.at("LAGOON_REDIS_URL")), std::chrono::milliseconds(2000));
    const auto digest = keys::digest(kTestPepper, key);
    auto reply = redis.command({"GET", auth::cache_key(env.at("LAGOON_REDIS_PREFIX"), digest)});
    if (!reply || reply->type != redis::Reply::Type::string) return std::nullopt;
    auto entry = auth::from_cache_json(reply->str, digest);
    if (!entry || entry->unknown) return std::nullopt;
    return entry->record;
  }

  TestDatabase db;
  Env env = lagoon_env(db);
  MockUpstream mock;
  std::unique_ptr<LagoonServer> server;
};

}  // namespace lagoon::test
