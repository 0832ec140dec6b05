#include "account_rows.hpp"

#include <pqxx/pqxx>

namespace lagoon::db::rows {
namespace {

template <class T>
std::optional<T> optional_field(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return f.as<T>();
}

std::optional<std::vector<std::string>> list_from(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return nlohmann::json::parse(f.as<std::string>()).get<std::vector<std::string>>();
}

// LAGOON_POLICY_COLUMNS, from column `first` on.
void read_policy(const pqxx::row& r, int first, Policy& p) {
  p.allowed_models = list_from(r[first]);
  p.allowed_endpoints = list_from(r[first + 1]);
  p.expires_at = optional_field<std::string>(r[first + 2]);
  p.max_concurrent = optional_field<std::int64_t>(r[first + 3]);
}

}  // namespace

// A budget whose amount or period cannot be read (written by hand past the CHECK) is no budget to
// enforce, and the gateway says so rather than guessing.
std::optional<money::Budget> budget_from(const pqxx::field& amount, const pqxx::field& period) {
  if (amount.is_null() || period.is_null()) return std::nullopt;
  const auto pico = money::parse_usd(amount.as<std::string>());
  const auto p = money::period_from(period.as<std::string>());
  if (!pico || !p) throw std::runtime_error("a budget in Postgres cannot be read: " + amount.as<std::string>());
  return money::Budget{*pico, *p};
}

std::pair<std::optional<std::string>, std::optional<std::string>> budget_columns(const std::optional<money::Budget>& b) {
  if (!b) return {};
  return {money::format_usd(b->amount), std::string(money::period_name(b->period))};
}

User user_from(const pqxx::row& r) {
  User u;
  u.id = r[0].as<std::int64_t>();
  u.name = r[1].as<std::string>();
  u.is_active = r[2].as<bool>();
  u.created_at = r[3].as<std::string>();
  u.budget = budget_from(r[4], r[5]);
  read_policy(r, 6, u);
  return u;
}

KeyInfo key_from(const pqxx::row& r) {
  KeyInfo k;
  k.id = r[0].as<std::int64_t>();
  k.user_id = r[1].as<std::int64_t>();
  k.prefix = r[2].as<std::string>();
  k.name = optional_field<std::string>(r[3]);
  k.is_active = r[4].as<bool>();
  k.rpm_limit = optional_field<std::int64_t>(r[5]);
  k.tpm_limit = optional_field<std::int64_t>(r[6]);
  k.created_at = r[7].as<std::string>();
  k.last_used_at = optional_field<std::string>(r[8]);
  k.revoked_at = optional_field<std::string>(r[9]);
  k.budget = budget_from(r[10], r[11]);
  read_policy(r, 12, k);
  k.tags = nlohmann::json::parse(r[16].as<std::string>());
  k.lineage_id = optional_field<std::int64_t>(r[17]);
  k.replaced_by = optional_field<std::int64_t>(r[18]);
  return k;
}

NewKey new_key(const std::string& pepper) {
  NewKey k;
  k.key = keys::generate(pepper);
  k.prefix = keys::display_prefix(k.key);
  k.digest = keys::digest(pepper, k.key);
  return k;
}

CreatedKey created(const NewKey& fresh, KeyInfo stored) {
  CreatedKey k;
  k.id = stored.id;
  k.key = fresh.key;
  k.prefix = stored.prefix;
  k.user_id = stored.user_id;
  k.info = std::move(stored);
  return k;
}

}  // namespace lagoon::db::rows
