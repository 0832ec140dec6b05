#include "lagoon/ratelimit/limiter.hpp"

#include <chrono>

#include "lagoon/log/log.hpp"

namespace lagoon::ratelimit {

namespace {
metrics::Counter& decisions(metrics::Registry& m, const char* decision) {
  return m.counter("lagoon_ratelimit_decisions_total",
                   "Rate-limit decisions for keys with limits: allowed, refused (by which limit), or allowed "
                   "unchecked because Redis could not be asked",
                   {{"decision", decision}});
}
}  // namespace

Limiter::Limiter(const config::Config& cfg, redis::Client& redis, metrics::Registry& metrics)
    : cfg_(cfg),
      redis_(redis),
      allowed_(decisions(metrics, "allowed")),
      limited_requests_(decisions(metrics, "limited_requests")),
      limited_tokens_(decisions(metrics, "limited_tokens")),
      fail_open_(decisions(metrics, "fail_open")) {}

boost::asio::awaitable<redis::Result> Limiter::run_script(std::vector<std::string> args) {
  // args = {"EVALSHA", sha, "2", k1, k2, argv...}
  auto result = co_await redis_.command(args);
  if (result.status == redis::Status::ok && result.reply.is_error() && result.reply.str.rfind("NOSCRIPT", 0) == 0) {
    // Redis restarted or its script cache was flushed: send the script itself once; it is cached again.
    args[0] = "EVAL";
    args[1] = script();
    result = co_await redis_.command(std::move(args));
  }
  co_return result;
}

void Limiter::warn_throttled(const std::string& what) {
  const auto now_s =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
  auto last = last_warning_s_.load(std::memory_order_relaxed);
  if (now_s - last < 10 || !last_warning_s_.compare_exchange_strong(last, now_s)) return;
  log::warn("rate limits not checked: allowing requests", {{"reason", what}});
}

boost::asio::awaitable<Decision> Limiter::admit(const auth::KeyRecord& key, std::int64_t estimate) {
  const Limits limits = limits_for(key, cfg_);
  Decision d;
  if (!limits.any()) co_return d;
  const std::int64_t cost = admission_cost(estimate, limits);
  auto [rk, tk] = redis_keys(cfg_.redis_prefix, key.key_id);
  std::vector<std::string> args{"EVALSHA", script_sha1(), "2", std::move(rk), std::move(tk),
                                std::to_string(limits.rpm), std::to_string(limits.tpm), std::to_string(cost), "admit"};
  const auto result = co_await run_script(std::move(args));
  std::optional<Decision> parsed;
  if (result.answered()) parsed = parse_admit_reply(result.reply, limits, cost);
  if (!parsed) {
    fail_open_.inc();
    d.kind = Decision::Kind::fail_open;
    if (result.status == redis::Status::ok)
      warn_throttled(result.reply.is_error() ? "Redis refused the script: " + result.reply.str
                                             : std::string("unexpected reply to the script"));
    co_return d;
  }
  switch (parsed->kind) {
    case Decision::Kind::allowed: allowed_.inc(); break;
    case Decision::Kind::limited_requests: limited_requests_.inc(); break;
    case Decision::Kind::limited_tokens: limited_tokens_.inc(); break;
    default: break;
  }
  co_return *parsed;
}

boost::asio::awaitable<void> Limiter::settle(const auth::KeyRecord& key, const Decision& admitted,
                                             std::int64_t actual_tokens) {
  if (admitted.kind != Decision::Kind::allowed || !admitted.tokens) co_return;
  const std::int64_t delta = std::max<std::int64_t>(actual_tokens, 0) - admitted.tokens_charged;
  if (delta == 0) co_return;
  const Limits limits = limits_for(key, cfg_);
  if (limits.tpm <= 0) co_return;
  auto [rk, tk] = redis_keys(cfg_.redis_prefix, key.key_id);
  // Best effort: a correction that cannot be made leaves the estimate charged, which errs towards
  // the limit rather than past it.
  // A named vector, not a braced list in the co_await: GCC 12 mishandles initializer_lists across it.
  std::vector<std::string> args{"EVALSHA", script_sha1(), "2", std::move(rk), std::move(tk),
                                std::to_string(limits.rpm), std::to_string(limits.tpm), std::to_string(delta), "charge"};
  co_await run_script(std::move(args));
}

}  // namespace lagoon::ratelimit
