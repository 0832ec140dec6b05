// Key policy: what a key may do beyond authenticating — which models (globs over base names) and which
// route groups it may use, when it stops working, and how many requests it may have open at once. The
// values travel in the cached KeyRecord (already merged with its user's defaults by the auth query), so
// checking them costs no round trip. Also the one reading of each policy field as the CLI and the admin
// API take it, so both refuse the same things with the same words.
// Pure; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace lagoon::auth {

// Route groups a key may be limited to, one bit each (usage_records.endpoint names them the same way).
enum class Group : std::uint8_t { chat = 1, embeddings = 2, images = 4, audio = 8, responses = 16 };
inline constexpr std::uint8_t kAllGroups = 31;
inline constexpr std::string_view kGroupNames[] = {"chat", "embeddings", "images", "audio", "responses"};
std::optional<Group> group_from(std::string_view name) noexcept;
std::string_view group_name(Group g) noexcept;

// Limits on what the CLI and the admin API accept.
inline constexpr std::size_t kMaxModelGlobs = 256;
inline constexpr std::size_t kMaxGlobLength = 200;
inline constexpr std::int64_t kMaxConcurrent = 1'000'000;
inline constexpr std::size_t kMaxTagsBytes = 4096;

struct KeyPolicy {
  std::vector<std::string> models;  // globs; empty: every model
  std::uint8_t groups = kAllGroups;  // Group bits the key may use
  std::int64_t max_concurrent = 0;   // 0: unlimited
  std::optional<std::int64_t> expires_at_us;  // Unix µs; at and after it the key is expired
  std::optional<std::int64_t> revokes_at_us;  // a rotated key's end of grace (Unix µs)

  bool allows(Group g) const noexcept { return (groups & static_cast<std::uint8_t>(g)) != 0; }
  // `model` as a request names it; its base (before ':') is matched, ignoring ASCII case.
  bool allows_model(std::string_view model) const noexcept;
  bool expired(std::int64_t now_us) const noexcept { return expires_at_us && now_us >= *expires_at_us; }
  bool revoked(std::int64_t now_us) const noexcept { return revokes_at_us && now_us >= *revokes_at_us; }
  bool operator==(const KeyPolicy&) const = default;
};

// `*` matches any run of characters (none included); everything else itself, ignoring ASCII case.
bool glob_match(std::string_view pattern, std::string_view text) noexcept;

// Why a policy value cannot be taken (the message names the fault); empty optional when it can.
struct PolicyError {
  std::string message;
};

// "llama-*,venice-uncensored" → its items (commas; blanks around items and empty items ignored).
std::vector<std::string> split_list(std::string_view text);
// A model list: each item 1..200 characters of letters, digits and - _ . / * @; at most 256 items;
// duplicates dropped, order kept.
std::optional<PolicyError> check_models(std::vector<std::string>& globs);
// Endpoint names (kGroupNames) → their bits; an unknown name is an error.
std::optional<PolicyError> parse_groups(const std::vector<std::string>& names, std::uint8_t& bits);
std::vector<std::string> group_names(std::uint8_t bits);
// Tags: a JSON object of at most kMaxTagsBytes serialized.
std::optional<PolicyError> check_tags(const nlohmann::json& tags);

// RFC 3339 ("2027-01-01T00:00:00Z", offsets and fractions allowed) → Unix µs.
std::optional<std::int64_t> parse_rfc3339_us(std::string_view text);
std::string format_rfc3339_us(std::int64_t unix_us);
// "90s", "15m", "24h", "7d", "1h30m" → seconds; nullopt when unreadable or over a year.
std::optional<std::int64_t> parse_duration_s(std::string_view text);

}  // namespace lagoon::auth
