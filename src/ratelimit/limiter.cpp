#include "lagoon/ratelimit/limiter.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "lagoon/log/log.hpp"

namespace lagoon::ratelimit {

namespace asio = boost::asio;

namespace {
metrics::Counter& decisions(metrics::Registry& m, const char* decision) {
  return m.counter("lagoon_ratelimit_decisions_total",
                   "Rate-limit decisions for keys with limits: allowed, refused (by which limit), or allowed "
                   "unchecked because Redis could not be asked",
                   {{"decision", decision}});
}
}  // namespace

struct Limiter::Timer {
  explicit Timer(asio::io_context& ioc) : timer(ioc) {}
  asio::steady_timer timer;
  std::atomic<bool> stopped{false};
};

Limiter::Limiter(asio::io_context& ioc, const config::Config& cfg, redis::Client& redis, db::AsyncPool& db,
                 metrics::Registry& metrics, Clock now)
    : ioc_(ioc),
      cfg_(cfg),
      redis_(redis),
      db_(db),
      now_(std::move(now)),
      timer_(std::make_unique<Timer>(ioc)),
      allowed_(decisions(metrics, "allowed")),
      limited_requests_(decisions(metrics, "limited_requests")),
      limited_tokens_(decisions(metrics, "limited_tokens")),
      fail_open_(decisions(metrics, "fail_open")),
      over_budget_(decisions(metrics, "over_budget")),
      unpriced_(decisions(metrics, "unpriced")),
      budget_unavailable_(decisions(metrics, "budget_unavailable")),
      budget_seeds_(metrics.counter("lagoon_budget_seeds_total",
                                    "Budget counters summed from Postgres because Redis did not have them")) {}

Limiter::~Limiter() { shutdown(); }

void Limiter::start() { asio::co_spawn(ioc_, settle_loop(), asio::detached); }

void Limiter::shutdown() noexcept {
  timer_->stopped = true;
  boost::system::error_code ignored;
  timer_->timer.cancel();
}

asio::awaitable<void> Limiter::settle_loop() {
  while (!timer_->stopped) {
    timer_->timer.expires_after(kSettleInterval);
    co_await timer_->timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (timer_->stopped) co_return;
    co_await flush();
  }
}

std::int64_t Limiter::take_owed(std::int64_t key_id) {
  Shard& s = shard(key_id);
  std::lock_guard lock(s.mutex);
  auto it = s.owed.find(key_id);
  if (it == s.owed.end()) return 0;
  const std::int64_t tokens = it->second.tokens;
  s.owed.erase(it);
  return tokens;
}

void Limiter::add_owed(std::int64_t key_id, std::int64_t tokens, const Limits& limits) {
  Shard& s = shard(key_id);
  std::lock_guard lock(s.mutex);
  Owed& o = s.owed[key_id];
  o.tokens += tokens;
  o.limits = limits;
  if (o.tokens == 0) s.owed.erase(key_id);
}

asio::awaitable<void> Limiter::flush() {
  std::vector<std::pair<std::int64_t, Owed>> due;
  for (auto& s : shards_) {
    std::lock_guard lock(s.mutex);
    for (auto& entry : s.owed) due.push_back(entry);
    s.owed.clear();
  }
  for (const auto& [key_id, owed] : due) {
    const auto result = co_await run_script(key_id, owed.limits, owed.tokens, "charge", 0);
    if (result.status == redis::Status::skipped) add_owed(key_id, owed.tokens, owed.limits);
  }
  co_await flush_spend();
}

asio::awaitable<redis::Result> Limiter::run_script(std::int64_t key_id, const Limits& limits, std::int64_t tokens,
                                                   const char* mode, std::int64_t correction) {
  auto [rk, tk] = redis_keys(cfg_.redis_prefix, key_id);
  std::vector<std::string> args{"EVALSHA",
                                script_sha1(),
                                "2",
                                std::move(rk),
                                std::move(tk),
                                std::to_string(limits.rpm),
                                std::to_string(limits.tpm),
                                std::to_string(tokens),
                                mode,
                                std::to_string(correction)};
  co_return co_await redis_.evalsha(std::move(args), script());
}

void Limiter::warn_throttled(const std::string& what) {
  const auto now_s =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
  auto last = last_warning_s_.load(std::memory_order_relaxed);
  if (now_s - last < 10 || !last_warning_s_.compare_exchange_strong(last, now_s)) return;
  log::warn("rate limits not checked: allowing requests", {{"reason", what}});
}

namespace {

// The key's limits for one request. Without tokens the script neither checks nor charges the token
// window (and any settlement owed stays for the key's next token-counted request).
Limits request_limits(const auth::KeyRecord& key, const config::Config& cfg, bool tokens) {
  Limits limits = limits_for(key, cfg);
  if (!tokens) limits.tpm = 0;
  return limits;
}

}  // namespace

bool Limiter::applies(const auth::KeyRecord& key, bool tokens) const {
  return request_limits(key, cfg_, tokens).any() || key.has_budget();
}

asio::awaitable<Decision> Limiter::admit(const auth::KeyRecord& key, std::optional<std::int64_t> estimate,
                                         std::optional<money::Pico> most) {
  const Limits limits = request_limits(key, cfg_, estimate.has_value());
  const std::vector<Counter> counters = counters_for(key);
  if (!limits.any() && counters.empty()) co_return Decision{};
  if (!counters.empty() && !most && !cfg_.unpriced_serve) {
    unpriced_.inc();
    co_return budget_refusal(Decision::Kind::unpriced);
  }
  const std::int64_t hold = counters.empty() ? 0 : money::nano_up(most.value_or(0));
  const std::int64_t cost = admission_cost(estimate.value_or(0), limits);
  const std::int64_t owed = limits.tpm > 0 ? take_owed(key.limit_id()) : 0;
  auto result = co_await run_budget_script(key, limits, cost, owed, hold, counters, {});
  if (result.answered() && !counters.empty() && missing_counters(result.reply)) {
    if (const auto summed = co_await seeds(counters)) {
      std::vector<std::string> seed_args;
      for (auto v : *summed) seed_args.push_back(std::to_string(v));
      result = co_await run_budget_script(key, limits, cost, owed, hold, counters, seed_args);
    } else {
      result.status = redis::Status::skipped;  // nothing was applied: no Postgres, no budget to check against
    }
  }
  std::optional<Decision> parsed;
  if (result.answered()) parsed = parse_admit_reply(result.reply, limits, cost);
  if (!parsed) co_return unchecked(key, result, owed, limits, !counters.empty());
  parsed->asked_nano = hold;
  switch (parsed->kind) {
    case Decision::Kind::allowed:
      allowed_.inc();
      if (!counters.empty()) {
        parsed->held = Decision::Held{hold, {}};
        for (const auto& c : counters) parsed->held->counters.push_back(c.key);
      }
      break;
    case Decision::Kind::limited_requests: limited_requests_.inc(); break;
    case Decision::Kind::limited_tokens: limited_tokens_.inc(); break;
    case Decision::Kind::over_budget: {
      over_budget_.inc();
      const Counter& c = counters.at(static_cast<std::size_t>(parsed->over_budget - 1));
      const std::int64_t spent = parsed->over_budget == 1 ? parsed->spent_nano.first : parsed->spent_nano.second;
      parsed->exceeded = BudgetState{c.user, c.budget, money::from_nano(spent), c.window};
      parsed->retry_after_us = 1'000'000;
      break;
    }
    default: break;
  }
  co_return *parsed;
}

Decision Limiter::unchecked(const auth::KeyRecord& key, const redis::Result& result, std::int64_t owed,
                            const Limits& limits, bool budgeted) {
  // Kept only when Redis was certainly not asked: after a timeout it may have applied it already.
  if (owed != 0 && result.status == redis::Status::skipped) add_owed(key.limit_id(), owed, limits);
  if (result.status == redis::Status::ok)
    warn_throttled(result.reply.is_error() ? "Redis refused the script: " + result.reply.str
                                           : std::string("unexpected reply to the script"));
  // A budget is never served unchecked unless the operator chose so: overspending is not undoable.
  if (budgeted && !cfg_.budgets_fail_open) {
    budget_unavailable_.inc();
    return budget_refusal(Decision::Kind::budget_unavailable);
  }
  fail_open_.inc();
  Decision d;
  d.kind = Decision::Kind::fail_open;
  return d;
}

void Limiter::settle(const auth::KeyRecord& key, const Decision& admitted, std::int64_t actual_tokens,
                     std::optional<money::Pico> cost) {
  if (admitted.kind != Decision::Kind::allowed) return;
  if (admitted.tokens) {
    const std::int64_t delta = std::max<std::int64_t>(actual_tokens, 0) - admitted.tokens_charged;
    if (delta != 0) add_owed(key.limit_id(), delta, limits_for(key, cfg_));
  }
  if (!admitted.held) return;
  // An unknown cost leaves the hold spent: the only figure there is, and never an underestimate of it.
  const std::int64_t delta = cost ? money::nano_up(*cost) - admitted.held->nano : 0;
  if (delta == 0) return;
  for (const auto& counter : admitted.held->counters) add_spend(counter, delta);
}

}  // namespace lagoon::ratelimit
