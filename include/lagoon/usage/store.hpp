// Store: where the usage flusher writes batches — one transaction per batch, idempotent on request_id —
// and what became of it, as a value: written, a transient failure (Postgres away or momentarily unable:
// the same batch is tried again later), or refused (some record in it will never be accepted: the
// pipeline bisects to set it aside). PostgresStore is the real one (writer.hpp on a high-priority lease);
// the pipeline's unit tests use a fake.
// Thread-safety: write() from the flusher thread only.
#pragma once

#include <cstddef>
#include <span>
#include <string>

#include "lagoon/usage/record.hpp"

namespace lagoon::config {
struct Config;
}
namespace lagoon::db {
class Pool;
}

namespace lagoon::usage {

struct WriteResult {
  std::size_t inserted = 0;
  std::size_t duplicates = 0;  // already present: an earlier attempt or a replay had stored them
};

struct Stored {
  enum class Status { written, transient, refused };
  Status status = Status::written;
  WriteResult counts;  // when written
  std::string error;   // otherwise: why
};

class Store {
 public:
  virtual ~Store() = default;
  virtual Stored write(std::span<const Record> batch) = 0;
};

class PostgresStore final : public Store {
 public:
  PostgresStore(const config::Config& cfg, db::Pool& pool);
  Stored write(std::span<const Record> batch) override;

 private:
  const config::Config& cfg_;
  db::Pool& pool_;
};

}  // namespace lagoon::usage
