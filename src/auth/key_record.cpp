#include "lagoon/auth/key_record.hpp"

#include <nlohmann/json.hpp>

namespace lagoon::auth {

namespace {
// Bump when the shape changes: entries of another version are ignored and refilled from Postgres.
constexpr int kCacheVersion = 3;  // 2: budgets; 3: policy and lineage

template <class T>
nlohmann::json optional_json(const std::optional<T>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

template <class T>
std::optional<T> optional_from(const nlohmann::json& j, const char* field) {
  const auto& v = j.at(field);
  if (v.is_null()) return std::nullopt;
  return v.get<T>();
}

nlohmann::json budget_json(const std::optional<money::Budget>& b) {
  if (!b) return nullptr;
  return {{"pico", b->amount}, {"period", money::period_name(b->period)}};
}

std::optional<money::Budget> budget_from(const nlohmann::json& j) {
  if (j.is_null()) return std::nullopt;
  const auto period = money::period_from(j.at("period").get<std::string>());
  const auto amount = j.at("pico").get<std::int64_t>();
  if (!period || amount < 0) throw nlohmann::json::type_error::create(302, "not a budget", &j);
  return money::Budget{amount, *period};
}
nlohmann::json policy_json(const KeyPolicy& p) {
  return {{"models", p.models},
          {"groups", p.groups},
          {"max_concurrent", p.max_concurrent},
          {"expires_at_us", optional_json(p.expires_at_us)},
          {"revokes_at_us", optional_json(p.revokes_at_us)}};
}

KeyPolicy policy_from(const nlohmann::json& j) {
  KeyPolicy p;
  p.models = j.at("models").get<std::vector<std::string>>();
  p.groups = j.at("groups").get<std::uint8_t>();
  p.max_concurrent = j.at("max_concurrent").get<std::int64_t>();
  p.expires_at_us = optional_from<std::int64_t>(j, "expires_at_us");
  p.revokes_at_us = optional_from<std::int64_t>(j, "revokes_at_us");
  return p;
}
}  // namespace

std::string cache_key(std::string_view prefix, const keys::Digest& digest) {
  return std::string(prefix) + "key:" + keys::to_hex(digest);
}

std::string invalidation_channel(std::string_view prefix) { return std::string(prefix) + "auth:invalidate"; }

std::string to_cache_json(const CacheEntry& entry, const keys::Digest& digest) {
  nlohmann::json j{{"v", kCacheVersion}, {"digest", keys::to_hex(digest)}};
  if (entry.unknown) {
    j["unknown"] = true;
    return j.dump();
  }
  const auto& r = entry.record;
  j["key_id"] = r.key_id;
  j["user_id"] = r.user_id;
  j["prefix"] = r.prefix;
  j["name"] = optional_json(r.name);
  j["key_active"] = r.key_active;
  j["user_active"] = r.user_active;
  j["rpm_limit"] = optional_json(r.rpm_limit);
  j["tpm_limit"] = optional_json(r.tpm_limit);
  j["key_budget"] = budget_json(r.key_budget);
  j["user_budget"] = budget_json(r.user_budget);
  j["policy"] = policy_json(r.policy);
  j["lineage_id"] = r.lineage_id;
  return j.dump();
}

std::optional<CacheEntry> from_cache_json(std::string_view text, const keys::Digest& expected) {
  const auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  try {
    if (j.at("v").get<int>() != kCacheVersion) return std::nullopt;
    const auto digest = keys::from_hex(j.at("digest").get<std::string>());
    if (!digest || !keys::digests_equal(*digest, expected)) return std::nullopt;
    CacheEntry e;
    e.record.digest = *digest;
    if (j.value("unknown", false)) {
      e.unknown = true;
      return e;
    }
    auto& r = e.record;
    r.key_id = j.at("key_id").get<std::int64_t>();
    r.user_id = j.at("user_id").get<std::int64_t>();
    r.prefix = j.at("prefix").get<std::string>();
    r.name = optional_from<std::string>(j, "name");
    r.key_active = j.at("key_active").get<bool>();
    r.user_active = j.at("user_active").get<bool>();
    r.rpm_limit = optional_from<std::int64_t>(j, "rpm_limit");
    r.tpm_limit = optional_from<std::int64_t>(j, "tpm_limit");
    r.key_budget = budget_from(j.at("key_budget"));
    r.user_budget = budget_from(j.at("user_budget"));
    r.policy = policy_from(j.at("policy"));
    r.lineage_id = j.at("lineage_id").get<std::int64_t>();
    return e;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

}  // namespace lagoon::auth
