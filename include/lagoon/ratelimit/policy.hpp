// Rate-limit policy: which limits apply to a key, what a request is charged, how the Redis script's
// answer reads, and how it is shown to clients (OpenAI's x-ratelimit-* headers).
//
// The limiter is GCRA (generic cell rate algorithm) per key and per dimension: Redis keeps one
// "theoretical arrival time" (TAT) for requests and one for tokens. A limit of N per minute lets a full
// minute's worth (N) through at once and then one every 60/N seconds — the same as a sliding window,
// without clock-aligned boundaries that would let 2N through around a minute's edge. Time is Redis's
// own clock (TIME inside the script), so instances whose clocks differ still share one limit.
// Pure; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lagoon/auth/key_record.hpp"
#include "lagoon/config/config.hpp"
#include "lagoon/money/budget.hpp"
#include "lagoon/redis/reply.hpp"

namespace lagoon::ratelimit {

// Limits in force for one key; 0 = that dimension is not limited.
struct Limits {
  std::int64_t rpm = 0;
  std::int64_t tpm = 0;
  bool any() const noexcept { return rpm > 0 || tpm > 0; }
  bool operator==(const Limits&) const = default;
};

// The key's own limits, or the configured defaults where the key has none (NULL).
Limits limits_for(const auth::KeyRecord& key, const config::Config& cfg);

// Keys and defaults are capped at what a key may carry (see auth/key_record.hpp).
inline constexpr std::int64_t kMaxTpm = auth::kMaxTpmLimit;
inline constexpr std::int64_t kMaxRpm = auth::kMaxRpmLimit;

// Tokens a chat request is admitted against before its real usage is known: its body's bytes / 4 (the
// caller passes the whole body: tools and images cost tokens too) plus the completion tokens it allows
// (the larger of max_tokens and max_completion_tokens, else the configured default).
std::int64_t estimate_tokens(std::size_t prompt_bytes, std::optional<std::int64_t> max_tokens,
                             std::uint64_t default_max_tokens);

// What is charged against the token limit at admission: the estimate, but never more than the whole
// limit — a request whose estimate exceeds a minute's budget waits for an untouched budget instead of
// being refused for ever; its real usage is charged when it ends.
std::int64_t admission_cost(std::int64_t estimate, const Limits& limits);

// One budget as it stands: whose, its amount and period, what was spent (settled and held) in the
// period it is in.
struct BudgetState {
  bool user = false;
  money::Budget budget;
  money::Pico spent = 0;
  money::Window window;
};

// One dimension's state after the decision, for the x-ratelimit-* headers.
struct Window {
  std::int64_t limit = 0;
  std::int64_t remaining = 0;
  std::int64_t reset_us = 0;  // until the budget is whole again
};

struct Decision {
  enum class Kind {
    unlimited,         // the key has no limits: Redis was not asked
    allowed,
    limited_requests,  // refused: requests per minute
    limited_tokens,    // refused: tokens per minute
    fail_open,         // Redis could not be asked in time: allowed unchecked
    over_budget,       // refused: a budget has less left than the request may cost (402)
    unpriced,          // refused: no price applies, and the key or its user has a budget (402)
    budget_unavailable,  // refused: a budget applies and Redis could not be asked (503)
  };
  Kind kind = Kind::unlimited;
  std::optional<Window> requests;  // set when known and that dimension is limited
  std::optional<Window> tokens;
  std::int64_t retry_after_us = 0;  // when refused
  std::int64_t tokens_requested = 0;  // the admission cost asked for
  std::int64_t tokens_charged = 0;    // charged against the token limit at admission (0 unless allowed)

  // Budgets (none unless the key or its user has one). The counters are the key's budget's, then the
  // user's, as far as each applies (budget_counters() below).
  struct Held {
    std::int64_t nano = 0;  // held at admission, to settle to the real cost
    std::vector<std::string> counters;
  };
  std::optional<Held> held;       // set when allowed with a budget
  int over_budget = 0;            // 1-based index of the counter that refused; 0: none
  std::pair<std::int64_t, std::int64_t> spent_nano{-1, -1};  // each counter after the decision; -1: none
  std::int64_t asked_nano = 0;    // the hold asked for
  std::optional<BudgetState> exceeded;  // over_budget: the budget that refused, as it stood

  bool refused() const noexcept {
    return kind == Kind::limited_requests || kind == Kind::limited_tokens || kind == Kind::over_budget ||
           kind == Kind::unpriced || kind == Kind::budget_unavailable;
  }
};

// The script's {-2, i …} answer: which budget counters (1-based) must be rebuilt; nullopt for any other.
std::optional<std::vector<int>> missing_counters(const redis::Reply& reply);

// The Lua script (and its SHA-1 for EVALSHA). Arguments: KEYS = {requests TAT key, tokens TAT key},
// ARGV = {rpm, tpm, tokens, "admit"|"charge", correction}. "admit" first applies `correction` (tokens
// owed, or to give back, by earlier requests whose real usage differed from their estimates), then
// checks both limits and consumes from both only if both allow; "charge" only adds `tokens`
// (negative: gives back) to the token TAT.
const std::string& script();
const std::string& script_sha1();

// Redis keys of a key's two TATs. Both share a hash tag so a Redis Cluster keeps them in one slot.
std::pair<std::string, std::string> redis_keys(std::string_view prefix, std::int64_t key_id);

// The script's reply to "admit" as a Decision; nullopt when it is not the expected shape.
std::optional<Decision> parse_admit_reply(const redis::Reply& reply, const Limits& limits, std::int64_t cost);

// Durations as OpenAI writes them in x-ratelimit-reset-*: Go's time.Duration format ("20ms", "8.64s",
// "6m0s"), rounded up to the millisecond.
std::string format_reset(std::int64_t microseconds);

// Retry-After in whole seconds, at least 1.
std::string retry_after_seconds(std::int64_t microseconds);

// The x-ratelimit-* headers for a decision: limit, remaining and reset for each limited dimension
// whose state is known (none for unlimited keys or when Redis could not be asked).
std::vector<std::pair<std::string, std::string>> headers(const Decision& d);

// The 429 message, worded like OpenAI's.
std::string refusal_message(const Decision& d);

}  // namespace lagoon::ratelimit
