#include "lagoon/admin/operations.hpp"

#include <chrono>
#include <regex>

#include "lagoon/auth/invalidation.hpp"
#include "lagoon/config/url.hpp"
#include "lagoon/money/book.hpp"
#include "lagoon/redis/sync.hpp"

namespace lagoon::admin {
namespace {

json optional_json(const auto& v) { return v ? json(*v) : json(nullptr); }

// Redis may be across a network from an operator's shell; still, an operation must not hang.
constexpr std::chrono::milliseconds kRedisTimeout{2000};

}  // namespace

namespace {
void add_budget(json& j, const std::optional<money::Budget>& b) {
  j["budget_usd"] = b ? json(money::format_usd(b->amount)) : json(nullptr);
  j["budget_period"] = b ? json(money::period_name(b->period)) : json(nullptr);
}

void add_policy(json& j, const db::Policy& p) {
  j["allowed_models"] = optional_json(p.allowed_models);
  j["allowed_endpoints"] = optional_json(p.allowed_endpoints);
  j["expires_at"] = optional_json(p.expires_at);
  j["max_concurrent"] = optional_json(p.max_concurrent);
}

// A key as created or rotated: the stored key with its full text, shown this once.
json created_json(const db::CreatedKey& k) {
  json j = key_json(k.info);
  j["key"] = k.key;
  return j;
}
}  // namespace

json user_json(const db::User& u) {
  json j = {{"id", u.id}, {"name", u.name}, {"is_active", u.is_active}, {"created_at", u.created_at}};
  add_budget(j, u.budget);
  add_policy(j, u);
  return j;
}

json key_json(const db::KeyInfo& k) {
  json j = {{"id", k.id},
          {"user_id", k.user_id},
          {"prefix", k.prefix},
          {"name", optional_json(k.name)},
          {"is_active", k.is_active},
          {"rpm_limit", optional_json(k.rpm_limit)},
          {"tpm_limit", optional_json(k.tpm_limit)},
          {"created_at", k.created_at},
          {"last_used_at", optional_json(k.last_used_at)},
          {"revoked_at", optional_json(k.revoked_at)},
          {"tags", k.tags},
          {"lineage_id", optional_json(k.lineage_id)},
          {"replaced_by", optional_json(k.replaced_by)}};
  add_budget(j, k.budget);
  add_policy(j, k);
  return j;
}

Outcome create_user(pqxx::connection& conn, const std::string& name, const db::PolicyOptions& policy) {
  return {user_json(db::create_user(conn, name, policy)), {}, {}};
}

Outcome get_user(pqxx::connection& conn, const std::string& ref) { return {user_json(db::find_user(conn, ref)), {}, {}}; }

Outcome deactivate_user(pqxx::connection& conn, const std::string& ref) {
  const auto u = db::deactivate_user(conn, ref);
  return {user_json(u), db::key_records_of_user(conn, u.id), "user \"" + u.name + "\" is deactivated"};
}

Outcome update_user(pqxx::connection& conn, const std::string& ref, const db::UserChanges& changes) {
  const auto u = db::update_user(conn, ref, changes);
  return {user_json(u), db::key_records_of_user(conn, u.id), "user \"" + u.name + "\" is updated"};
}

Outcome create_key(pqxx::connection& conn, const std::string& pepper, const std::string& user_ref,
                   const db::KeyOptions& options) {
  return {created_json(db::create_key(conn, pepper, user_ref, options)), {}, {}};
}

Outcome rotate_key(pqxx::connection& conn, const std::string& pepper, std::int64_t key_id, std::int64_t grace_seconds) {
  const auto r = db::rotate_key(conn, pepper, key_id, grace_seconds);
  json body = created_json(r.key);
  body["replaces"] = r.replaces;
  body["old_key_revoked_at"] = r.old_key_revoked_at;
  // The old key's cached records carry its end of grace (or its revocation) to every instance.
  Outcome o{std::move(body), db::key_records_of_key(conn, r.replaces),
            "key " + std::to_string(r.replaces) + " is rotated (replaced by key " + std::to_string(r.key.id) + ")"};
  o.repeatable = false;
  return o;
}

Outcome list_keys(pqxx::connection& conn, const std::string& user_ref) {
  json out = json::array();
  for (const auto& k : db::list_keys(conn, user_ref)) out.push_back(key_json(k));
  return {std::move(out), {}, {}};
}

Outcome get_key(pqxx::connection& conn, std::int64_t key_id) { return {key_json(db::get_key(conn, key_id)), {}, {}}; }

Outcome update_key(pqxx::connection& conn, std::int64_t key_id, const db::KeyChanges& changes) {
  const auto k = db::update_key(conn, key_id, changes);
  return {key_json(k), db::key_records_of_key(conn, key_id), "key " + std::to_string(key_id) + " is updated"};
}

Outcome revoke_key(pqxx::connection& conn, std::int64_t key_id) {
  const auto k = db::revoke_key(conn, key_id);
  return {json{{"id", k.id}, {"revoked", true}, {"revoked_at", optional_json(k.revoked_at)}},
          db::key_records_of_key(conn, key_id), "key " + std::to_string(key_id) + " is revoked"};
}

void invalidate(const config::Config& cfg, const Outcome& outcome) {
  if (outcome.stale.empty() && !outcome.prices_changed) return;
  try {
    redis::SyncConnection redis(cfg, kRedisTimeout);
    auth::publish_invalidation(redis, cfg.redis_prefix, outcome.stale);
    if (outcome.prices_changed) {
      auto reply = redis.command(
          {"PUBLISH", money::prices_channel(cfg.redis_prefix), std::string(money::kPricesChanged)});
      if (!reply) throw std::runtime_error(redis.error());
      if (reply->is_error()) throw std::runtime_error("Redis refused PUBLISH: " + reply->str);
    }
  } catch (const std::exception& e) {
    // Prices are reloaded anyway by each instance's next refresh from Venice; cached keys only expire.
    std::string until = outcome.prices_changed ? "they keep the prices they have until their next refresh from Venice"
                                               : "they may go on using their cached copy for up to 15 min";
    // A cached copy of a rotated key knows no end of grace: without one, the key works until the copy
    // expires. Revoking is idempotent, rotating again is not.
    if (!outcome.repeatable)
      until += " (the old key may work that long); do not rotate again, which would make another key: to stop "
               "the old key sooner, revoke it once Redis is reachable";
    throw InvalidationFailed(outcome.change + " in Postgres, but the running instances could not be told (" +
                             e.what() + "); " + until + ".");
  }
}

bool valid_timestamp(std::string_view text) {
  static const std::regex re(
      R"(\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}(:?\d{2})?)?)?)");
  return text.size() <= 40 && std::regex_match(text.begin(), text.end(), re);
}

}  // namespace lagoon::admin
