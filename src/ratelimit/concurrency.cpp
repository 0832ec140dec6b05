#include "lagoon/ratelimit/concurrency.hpp"

#include <openssl/rand.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "lagoon/log/log.hpp"
#include "lagoon/util/hex_digest.hpp"

namespace lagoon::ratelimit {

namespace asio = boost::asio;

namespace {

// KEYS[1] the owner's slots; ARGV: max, lease ms, member. {1, open} when taken, {0, open} when full.
// Redis's clock scores the leases: instances' clocks may disagree, Redis's is the one they share.
constexpr const char* kAcquire = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local n = redis.call('ZCARD', KEYS[1])
if n >= tonumber(ARGV[1]) then return {0, n} end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, n + 1}
)lua";

// KEYS[1] the owner's slots; ARGV: lease ms, members. Only members still there are renewed (XX): a slot
// that lapsed (Redis lost it) is not put back over someone else's.
constexpr const char* kRenew = R"lua(
local t = redis.call('TIME')
local due = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', due, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
)lua";

struct Script {
  std::string text;
  std::string sha = util::hex_digest(text, EVP_sha1());
};
const Script& acquire_script() {
  static const Script s{kAcquire};
  return s;
}
const Script& renew_script() {
  static const Script s{kRenew};
  return s;
}

std::string random_instance() {
  unsigned char b[8];
  if (RAND_bytes(b, sizeof b) != 1) throw std::runtime_error("RAND_bytes failed");
  return util::hex(std::string_view(reinterpret_cast<const char*>(b), sizeof b));
}

}  // namespace

Slot::Slot(SlotSource* source, std::int64_t owner, std::string member, bool in_redis)
    : source_(source), alive_(source->alive_), owner_(owner), member_(std::move(member)), in_redis_(in_redis) {}

Slot& Slot::operator=(Slot&& o) noexcept {
  if (this != &o) {
    reset();
    source_ = std::exchange(o.source_, nullptr);
    alive_ = std::move(o.alive_);
    owner_ = o.owner_;
    member_ = std::move(o.member_);
    in_redis_ = o.in_redis_;
  }
  return *this;
}

void Slot::reset() noexcept {
  if (auto* s = std::exchange(source_, nullptr); s && *alive_) s->release(owner_, member_, in_redis_);
}

struct ConcurrencyLimiter::Timer {
  explicit Timer(asio::io_context& ioc) : timer(ioc) {}
  asio::steady_timer timer;
  std::atomic<bool> stopped{false};
};

ConcurrencyLimiter::ConcurrencyLimiter(asio::io_context& ioc, const config::Config& cfg, redis::Client& redis,
                                       metrics::Registry& metrics)
    : ioc_(ioc),
      cfg_(cfg),
      redis_(redis),
      instance_(random_instance()),
      timer_(std::make_unique<Timer>(ioc)),
      refused_(metrics.counter("lagoon_concurrency_refused_total",
                               "Requests refused because their key had max_concurrent requests open")),
      fallback_(metrics.counter("lagoon_concurrency_local_total",
                                "Concurrency slots taken in this process alone because Redis could not be asked "
                                "(the cap then holds per instance)")),
      held_(metrics.gauge("lagoon_concurrency_slots_held", "Concurrency slots this process holds now")) {}

ConcurrencyLimiter::~ConcurrencyLimiter() {
  *alive_ = false;
  shutdown();
}

std::string ConcurrencyLimiter::slots_key(std::string_view prefix, std::int64_t owner) {
  return std::string(prefix) + "conc:{" + std::to_string(owner) + "}";
}

void ConcurrencyLimiter::start() { asio::co_spawn(ioc_, renew_loop(), asio::detached); }

void ConcurrencyLimiter::shutdown() noexcept {
  timer_->stopped = true;
  timer_->timer.cancel();
}

asio::awaitable<Slot> ConcurrencyLimiter::acquire(std::int64_t owner, std::int64_t max) {
  {
    // This process alone already holds the cap: no need to ask Redis.
    std::lock_guard lock(mutex_);
    if (local_[owner] >= max) {
      refused_.inc();
      co_return Slot{};
    }
    ++local_[owner];  // reserved now, so concurrent acquires here cannot all pass the check above
  }
  std::string member = instance_ + ":" + std::to_string(next_.fetch_add(1, std::memory_order_relaxed));
  // A named vector: GCC 12 cannot keep a braced list's array across a co_await.
  const Script& script = acquire_script();
  std::vector<std::string> args{"EVALSHA", script.sha, "1", slots_key(cfg_.redis_prefix, owner),
                                std::to_string(max), std::to_string(cfg_.concurrency_lease.count()), member};
  const auto result = co_await redis_.evalsha(std::move(args), script.text);
  const auto& r = result.reply;
  const bool answered = result.answered() && r.type == redis::Reply::Type::array && !r.elements.empty();
  std::lock_guard lock(mutex_);
  if (answered && r.elements[0].integer != 1) {
    if (--local_[owner] == 0) local_.erase(owner);
    refused_.inc();
    co_return Slot{};
  }
  if (!answered) {
    fallback_.inc();
    warn_throttled();
  } else {
    leased_[owner].emplace(member, true);
  }
  held_.add(1);
  // A call that went out unanswered (a timeout) may still have added the member: its release removes it
  // there too, rather than leave a slot taken for a lease with nothing open.
  const bool maybe_in_redis = answered || result.status == redis::Status::timeout;
  co_return Slot{this, owner, std::move(member), maybe_in_redis};
}

void ConcurrencyLimiter::release(std::int64_t owner, const std::string& member, bool in_redis) noexcept {
  try {
    {
      std::lock_guard lock(mutex_);
      if (auto it = local_.find(owner); it != local_.end() && --it->second <= 0) local_.erase(it);
      {
        if (auto it = leased_.find(owner); it != leased_.end()) {
          it->second.erase(member);
          if (it->second.empty()) leased_.erase(it);
        }
      }
      held_.add(-1);
    }
    // Not awaited by the request: a release that does not reach Redis lapses with its lease. The
    // drain waits for these (settled()), so a restart does not leave slots taken for a lease.
    if (in_redis && !timer_->stopped) {
      pending_.fetch_add(1, std::memory_order_relaxed);
      asio::co_spawn(ioc_, remove(owner, member), asio::detached);
    }
  } catch (const std::exception& e) {
    log::warn("concurrency slot not released (it lapses with its lease)", {{"error", e.what()}});
  }
}

// `member` by value: the coroutine outlives the caller's string.
asio::awaitable<void> ConcurrencyLimiter::remove(std::int64_t owner, std::string member) {
  std::vector<std::string> args{"ZREM", slots_key(cfg_.redis_prefix, owner), std::move(member)};
  co_await redis_.command(std::move(args));
  pending_.fetch_sub(1, std::memory_order_relaxed);
}

asio::awaitable<void> ConcurrencyLimiter::settled(std::chrono::milliseconds at_most) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  const auto until = std::chrono::steady_clock::now() + at_most;
  while (pending_.load(std::memory_order_relaxed) > 0 && std::chrono::steady_clock::now() < until) {
    timer.expires_after(std::chrono::milliseconds(5));
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

asio::awaitable<void> ConcurrencyLimiter::renew_loop() {
  while (!timer_->stopped) {
    timer_->timer.expires_after(cfg_.concurrency_lease / 3);
    co_await timer_->timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (timer_->stopped) co_return;
    renew();
  }
}

// One call per key, all at once: a pass must not take longer than a lease however many keys are capped
// or however slowly Redis answers (each call has the Redis deadline).
void ConcurrencyLimiter::renew() {
  std::vector<std::vector<std::string>> calls;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [owner, members] : leased_) {
      std::vector<std::string> args{"EVALSHA", renew_script().sha, "1", slots_key(cfg_.redis_prefix, owner),
                                    std::to_string(cfg_.concurrency_lease.count())};
      for (const auto& [member, unused] : members) args.push_back(member);
      calls.push_back(std::move(args));
    }
  }
  for (auto& args : calls) asio::co_spawn(ioc_, renew_one(std::move(args)), asio::detached);
}

asio::awaitable<void> ConcurrencyLimiter::renew_one(std::vector<std::string> args) {
  const auto result = co_await redis_.evalsha(std::move(args), renew_script().text);
  if (!result.answered()) warn_throttled();
}

void ConcurrencyLimiter::warn_throttled() {
  const auto now_s =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
  auto last = last_warning_s_.load(std::memory_order_relaxed);
  if (now_s - last < 10 || !last_warning_s_.compare_exchange_strong(last, now_s)) return;
  log::warn("concurrency caps held per instance: Redis could not be asked", {});
}

}  // namespace lagoon::ratelimit
