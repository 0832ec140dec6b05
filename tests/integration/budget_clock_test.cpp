// Budget periods end at their boundary (UTC midnight, the first of the month; never for a total
// budget), shown with the Limiter's injectable clock rather than by waiting: the real Limiter, the
// real Redis script and the real Postgres sum, in-process, with the clock moved across the boundary.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "lagoon/db/async_pool.hpp"
#include "lagoon/db/pool.hpp"
#include "lagoon/ratelimit/limiter.hpp"
#include "lagoon/redis/client.hpp"
#include "support/environment.hpp"

namespace lagoon::test {
namespace {

namespace asio = boost::asio;
namespace chr = std::chrono;
using namespace std::chrono_literals;

money::SysTime at(int y, unsigned m, unsigned d, int hh, int mm) {
  return money::SysTime{chr::sys_days{chr::year{y} / m / d}} + chr::hours{hh} + chr::minutes{mm};
}

// A Limiter on its own io_context, run by one thread, over this test's Redis prefix and database.
class BudgetRig {
 public:
  BudgetRig() {
    EXPECT_EQ(lagoon_cli({"migrate"}, lagoon_env(db_)).code, 0);
    cfg_.redis_url = required_env("LAGOON_TEST_REDIS_URL");
    cfg_.redis_prefix = "lagoon-clock-" + db_.name() + ":";
    cfg_.redis_timeout = 500ms;
    cfg_.database_url = db_.url();
    cfg_.db_pool_size = 1;
    pool_.emplace(cfg_, metrics_);
    async_.emplace(*pool_, 2s);
    redis_.emplace(ioc_, cfg_, metrics_);
    redis_->start();
    limiter_.emplace(ioc_, cfg_, *redis_, *async_, metrics_, [this] { return now.load(); });
    thread_ = std::thread([this] { ioc_.run(); });
    // The client connects in the background: until it has, a budget cannot be checked (503).
    for (int i = 0; i < 200; ++i) {
      auto f = asio::co_spawn(ioc_, redis_->command({"PING"}), asio::use_future);
      if (f.wait_for(5s) == std::future_status::ready && f.get().answered()) break;
      std::this_thread::sleep_for(10ms);
    }
  }
  ~BudgetRig() {
    work_.reset();
    ioc_.stop();
    thread_.join();
    limiter_->shutdown();
    redis_->shutdown();
    async_->shutdown();
  }
  ratelimit::Decision admit(const auth::KeyRecord& key, money::Pico most) {
    auto f = asio::co_spawn(ioc_, limiter_->admit(key, std::nullopt, most), asio::use_future);
    if (f.wait_for(10s) != std::future_status::ready) throw std::runtime_error("admit never completed");
    return f.get();
  }
  void settle(const auth::KeyRecord& key, const ratelimit::Decision& d, money::Pico cost) {
    limiter_->settle(key, d, 0, cost);
    auto f = asio::co_spawn(ioc_, limiter_->flush(), asio::use_future);
    ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
  }
  money::Pico spent(const auth::KeyRecord& key) {
    auto f = asio::co_spawn(ioc_, limiter_->budgets(key), asio::use_future);
    if (f.wait_for(10s) != std::future_status::ready) throw std::runtime_error("budgets never completed");
    const auto states = f.get();
    return states && !states->empty() ? states->front().spent : -1;
  }

  std::atomic<money::SysTime> now{at(2026, 12, 2, 23, 59)};

 private:
  TestDatabase db_;
  config::Config cfg_;
  metrics::Registry metrics_;
  asio::io_context ioc_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(ioc_);
  std::optional<db::Pool> pool_;
  std::optional<db::AsyncPool> async_;
  std::optional<redis::Client> redis_;
  std::optional<ratelimit::Limiter> limiter_;
  std::thread thread_;
};

auth::KeyRecord budgeted(std::int64_t key_id, money::Period period) {
  auth::KeyRecord k;
  k.key_id = key_id;
  k.user_id = key_id;
  k.key_active = k.user_active = true;
  k.rpm_limit = 0;
  k.tpm_limit = 0;
  k.key_budget = money::Budget{1'000'000'000, period};  // $0.001
  return k;
}

constexpr money::Pico kMost = 800'000'000;  // $0.0008: one fits, two do not

TEST(BudgetPeriods, ADailyBudgetIsWholeAgainAtUtcMidnight) {
  BudgetRig rig;
  const auto key = budgeted(1, money::Period::daily);
  EXPECT_EQ(rig.admit(key, kMost).kind, ratelimit::Decision::Kind::allowed);
  const auto refused = rig.admit(key, kMost);
  ASSERT_EQ(refused.kind, ratelimit::Decision::Kind::over_budget);
  ASSERT_TRUE(refused.exceeded && refused.exceeded->window.end);
  EXPECT_EQ(money::rfc3339(*refused.exceeded->window.end), "2026-12-03T00:00:00Z");
  rig.now = at(2026, 12, 2, 23, 59) + 59s;
  EXPECT_EQ(rig.admit(key, kMost).kind, ratelimit::Decision::Kind::over_budget);
  rig.now = at(2026, 12, 3, 0, 0);
  EXPECT_EQ(rig.admit(key, kMost).kind, ratelimit::Decision::Kind::allowed);
  EXPECT_EQ(rig.spent(key), kMost);
}

TEST(BudgetPeriods, AMonthlyBudgetIsWholeAgainOnTheFirst) {
  BudgetRig rig;
  rig.now = at(2026, 12, 31, 23, 0);
  const auto key = budgeted(2, money::Period::monthly);
  EXPECT_EQ(rig.admit(key, kMost).kind, ratelimit::Decision::Kind::allowed);
  EXPECT_EQ(rig.admit(key, kMost).kind, ratelimit::Decision::Kind::over_budget);
  rig.now = at(2027, 1, 1, 0, 0);
  EXPECT_EQ(rig.admit(key, kMost).kind, ratelimit::Decision::Kind::allowed);
}

TEST(BudgetPeriods, ATotalBudgetNeverResetsAndASettlementGivesBackWhatWasNotSpent) {
  BudgetRig rig;
  const auto key = budgeted(3, money::Period::total);
  const auto held = rig.admit(key, kMost);
  ASSERT_EQ(held.kind, ratelimit::Decision::Kind::allowed);
  EXPECT_EQ(rig.admit(key, kMost).kind, ratelimit::Decision::Kind::over_budget);
  rig.now = at(2028, 6, 1, 12, 0);
  EXPECT_EQ(rig.admit(key, kMost).kind, ratelimit::Decision::Kind::over_budget);
  // The first request really cost $0.0001: $0.0009 is free again, and a second one fits.
  rig.settle(key, held, 100'000'000);
  EXPECT_EQ(rig.spent(key), 100'000'000);
  EXPECT_EQ(rig.admit(key, kMost).kind, ratelimit::Decision::Kind::allowed);
}

}  // namespace
}  // namespace lagoon::test
