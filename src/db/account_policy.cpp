// The policy readers of db/accounts.hpp: auth::policy's checks, with the refusal as an AccountsError
// naming the param, and an empty list read as "unset" (the table never holds an empty one).
#include <pqxx/pqxx>

#include "account_rows.hpp"
#include "lagoon/auth/policy.hpp"

namespace lagoon::db {
namespace {

// RFC 3339 writes years 0001..9999; Postgres reads anything in between exactly.
constexpr std::int64_t kFirstExpiryUs = -62'135'596'800'000'000;  // 0001-01-01T00:00:00Z
constexpr std::int64_t kLastExpiryUs = 253'402'300'799'999'999;   // 9999-12-31T23:59:59.999999Z

[[noreturn]] void refuse(const std::string& param, const std::string& message) {
  throw AccountsError(AccountsError::Kind::invalid, message, param);
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ",") + i;
  return out;
}

}  // namespace

PolicyOptions options_from(const PolicyChanges& c) {
  return PolicyOptions{c.allowed_models.value_or(std::nullopt), c.allowed_endpoints.value_or(std::nullopt),
                       c.expires_at_us.value_or(std::nullopt), c.max_concurrent.value_or(std::nullopt)};
}

std::optional<std::vector<std::string>> model_list(std::vector<std::string> globs) {
  if (auto e = auth::check_models(globs)) refuse("models", e->message);
  if (globs.empty()) return std::nullopt;
  return globs;
}

std::optional<std::vector<std::string>> endpoint_list(const std::vector<std::string>& names) {
  std::uint8_t bits = 0;
  if (auto e = auth::parse_groups(names, bits)) refuse("endpoints", e->message);
  if (bits == 0) return std::nullopt;
  return auth::group_names(bits);
}

void check_expiry(std::optional<std::int64_t> us) {
  if (us && (*us < kFirstExpiryUs || *us > kLastExpiryUs))
    refuse("expires_at", "expires_at must lie between the years 0001 and 9999");
}

void check_max_concurrent(std::optional<std::int64_t> n) {
  if (n && (*n < 0 || *n > auth::kMaxConcurrent))
    refuse("max_concurrent", "max_concurrent must be an integer 0.." + std::to_string(auth::kMaxConcurrent) + " (0 = unlimited)");
}

void check_tags(const nlohmann::json& tags) {
  if (auto e = auth::check_tags(tags)) refuse("tags", e->message);
}

std::optional<std::int64_t> grace_seconds(std::string_view text) {
  const auto s = auth::parse_duration_s(text);  // refuses "1h0": a typo must not revoke a key at once
  if (!s || *s > kMaxGraceSeconds) return std::nullopt;
  return s;
}

namespace rows {

PolicyParams policy_params(const PolicyOptions& o) {
  PolicyParams p;
  if (o.allowed_models)
    if (auto m = model_list(*o.allowed_models)) p.models = joined(*m);
  if (o.allowed_endpoints)
    if (auto e = endpoint_list(*o.allowed_endpoints)) p.endpoints = joined(*e);
  check_expiry(o.expires_at_us);
  if (o.expires_at_us) p.expires_at = auth::format_rfc3339_us(*o.expires_at_us);
  check_max_concurrent(o.max_concurrent);
  p.max_concurrent = o.max_concurrent;
  return p;
}

PolicyChangeParams policy_change_params(const PolicyChanges& c) {
  PolicyChangeParams p;
  p.set_models = c.allowed_models.has_value();
  p.set_endpoints = c.allowed_endpoints.has_value();
  p.set_expires_at = c.expires_at_us.has_value();
  p.set_max_concurrent = c.max_concurrent.has_value();
  p.values = policy_params(options_from(c));
  return p;
}

}  // namespace rows
}  // namespace lagoon::db
