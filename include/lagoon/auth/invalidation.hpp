// Cache invalidation after a change to keys or users (revocation, deactivation, new limits), for
// the CLI and the admin API: every instance must stop using its old copy within a second.
// Blocking; call from the CLI or a blocking thread. Thread-safety: as the SyncConnection passed in.
#pragma once

#include <vector>

#include "lagoon/auth/key_record.hpp"
#include "lagoon/redis/sync.hpp"

namespace lagoon::auth {

// For each record, as it now is in Postgres: overwrite its Redis entry with it (so a revoked key's
// entry says revoked rather than disappearing, which a concurrent lookup could refill with the old
// record), then publish its digest so every instance drops it from L1.
// Throws std::runtime_error when Redis cannot be reached or refuses; Postgres is already changed then,
// and repeating the operation repeats the invalidation.
void publish_invalidation(redis::SyncConnection& redis, std::string_view prefix, const std::vector<KeyRecord>& records);

}  // namespace lagoon::auth
