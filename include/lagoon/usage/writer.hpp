// Writing a batch of usage records to Postgres in one transaction: the rows go into usage_records,
// records whose request_id is already there are skipped (so replays and retries never double a row),
// and for the rows that are new the aggregates move with them: api_keys.last_used_at and
// sessions.last_used_at / request_count.
//
// COPY (the whole batch in one buffer) into a temporary staging table, then one INSERT … SELECT … ON CONFLICT DO NOTHING whose
// RETURNING feeds the aggregate UPDATEs in the same statement. `insert` (a multi-row INSERT) exists
// only so the benchmark can compare the two.
// Blocking; call on a leased connection from the flusher thread. Thread-safety: as the connection.
#pragma once

#include <cstddef>
#include <exception>
#include <span>
#include <string>

#include <pqxx/connection>

#include "lagoon/usage/record.hpp"
#include "lagoon/usage/store.hpp"

namespace lagoon::usage {

enum class WriteMethod { copy, insert };

// The batch as PostgreSQL COPY text (tab-separated, \\N for NULL, backslash escapes), one line per
// record in the staging table's column order; appended to `out`. Doubles in shortest round-trip form.
void append_copy_text(std::string& out, std::span<const Record> batch);

WriteResult write_batch(pqxx::connection& conn, std::span<const Record> batch,
                        WriteMethod method = WriteMethod::copy);

// Why a write failed: Postgres unreachable or momentarily unable (retry the same batch later), or a
// record it will never accept (find and set aside the record).
enum class Failure { transient, data };
Failure classify(std::exception_ptr e) noexcept;

}  // namespace lagoon::usage
