// Per-key rate limits on the real binary: shared by instances through Redis, shown in OpenAI's
// x-ratelimit-* headers, changed at run time, and failing open (for rate limiting only) without Redis.
#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <regex>
#include <thread>

#include <nlohmann/json.hpp>

#include "support/environment.hpp"
#include "support/usage_support.hpp"
#include "lagoon/config/url.hpp"
#include "lagoon/ratelimit/policy.hpp"
#include "lagoon/redis/sync.hpp"

using namespace lagoon::test;
using namespace std::chrono_literals;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kHello = R"({"model":"m","messages":[{"role":"user","content":"Hello"}],"max_tokens":10})";

class RateLimit : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(lagoon_cli({"migrate"}, env).code, 0); }
  // Redis's deadline is the harness's generous one (LagoonServer) unless a test measures it.
  Env server_env(Env extra = {}) {
    Env e = mock.with(env);
    for (auto& [k, v] : extra) e[k] = v;
    return e;
  }
  static std::optional<HttpResponse> chat(const LagoonServer& s, const std::string& key,
                                          const std::string& body = kHello) {
    return chat_completion(s.port(), key, body);
  }
  std::int64_t rows(const std::string& where = "true") {
    return std::stoll(db.scalar("SELECT count(*) FROM usage_records WHERE " + where));
  }

  TestDatabase db;
  Env env = lagoon_env(db);
  MockUpstream mock;
};

long long header_int(const HttpResponse& r, const std::string& name) {
  const auto v = r.header(name);
  return v.empty() ? -1 : std::stoll(v);
}

}  // namespace

TEST_F(RateLimit, ABurstAcrossTwoInstancesIsHeldToTheKeysRpm) {
  auto [id, key] = create_key(env, "alice", {"--rpm", "60"});
  LagoonServer a(server_env()), b(server_env());
  std::atomic<int> ok{0}, limited{0}, other{0};
  const auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 15; ++i) {
        auto r = chat((t + i) % 2 ? a : b, key);
        if (r && r->status == 200) ++ok;
        else if (r && r->status == 429) ++limited;
        else ++other;
      }
    });
  for (auto& t : threads) t.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  // GCRA lets the whole minute's 60 through at once, then one more each second.
  EXPECT_GE(ok.load(), 59);
  EXPECT_LE(ok.load(), 61 + static_cast<int>(seconds)) << "burst took " << seconds << " s";
  EXPECT_EQ(ok + limited, 120);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(a.metric(R"(lagoon_ratelimit_decisions_total{decision="allowed"})") +
                b.metric(R"(lagoon_ratelimit_decisions_total{decision="allowed"})"),
            ok.load());
  EXPECT_EQ(a.metric(R"(lagoon_ratelimit_decisions_total{decision="limited_requests"})") +
                b.metric(R"(lagoon_ratelimit_decisions_total{decision="limited_requests"})"),
            limited.load());
  // Every refused request is still an authenticated request with its usage row; none reached the upstream.
  ASSERT_TRUE(wait_until([&] { return rows() == 120; }, 5s)) << rows();
  EXPECT_EQ(rows("outcome = 'rate_limited' AND status_code = 429"), limited.load());
  EXPECT_EQ(mock.stats()["chat_requests"].get<int>(), ok.load());
}

TEST_F(RateLimit, HeadersUseOpenAIsNamesAndCountDown) {
  auto [id, key] = create_key(env, "alice", {"--rpm", "5", "--tpm", "1000"});
  LagoonServer s(server_env());
  long long used_tokens = 0;  // real totals of the answered requests, charged in place of their estimates
  for (int i = 1; i <= 5; ++i) {
    const bool stream = i == 3;
    const std::string body =
        stream ? R"({"model":"m","messages":[{"role":"user","content":"Hello"}],"max_tokens":10,"stream":true})"
               : kHello;
    const long long estimate = static_cast<long long>((body.size() + 3) / 4) + 10;  // the body's bytes / 4 + max_tokens
    auto r = chat(s, key, body);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(r->header("x-ratelimit-limit-requests"), "5");
    EXPECT_EQ(header_int(*r, "x-ratelimit-remaining-requests"), 5 - i);
    EXPECT_EQ(r->header("x-ratelimit-limit-tokens"), "1000");
    // Tokens flow back at 1000/min (~17/s): allow what a slow machine refills between requests.
    const long long remaining = header_int(*r, "x-ratelimit-remaining-tokens");
    EXPECT_GE(remaining, 1000 - used_tokens - estimate) << "request " << i;
    EXPECT_LE(remaining, 1000 - used_tokens - estimate + 20) << "request " << i;
    // Go duration format, as OpenAI: "12s", "59.98s", "1m0s"…
    EXPECT_TRUE(std::regex_match(r->header("x-ratelimit-reset-requests"),
                                 std::regex(R"((\d+ms)|((\d+m)?\d+(\.\d+)?s))")))
        << r->header("x-ratelimit-reset-requests");
    EXPECT_FALSE(r->header("x-ratelimit-reset-tokens").empty());
    if (stream) {
      const auto pos = r->body.rfind("\"total_tokens\":");
      ASSERT_EQ(pos, std::string::npos) << "the client did not ask for the usage chunk";
    }
    std::this_thread::sleep_for(50ms);  // let the usage row land, to read the real total
    ASSERT_TRUE(wait_until([&] { return rows() == i; }, 5s));
    used_tokens = std::stoll(db.scalar("SELECT sum(total_tokens) FROM usage_records"));
  }
  auto refused = chat(s, key);
  ASSERT_TRUE(refused);
  ASSERT_EQ(refused->status, 429);
  const auto err = json::parse(refused->body)["error"];
  EXPECT_EQ(err["code"], "rate_limit_exceeded");
  EXPECT_EQ(err["type"], "requests");
  EXPECT_NE(err["message"].get<std::string>().find("requests per min"), std::string::npos) << err;
  const long long retry = header_int(*refused, "retry-after");
  EXPECT_GE(retry, 1);
  EXPECT_LE(retry, 12);  // one request every 12 s at 5 per minute
  EXPECT_EQ(refused->header("x-ratelimit-remaining-requests"), "0");
  EXPECT_EQ(refused->header("x-ratelimit-limit-tokens"), "1000");
  EXPECT_FALSE(refused->header("x-request-id").empty());
}

TEST_F(RateLimit, TokensPerMinuteRefusesOnceRealUsageFillsTheBudget) {
  auto [id, key] = create_key(env, "alice", {"--tpm", "150"});
  LagoonServer s(server_env());
  // Each request is admitted against its body's bytes / 4 + 60 tokens and charged its real total (~40)
  // when it ends.
  const std::string body = R"({"model":"m","messages":[{"role":"user","content":"Hello"}],"max_tokens":60})";
  const long long estimate = static_cast<long long>((body.size() + 3) / 4) + 60;
  int answered = 0;
  std::optional<HttpResponse> refused;
  for (int i = 0; i < 8 && !refused; ++i) {
    auto r = chat(s, key, body);
    ASSERT_TRUE(r);
    if (r->status == 429) refused = r;
    else {
      ASSERT_EQ(r->status, 200) << r->body;
      ++answered;
    }
  }
  ASSERT_TRUE(refused) << "never refused";
  ASSERT_TRUE(wait_until([&] { return rows() == answered + 1; }, 5s));
  const long long used = std::stoll(db.scalar("SELECT sum(total_tokens) FROM usage_records WHERE outcome = 'ok'"));
  // Refused only when the real usage so far plus this request's estimate would pass the limit, and
  // not before (estimates alone would have refused the third request).
  EXPECT_GT(used + estimate, 150);
  EXPECT_LE(used - used / answered + estimate, 150 + 5);
  EXPECT_GE(answered, 2);
  const auto err = json::parse(refused->body)["error"];
  EXPECT_EQ(err["type"], "tokens");
  EXPECT_EQ(err["code"], "rate_limit_exceeded");
  EXPECT_FALSE(refused->header("retry-after").empty());
  EXPECT_EQ(refused->header("x-ratelimit-limit-tokens"), "150");
  EXPECT_EQ(refused->header("x-ratelimit-limit-requests"), "") << "requests are not limited for this key";
  EXPECT_EQ(s.metric(R"(lagoon_ratelimit_decisions_total{decision="limited_tokens"})"), 1);
}

// The estimate counted only message text, so a request with a 16 KB tool list (or a base64 image)
// passed as a token or two and a parallel burst was admitted far past the key's budget. It counts the
// whole body now: twenty such requests at once cannot pass the limit by more than one request's worth.
TEST_F(RateLimit, ParallelRequestsWithLargeToolDefinitionsAreHeldToTheTpm) {
  constexpr long long kTpm = 20000;
  auto [id, key] = create_key(env, "alice", {"--tpm", std::to_string(kTpm)});
  LagoonServer s(server_env());
  const std::string description(16000, 'd');
  // The mock answers after 500 ms, so every request is admitted before any has settled its real usage.
  const std::string body =
      R"({"model":"m","messages":[{"role":"user","content":"Hi"}],"max_tokens":16,"x_mock":{"first-byte-ms":500},)"
      R"("tools":[{"type":"function","function":{"name":"lookup","description":")" +
      description + R"(","parameters":{"type":"object"}}}]})";
  const long long estimate = static_cast<long long>((body.size() + 3) / 4) + 16;
  std::atomic<int> ok{0}, limited{0}, other{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 20; ++t)
    threads.emplace_back([&] {
      while (!go.load()) std::this_thread::yield();
      auto r = chat(s, key, body);
      if (r && r->status == 200) ++ok;
      else if (r && r->status == 429) ++limited;
      else ++other;
    });
  go = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(ok + limited, 20);
  EXPECT_LE(ok.load() * estimate, kTpm + estimate) << ok.load() << " admitted at " << estimate << " tokens each";
  EXPECT_GE(ok.load(), static_cast<int>(kTpm / estimate));  // and not refused before the budget is spent
}

TEST_F(RateLimit, ALimitChangeReachesEveryInstanceWithinOneSecond) {
  auto [id, key] = create_key(env, "alice", {"--rpm", "1"});
  LagoonServer a(server_env()), b(server_env());
  ASSERT_EQ(chat(a, key)->status, 200);
  ASSERT_EQ(chat(a, key)->status, 429);
  ASSERT_EQ(chat(b, key)->status, 429);

  ASSERT_EQ(lagoon_cli({"keys", "update", std::to_string(id), "--rpm", "1000"}, env).code, 0);
  const auto changed = Clock::now();
  for (auto* s : {&a, &b}) {
    std::optional<HttpResponse> r;
    ASSERT_TRUE(wait_until([&] { return (r = chat(*s, key)) && r->status == 200; }, 1s))
        << "still refused " << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - changed).count()
        << " ms after the change";
    EXPECT_EQ(r->header("x-ratelimit-limit-requests"), "1000");
  }

  // Back to the configured default (NULL), which is unlimited here: no Redis call, no headers.
  ASSERT_EQ(lagoon_cli({"keys", "update", std::to_string(id), "--rpm", "default"}, env).code, 0);
  std::optional<HttpResponse> r;
  ASSERT_TRUE(wait_until([&] { return (r = chat(a, key)) && r->header("x-ratelimit-limit-requests").empty(); }, 1s));
  EXPECT_EQ(r->status, 200);
}

TEST_F(RateLimit, KeysWithoutLimitsTakeTheConfiguredDefault) {
  auto [id, key] = create_key(env);
  auto [id2, unlimited] = create_key(env, "alice", {"--rpm", "0"});
  LagoonServer s(server_env({{"LAGOON_RATE_LIMIT_RPM", "2"}}));
  EXPECT_EQ(chat(s, key)->header("x-ratelimit-limit-requests"), "2");
  EXPECT_EQ(chat(s, key)->status, 200);
  EXPECT_EQ(chat(s, key)->status, 429);
  // 0 = unlimited, whatever the default.
  for (int i = 0; i < 4; ++i) {
    auto r = chat(s, unlimited);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->header("x-ratelimit-limit-requests"), "");
  }
}

TEST_F(RateLimit, WithoutRedisRequestsAreAllowedUncheckedWithinOneDeadline) {
  RedisServer redis;
  auto [id, key] = create_key(env, "alice", {"--rpm", "1"});
  LagoonServer s(server_env({{"LAGOON_REDIS_URL", redis.url()}, {"LAGOON_REDIS_TIMEOUT_MS", "25"}}));
  ASSERT_EQ(s.wait_ready_status(200, 5s), 200);
  ASSERT_EQ(chat(s, key)->status, 200);  // also puts the key in L1: authentication needs no Redis now
  ASSERT_EQ(chat(s, key)->status, 429);

  redis.process().signal(SIGSTOP);
  std::vector<long long> ms;
  for (int i = 0; i < 6; ++i) {
    const auto t0 = Clock::now();
    auto r = chat(s, key);
    ms.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count());
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << "rate limiting fails open";
    EXPECT_EQ(r->header("x-ratelimit-remaining-requests"), "") << "nothing is known to report";
  }
  const double fail_open = s.metric(R"(lagoon_ratelimit_decisions_total{decision="fail_open"})");
  redis.process().signal(SIGCONT);
  for (auto v : ms) EXPECT_LT(v, 200) << "a request waited " << v << " ms while Redis hung (deadline 25 ms)";
  EXPECT_EQ(fail_open, 6);
  EXPECT_GE(s.metric("lagoon_redis_breaker_opened_total"), 1);

  // Redis back: the limit holds again once the breaker has closed.
  std::optional<HttpResponse> r;
  EXPECT_TRUE(wait_until([&] { return (r = chat(s, key)) && r->status == 429; }, 8s));

  // Redis gone for good (and its state with it): still allowed, still counted.
  redis.kill();
  EXPECT_EQ(chat(s, key)->status, 200);
  EXPECT_GE(s.metric(R"(lagoon_ratelimit_decisions_total{decision="fail_open"})"), 7);
}

TEST_F(RateLimit, RedisThatForgotTheScriptIsGivenItAgain) {
  RedisServer redis;
  // 2 per minute: a request's share comes back only after 30 s, so the second request sees the first's
  // charge however long the flush between them takes (at 100 per minute, 600 ms sufficed to refill it).
  auto [id, key] = create_key(env, "alice", {"--rpm", "2"});
  LagoonServer s(server_env({{"LAGOON_REDIS_URL", redis.url()}}));
  ASSERT_EQ(s.wait_ready_status(200, 5s), 200);
  ASSERT_EQ(chat(s, key)->header("x-ratelimit-remaining-requests"), "1");
  ASSERT_EQ(run({"/usr/bin/redis-cli", "-p", std::to_string(redis.port()), "SCRIPT", "FLUSH"}, {}).code, 0);
  auto r = chat(s, key);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("x-ratelimit-remaining-requests"), "0");
  EXPECT_EQ(s.metric(R"(lagoon_ratelimit_decisions_total{decision="fail_open"})"), 0);
}

TEST_F(RateLimit, RealUsageReplacesTheEstimateOnEveryInstance) {
  auto [id, key] = create_key(env, "alice", {"--tpm", "6000"});
  LagoonServer a(server_env()), b(server_env());
  // Admitted against the body's bytes / 4 + 1000 tokens; the mock's answer uses far fewer.
  const std::string body = R"({"model":"m","messages":[{"role":"user","content":"Hello"}],"max_tokens":1000})";
  const long long estimate = static_cast<long long>((body.size() + 3) / 4) + 1000;
  const auto t0 = Clock::now();
  auto first = chat(a, key, body);
  ASSERT_EQ(first->status, 200);
  EXPECT_EQ(header_int(*first, "x-ratelimit-remaining-tokens"), 6000 - estimate);
  const long long used = json::parse(first->body)["usage"]["total_tokens"].get<long long>();
  ASSERT_LT(used, 100);
  // Instance A sends the correction within 100 ms even though the key makes no further request there.
  std::this_thread::sleep_for(300ms);
  auto second = chat(b, key, body);
  const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  ASSERT_EQ(second->status, 200);
  const long long remaining = header_int(*second, "x-ratelimit-remaining-tokens");
  EXPECT_GE(remaining, 6000 - used - estimate);
  // 100 tokens/s flow back meanwhile.
  EXPECT_LE(remaining, 6000 - used - estimate + static_cast<long long>(elapsed * 100) + 2);
}

// The script itself, against the test Redis: what it consumes, keeps and expires.
class RateLimitScript : public ::testing::Test {
 protected:
  RateLimitScript() : redis(lagoon::config::parse_redis_url(required_env("LAGOON_TEST_REDIS_URL")), 2000ms) {}
  void SetUp() override { prefix = "lagoon-script-test-" + std::to_string(::getpid()) + "-" + std::to_string(++counter) + ":"; }
  void TearDown() override {
    auto [r, t] = lagoon::ratelimit::redis_keys(prefix, 1);
    redis.command({"DEL", r, t});
  }
  // {allowed, requests remaining, requests reset, tokens remaining, tokens reset, retry after}
  std::vector<long long> admit(long long rpm, long long tpm, long long tokens, long long correction = 0) {
    auto [r, t] = lagoon::ratelimit::redis_keys(prefix, 1);
    auto reply = redis.command({"EVAL", lagoon::ratelimit::script(), "2", r, t, std::to_string(rpm), std::to_string(tpm),
                                std::to_string(tokens), "admit", std::to_string(correction)});
    EXPECT_TRUE(reply && reply->type == lagoon::redis::Reply::Type::array) << (reply ? reply->str : redis.error());
    std::vector<long long> out;
    if (reply)
      for (const auto& e : reply->elements) out.push_back(e.integer);
    return out;
  }
  long long pttl(bool tokens) {
    auto [r, t] = lagoon::ratelimit::redis_keys(prefix, 1);
    return redis.command({"PTTL", tokens ? t : r})->integer;
  }
  lagoon::redis::SyncConnection redis;
  std::string prefix;
  static inline int counter = 0;
};

TEST_F(RateLimitScript, ABurstGetsExactlyTheLimitForAwkwardLimits) {
  for (long long rpm : {7, 13, 997}) {
    TearDown();
    int allowed = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (long long i = 0; i < rpm + 5; ++i) allowed += admit(rpm, 0, 1)[0] == 1;
    // The budget refills one request per 60/rpm s while the burst runs (997: one per 60 ms).
    const double refilled = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() * rpm / 60.0;
    EXPECT_GE(allowed, rpm);
    EXPECT_LE(allowed, rpm + static_cast<long long>(refilled) + 1) << "rpm " << rpm;
  }
}

TEST_F(RateLimitScript, ARefusalConsumesNothingButKeepsACorrection) {
  auto first = admit(10, 100, 60);
  ASSERT_EQ(first[0], 1);
  EXPECT_EQ(first[1], 9);
  EXPECT_EQ(first[3], 40);
  auto refused = admit(10, 100, 60);  // the tokens refuse
  EXPECT_EQ(refused[0], 0);
  EXPECT_EQ(refused[1], 9) << "a refused request consumes no request";
  EXPECT_EQ(refused[3], 40);
  EXPECT_GT(refused[5], 0);
  // The first request really used 10: the correction (-50) is applied and kept, though this one is refused.
  auto still_refused = admit(10, 100, 100, -50);
  EXPECT_EQ(still_refused[0], 0);
  EXPECT_EQ(still_refused[3], 90);
  auto fits = admit(10, 100, 90);
  EXPECT_EQ(fits[0], 1);
  EXPECT_EQ(fits[1], 8);
  EXPECT_EQ(fits[3], 0);
}

TEST_F(RateLimitScript, CountersExpireOnceTheBudgetIsWhole) {
  ASSERT_EQ(admit(60, 6000, 600)[0], 1);
  // One request at 60/min is whole again after 1 s, 600 tokens at 6000/min after 6 s (+1 s margin).
  EXPECT_GT(pttl(false), 1000);
  EXPECT_LE(pttl(false), 2000);
  EXPECT_GT(pttl(true), 6000);
  EXPECT_LE(pttl(true), 7000);
  // Giving everything back deletes the counter.
  auto [r, t] = lagoon::ratelimit::redis_keys(prefix, 1);
  redis.command({"EVALSHA", lagoon::ratelimit::script_sha1(), "2", r, t, "60", "6000", "-600", "charge"});
  EXPECT_EQ(pttl(true), -2);
}
