#include <algorithm>
#include <chrono>

#include "lagoon/config/config.hpp"
#include "lagoon/db/pool.hpp"
#include "lagoon/usage/store.hpp"
#include "lagoon/usage/writer.hpp"

namespace lagoon::usage {
namespace {
// The flusher is off the request path: it may wait for a connection longer than a request would.
constexpr std::chrono::milliseconds kMinLeaseWait{1000};
}  // namespace

PostgresStore::PostgresStore(const config::Config& cfg, db::Pool& pool) : cfg_(cfg), pool_(pool) {
  pool_.declare_purpose("usage");
}

Stored PostgresStore::write(std::span<const Record> batch) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::max<std::chrono::milliseconds>(cfg_.db_acquire_timeout, kMinLeaseWait);
  try {
    const auto counts = pool_.with_lease(
        "usage", [&](pqxx::connection& c) { return write_batch(c, batch); }, deadline, db::Pool::Priority::high);
    return {Stored::Status::written, counts, {}};
  } catch (const std::exception& e) {
    const bool transient = classify(std::current_exception()) == Failure::transient;
    return {transient ? Stored::Status::transient : Stored::Status::refused, {}, e.what()};
  }
}

}  // namespace lagoon::usage
