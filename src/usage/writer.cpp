#include "lagoon/usage/writer.hpp"

#include <optional>
#include <string>
#include <tuple>

#include <pqxx/pqxx>

#include "lagoon/db/pool.hpp"

namespace lagoon::usage {

namespace {

constexpr const char* kStaging =
    "SET LOCAL client_min_messages = warning;"
    "CREATE TEMP TABLE IF NOT EXISTS lagoon_usage_staging ("
    " request_id text, api_key_id bigint, user_id bigint, session_id uuid, model text, stream boolean,"
    " status_code integer, outcome text, prompt_tokens integer, completion_tokens integer, total_tokens integer,"
    " tokens_estimated boolean, started_at_us bigint, duration_ms double precision, ttfb_ms double precision"
    ") ON COMMIT DELETE ROWS";

// One statement: the new rows, then the aggregates of exactly those rows.
constexpr const char* kMerge =
    "WITH ins AS ("
    "  INSERT INTO usage_records (request_id, api_key_id, user_id, session_id, model, stream, status_code, outcome,"
    "    prompt_tokens, completion_tokens, total_tokens, tokens_estimated, started_at, duration_ms, ttfb_ms)"
    "  SELECT request_id, api_key_id, user_id, session_id, model, stream, status_code, outcome, prompt_tokens,"
    "    completion_tokens, total_tokens, tokens_estimated,"
    "    timestamptz 'epoch' + started_at_us * interval '1 microsecond', duration_ms, ttfb_ms"
    "  FROM lagoon_usage_staging"
    "  ON CONFLICT (request_id) DO NOTHING"
    "  RETURNING api_key_id, session_id, started_at),"
    " keys AS ("
    "  UPDATE api_keys k SET last_used_at = GREATEST(k.last_used_at, m.at)"
    "  FROM (SELECT api_key_id, max(started_at) AS at FROM ins GROUP BY api_key_id) m WHERE k.id = m.api_key_id),"
    " sess AS ("
    "  UPDATE sessions s SET last_used_at = GREATEST(s.last_used_at, m.at), request_count = s.request_count + m.n"
    "  FROM (SELECT session_id, max(started_at) AS at, count(*) AS n FROM ins WHERE session_id IS NOT NULL"
    "        GROUP BY session_id) m WHERE s.id = m.session_id)"
    " SELECT count(*) FROM ins";

const std::vector<std::string> kColumns = {
    "request_id",       "api_key_id",   "user_id",           "session_id",   "model",
    "stream",           "status_code",  "outcome",           "prompt_tokens", "completion_tokens",
    "total_tokens",     "tokens_estimated", "started_at_us", "duration_ms",  "ttfb_ms"};

// tx.quote() trips a GCC 12 -Wrestrict false positive inside libpqxx; esc() plus quotes is the same.
std::string quoted(pqxx::transaction_base& tx, const std::string& v) {
  std::string out = "'";
  out += tx.esc(v);
  out += '\'';
  return out;
}

template <class T>
std::string literal(pqxx::transaction_base& tx, const std::optional<T>& v) {
  if (!v) return "NULL";
  if constexpr (std::is_same_v<T, std::string>)
    return quoted(tx, *v);
  else
    return pqxx::to_string(*v);
}

void stage_by_insert(pqxx::work& tx, std::span<const Record> batch) {
  std::string sql = "INSERT INTO lagoon_usage_staging VALUES ";
  auto field = [&sql](const std::string& v) {
    sql += v;
    sql += ',';
  };
  for (const auto& r : batch) {
    sql += '(';
    field(quoted(tx, r.request_id));
    field(std::to_string(r.api_key_id));
    field(std::to_string(r.user_id));
    field(literal(tx, r.session_id));
    field(literal(tx, r.model));
    field(r.stream ? "true" : "false");
    field(std::to_string(r.status_code));
    field(quoted(tx, r.outcome));
    field(literal(tx, r.prompt_tokens));
    field(literal(tx, r.completion_tokens));
    field(literal(tx, r.total_tokens));
    field(r.tokens_estimated ? "true" : "false");
    field(std::to_string(r.started_at_us));
    field(pqxx::to_string(r.duration_ms));
    sql += literal(tx, r.ttfb_ms);
    sql += "),";
  }
  sql.pop_back();
  tx.exec(sql);
}

void stage_by_copy(pqxx::work& tx, std::span<const Record> batch) {
  pqxx::stream_to copy(tx, "lagoon_usage_staging", kColumns);
  for (const auto& r : batch)
    copy << std::make_tuple(r.request_id, r.api_key_id, r.user_id, r.session_id, r.model, r.stream, r.status_code,
                            r.outcome, r.prompt_tokens, r.completion_tokens, r.total_tokens, r.tokens_estimated,
                            r.started_at_us, r.duration_ms, r.ttfb_ms);
  copy.complete();
}

}  // namespace

WriteResult write_batch(pqxx::connection& conn, std::span<const Record> batch, WriteMethod method) {
  WriteResult result;
  if (batch.empty()) return result;
  pqxx::work tx(conn);
  tx.exec(kStaging);
  if (method == WriteMethod::copy)
    stage_by_copy(tx, batch);
  else
    stage_by_insert(tx, batch);
  result.inserted = tx.exec(kMerge)[0][0].as<std::size_t>();
  tx.commit();
  result.duplicates = batch.size() - result.inserted;
  return result;
}

Failure classify(std::exception_ptr e) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const db::Unavailable&) {
    return Failure::transient;
  } catch (const pqxx::broken_connection&) {
    return Failure::transient;
  } catch (const pqxx::in_doubt_error&) {
    return Failure::transient;
  } catch (const pqxx::sql_error& s) {
    const std::string state = s.sqlstate();
    // Class 22 (data exception) and 23 (integrity constraint violation) are about the rows themselves;
    // everything else (connection, resources, shutdown, timeouts, serialization) may pass on retry.
    if (state.size() == 5 && (state.rfind("22", 0) == 0 || state.rfind("23", 0) == 0)) return Failure::data;
    return Failure::transient;
  } catch (...) {
    return Failure::transient;
  }
}

}  // namespace lagoon::usage
