#include "lagoon/db/spend.hpp"

#include <stdexcept>

#include <pqxx/pqxx>

namespace lagoon::db {

money::Pico spent(pqxx::connection& c, bool user, std::int64_t id, std::int64_t start_s,
                  std::optional<std::int64_t> end_s) {
  pqxx::read_transaction tx(c);
#define LAGOON_SPENT_RANGE                         \
  " AND started_at >= to_timestamp($2::bigint) " \
  "AND started_at < CASE WHEN $3::bigint < 0 THEN 'infinity'::timestamptz ELSE to_timestamp($3::bigint) END"
  const char* sql = user ? "SELECT COALESCE(sum(cost_usd), 0)::text FROM usage_records WHERE user_id = $1" LAGOON_SPENT_RANGE
                         : "SELECT COALESCE(sum(cost_usd), 0)::text FROM usage_records WHERE api_key_id IN "
                           "(SELECT id FROM api_keys WHERE id = $1 OR lineage_id = $1)" LAGOON_SPENT_RANGE;
#undef LAGOON_SPENT_RANGE
  const auto text = tx.exec_params1(sql, id, start_s, end_s.value_or(-1))[0].as<std::string>();
  const auto pico = money::parse_usd(text);
  if (!pico) throw std::runtime_error("the spend sum is not an amount: " + text);
  return *pico;
}

}  // namespace lagoon::db
