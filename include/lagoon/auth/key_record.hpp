// KeyRecord: what authentication knows about one API key (joined with its user), and its form in the
// Redis cache. Pure value code; thread-compatible.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "lagoon/auth/policy.hpp"
#include "lagoon/keys/api_key.hpp"
#include "lagoon/money/budget.hpp"

namespace lagoon::auth {

// The largest limits a key may carry: rpm_limit is a Postgres integer; above 1e9 tokens per minute a
// token is worth less than the rate limiter's time resolution. The CLI, the admin API and the
// accounts code all refuse more.
inline constexpr std::int64_t kMaxRpmLimit = 2'147'483'647;
inline constexpr std::int64_t kMaxTpmLimit = 1'000'000'000;

struct KeyRecord {
  keys::Digest digest{};
  std::int64_t key_id = 0;
  std::int64_t user_id = 0;
  std::string prefix;
  std::optional<std::string> name;
  bool key_active = false;
  bool user_active = false;
  std::optional<std::int64_t> rpm_limit;  // nullopt = configured default, 0 = unlimited
  std::optional<std::int64_t> tpm_limit;
  std::optional<money::Budget> key_budget;   // the key's own
  std::optional<money::Budget> user_budget;  // its user's, shared by all the user's keys
  KeyPolicy policy;              // merged with the user's defaults
  std::int64_t lineage_id = 0;   // the first key of its rotation chain (itself when never rotated)

  // What the key's rate limits, concurrency slots and own budget are counted under: the keys of one
  // rotation chain share them, so rotating a key neither resets nor doubles them.
  std::int64_t limit_id() const noexcept { return lineage_id != 0 ? lineage_id : key_id; }

  bool has_budget() const noexcept { return key_budget || user_budget; }
  bool usable() const noexcept { return key_active && user_active; }
  bool operator==(const KeyRecord&) const = default;
};

// What a cache holds for a digest: a record, or the fact that no key has it.
struct CacheEntry {
  bool unknown = false;
  KeyRecord record;  // meaningful when !unknown
};

// Redis key of a digest's entry: prefix ("lagoon:" by default, LAGOON_REDIS_PREFIX) + "key:" + hex digest.
std::string cache_key(std::string_view prefix, const keys::Digest& digest);

// Channel on which digests (hex) whose cached entries must be dropped are published.
std::string invalidation_channel(std::string_view prefix);

std::string to_cache_json(const CacheEntry& entry, const keys::Digest& digest);

// Parses a cached entry and checks, in constant time, that it belongs to `expected`. nullopt when the
// text is not a current-version entry or belongs to another digest (then the cache is not trusted).
std::optional<CacheEntry> from_cache_json(std::string_view text, const keys::Digest& expected);

}  // namespace lagoon::auth
