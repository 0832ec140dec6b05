// redis::Client against a real Redis behind a fault proxy: late replies, error replies, and what the
// circuit breaker makes of them. In-process, so the sanitizer build (scripts/test) sees every byte the
// client touches — the use-after-free on a timed-out command was found there.
#include <atomic>
#include <chrono>
#include <future>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <gtest/gtest.h>

#include "lagoon/config/config.hpp"
#include "lagoon/metrics/registry.hpp"
#include "lagoon/redis/client.hpp"
#include "support/environment.hpp"
#include "support/fault_proxy.hpp"

namespace lagoon::test {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A redis::Client on its own io_context, run by one thread, for one test.
class ClientRig {
 public:
  explicit ClientRig(unsigned short port, std::chrono::milliseconds breaker_cooldown = 50ms) {
    cfg_.redis_url = "redis://127.0.0.1:" + std::to_string(port) + "/0";
    cfg_.redis_timeout = 100ms;
    cfg_.redis_connections = 1;  // every command on one connection: a timeout there fails the others
    // While the one connection reconnects, commands fail at once and open the breaker: by default keep
    // its pause short so the tests' rounds do not wait for it.
    cfg_.redis_breaker_cooldown = breaker_cooldown;
    client_.emplace(ioc_, cfg_, metrics_);
    client_->start();
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~ClientRig() {
    work_.reset();
    ioc_.stop();
    thread_.join();
    client_->shutdown();  // only once no thread runs the io_context (client.hpp)
  }

  // Starts a command now; its result arrives through the future.
  std::future<redis::Result> start(std::vector<std::string> args) {
    return asio::co_spawn(ioc_, client_->command(std::move(args)), asio::use_future);
  }
  redis::Result run(std::vector<std::string> args) {
    auto f = start(std::move(args));
    if (f.wait_for(10s) != std::future_status::ready) throw std::runtime_error("a Redis command never completed");
    return f.get();
  }
  // PINGs until one is answered: the connection is up.
  bool wait_until_answering(std::chrono::milliseconds within) {
    const auto until = Clock::now() + within;
    while (Clock::now() < until) {
      if (run({"PING"}).answered()) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }
  redis::Client& client() { return *client_; }
  double metric(const std::string& series) {
    const std::string text = metrics_.render();
    const auto at = text.find("\n" + series + " ");
    return at == std::string::npos ? -1 : std::stod(text.substr(at + series.size() + 2));
  }

 private:
  config::Config cfg_;
  metrics::Registry metrics_;
  asio::io_context ioc_{1};
  asio::executor_work_guard<asio::io_context::executor_type> work_{ioc_.get_executor()};
  std::optional<redis::Client> client_;
  std::thread thread_;
};

// Several commands wait on one connection; the oldest passes its deadline. Each completes exactly once
// (timeout for the late one, unavailable for those torn down with it), and the client reconnects.
// Under AddressSanitizer this test failed with heap-use-after-free in Connection::complete: the timed
// out command was passed by reference to the deque element the completion popped, which frees its
// block when it is the block's last (32 per block in libstdc++). Each round queues 7 commands, a number
// prime to 32, so over 32 rounds the late command stands at every place in a block, that one included.
TEST(RedisClient, CommandsPastTheDeadlineCompleteOnceAndTheClientReconnects) {
  RedisServer redis;
  FaultProxy proxy(redis.port());
  ClientRig rig(proxy.port());
  ASSERT_TRUE(rig.wait_until_answering(10s));

  for (int round = 0; round < 33; ++round) {
    ASSERT_TRUE(rig.run({"PING"}).answered());
    proxy.set_mode(FaultProxy::Mode::stall);
    std::vector<std::future<redis::Result>> waiting;
    for (int i = 0; i < 5; ++i) waiting.push_back(rig.start({"GET", "lagoon:test:" + std::to_string(i)}));
    int late = 0, torn_down = 0;
    for (auto& f : waiting) {
      ASSERT_EQ(f.wait_for(5s), std::future_status::ready) << "a command outlived its deadline";
      const auto r = f.get();
      late += r.status == redis::Status::timeout;
      torn_down += r.status == redis::Status::unavailable;
    }
    EXPECT_EQ(late, 1) << "only the oldest command waits for its deadline";
    EXPECT_EQ(late + torn_down, 5);
    proxy.set_mode(FaultProxy::Mode::pass);
    proxy.reset_all();  // the stalled connection is dropped on Lagoon's side; end it on the proxy's too
    ASSERT_TRUE(rig.wait_until_answering(10s)) << "round " << round;
  }
}

// One late reply among many good ones is a blip: the breaker stays closed. (It used to open, because
// the commands failed with the late one's connection counted as three consecutive failures.)
TEST(RedisClient, OneLateReplyDoesNotOpenTheBreaker) {
  RedisServer redis;
  FaultProxy proxy(redis.port());
  ClientRig rig(proxy.port());
  ASSERT_TRUE(rig.wait_until_answering(10s));
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(rig.run({"PING"}).answered());

  proxy.set_mode(FaultProxy::Mode::stall);
  std::vector<std::future<redis::Result>> waiting;
  for (int i = 0; i < 5; ++i) waiting.push_back(rig.start({"PING"}));
  for (auto& f : waiting) ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
  EXPECT_FALSE(rig.client().breaker_open());
  EXPECT_EQ(rig.metric("lagoon_redis_breaker_opened_total"), 0);
  proxy.set_mode(FaultProxy::Mode::pass);
  proxy.reset_all();
  ASSERT_TRUE(rig.wait_until_answering(10s));
}

// A replica after a failover answers writes with READONLY. That is Redis failing, not answering: the
// breaker must open (it used to count error replies as successes, so limits failed open for good).
TEST(RedisClient, ErrorRepliesLikeReadonlyCountAsFailuresAndOpenTheBreaker) {
  RedisServer redis;
  ClientRig rig(redis.port(), 60s);  // once open, it stays open for the rest of the test
  ASSERT_TRUE(rig.wait_until_answering(10s));
  // A replica of a master that is not there: read-only, and says so to every write.
  ASSERT_TRUE(rig.run({"REPLICAOF", "127.0.0.1", std::to_string(free_port())}).answered());
  const auto refused = rig.run({"SET", "lagoon:test:k", "v"});
  ASSERT_EQ(refused.status, redis::Status::ok);
  ASSERT_TRUE(refused.reply.is_error());
  EXPECT_EQ(refused.reply.str.rfind("READONLY", 0), 0u) << refused.reply.str;
  // The connection that was answered READONLY is closed and opened again (resolving its host anew: a
  // managed Redis's name may point at the new primary by then).
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (rig.metric(R"(lagoon_redis_reconnects_total{role="command"})") < 1 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  EXPECT_GE(rig.metric(R"(lagoon_redis_reconnects_total{role="command"})"), 1);

  for (int i = 0; i < 10 && !rig.client().breaker_open(); ++i) rig.run({"SET", "lagoon:test:k", "v"});
  EXPECT_TRUE(rig.client().breaker_open());
  EXPECT_GE(rig.metric("lagoon_redis_breaker_opened_total"), 1);
  EXPECT_EQ(rig.run({"SET", "lagoon:test:k", "v"}).status, redis::Status::skipped);
}

// A command error the caller handles (NOSCRIPT: the limiter then sends the script) is no failure.
TEST(RedisClient, NoscriptRepliesDoNotOpenTheBreaker) {
  RedisServer redis;
  ClientRig rig(redis.port());
  ASSERT_TRUE(rig.wait_until_answering(10s));
  for (int i = 0; i < 10; ++i) {
    const auto r = rig.run({"EVALSHA", "0000000000000000000000000000000000000000", "0"});
    ASSERT_TRUE(r.reply.is_error());
  }
  EXPECT_FALSE(rig.client().breaker_open());
}

// The revocation subscription only listens: a connection that died silently (a NAT or load balancer
// dropping an idle flow, a hung Redis) looked like a quiet channel, live() stayed true, and revocations
// reached the instance only by L1 expiry. A heartbeat it cannot answer now takes it down, and it
// subscribes again (which tells the owner to drop L1) once Redis answers.
TEST(RedisSubscriber, ASilentlyDeadSubscriptionIsNoticedAndReestablished) {
  RedisServer redis;
  FaultProxy proxy(redis.port());
  config::Config cfg;
  cfg.redis_url = "redis://127.0.0.1:" + std::to_string(proxy.port()) + "/0";
  cfg.redis_subscriber_heartbeat = 100ms;
  metrics::Registry metrics;
  asio::io_context ioc{1};
  auto work = asio::make_work_guard(ioc);
  std::atomic<int> subscribed{0};
  redis::Subscriber sub(
      ioc, cfg, metrics, "lagoon:test:revocations", [](std::string_view) {}, [&] { ++subscribed; });
  sub.start();
  std::thread runner([&] { ioc.run(); });
  auto wait_for = [](auto&& condition, std::chrono::milliseconds within) {
    const auto until = Clock::now() + within;
    while (!condition() && Clock::now() < until) std::this_thread::sleep_for(10ms);
    return condition();
  };
  // live() turns true just before the owner is told (on the subscriber's strand): wait for the telling.
  EXPECT_TRUE(wait_for([&] { return sub.live() && subscribed.load() == 1; }, 10s));
  // Quiet but healthy: heartbeats are answered, the subscription stays up.
  std::this_thread::sleep_for(500ms);
  EXPECT_TRUE(sub.live());

  proxy.set_mode(FaultProxy::Mode::stall);
  const auto stalled_at = Clock::now();
  EXPECT_TRUE(wait_for([&] { return !sub.live(); }, 5s)) << "a silently dead subscription still counts as live";
  EXPECT_LT(Clock::now() - stalled_at, 1s) << "noticed only after two heartbeat intervals and some";

  proxy.set_mode(FaultProxy::Mode::pass);
  proxy.reset_all();
  EXPECT_TRUE(wait_for([&] { return sub.live() && subscribed.load() == 2; }, 10s))
      << "not re-subscribed, or the owner was not told to drop what it may have missed (told " << subscribed.load()
      << " times)";

  work.reset();
  ioc.stop();
  runner.join();
  sub.shutdown();
}

}  // namespace
}  // namespace lagoon::test
