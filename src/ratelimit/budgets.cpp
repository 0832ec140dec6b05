// The Limiter's budget half: which counters apply, seeding them from Postgres, the script call that
// carries them, settlements sent in batches, and a key's budgets as they stand.
#include <boost/asio/use_awaitable.hpp>

#include "lagoon/db/spend.hpp"
#include "lagoon/log/log.hpp"
#include "lagoon/ratelimit/limiter.hpp"

namespace lagoon::ratelimit {

namespace asio = boost::asio;
namespace chr = std::chrono;

namespace {
// Settlements per script call; every counter of one call must be on the one Redis the gateway uses.
constexpr std::size_t kSpendBatch = 32;

std::int64_t unix_seconds(money::SysTime t) { return chr::duration_cast<chr::seconds>(t.time_since_epoch()).count(); }
}  // namespace

std::vector<Limiter::Counter> Limiter::counters_for(const auth::KeyRecord& key) const {
  std::vector<Counter> out;
  if (!key.has_budget()) return out;
  const money::SysTime now = now_();
  const auto add = [&](bool user, std::int64_t owner, const money::Budget& b) {
    Counter c{user, owner, b, money::window(b.period, now), {}};
    c.key = money::counter_key(cfg_.redis_prefix, user, owner, c.window);
    out.push_back(std::move(c));
  };
  if (key.key_budget) add(false, key.limit_id(), *key.key_budget);
  if (key.user_budget) add(true, key.user_id, *key.user_budget);
  return out;
}

asio::awaitable<std::optional<std::vector<std::int64_t>>> Limiter::seeds(const std::vector<Counter>& counters) {
  // A burst on a key at a period's start (every connection's first request finds no counter) asks
  // Postgres once, not once per request: the pool is four connections.
  std::string flight;
  for (const auto& c : counters) flight += c.key + ' ';
  bool coalesced = false;
  co_return co_await seed_flights_.run(flight, [this, &counters] { return sum_from_postgres(counters); }, coalesced);
}

asio::awaitable<std::optional<std::vector<std::int64_t>>> Limiter::sum_from_postgres(
    const std::vector<Counter>& counters) {
  budget_seeds_.inc();
  std::vector<std::array<std::int64_t, 4>> asks;  // user?, owner, start, end (-1: none)
  for (const auto& c : counters)
    asks.push_back({c.user ? 1 : 0, c.owner, unix_seconds(c.window.start),
                    c.window.end ? unix_seconds(*c.window.end) : -1});
  // By reference: this frame waits for the call (a capture by value is freed twice by GCC 12's coroutines).
  auto summed = co_await db_.run("budget", [&asks](pqxx::connection& conn) {
    std::vector<std::int64_t> out;
    for (const auto& a : asks)
      out.push_back(money::nano_up(
          db::spent(conn, a[0] == 1, a[1], a[2], a[3] < 0 ? std::nullopt : std::optional<std::int64_t>(a[3]))));
    return out;
  });
  if (!summed) {
    log::warn("budget spend could not be summed from Postgres", {{"reason", summed.error().what()}});
    co_return std::nullopt;
  }
  co_return std::move(*summed);
}

asio::awaitable<redis::Result> Limiter::run_budget_script(const auth::KeyRecord& key, const Limits& limits,
                                                          std::int64_t cost, std::int64_t owed, std::int64_t hold,
                                                          const std::vector<Counter>& counters,
                                                          const std::vector<std::string>& seed_args) {
  auto [rk, tk] = redis_keys(cfg_.redis_prefix, key.limit_id());
  std::vector<std::string> args{"EVALSHA", script_sha1(), std::to_string(2 + counters.size()), std::move(rk),
                                std::move(tk)};
  for (const auto& c : counters) args.push_back(c.key);
  for (auto v : {limits.rpm, limits.tpm, cost}) args.push_back(std::to_string(v));
  args.emplace_back("admit");
  args.push_back(std::to_string(owed));
  args.push_back(std::to_string(hold));
  const money::SysTime now = now_();
  for (std::size_t i = 0; i < counters.size(); ++i) {
    args.push_back(std::to_string(money::nano_down(counters[i].budget.amount)));
    args.push_back(seed_args.empty() ? std::string() : seed_args[i]);
    args.push_back(std::to_string(money::counter_ttl_seconds(counters[i].window, now)));
  }
  co_return co_await redis_.evalsha(std::move(args), script());
}

Decision Limiter::budget_refusal(Decision::Kind kind) const {
  Decision d;
  d.kind = kind;
  d.retry_after_us = 1'000'000;
  return d;
}

void Limiter::add_spend(const std::string& counter, std::int64_t nano) {
  Shard& s = shards_[std::hash<std::string>{}(counter) % shards_.size()];
  std::lock_guard lock(s.mutex);
  s.spend[counter] += nano;
}

asio::awaitable<void> Limiter::flush_spend() {
  std::vector<std::pair<std::string, std::int64_t>> due;
  for (auto& s : shards_) {
    std::lock_guard lock(s.mutex);
    for (auto& entry : s.spend) due.push_back(entry);
    s.spend.clear();
  }
  for (std::size_t at = 0; at < due.size(); at += kSpendBatch) {
    const std::size_t n = std::min(kSpendBatch, due.size() - at);
    std::vector<std::string> args{"EVALSHA", script_sha1(), std::to_string(n)};
    for (std::size_t i = 0; i < n; ++i) args.push_back(due[at + i].first);
    for (const char* v : {"0", "0", "0", "spend", "0"}) args.emplace_back(v);
    for (std::size_t i = 0; i < n; ++i) args.push_back(std::to_string(due[at + i].second));
    const auto result = co_await redis_.evalsha(std::move(args), script());
    // As for token corrections: kept only when Redis was certainly not asked (a timeout may have applied it).
    if (result.status == redis::Status::skipped)
      for (std::size_t i = 0; i < n; ++i) add_spend(due[at + i].first, due[at + i].second);
  }
}

asio::awaitable<std::optional<std::vector<BudgetState>>> Limiter::budgets(const auth::KeyRecord& key) {
  const auto counters = counters_for(key);
  std::vector<BudgetState> out;
  if (counters.empty()) co_return out;
  std::vector<std::string> args{"MGET"};
  for (const auto& c : counters) args.push_back(c.key);
  const auto result = co_await redis_.command(args);
  if (!result.answered() || result.reply.type != redis::Reply::Type::array ||
      result.reply.elements.size() != counters.size())
    co_return std::nullopt;
  std::optional<std::vector<std::int64_t>> summed;
  for (std::size_t i = 0; i < counters.size(); ++i) {
    const auto& e = result.reply.elements[i];
    std::int64_t nano = 0;
    if (e.type == redis::Reply::Type::string) {
      nano = std::strtoll(e.str.c_str(), nullptr, 10);
    } else {
      // Not used in this period yet (or lost): what Postgres says, without seeding — admission does that.
      if (!summed) summed = co_await seeds(counters);
      if (!summed) co_return std::nullopt;
      nano = (*summed)[i];
    }
    out.push_back(BudgetState{counters[i].user, counters[i].budget, money::from_nano(nano), counters[i].window});
  }
  co_return out;
}

}  // namespace lagoon::ratelimit
