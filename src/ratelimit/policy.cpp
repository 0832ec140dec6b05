#include "lagoon/ratelimit/policy.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <openssl/evp.h>

#include "lagoon/keys/api_key.hpp"
#include "lagoon/util/hex_digest.hpp"

namespace lagoon::ratelimit {
namespace {

// TATs are microseconds on Redis's clock, counted from 2026-01-01 so that they stay near 1e14 where a
// double resolves 1/64 µs (from the Unix epoch, ~1.8e15, it would resolve only 1/4 µs), and are stored
// with all their digits. A request may pass when its new TAT is at most one period ahead, with a
// tolerance of 1/1000 of an interval (at least 1 µs) so that the rounding of 60 s / N, accumulated over
// a burst, cannot refuse the N-th of N. The result array is
// {allowed, requests remaining, requests reset µs, tokens remaining, tokens reset µs, retry after µs};
// -1 marks a dimension that is not limited. With budget counters (KEYS[3], KEYS[4]; ARGV[6] the hold
// in nano-dollars, then per counter its limit, a seed or '', and a TTL in seconds or 0) three more
// follow: {which budget refused (0: none), spent on the first counter, on the second or -1} — or the
// whole answer is {-2, index of each missing counter …}.
constexpr const char* kScript = R"lua(
local period = 60000000
local t = redis.call('TIME')
local now = (tonumber(t[1]) - 1767225600) * 1000000 + tonumber(t[2])
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
local tokens = tonumber(ARGV[3])
local budgets = #KEYS - 2

local function tat_of(key)
  local v = tonumber(redis.call('GET', key))
  if v == nil or v < now then return now end
  return v
end

local function store(key, tat)
  if tat <= now then
    redis.call('DEL', key)
  else
    redis.call('SET', key, string.format('%.17g', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
  end
end

local function remaining(tat, interval)
  return math.max(0, math.floor((period - (tat - now)) / interval + 1e-3))
end

if ARGV[4] == 'spend' then
  -- Settlements: each counter moves by its delta; one that is gone is rebuilt from Postgres, which has
  -- the real costs, so nothing is added to a counter that does not exist.
  for i = 1, #KEYS do
    if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('INCRBY', KEYS[i], ARGV[5 + i]) end
  end
  return 1
end

if ARGV[4] == 'charge' then
  if tpm > 0 and tokens ~= 0 then
    store(KEYS[2], tat_of(KEYS[2]) + tokens * (period / tpm))
  end
  return 1
end

-- Budget counters first: one never used in this period, or lost with Redis's data, is answered with
-- {-2, which …} before anything changes; the caller sums it from Postgres and asks again with a seed.
local spent = {}
local missing = {-2}
for i = 1, budgets do
  local base = 6 + 3 * (i - 1)
  local v = redis.call('GET', KEYS[2 + i])
  if not v then
    local seed = ARGV[base + 2]
    if seed == '' then
      missing[#missing + 1] = i
    else
      local ttl = tonumber(ARGV[base + 3])
      if ttl > 0 then redis.call('SET', KEYS[2 + i], seed, 'EX', ttl) else redis.call('SET', KEYS[2 + i], seed) end
      v = seed
    end
  end
  spent[i] = tonumber(v)
end
if #missing > 1 then return missing end

local allowed = 1
local retry = 0
local correction = tonumber(ARGV[5] or '0')
local r_int, r_tat, r_new, t_int, t_tat, t_new
if rpm > 0 then
  r_int = period / rpm
  r_tat = tat_of(KEYS[1])
  r_new = r_tat + r_int
  local wait = r_new - period - now
  if wait > math.max(1, r_int / 1000) then allowed = 0; retry = math.max(retry, wait) end
end
if tpm > 0 then
  t_int = period / tpm
  t_tat = tat_of(KEYS[2])
  -- Earlier requests' real usage in place of their estimates, applied whatever this one's fate.
  if correction ~= 0 then t_tat = math.max(now, t_tat + correction * t_int) end
  t_new = t_tat + tokens * t_int
  local wait = t_new - period - now
  if wait > math.max(1, t_int / 1000) then allowed = 0; retry = math.max(retry, wait) end
end

-- A request within its rate limits must also fit, whole, in what every budget has left.
local over = 0
if allowed == 1 then
  local hold = tonumber(ARGV[6])
  for i = 1, budgets do
    if spent[i] + hold > tonumber(ARGV[6 + 3 * (i - 1) + 1]) then allowed = 0; over = i; break end
  end
  if allowed == 1 then
    for i = 1, budgets do
      if hold > 0 then spent[i] = redis.call('INCRBY', KEYS[2 + i], hold) end
    end
  end
end

local out = {allowed, -1, 0, -1, 0, math.ceil(retry)}
if rpm > 0 then
  local tat = r_tat
  if allowed == 1 then tat = r_new; store(KEYS[1], r_new) end
  out[2] = remaining(tat, r_int)
  out[3] = math.ceil(tat - now)
end
if tpm > 0 then
  local tat = t_tat
  if allowed == 1 then tat = t_new; store(KEYS[2], t_new) elseif correction ~= 0 then store(KEYS[2], t_tat) end
  out[4] = remaining(tat, t_int)
  out[5] = math.ceil(tat - now)
end
if budgets > 0 then
  out[7] = over
  out[8] = spent[1]
  out[9] = spent[2] or -1
end
return out
)lua";


}  // namespace

Limits limits_for(const auth::KeyRecord& key, const config::Config& cfg) {
  Limits l;
  l.rpm = key.rpm_limit ? *key.rpm_limit : static_cast<std::int64_t>(cfg.rate_limit_rpm);
  l.tpm = key.tpm_limit ? *key.tpm_limit : static_cast<std::int64_t>(cfg.rate_limit_tpm);
  // A value written into the table by hand may be out of range: hold it to what the script handles.
  l.rpm = std::clamp<std::int64_t>(l.rpm, 0, kMaxRpm);
  l.tpm = std::clamp<std::int64_t>(l.tpm, 0, kMaxTpm);
  return l;
}

std::int64_t estimate_tokens(std::size_t prompt_bytes, std::optional<std::int64_t> max_tokens,
                             std::uint64_t default_max_tokens) {
  const auto prompt = static_cast<std::int64_t>((prompt_bytes + 3) / 4);
  const std::int64_t completion =
      max_tokens && *max_tokens >= 0 ? *max_tokens : static_cast<std::int64_t>(default_max_tokens);
  // A client may send max_tokens near INT64_MAX; the sum must not wrap.
  return completion > INT64_MAX - prompt ? INT64_MAX : prompt + completion;
}

std::int64_t admission_cost(std::int64_t estimate, const Limits& limits) {
  if (limits.tpm <= 0) return 0;
  return std::clamp<std::int64_t>(estimate, 1, limits.tpm);
}

const std::string& script() {
  static const std::string s = kScript;
  return s;
}

const std::string& script_sha1() {
  static const std::string s = util::hex_digest(script(), EVP_sha1());
  return s;
}

std::pair<std::string, std::string> redis_keys(std::string_view prefix, std::int64_t key_id) {
  std::string base = std::string(prefix) + "rl:{" + std::to_string(key_id) + "}:";
  return {base + "rpm", base + "tpm"};
}

std::optional<Decision> parse_admit_reply(const redis::Reply& reply, const Limits& limits, std::int64_t cost) {
  if (reply.type != redis::Reply::Type::array || (reply.elements.size() != 6 && reply.elements.size() != 9))
    return std::nullopt;
  for (const auto& e : reply.elements)
    if (e.type != redis::Reply::Type::integer) return std::nullopt;
  auto at = [&](std::size_t i) { return reply.elements[i].integer; };
  Decision d;
  d.tokens_requested = cost;
  if (limits.rpm > 0 && at(1) >= 0) d.requests = Window{limits.rpm, at(1), std::max<long long>(at(2), 0)};
  if (limits.tpm > 0 && at(3) >= 0) d.tokens = Window{limits.tpm, at(3), std::max<long long>(at(4), 0)};
  if (reply.elements.size() == 9) {
    d.over_budget = static_cast<int>(at(6));
    d.spent_nano = {at(7), at(8)};
  }
  if (at(0) == 1) {
    d.kind = Decision::Kind::allowed;
    d.tokens_charged = cost;
    return d;
  }
  if (d.over_budget > 0) {
    d.kind = Decision::Kind::over_budget;
    return d;
  }
  d.retry_after_us = std::max<long long>(at(5), 1);
  // The requests limit is named when it alone would have refused; else the tokens limit did.
  const bool requests_short = d.requests && d.requests->remaining < 1;
  d.kind = requests_short ? Decision::Kind::limited_requests : Decision::Kind::limited_tokens;
  return d;
}

std::string format_reset(std::int64_t us) {
  if (us <= 0) return "0s";
  const std::int64_t ms = (us + 999) / 1000;
  if (ms < 1000) return std::to_string(ms) + "ms";
  std::string out;
  const std::int64_t hours = ms / 3'600'000;
  const std::int64_t minutes = ms / 60'000 % 60;
  const std::int64_t sec_ms = ms % 60'000;
  if (hours > 0) out += std::to_string(hours) + "h";
  if (hours > 0 || minutes > 0) out += std::to_string(minutes) + "m";
  out += std::to_string(sec_ms / 1000);
  if (std::int64_t frac = sec_ms % 1000; frac != 0) {
    char buf[8];
    std::snprintf(buf, sizeof buf, ".%03lld", static_cast<long long>(frac));
    std::string f = buf;
    while (f.back() == '0') f.pop_back();
    out += f;
  }
  return out + "s";
}

std::string retry_after_seconds(std::int64_t us) {
  return std::to_string(std::max<std::int64_t>(1, (us + 999'999) / 1'000'000));
}

std::vector<std::pair<std::string, std::string>> headers(const Decision& d) {
  std::vector<std::pair<std::string, std::string>> out;
  if (d.requests) {
    out.emplace_back("x-ratelimit-limit-requests", std::to_string(d.requests->limit));
    out.emplace_back("x-ratelimit-remaining-requests", std::to_string(d.requests->remaining));
    out.emplace_back("x-ratelimit-reset-requests", format_reset(d.requests->reset_us));
  }
  if (d.tokens) {
    out.emplace_back("x-ratelimit-limit-tokens", std::to_string(d.tokens->limit));
    out.emplace_back("x-ratelimit-remaining-tokens", std::to_string(d.tokens->remaining));
    out.emplace_back("x-ratelimit-reset-tokens", format_reset(d.tokens->reset_us));
  }
  return out;
}

std::optional<std::vector<int>> missing_counters(const redis::Reply& reply) {
  if (reply.type != redis::Reply::Type::array || reply.elements.size() < 2) return std::nullopt;
  std::vector<int> out;
  for (std::size_t i = 0; i < reply.elements.size(); ++i) {
    const auto& e = reply.elements[i];
    if (e.type != redis::Reply::Type::integer) return std::nullopt;
    if (i == 0 && e.integer != -2) return std::nullopt;
    if (i > 0) out.push_back(static_cast<int>(e.integer));
  }
  return out;
}

std::string refusal_message(const Decision& d) {
  const std::string wait = format_reset(d.retry_after_us);
  if (d.kind == Decision::Kind::limited_requests && d.requests)
    return "Rate limit reached for this API key on requests per min (RPM): Limit " + std::to_string(d.requests->limit) +
           ", Remaining " + std::to_string(d.requests->remaining) + ". Please try again in " + wait + ".";
  if (d.tokens)
    return "Rate limit reached for this API key on tokens per min (TPM): Limit " + std::to_string(d.tokens->limit) +
           ", Remaining " + std::to_string(d.tokens->remaining) + ", Requested " + std::to_string(d.tokens_requested) +
           ". Please try again in " + wait + ".";
  return "Rate limit reached for this API key. Please try again in " + wait + ".";
}

}  // namespace lagoon::ratelimit
