// The key-policy flags of cli.hpp: read by db's policy readers, as the admin API reads its members, so
// both refuse the same values; a refusal names the flag. Pure.
#include <charconv>

#include "lagoon/auth/policy.hpp"
#include "lagoon/cli/cli.hpp"

namespace lagoon::cli {
namespace {

std::optional<std::string> flag(const Command& cmd, const std::string& name) {
  const auto it = cmd.options.find(name);
  if (it == cmd.options.end()) return std::nullopt;
  return it->second;
}

// `inherit` or nothing at all unsets a field: the operator says "not this key's own".
bool unsets(const std::string& value) { return value == "inherit" || value.empty(); }

// A db reader's refusal as bad usage naming the flag.
template <class F>
auto read(const std::string& name, F reader) {
  try {
    return reader();
  } catch (const db::AccountsError& e) {
    throw UsageError("--" + name + ": " + e.what());
  }
}

std::optional<std::int64_t> max_concurrent(const std::string& value) {
  if (unsets(value)) return std::nullopt;
  std::int64_t n = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (ec != std::errc{} || end != value.data() + value.size() || n < 0 || n > auth::kMaxConcurrent)
    throw UsageError("--max-concurrent: expected an integer 0.." + std::to_string(auth::kMaxConcurrent) +
                     " (0 = unlimited) or inherit, got \"" + value + "\"");
  return n;
}

std::optional<std::int64_t> expiry(const std::string& value) {
  if (value == "never") return std::nullopt;
  const auto us = auth::parse_rfc3339_us(value);
  if (!us) throw UsageError("--expires: expected an RFC 3339 date-time (2027-01-01T00:00:00Z) or never, got \"" + value + "\"");
  read("expires", [&] { db::check_expiry(us); });
  return us;
}

}  // namespace

db::PolicyChanges policy_changes(const Command& cmd) {
  db::PolicyChanges c;
  if (const auto v = flag(cmd, "models"))
    c.allowed_models = unsets(*v) ? std::nullopt : read("models", [&] { return db::model_list(auth::split_list(*v)); });
  if (const auto v = flag(cmd, "endpoints"))
    c.allowed_endpoints =
        unsets(*v) ? std::nullopt : read("endpoints", [&] { return db::endpoint_list(auth::split_list(*v)); });
  if (const auto v = flag(cmd, "expires")) c.expires_at_us = expiry(*v);
  if (const auto v = flag(cmd, "max-concurrent")) c.max_concurrent = max_concurrent(*v);
  return c;
}

std::optional<nlohmann::json> tags_option(const Command& cmd) {
  const auto v = flag(cmd, "tags");
  if (!v) return std::nullopt;
  auto tags = nlohmann::json::parse(*v, nullptr, false);
  if (tags.is_discarded()) throw UsageError("--tags: expected a JSON object such as '{\"team\":\"search\"}', got \"" + *v + "\"");
  read("tags", [&] { db::check_tags(tags); });
  return tags;
}

std::int64_t grace_option(const Command& cmd) {
  const auto v = flag(cmd, "grace");
  if (!v) return db::kDefaultGraceSeconds;
  const auto s = db::grace_seconds(*v);
  if (!s) throw UsageError("--grace: expected a duration such as 24h, 90m, 1h30m, 7d or 0 (at most 366 days), got \"" + *v + "\"");
  return *s;
}

std::map<std::string, std::string> tag_filter(const Command& cmd) {
  std::map<std::string, std::string> out;
  const auto it = cmd.repeated.find("tag");
  if (it == cmd.repeated.end()) return out;
  for (const auto& t : it->second) {
    const auto eq = t.find('=');
    if (eq == std::string::npos || eq == 0) throw UsageError("--tag: expected NAME=VALUE, got \"" + t + "\"");
    if (!out.emplace(t.substr(0, eq), t.substr(eq + 1)).second)
      throw UsageError("--tag: \"" + t.substr(0, eq) + "\" given twice");
  }
  return out;
}

}  // namespace lagoon::cli
