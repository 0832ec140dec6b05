// Listings for the operator console and the admin API: users and keys found by a filter, a page at a
// time, each with what a table shows beside the record — a user's active keys, a key's user and status,
// and the money each spent today and this month (UTC). The spend comes from usage_records through the
// (user or key, started_at) indexes, for the page's rows only, so a page costs the same however many
// users or keys there are.
// Blocking; call from the CLI or a blocking pool thread. Not thread-safe on one connection.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <pqxx/connection>

#include "lagoon/db/accounts.hpp"

namespace lagoon::db {

inline constexpr std::int64_t kDefaultPageSize = 100;
inline constexpr std::int64_t kMaxPageSize = 1000;

struct Spend {
  std::string today_usd = "0";  // exact decimals, as the usage reports give them
  std::string month_usd = "0";
};

struct UserFilter {
  std::optional<std::string> text;  // a piece of the name (any case), or the id
  std::optional<bool> active;
  std::int64_t limit = kDefaultPageSize;
  std::int64_t offset = 0;
};

struct UserListing {
  User user;
  std::int64_t keys_active = 0;  // keys that would authenticate now: neither revoked nor expired, of an active user
  Spend spend;
};

// Newest first.
std::vector<UserListing> list_users(pqxx::connection& conn, const UserFilter& filter);

// A key as a request would find it now: revoked (or rotated past its grace), expired (its own or its
// user's expiry passed), its user deactivated, or active.
enum class KeyStatus { active, revoked, expired, user_inactive };
std::string_view key_status_name(KeyStatus s) noexcept;
std::optional<KeyStatus> key_status_from(std::string_view name) noexcept;

struct KeyFilter {
  std::optional<std::string> user_ref;  // id or name; throws not_found for an unknown one
  std::optional<std::string> text;      // a piece of the name or the display prefix (any case), or the id
  std::optional<KeyStatus> status;
  std::map<std::string, std::string> tags;  // every one held (tags @> …)
  std::int64_t limit = kDefaultPageSize;
  std::int64_t offset = 0;
};

struct KeyListing {
  KeyInfo key;
  std::string user_name;
  KeyStatus status = KeyStatus::active;
  Spend spend;
};

// Newest first.
std::vector<KeyListing> find_keys(pqxx::connection& conn, const KeyFilter& filter);

}  // namespace lagoon::db
