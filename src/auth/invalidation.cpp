#include "lagoon/auth/invalidation.hpp"

#include <stdexcept>
#include <string>

namespace lagoon::auth {

namespace {
// As long as a filled entry lives (Authenticator), so a rewritten one outlives any fill it overrides.
constexpr const char* kEntryTtlSeconds = "900";
}  // namespace

void publish_invalidation(redis::SyncConnection& redis, std::string_view prefix, const std::vector<KeyRecord>& records) {
  auto run = [&](const std::vector<std::string>& args) {
    auto reply = redis.command(args);
    if (!reply) throw std::runtime_error(redis.error());
    if (reply->is_error()) throw std::runtime_error("Redis refused " + args[0] + ": " + reply->str);
  };
  for (const auto& r : records) {
    run({"SET", cache_key(prefix, r.digest), to_cache_json(CacheEntry{false, r}, r.digest), "EX", kEntryTtlSeconds});
    run({"PUBLISH", invalidation_channel(prefix), keys::to_hex(r.digest)});
  }
}

}  // namespace lagoon::auth
